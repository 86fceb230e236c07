"""What the merge needs of a batch file line, without decoding it: the pure reference and its
compiled twin (merge/_scan.c).

In a canonical line (ARCHIVE_FORMAT.md section 3: sorted keys, one record per line) a merge needs
only the message's identity and the three fields it changes; everything else passes through as
bytes. `scan_line_py` is the definition: it decodes the line and checks it exactly as every reader
does (`formats.canonical.parse_batch`, `merge.core.check_parsed`), and *vouches* for it only if
the line is exactly the canonical bytes of its record and of the shape the merge's byte path handles
(receiver names and tag names without escapes, no lone surrogate, ints of at most 15 digits, no -0.0, no 0.0 range,
a time from 1970 to 9999). Then it returns a `Scanned` tuple:

    (content, a, k, mid, receivers, time, time_range, receivers_text, numbers_text)

- `content`: the line without the values of `receivers`, `time` and `time_range`
  (`line[:a] + line[b:c] + line[d:]`): equal for two lines exactly when their contents are equal;
- `a`: where the receivers object starts in the line (and in `content`), `k`: the length of what
  lies between that object's end and the time's value (`,"sender":...,"time":`), so that a merged
  line is `content[:a] + RECEIVERS + content[a:a + k] + TIME + b',"time_range":' + RANGE + content[a + k:]`;
- `mid`: the message id (`id` tag, else `msgid`, as `formats.identity.message_id`) as its JSON bytes
  between the quotes, or None;
- `receivers`: name (bytes) -> receive time; `time`, `time_range`: the numbers, as decoded;
- `receivers_text`: the receivers object's text without its braces (`"name":when,...`), and
  `numbers_text` the time's and range's (`TIME,"time_range":RANGE`): a merge that keeps them writes
  them back as they are.

Anything it does not vouch for is None, and the caller takes the whole file through the reference
path (decode, check, merge records): so errors, damage and odd files are always the pure code's.
The compiled twin reads the canonical grammar directly and must return exactly the same, which
tests/test_merge_scan.py holds over random, damaged and real lines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from formats import speedups
from formats.canonical import canonical_bytes, parse_batch
from formats.errors import InputError
from formats.identity import message_id
from merge.core import check_parsed

Number = int | float
Scanned = tuple[bytes, int, int, bytes | None, dict[bytes, Number], Number, Number, bytes, bytes]

TIME_LIMIT = 253_402_300_000  # a time the layout can name as a minute (years 1970 to 9999)
INT_LIMIT = 10**15  # ints of at most 15 digits: within 2**53, the merge's limit


def _plain(name: str) -> bool:
    return name.isascii() and name.isprintable() and '"' not in name and "\\" not in name


def _kept(value: Any) -> bool:
    if type(value) is int:
        return -INT_LIMIT < value < INT_LIMIT
    return type(value) is float and math.isfinite(value) and not (value == 0.0 and math.copysign(1.0, value) < 0)


def scan_line_py(line: bytes) -> Scanned | None:
    """The fields a merge needs of a batch file line, or None if it does not vouch for it (above)."""
    if b"\n" in line or b"\r" in line:
        return None
    try:
        records = parse_batch(line + b"\n")
        check_parsed(records, "<line>")
    except InputError:
        return None
    (record,) = records
    if canonical_bytes(record) != line:
        return None
    try:  # a lone surrogate (a half of a pair, alone) in a string: refused, as by the twin
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None
    receivers, tags = record["receivers"], record["tags"]
    time, time_range = record["time"], record["time_range"]
    if not all(_plain(name) for name in receivers) or (tags and not all(_plain(name) for name in tags)):
        return None
    if not all(_kept(v) for v in (time, time_range, *receivers.values())):
        return None
    if not 0 <= time < TIME_LIMIT or (type(time_range) is float and time_range == 0.0):
        return None
    a = line.index(b',"receivers":{') + len(b',"receivers":')
    b = line.index(b'},"sender":', a) + 1
    c = line.rindex(b',"time":') + len(b',"time":')
    d = line.rindex(b',"user":')
    mid = message_id(record)
    return (
        line[:a] + line[b:c] + line[d:],
        a,
        c - b,
        None if mid is None else json.dumps(mid)[1:-1].encode("ascii"),
        {name.encode("ascii"): when for name, when in receivers.items()},
        time,
        time_range,
        line[a + 1 : b - 1],
        line[c:d],
    )


def scan_batch_py(data: bytes) -> list[Scanned] | int:
    """`scan_line_py` of every line of a batch file's bytes, or the number (from 1) of the first line
    it does not vouch for (0: the file is empty or does not end with a newline)."""
    if not data.endswith(b"\n"):
        return 0
    out: list[Scanned] = []
    for number, line in enumerate(data[:-1].split(b"\n"), 1):
        scanned = scan_line_py(line)
        if scanned is None:
            return number
        out.append(scanned)
    return out


_compiled = speedups.load("merge._scan")
# The compiled twin when built; else None, and the merge uses the reference path for every file
# (scanning in Python would cost more than it saves).
scan_line: Callable[[bytes], Scanned | None] | None = None if _compiled is None else _compiled.scan_line
scan_batch: Callable[[bytes], list[Scanned] | int] | None = None if _compiled is None else _compiled.scan_batch
# scan_batch's verdict without its tuples: a file's lines kept in C as offsets and numbers
# (`merge._scan.Lines`, what merge.fastplan.fold_lines folds), or the same int as scan_batch's
scan_file: Callable[[bytes], Any] | None = None if _compiled is None else _compiled.scan_file
