"""What export needs of a batch file, without decoding the lines that only pass through: the pure
reference and its compiled twin (native/export.c).

Most records of a Twitch archive are messages with an id, an exact time and numbers the merge keeps
as they are. When such a record's id is unique among a chunk's records, the merge and the reading
fold give it back unchanged (export.stream.passing_through), and json and jsonl print exactly its
canonical line: so if the stored line *is* canonical, export can carry the line's bytes from the
file to the output without building the record. `scan_line_py` is the definition. It decodes the
line with the one reader (`formats.canonical.parse_batch`) and:

- refuses it (None) unless the line is exactly the canonical bytes of its record and of the shape
  the compiled scanner reads (receiver and tag names without escapes, ints of at most 15 digits, finite floats):
  the caller then reads the whole file as before (`export.stream.decode_batch`), so damage is
  reported exactly as before;
- else returns a *lone candidate* `(time, 0, line, mid)` when the record passes through by itself
  once its id is unique: a message id (`formats.identity.message_id`) of printable ASCII without `"` or
  `\\`, numbers the merge gives back as they are (`merge.core.alone_as_is`: the range the int 0 with
  one receiver, `0.0` with a float time and two or more; every receive time `kept_as_is`), at most
  16 receivers, no lone surrogate in any string;
- else the line itself (bytes): a record export decodes and merges as before.

`scan_batch_py` does that for each line of a file: `(candidates, rest)`, `rest` being the other
lines joined, each with its newline (a batch file's bytes again), or the number (from 1) of the
first line refused (0: the file is empty or does not end with a newline). The compiled twin reads
the canonical grammar (native/canonline.h) and must return exactly the same, which
tests/test_export_scan.py holds over random, damaged and real lines.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from typing import Any

from formats import speedups
from formats.canonical import canonical_bytes, decode_batch_fast, parse_batch
from formats.errors import InputError
from formats.identity import message_id
from merge.core import alone_as_is, kept_as_is

Number = int | float
Lone = tuple[Number, int, bytes, str]  # (time, 0, line, message id)
Scanned = tuple[list[Lone], bytes]
ScanBatch = Callable[[bytes], "Scanned | int"]

INT_LIMIT = 10**15  # the scanner reads ints of at most 15 digits
MAX_RECEIVERS = 16  # CL_MAX_RECV: a lone candidate has at most this many receivers


def _plain(name: str) -> bool:
    """A string json.dumps writes without an escape."""
    return name.isascii() and name.isprintable() and '"' not in name and "\\" not in name


def _scannable(value: Any) -> bool:
    """A number the scanner reads: an int of at most 15 digits or a finite float."""
    if type(value) is int:
        return -INT_LIMIT < value < INT_LIMIT
    return math.isfinite(value)


def _lone_surrogate(record: dict[str, Any]) -> bool:
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def scan_line_py(line: bytes) -> Lone | bytes | None:
    """A lone candidate, the line (decode it), or None (refused): see the module docstring."""
    if b"\n" in line or b"\r" in line:
        return None
    try:
        (record,) = parse_batch(line + b"\n")
    except InputError:
        return None
    return _judge(line, record)


def _judge(line: bytes, record: dict[str, Any]) -> Lone | bytes | None:
    """`scan_line_py` of a line and its record as the reader decodes it."""
    if canonical_bytes(record) != line:
        return None
    receivers, tags = record["receivers"], record["tags"]
    time, time_range = record["time"], record["time_range"]
    if not _plain("".join(receivers)) or (tags and not _plain("".join(tags))):  # a property of each character
        return None
    if not all(_scannable(v) for v in (time, time_range, *receivers.values())):
        return None
    mid = message_id(record)
    if (
        mid is not None
        and _plain(mid)
        and alone_as_is(time, time_range, len(receivers))
        and len(receivers) <= MAX_RECEIVERS
        and all(kept_as_is(v) for v in receivers.values())
        and (b"\\ud" not in line or not _lone_surrogate(record))  # a surrogate is escaped: \udXXX
    ):
        return (time, 0, line, mid)
    return line


def scan_batch_py(data: bytes) -> Scanned | int:
    """`scan_line_py` of every line of a batch file's bytes (see the module docstring)."""
    if not data.endswith(b"\n"):
        return 0
    lone: list[Lone] = []
    rest: list[bytes] = []
    lines = data[:-1].split(b"\n")
    # the reader's records of the whole file at once: each line's, as parse_batch reads them one by one
    records = decode_batch_fast(data)
    if records is None:
        with contextlib.suppress(InputError):  # else line by line, to find the first line refused
            records = parse_batch(data)
    judged = map(scan_line_py, lines) if records is None else map(_judge, lines, records)
    for number, scanned in enumerate(judged, 1):
        if scanned is None:
            return number
        if type(scanned) is bytes:
            rest.append(scanned + b"\n")
        else:
            lone.append(scanned)  # type: ignore[arg-type]
    return lone, b"".join(rest)


# The compiled twin when built, else the reference itself: it decodes every line, but export then
# holds lone messages as their lines, not as dicts (a tenth of the memory), and skips re-encoding them.
scan_batch: ScanBatch = speedups.twin(scan_batch_py, "export_scan_batch")
