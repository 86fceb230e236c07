"""Integrity of one batch file, from its bytes: the pure heart of verify.

`check_batch(data, ...)` returns the findings for one file and the counters of its records. It
never touches the disk, so it runs the same in the main process, in a worker, and in tests.

Speed matters (an archive day at 100 msg/s is 8.6 million lines). When the compiled twin is built
(native/verify.c), a clean file (no finding on any line: nearly every file of a healthy archive) is
checked and counted by it straight from the bytes, one pass, without a Python object per record;
it hands every other file, and any shape it leaves alone, to the pure-Python path below, which is
the reference and names every fault (`clean_tally_py`, in tests/reference/verify_tally.py, is its
verdict on a clean file, which the twin must equal). On that path, a well-formed file takes a
fast path: the whole file is decoded as one JSON array and re-encoded with orjson in one call, and
if the bytes come back identical every line is canonical at once. Only a file that fails that test
is walked line by line, which is slower but names each bad line. The fast path is only trusted
where orjson and `json.dumps` print the same bytes: ASCII files without a float below 1e-4 (orjson
writes those as `0.0000...`, `json.dumps` with an exponent); anything else takes the slow path.
"""

# ruff: noqa: PLR1730 (the hot loop compares in place: a min()/max() call per value costs more)

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from formats import speedups
from formats.canonical import (
    batch_time_of,
    canonical_json,
    content_hash,
    decode_batch_fast,
    ensure_ascii,
    validate_record,
)
from formats.errors import InputError
from formats.identity import message_id
from verify.findings import Finding
from verify.fresh import FreshIndex, stale_records
from verify.tally import (
    FINE_LIMIT,
    FINE_PER_SECOND,
    RANGE_CLASSES,
    ChannelTally,
    ReceiverTally,
    range_class,
    recorder_of,
)

# Per file and kind, report this many lines one by one, then one summary finding for the rest:
# a file mangled on every line should not bury the report.
LINE_FINDINGS_PER_KIND = 5


@dataclass
class FileScan:
    """The result of checking one batch file."""

    findings: list[Finding] = field(default_factory=list)
    tally: ChannelTally = field(default_factory=ChannelTally)


class _Reporter:
    """Collects line findings, capped per kind (see LINE_FINDINGS_PER_KIND)."""

    def __init__(self, source: str, channel: str) -> None:
        self.source = source
        self.channel = channel
        self.findings: list[Finding] = []
        self._counts: dict[str, int] = {}

    def add(self, kind: str, message: str, line: int | None = None) -> None:
        n = self._counts.get(kind, 0) + 1
        self._counts[kind] = n
        if line is None or n <= LINE_FINDINGS_PER_KIND:
            self.findings.append(Finding(kind, message, self.source, line, self.channel))

    def finish(self) -> list[Finding]:
        for kind, n in self._counts.items():
            if n > LINE_FINDINGS_PER_KIND:
                self.findings.append(
                    Finding(
                        kind,
                        f"{n - LINE_FINDINGS_PER_KIND} more lines like this",
                        self.source,
                        None,
                        self.channel,
                    )
                )
        return self.findings


def _has_tiny_float(data: bytes) -> bool:
    """Whether a number starts `0.0000` (after `:`, `,`, `[` or a minus): a float below 1e-4 as
    orjson prints it. Digits inside a longer number (`1700000400.00001`) do not count. (A find
    loop: a regex with a leading character class scans several times slower.)"""
    at = data.find(b"0.0000")
    while at > 0:
        if data[at - 1] in b":,[-":
            return True
        at = data.find(b"0.0000", at + 1)
    return at == 0


def fast_records(data: bytes) -> list[dict[str, Any]] | None:
    """The file's records if every line is canonical and a record (decided in two orjson calls:
    formats.canonical.decode_batch_fast, which export reads files through too, and one encode of
    them all), else None: then the caller must take the slow path, which says what is wrong."""
    if not data.isascii() or _has_tiny_float(data):
        return None
    records = decode_batch_fast(data)  # one record per line, of the schema
    if records is None:
        return None
    joined = b"[" + data[:-1].replace(b"\n", b",") + b"]"
    try:
        again = orjson.dumps(records, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    if not again.isascii():
        again = ensure_ascii(again)
    if again != joined:
        return None
    return records


def _slow_records(data: bytes, report: _Reporter) -> list[tuple[int, dict[str, Any], str]]:
    """Walk the lines one by one; report each bad one. Returns (line number, record, text) of the
    lines that hold a valid record (canonical or not), for the checks that follow."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    good = []
    for number, raw in enumerate(lines, 1):
        try:
            # the stdlib, not orjson: orjson reads an int beyond 64 bits as a float, which would
            # make an exact line look non-canonical (and this path is the rare one anyway)
            value = json.loads(raw)
        except (ValueError, RecursionError) as e:
            report.add("bad-json", f"not JSON ({e})", number)
            continue
        try:
            record = validate_record(value)
        except InputError as e:
            report.add("bad-record", e.message, number)
            continue
        text = raw.decode("utf-8", "replace")
        try:
            canonical = canonical_json(record)
        except (TypeError, ValueError) as e:  # pragma: no cover - validate_record admits only JSON values
            report.add("bad-record", f"cannot be encoded ({e})", number)
            continue
        if canonical != text:
            report.add("not-canonical", "line differs from the canonical JSON of its record", number)
        good.append((number, record, text))
    return good


def _batch_of(time: float) -> int | None:
    try:
        return batch_time_of(time)
    except (OverflowError, ValueError):  # inf or NaN
        return None


def check_batch(
    data: bytes,
    source: str,
    channel: str,
    batch_time: int,
    digest: str,
    *,
    fresh: FreshIndex | None = None,
) -> FileScan:
    """Check one batch file's bytes against its name (`batch_time`, `digest`) and count its records.

    Checks: hash, final newline, JSON, schema, canonical lines, sort order, each record in the
    file's minute, no repeated message id, no negative (conflict) or oversized range; with `fresh`
    (an index of the raw recordings, verify.fresh), records that a replay today would write
    differently.
    """
    report = _Reporter(source, channel)
    tally = ChannelTally(files=1, bytes=len(data))
    if content_hash(data) != digest:
        report.add("hash-mismatch", f"content hash is {content_hash(data)}, name says {digest}")
    if not data:
        report.add("empty-file", "no records")
        return FileScan(report.finish(), tally)
    if not data.endswith(b"\n"):
        report.add("torn-file", "does not end with a newline (torn or truncated write)")

    clean = _compiled_tally(data, batch_time) if _core is not None and not fresh else None
    if clean is not None:
        tally.add(clean)
    else:
        _check_lines(data, batch_time, report, tally, fresh)
    return FileScan(report.finish(), tally)


def _check_lines(
    data: bytes,
    batch_time: int,
    report: _Reporter,
    tally: ChannelTally,
    fresh: FreshIndex | None,
) -> None:
    """The checks of every line, and the counters of its records: the pure-Python reference."""
    fast = fast_records(data)
    if fast is not None:
        rows: list[tuple[int, dict[str, Any], str]] | None = None
        records = fast
    else:
        rows = _slow_records(data, report)
        records = [r for _n, r, _t in rows]

    _check_order(records, rows, data, report)
    _check_records(records, rows, batch_time, report)
    _count(records, batch_time, tally)
    if fresh:
        for i in stale_records(records, fresh):
            tally.stale += 1
            number = rows[i][0] if rows is not None else i + 1
            report.add("stale", "record differs from a fresh replay of the raw", number)


def _compiled_tally(data: bytes, batch_time: int) -> ChannelTally | None:
    """`clean_tally_py` read straight from the bytes by native/verify.c, or None: for a file with any
    finding, and also for odd shapes it leaves to the reference (see there)."""
    assert _core is not None
    got = _core.scan_clean(data, batch_time)
    if got is None:
        return None
    records, messages, single, classes, receivers, recorders, first, last = got
    tally = ChannelTally(records=records, recv_first=first, recv_last=last)
    if records:
        tally.minutes[batch_time] = [records, messages, single]
    tally.ranges = {name: n for name, n in zip(RANGE_CLASSES, classes, strict=True) if n}
    tally.receivers = {row[0]: ReceiverTally(*row[1:]) for row in receivers}
    tally.recorders = dict(recorders)
    return tally


# The compiled twin of `clean_tally_py` (tests/reference/verify_tally.py) when built (equal to it:
# tests/test_verify_core.py), else None.
_core = speedups.load()


def _check_order(
    records: list[dict[str, Any]],
    rows: list[tuple[int, dict[str, Any], str]] | None,
    data: bytes,
    report: _Reporter,
) -> None:
    """Lines must be sorted by (time, time_range, line text); report the first line out of order."""
    texts: list[str] | None = None
    previous: tuple[Any, Any] | None = None
    for i, record in enumerate(records):
        key = (record["time"], record["time_range"])
        if previous is not None and key <= previous:
            if key == previous:
                if texts is None:
                    texts = [t for _n, _r, t in rows] if rows is not None else data.decode().split("\n")
                if texts[i] >= texts[i - 1]:
                    previous = key
                    continue
            number = rows[i][0] if rows is not None else i + 1
            report.add("unsorted", "line sorts before the line above it (by time, time_range, text)", number)
            return
        previous = key


def _check_records(
    records: list[dict[str, Any]],
    rows: list[tuple[int, dict[str, Any], str]] | None,
    batch_time: int,
    report: _Reporter,
) -> None:
    ids: set[str] = set()
    for i, record in enumerate(records):
        number = rows[i][0] if rows is not None else i + 1
        time = record["time"]
        if _batch_of(time) != batch_time:
            report.add("wrong-minute", f"time {time!r} is outside the file's minute", number)
        time_range = record["time_range"]
        if time_range < 0:
            report.add("conflict", f"time_range {time_range!r}: receivers' ranges are disjoint", number)
        elif not time_range <= 60:
            report.add("odd-range", f"time_range {time_range!r} is wider than the archiver makes", number)
        mid = message_id(record)
        if mid is not None:
            if mid in ids:
                report.add("duplicate-id", f"message id {mid} appears again", number)
            ids.add(mid)


def _count(records: list[dict[str, Any]], batch_time: int, tally: ChannelTally) -> None:
    """Add the records' counters to `tally`: the hot loop of verify, kept flat on purpose (no calls
    per receiver in the common case; `ReceiverTally.add_delay` handles the rare far-off delays)."""
    receivers = tally.receivers
    ranges = tally.ranges
    recorders = tally.recorders
    recorder_names: dict[str, str] = {}
    messages = single = 0
    first = math.inf
    last = -math.inf
    fine_limit = FINE_LIMIT
    for record in records:
        time_range = record["time_range"]
        name = "exact" if time_range == 0 else range_class(time_range)
        ranges[name] = ranges.get(name, 0) + 1
        seen_by = record["receivers"]
        has_id = message_id(record) is not None
        alone = len(seen_by) == 1
        if has_id:
            messages += 1
            if alone:
                single += 1
            whos = set()
        exact = time_range == 0
        time = record["time"]
        for receiver, received in seen_by.items():
            rt = receivers.get(receiver)
            if rt is None:
                receivers[receiver] = rt = ReceiverTally()
                recorder_names[receiver] = recorder_of(receiver)
            rt.observations += 1
            if has_id:
                rt.seen += 1
                if alone:
                    rt.sole += 1
                whos.add(recorder_names.get(receiver) or recorder_of(receiver))
            if received < rt.first:
                rt.first = received
            if received > rt.last:
                rt.last = received
            if received < first:
                first = received
            if received > last:
                last = received
            if exact:
                delta = received - time
                if -fine_limit < delta < fine_limit:
                    b = math.floor(delta * FINE_PER_SECOND)
                    delays = rt.delays
                    delays[b] = delays.get(b, 0) + 1
                    rt.delay_count += 1
                    rt.delay_sum += delta
                    if delta < rt.delay_min:
                        rt.delay_min = delta
                    if delta > rt.delay_max:
                        rt.delay_max = delta
                else:
                    rt.add_delay(delta)
        if has_id:
            for who in whos:
                recorders[who] = recorders.get(who, 0) + 1
    tally.records += len(records)
    if records:
        tally.minutes[batch_time] = [len(records), messages, single]
    tally.recv_first = min(tally.recv_first, first)
    tally.recv_last = max(tally.recv_last, last)
