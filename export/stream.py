"""The I/O shell of export: read a window's batch files chunk by chunk, merge, fold, select, write.

Memory holds a chunk of minutes at a time (see `window.plan_chunks`), so an export of a day costs
no more memory than one of a few minutes. Each minute's files are read once: records of the
minutes two chunks share stay in a small cache, slimmed to what later chunks can need, until the
last chunk that needs them is done. Long windows go to a process pool in parts (`parts.py`).

What a reader is shown comes from the merge package: `merge.view.fold_for_reading` merges the
records (`merge.core.merge_records`) and then folds ranged duplicates from different receivers.
It is a parameter so tests can pin it, and imported only when an export runs.
"""

from __future__ import annotations

import math
import os
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from itertools import chain, compress, count, islice, pairwise
from operator import eq, itemgetter
from typing import IO, Any

import orjson

from export.render import Playback, Renderer
from export.scan import Lone, ScanBatch, scan_batch
from export.window import (
    MAX_RANGE,
    Chunk,
    ExportError,
    Filters,
    Window,
    trim_before_quiet_points,
    trim_content,
)
from formats.canonical import (
    BATCH_INTERVAL,
    batch_relpath,
    canonical_bytes,
    canonical_json,
    decode_batch_fast,
    parse_batch,
)
from formats.errors import ArchiverError, InputError
from formats.identity import message_id
from formats.memory import gc_paused
from formats.names import hour_ok, hour_start
from formats.store import hour_batch_files, list_hours
from merge.core import alone_as_is, check_records, numbers_kept_as_is
from merge.fastplan import merged_minute
from merge.view import fold_rows

# peak memory grows with it: 10 minutes of a 100 msg/s channel peak at about 180 MiB (most records
# held as their lines); each chunk also merges its context minutes' id-less records (docs/performance.md)
CHUNK_MINUTES = 10

Records = list[dict[str, Any]]
RecordsFn = Callable[[Records], Records]
NO_FILTERS = Filters()
# What a chunk emits, in the merge's order: a lone candidate that passes through (time, 0, line, id),
# its line the stored canonical bytes (export.scan), or a record from the view (time, time_range,
# its canonical line or b"" when not asked for, its place, the record).
Row = tuple[Any, ...]
_MID = itemgetter(3)
_TIME = itemgetter(0)
_RANGE = itemgetter(1)
_LINE = itemgetter(2)


def default_view() -> RecordsFn:
    """merge_records, then the reading fold (fold_for_reading does both)."""
    from merge.view import fold_for_reading  # noqa: PLC0415 (lazy: only an export needs it)

    return fold_for_reading


def _receivers_kept_as_is(receivers: dict[str, Any]) -> bool:
    """`kept_as_is` of every receive time."""
    return numbers_kept_as_is(list(receivers.values()))


_time_key = itemgetter("time", "time_range")


def canonical_order(records: Records) -> Records:
    """`records` sorted as the merge sorts its output: by (time, time_range, canonical line), the
    line being encoded only for records whose (time, time_range) ties (found by C loops)."""
    records.sort(key=_time_key)
    keys = list(map(_time_key, records))
    # i where records i-1 and i tie; each run of ties is sorted by its lines
    ties = list(compress(count(1), map(eq, keys, islice(keys, 1, None))))
    for start, end in _tie_runs(ties):
        records[start:end] = sorted(records[start:end], key=canonical_json)
    return records


def _tie_runs(ties: list[int]) -> Iterator[tuple[int, int]]:
    """The runs of equal keys, as slices (start, end), from the sorted places `i` where items `i - 1`
    and `i` tie."""
    t, n = 0, len(ties)
    while t < n:
        start = end = ties[t]
        while t < n and ties[t] == end:
            end += 1
            t += 1
        yield start - 1, end


def passing_through(view: RecordsFn) -> RecordsFn:
    """`view` (the merge and reading fold, merge.view.fold_for_reading), with the records it leaves
    as they are kept out of it: a record whose message id no other record of the list has, exact,
    and whose numbers the merge keeps (`merge.core.alone_as_is`, `kept_as_is`) is its own merge group,
    and the merge gives it back unchanged (a group of one folds to its own time and range 0); the
    reading fold only joins records without an id. So the view of the list is the view of the
    others plus these, in the merge's order. Most of a Twitch archive is such records: the merge,
    the cost of an export, then runs on the few others (JOIN/PART, notices, ranged records).
    tests/test_export_passthrough.py holds this to the view itself over random lists."""

    def shown(records: Records) -> Records:
        ids = [message_id(r) for r in records]
        seen = Counter(ids)
        alone: Records = []
        rest: Records = []
        for record, mid in zip(records, ids, strict=True):
            if (
                mid is not None
                and seen[mid] == 1
                and alone_as_is(record["time"], record["time_range"], len(record["receivers"]))
                and _receivers_kept_as_is(record["receivers"])
            ):
                alone.append(record)
            else:
                rest.append(record)
        if not alone:
            return view(records)
        try:
            others = view(rest)
        except InputError:
            return view(records)  # raises the same error as the whole list (its record numbers)
        return canonical_order(alone + others)

    return shown


def next_file_finder(root: str, channel: str) -> Callable[[int], int | None]:
    """For `window.plan_chunks`: the first batch time at or after a moment that may hold files of
    the channel (the start of an hour folder that exists, or the moment itself inside one), None
    if no hour folder exists from there on. The hour folders are listed once, and again when asked
    past the newest (a live archive grows)."""
    starts: list[int] = []

    def listing() -> None:
        try:
            hours = list_hours(root, channel)
        except OSError as e:
            raise ExportError(f"{e.filename}: cannot list: {e.strerror}") from None
        starts[:] = sorted(hour_start(h) for h in hours if hour_ok(h))

    def next_file(at: int) -> int | None:
        i = bisect_left(starts, at - 3599)  # the first hour that ends after `at`
        if i == len(starts):
            listing()
            i = bisect_left(starts, at - 3599)
            if i == len(starts):
                return None
        return max(starts[i], at)

    listing()
    return next_file


def channel_name(root: str, channel: str) -> str:
    """The channel's folder name; ExportError if the root or the channel is not there."""
    if not os.path.isdir(root):
        raise ExportError(f"{root}: not a folder")
    name = channel.lstrip("#").lower()
    if not name or "/" in name or name in (".", ".."):
        raise ExportError(f"not a channel name: {channel!r}")
    if not os.path.isdir(os.path.join(root, name, "chat")):
        raise ExportError(f"{root}: no channel {name!r} (no {name}/chat folder)")
    return name


class MinuteFiles:
    """The batch files of each minute of one channel, listing each hour folder once; `scan` is how
    `read_minute` splits a file's lines (export.scan; None: it decodes them all)."""

    def __init__(self, root: str, channel: str, scan: ScanBatch | None = None) -> None:
        self.root = root
        self.channel = channel
        self.scan = scan
        self._hour: str | None = None
        self._by_minute: dict[int, list[str]] = {}
        self._hours: set[str] = set()
        self._newest = ""
        self._list_hours()

    def _list_hours(self) -> None:
        try:
            self._hours = set(list_hours(self.root, self.channel))
        except OSError as e:
            raise ExportError(f"{e.filename}: cannot list: {e.strerror}") from None
        self._newest = max(self._hours, default="")

    def paths(self, minute: int) -> list[str]:
        hour, _name = batch_relpath(minute, "")
        if hour not in self._hours:
            # a long window over a sparse archive skips empty hours without a syscall each; an
            # hour past the newest known one may have been created since (a live archive)
            if hour < self._newest:
                return []
            self._list_hours()
            if hour not in self._hours:
                return []
        if hour != self._hour:
            self._hour = hour
            self._by_minute = {}
            try:
                files = hour_batch_files(self.root, self.channel, hour)
            except OSError as e:
                raise ExportError(f"{e.filename}: cannot list: {e.strerror}") from None
            for bf in files:
                start = bf.batch_time - bf.batch_time % BATCH_INTERVAL
                self._by_minute.setdefault(start, []).append(bf.path)
        return self._by_minute.get(minute, [])


def decode_batch(data: bytes, path: str) -> Records:
    """A batch file's records: in one orjson call where that gives `parse_batch`'s records
    (formats.canonical.decode_batch_fast; whether the lines are canonical does not matter to a
    reader), else through the line-by-line parser, which names the bad line."""
    fast = decode_batch_fast(data)
    return fast if fast is not None else parse_batch(data, path)


MinuteRecords = tuple[list[Lone], Records]


def decode_line(line: bytes) -> dict[str, Any]:
    """The record of a lone candidate's line (canonical, no lone surrogate, ints of at most 15
    digits: orjson reads it as `decode_batch` does)."""
    record: dict[str, Any] = orjson.loads(line)
    return record


def read_minute(files: MinuteFiles, minute: int, problems: list[InputError] | None = None) -> MinuteRecords:
    """Every record in the files of one minute: the lone candidates of the files `files.scan`
    vouches for (export.scan: lines that pass through as they are once their id is unique), and
    every other record decoded. A file the scan refuses is decoded whole: a damaged file
    raises InputError naming the file and line; with a `problems` list, each damaged line is added
    there instead and skipped, and the file's other lines are read, so an export keeps everything
    readable (as verify and replay read line by line)."""
    lone: list[Lone] = []
    out: Records = []
    paths = files.paths(minute)
    if len(paths) > 1 and files.scan is not None:
        merged = _merged_files(minute, paths)
        if merged is not None:
            scanned = files.scan(merged)
            if type(scanned) is tuple:
                with gc_paused():
                    return scanned[0], _decode_vouched(scanned[1], paths[0])
    for path in paths:
        try:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise InputError(f"cannot read: {e.strerror}", path) from None
            with gc_paused():  # records hold no cycles; the collector's passes over the cache cost ~10%
                scanned = 0 if files.scan is None else files.scan(data)
                if type(scanned) is tuple:
                    del data  # the lone lines are copies: the file's bytes go before its other lines are decoded
                    lone.extend(scanned[0])
                    out.extend(_decode_vouched(scanned[1], path))
                else:
                    try:
                        out.extend(decode_batch(data, path))
                    except InputError:
                        if problems is None:
                            raise
                        out.extend(_readable_lines(data, path, problems))
        except InputError as e:
            if problems is None:
                raise
            problems.append(e)
    return lone, out


def _merged_files(minute: int, paths: list[str]) -> bytes | None:
    """The minute's files merged among themselves (`merge.fastplan.merged_minute`: a window not yet
    merged, a file per receiver, read as the merged window is), or None: a file that cannot be read
    or that the compiled merge does not vouch for, and the files are read one by one (which names
    the damage)."""
    datas = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                datas.append(f.read())
        except OSError:
            return None
    with gc_paused():
        return merged_minute(minute, datas)


def _readable_lines(data: bytes, path: str, problems: list[InputError]) -> Records:
    """The records of a damaged file's good lines, one by one; each bad line (a torn last line
    too) is added to `problems` as FILE:LINE."""
    records: Records = []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, 1):
        try:
            records.extend(parse_batch(line + b"\n", path))
        except InputError as e:
            problems.append(InputError(e.message, path, number))
        else:
            if number == len(lines) and not data.endswith(b"\n"):
                problems.append(
                    InputError("the last line has no newline (torn write?); its record is kept", path, number)
                )
    return records


def _decode_vouched(rest: bytes, path: str) -> Records:
    """The records of lines the scan vouched for (each a canonical record whose ints have at most
    15 digits: orjson reads them all at once as `decode_batch` would, without its checks), or
    through `decode_batch` where orjson will not (a lone surrogate)."""
    if not rest:
        return []
    try:
        records: Records = orjson.loads(b"[%b]" % rest[:-1].replace(b"\n", b","))
    except orjson.JSONDecodeError:
        return decode_batch(rest, path)
    return records


def _decoded(read: MinuteRecords) -> Records:
    lone, records = read
    return [*records, *map(decode_line, map(_LINE, lone))]


class _Side:
    """A minute's decoded records as its neighbours' context needs them, worked out once however
    many chunks read the minute as context: each record's message id, the ids among them, and the
    id-less records by the hash of their `_rough_content` (`contents`: the first place of each, and
    `chain` from a place to the next of the same hash), with the span of their times. Only ints
    and arrays of them: the collector has nothing to visit (a list a content was ~1,000 objects a
    minute, visited after every chunk)."""

    __slots__ = ("chain", "contents", "first", "ided", "last", "mids", "records")

    def __init__(self, records: Records, mids: list[str | None] | None = None) -> None:
        self.records = records
        self.mids: list[str | None] = list(map(message_id, records)) if mids is None else mids
        self.ided = {m for m in self.mids if m is not None}
        contents: dict[int, int] = {}
        ends: dict[int, int] = {}
        self.chain = chain_ = array("l", [-1]) * len(records)
        times = []
        for i, (record, mid) in enumerate(zip(records, self.mids, strict=True)):
            if mid is None:
                key = hash(_rough_content(record))
                if key in ends:
                    chain_[ends[key]] = i
                else:
                    contents[key] = i
                ends[key] = i
                times.append(record["time"])
        self.contents = contents
        self.first = min(times, default=math.inf)
        self.last = max(times, default=-math.inf)

    def places(self, keys: Iterable[int]) -> list[int]:
        """The places of the id-less records of these content hashes, in file order."""
        out = []
        for key in keys:
            i = self.contents[key]
            while i >= 0:
                out.append(i)
                i = self.chain[i]
        out.sort()
        return out


class _Minute:
    """A minute's records while chunks need them: all of them while the minute may still be a
    chunk's core, then (`slim`) only what a later chunk can need from it as context."""

    __slots__ = ("full", "hashes", "lone", "side")

    def __init__(self, read: MinuteRecords) -> None:
        self.lone: list[Lone] | None = read[0]
        self.full: Records | None = read[1]
        self.side = _Side(read[1])
        self.hashes = array("q")  # slimmed: the hashes of the ids of its exact records

    def slim(self) -> None:
        if self.full is None or self.lone is None:
            return
        # id-less records (the fold may join them) and ranged ones with an id (rare: IRCv3 msgid
        # without server time); of the rest, exact records with an id, only their ids' hashes (a
        # tenth of the ids' memory; a match is checked on the ids, `extra`)
        side = self.side
        kept = [m is None or r["time_range"] != 0 for r, m in zip(side.records, side.mids, strict=True)]
        exact = (m for m, k in zip(side.mids, kept, strict=True) if not k)
        self.hashes = array("q", map(hash, chain(map(_MID, self.lone), exact)))
        self.side = _Side(list(compress(side.records, kept)), list(compress(side.mids, kept)))
        self.full = self.lone = None

    def extra(self, core_ids: set[str], core_hashes: set[int], reread: Callable[[], MinuteRecords]) -> Records:
        """The records of the minute outside `side` that share an id with the core (the merge joins
        them): lone candidates of a whole minute, exact records of a slimmed one (read again:
        rare, the same message stored in two minutes). `core_hashes` are the hashes of `core_ids`."""
        if self.lone is not None:
            if core_ids.isdisjoint(map(_MID, self.lone)):
                return []
            return [decode_line(c[2]) for c in self.lone if c[3] in core_ids]
        if core_hashes.isdisjoint(self.hashes):
            return []
        return [r for r in _decoded(reread()) if r["time_range"] == 0 and message_id(r) in core_ids]


def _rough_content(record: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """Part of a record's content: records of equal content have equal rough contents."""
    return record["command"], record["sender"], record["user"]


def _reaching(around: list[tuple[_Side, set[str], Records]], core: list[_Side], chunk: Chunk) -> Records:
    """The context records that can change what the chunk emits (the rest left out, for less work),
    in the order of their minutes and files. `around` holds, for each context minute, its `_Side`,
    the ids it shares with the core and its records outside the side that do (`_Minute.extra`);
    `core` the sides of the core minutes.

    Only two kinds of record in a context minute can change what the chunk emits: id-less records
    (the reading fold joins equal ones whose ranges meet, an exact time being a point range) and
    records sharing an id with a core record (the merge joins them). Everything else forms merge
    groups of its own, wholly outside the emitted span. Of the id-less ones, a record of a content no
    core record has, timed outside the emitted span, meets in the merge and the reading fold only
    records like it: their folds are timed at their latest start, a time one of them has, so nothing
    made of them is emitted. A content is told apart by the hash of its `_rough_content`, which
    keeps every record of a content a core record has (and some more: a rough content covers many
    contents, and two may share a hash); a context record timed inside the span (a file of another
    minute holding it) is kept with its content, as is every record sharing an id.

    A record left out here still meets the merge's checks in the chunk whose core holds its minute:
    every minute a read touches is in the core of one of its chunks (the first chunk's core starts
    where the read does, the last one's ends where it ends), so whether a read fails does not
    depend on where the window was cut.
    """
    lo = -math.inf if chunk.emit_from is None else chunk.emit_from
    hi = math.inf if chunk.emit_to is None else chunk.emit_to
    keys: set[int] = set().union(*(side.contents.keys() for side in core))  # hashes of rough contents
    for side, hits, extra in around:
        if side.first < hi and side.last >= lo:  # an id-less record timed inside the span: rare
            timed = zip(side.records, side.mids, strict=True)
            keys.update(hash(_rough_content(r)) for r, m in timed if m is None and lo <= r["time"] < hi)
        if hits:
            timed = zip(side.records, side.mids, strict=True)
            keys.update(hash(_rough_content(r)) for r, m in timed if m in hits and lo <= r["time"] < hi)
        keys.update(hash(_rough_content(r)) for r in extra if lo <= r["time"] < hi)
    out: Records = []
    for side, hits, extra in around:
        if hits:
            timed = zip(side.records, side.mids, strict=True)
            out.extend(r for r, m in timed if (m in hits if m is not None else hash(_rough_content(r)) in keys))
        elif found := side.contents.keys() & keys:
            out.extend(map(side.records.__getitem__, side.places(found)))
        out.extend(extra)
    return out


def iter_chunks(
    root: str,
    channel: str,
    window: Window,
    chunks: Iterable[Chunk],
    filters: Filters = NO_FILTERS,
    *,
    view: RecordsFn | None = None,
    on_chunk: Callable[[int], None] | None = None,
    problems: list[InputError] | None = None,
) -> Iterator[dict[str, Any]]:
    """The records `chunks` (a run of `plan_chunks(window)`) emit, in canonical order. Damaged
    files: see `read_minute` (`problems`). The records of `iter_chunk_rows`, the lines that pass
    through decoded here."""
    for rows in iter_chunk_rows(
        root, channel, window, chunks, filters, view=view, on_chunk=on_chunk, problems=problems
    ):
        for row in rows:
            yield row[4] if len(row) == 5 else decode_line(row[2])


def iter_chunk_rows(
    root: str,
    channel: str,
    window: Window,
    chunks: Iterable[Chunk],
    filters: Filters = NO_FILTERS,
    *,
    view: RecordsFn | None = None,
    on_chunk: Callable[[int], None] | None = None,
    problems: list[InputError] | None = None,
    lines: bool = False,
) -> Iterator[list[Row]]:
    """What each of `chunks` (a run of `plan_chunks(window)`) emits, as `Row`s in canonical order:
    one list per chunk. With `lines`, every row holds its canonical line (json and jsonl print
    exactly that). The files are read by `scan_batch` (export.scan: the compiled scanner when built;
    None decodes every record, as does a `view` given).

    Each chunk merges its core minutes (the ones its emitted records can come from) whole, plus the
    few records of its context minutes that can change them (`_context`), so a minute is merged
    about once however the window is cut, and memory holds one chunk's minutes. A run of chunks
    gives the same records alone as inside the whole plan: that is what lets parts of a long
    window go to separate processes.

    The lone candidates of the files (most of a Twitch archive: messages with an id, an exact time)
    whose id no other record of the chunk has pass through as their stored lines, never decoded
    (`passing_through` says why that is exact); the rest is decoded and goes through the merge and
    the reading fold (`merge.view.fold_rows`, or `view`). A chunk whose merge fails is done again
    from decoded files only, through `passing_through(fold_for_reading)` (`_reference_rows`), so the
    error names the record the reference names.
    """
    files = MinuteFiles(root, channel_name(root, channel), None if view is not None else scan_batch)
    cache: dict[int, _Minute] = {}
    for chunk in chunks:
        # records, lines and rows hold no cycles: the collector's passes over them cost ~10%
        with gc_paused():
            for minute in [m for m in cache if m < chunk.read_from]:
                del cache[minute]
            core_from, core_to = _core(chunk)
            for minute in range(chunk.read_from, chunk.read_to + 1, BATCH_INTERVAL):
                if minute not in cache:
                    cache[minute] = _Minute(read_minute(files, minute, problems))
            try:
                try:
                    rows = _chunk_rows(files, cache, chunk, view, problems=problems, lines=lines)
                except ArchiverError:
                    if files.scan is None:
                        raise
                    rows = _reference_rows(
                        files, cache, chunk, passing_through(default_view()), problems=problems, lines=lines
                    )
            except ArchiverError as e:
                at, fault = _first_refused(files, chunk) or (chunk.read_from, e)
                raise ExportError(f"cannot merge the files of {batch_relpath(at, '')[0]}: {fault}") from None
            for minute in range(core_from, core_to + 1, BATCH_INTERVAL):
                cache[minute].slim()
            selected = _select(rows, chunk, window, filters)
            del rows
        yield selected
        if on_chunk is not None:
            on_chunk(1)


def _core(chunk: Chunk) -> tuple[int, int]:
    """The first and last minute of the chunk's core."""
    core_from = chunk.read_from if chunk.emit_from is None else int(chunk.emit_from)
    core_to = chunk.read_to if chunk.emit_to is None else int(chunk.emit_to) - BATCH_INTERVAL
    return core_from, core_to


def _first_refused(files: MinuteFiles, chunk: Chunk) -> tuple[int, InputError] | None:
    """(minute, error) of the first record the merge refuses from the chunk's core on, in minute
    order and then as stored. A chunk's merge meets faults in the order of its own inputs, and which
    records of a context minute those include depends on where the window was cut into chunks: so
    the error a failed chunk names is this one, the same however the window was cut (earlier cores
    were merged whole without a fault)."""
    plain = MinuteFiles(files.root, files.channel)  # every line decoded, in file order
    for minute in range(_core(chunk)[0], chunk.read_to + 1, BATCH_INTERVAL):
        try:
            check_records(read_minute(plain, minute, [])[1])  # damaged lines were said when first read
        except InputError as e:
            return minute, InputError(e.message)
    return None


def _reference_rows(
    files: MinuteFiles,
    cache: dict[int, _Minute],
    chunk: Chunk,
    view: RecordsFn,
    *,
    problems: list[InputError] | None,
    lines: bool,
) -> list[Row]:
    """The chunk read without letting lone lines pass through: every file decoded, each
    minute in the state the cache holds it (slimmed or whole), so the records reach the view in
    the same order, and an error names the same record."""
    plain = MinuteFiles(files.root, files.channel)
    again: dict[int, _Minute] = {}
    for minute, held in cache.items():
        if chunk.read_from <= minute <= chunk.read_to:
            again[minute] = _Minute(read_minute(plain, minute, problems))  # a file reported twice is reported once
            if held.full is None:
                again[minute].slim()
    return _chunk_rows(plain, again, chunk, view, problems=problems, lines=lines)


def _chunk_rows(
    files: MinuteFiles,
    cache: dict[int, _Minute],
    chunk: Chunk,
    view: RecordsFn | None,
    *,
    problems: list[InputError] | None,
    lines: bool,
) -> list[Row]:
    """Every row the chunk's merge shows, in canonical order (not yet selected): `view`'s (then
    every file is decoded), or without one `merge.view.fold_rows`'s (the same rows)."""
    core_from, core_to = _core(chunk)
    lone: list[Lone] = []
    records: Records = []
    core: list[_Side] = []
    for minute in range(core_from, core_to + 1, BATCH_INTERVAL):
        held = cache[minute]
        if held.full is None or held.lone is None:
            # not reached from iter_chunk_rows (a minute is slimmed only after its own chunk, and cores
            # do not overlap); a caller's slimmed core minute is read again, never read short
            held = cache[minute] = _Minute(read_minute(files, minute, problems))
        lone.extend(held.lone or ())
        records.extend(held.full or ())
        core.append(held.side)
    mids = list(map(_MID, lone))
    lone_ids = set(mids)
    record_ids: set[str] = set().union(*(side.ided for side in core))
    core_ids = lone_ids.union(record_ids)
    core_hashes = set(map(hash, core_ids))
    around: list[tuple[_Side, set[str], Records]] = []
    for minute in range(chunk.read_from, chunk.read_to + 1, BATCH_INTERVAL):
        if not core_from <= minute <= core_to:
            held = cache[minute]
            extra = held.extra(core_ids, core_hashes, partial(read_minute, files, minute, problems))
            around.append((held.side, held.side.ided & core_ids, extra))
    context = _reaching(around, core, chunk)
    records.extend(context)
    # a candidate passes through if no other record has its id; the others are decoded
    shared = lone_ids.intersection(record_ids)
    shared.update(lone_ids.intersection(map(message_id, context)))
    if len(lone_ids) < len(mids):  # two candidates with one id
        shared.update(mid for mid, n in Counter(mids).items() if n > 1)
    if shared:
        records.extend(decode_line(c[2]) for c in lone if c[3] in shared)
        lone = [c for c in lone if c[3] not in shared]
    if view is None:  # the merge and fold of fold_rows: the same rows as the view's, for less work
        trim = (
            None
            if chunk.emit_from is None
            else partial(trim_content, before=chunk.emit_from, earliest=chunk.read_from + MAX_RANGE)
        )
        shown_rows = fold_rows(records, trim)
        del records
        rows: list[Row] = [(t, r, line, i, record) for i, (t, r, line, record) in enumerate(shown_rows)]
    else:
        if chunk.emit_from is not None:
            records = trim_before_quiet_points(records, chunk.emit_from, chunk.read_from + MAX_RANGE)
        shown = view(records)
        del records
        if any((a["time"], a["time_range"]) > (b["time"], b["time_range"]) for a, b in pairwise(shown)):
            shown.sort(key=lambda r: (r["time"], r["time_range"], canonical_json(r)))  # a view out of order
        encode = canonical_bytes if lines or lone else _no_line
        rows = [(r["time"], r["time_range"], encode(r), i, r) for i, r in enumerate(shown)]
    if not lone:
        return rows
    # the merge's order: (time, time_range, canonical line); a lone line is its record's canonical line
    lone.extend(rows)
    lone.sort()
    return lone


def _no_line(record: dict[str, Any]) -> bytes:
    return b""


def _select(rows: list[Row], chunk: Chunk, window: Window, filters: Filters) -> list[Row]:
    """The rows the chunk emits (`Chunk.emits`) that meet the window (`Window.meets`) and pass the
    filters, read from each row's time and range (the filters decode a lone line)."""
    start, end, after, before = window.start, window.end, chunk.emit_from, chunk.emit_to

    def kept(row: Row) -> bool:
        return bool(
            (after is None or row[0] >= after)
            and (before is None or row[0] < before)
            and start <= row[0] + row[1]
            and row[0] < end
        )

    # rows are in time order: those from `lo` (the later of the two lower bounds) up to `hi` (the
    # earlier upper bound) are kept when their range is not negative; before `lo` only a range
    # reaching into the window can be; from `hi` on none
    times = list(map(_TIME, rows))
    lo = bisect_left(times, start if after is None else max(start, after))
    hi = bisect_left(times, end if before is None else min(end, before))
    middle = rows[lo:hi]
    if middle and min(map(_RANGE, middle)) < 0:
        middle = [row for row in middle if kept(row)]
    keep = [row for row in rows[:lo] if kept(row)]
    keep.extend(middle)
    if filters.commands or filters.users:
        keep = [row for row in keep if filters.keeps(row[4] if len(row) == 5 else decode_line(row[2]))]
    return keep


def write_export(
    records: Iterable[dict[str, Any]],
    fmt: str,
    out: IO[bytes],
    playback: Playback | None = None,
) -> int:
    """Render `records` in `fmt` to `out` (UTF-8). Returns the number of records written."""
    renderer = Renderer(fmt, playback)
    count = 0
    out.write(renderer.begin().encode())
    buffer: list[str] = []
    for record in records:
        buffer.append(renderer.add(record))
        count += 1
        if len(buffer) >= 4096:
            out.write("".join(buffer).encode("utf-8", "replace"))
            buffer.clear()
    buffer.append(renderer.end())
    out.write("".join(buffer).encode("utf-8", "replace"))
    return count


def write_rows(chunks: Iterable[list[Row]], fmt: str, out: IO[bytes], playback: Playback | None = None) -> int:
    """`write_export` of the records of `chunks` (`iter_chunk_rows`), each given to the renderer
    as it comes: a record the view built, or a stored line with its time, which the renderer decodes
    only if it needs it (`Renderer.add_rows`). The same bytes as `write_export`."""
    renderer = Renderer(fmt, playback)
    count = 0
    out.write(renderer.begin().encode())
    for rows in chunks:
        for at in range(0, len(rows), WRITE_ROWS):
            some = rows[at : at + WRITE_ROWS]
            out.write(renderer.add_rows(some).encode("utf-8", "replace"))
            count += len(some)
    out.write(renderer.end().encode("utf-8", "replace"))
    return count


WRITE_ROWS = 4096  # lines joined per write
LINE_FORMATS = frozenset({"json", "jsonl"})  # print each record's canonical line: rows, never decoded


def write_lines(chunks: Iterable[list[Row]], fmt: str, out: IO[bytes]) -> int:
    """Write the rows of `chunks` (with their lines: `iter_chunk_rows(lines=True)`) in json or
    jsonl, as `write_export` writes their records. Returns the number of records written."""
    if fmt not in LINE_FORMATS:
        raise ValueError(f"not a format of lines: {fmt!r}")
    renderer = Renderer(fmt)
    out.write(renderer.begin().encode())
    count = 0
    for rows in chunks:
        for at in range(0, len(rows), WRITE_ROWS):
            some = rows[at : at + WRITE_ROWS]
            out.writelines(renderer.add_lines(list(map(_LINE, some))))
            count += len(some)
    out.write(renderer.end().encode())
    return count


def upstream_ties(rows: list[Row]) -> list[Row]:
    """A chunk's rows (canonical order) as upstream's reader orders them (ARCHIVE_FORMAT.md section
    6): by `(time, time_range)`, and within a run of equal keys the rows with a message id first
    (its merge lists them before the others, and its sort is stable), each class in canonical
    order. Equal times fall in one chunk, so a chunk at a time is enough. Runs are found by C loops
    over the times (most rows have a time of their own)."""
    times = list(map(_TIME, rows))
    # i where rows i-1 and i have one key
    ties = [i for i in compress(count(1), map(eq, times, islice(times, 1, None))) if rows[i - 1][1] == rows[i][1]]
    if not ties:
        return rows
    out = rows[:]
    for start, end in _tie_runs(ties):
        out[start:end] = _ids_first(rows[start:end])
    return out


def _has_id(row: Row) -> bool:
    """A lone row (time, 0, line, id) has one; a view row holds its record last."""
    return len(row) == 4 or message_id(row[-1]) is not None


def _ids_first(run: list[Row]) -> list[Row]:
    if len(run) < 2:
        return run
    marks = list(map(_has_id, run))
    if all(marks) or not any(marks):
        return run
    return [r for r, m in zip(run, marks, strict=True) if m] + [r for r, m in zip(run, marks, strict=True) if not m]
