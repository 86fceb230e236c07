"""The merge scanner's reference: `scan_line_py` is the definition of what the merge's byte path
vouches for in a batch file line (see merge/scan.py for the `Scanned` tuple it answers), and
`scan_batch_py` the same for a file; the compiled `scan_line`, `merge_scan_batch` and `scan_file`
(native/merge.c) are held to them by tests/test_merge_scan.py. Without the compiled scanner the
merge takes every file the reference way (decode, check, merge records), never this."""

from __future__ import annotations

import json
import math
from typing import Any

from formats.canonical import canonical_bytes, parse_batch
from formats.errors import InputError
from formats.identity import message_id
from merge.core import check_parsed
from merge.scan import Scanned

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
    if not 0 <= time < TIME_LIMIT:
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
