"""Long exports over a process pool: the window's chunk plan cut into parts, one part per task.

Each worker renders its part (a run of consecutive chunks, an hour by default) to a temporary
file; the parent copies the parts to the output in order and mends the seams. A run of chunks
emits the same records alone as inside the whole plan (stream.iter_chunks), so the bytes equal
the serial export's whatever the number of jobs (a test holds all four formats to that).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult
from operator import itemgetter
from typing import IO, Any

import orjson

from export.render import Renderer, day_of, framing_of
from export.stream import LINE_FORMATS, NO_FILTERS, iter_chunk_rows, iter_chunks
from export.window import Chunk, Filters, Window
from formats.errors import InputError
from formats.memory import gc_paused

PART_CHUNKS = 6  # chunks per part: an hour of 10-minute chunks (stream.CHUNK_MINUTES)

# (temporary file, records in it, UTC day of its first and of its last record, damaged files
# skipped as (message, file, line), or None when damage is to raise)
PartResult = tuple[str, int, str | None, str | None, list[tuple[str, str | None, int | None]] | None]


def _groups(chunks: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    group: list[Chunk] = []
    for chunk in chunks:
        group.append(chunk)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


@dataclass(frozen=True)
class _Part:
    root: str
    channel: str
    window: Window
    chunks: list[Chunk]
    filters: Filters
    fmt: str
    path: str
    keep_going: bool = False  # skip damaged files (and report them) rather than raise


def _render_part(part: _Part) -> PartResult:
    """Worker: render one part to its temporary file. Returns (path, records, first and last day).

    A part holds its lines framed as in the whole export (`export.render.Framing`) but for what
    leads its first line: the parent writes that, and the json array's brackets. json and jsonl are
    written from the rows' lines (`stream.iter_chunk_rows`); the other formats are rendered whole."""
    count = 0
    first_day = last_day = None
    problems: list[InputError] | None = [] if part.keep_going else None
    if part.fmt in LINE_FORMATS:
        with open(part.path, "wb") as out, gc_paused():  # no cycles in rows and lines
            framing = framing_of(part.fmt)
            for rows in iter_chunk_rows(
                part.root, part.channel, part.window, part.chunks, part.filters, problems=problems, lines=True
            ):
                if not rows:
                    continue
                pieces = framing.joined(list(map(itemgetter(2), rows)), first=False)
                out.writelines(pieces if count else pieces[1:])  # the stitcher writes what leads a part
                if count == 0:
                    first_day = day_of({"time": rows[0][0]})
                last_day = day_of({"time": rows[-1][0]})
                count += len(rows)
        damaged = None if problems is None else [(p.message, p.source, p.line) for p in problems]
        return part.path, count, first_day, last_day, damaged
    renderer = Renderer(part.fmt)
    with open(part.path, "wb") as out:
        buffer: list[str] = []
        for record in iter_chunks(part.root, part.channel, part.window, part.chunks, part.filters, problems=problems):
            buffer.append(renderer.add(record))
            last_day = day_of(record)
            if count == 0:
                first_day = last_day
            count += 1
            if len(buffer) >= 4096:
                out.write("".join(buffer).encode("utf-8", "replace"))
                buffer.clear()
        buffer.append(renderer.flush())
        out.write("".join(buffer).encode("utf-8", "replace"))
    damaged = None if problems is None else [(p.message, p.source, p.line) for p in problems]
    return part.path, count, first_day, last_day, damaged


class _Stitcher:
    """Copies finished parts to the output in order, mending the seams: the json array's brackets
    and commas, and a text day header that the previous part already wrote."""

    def __init__(
        self, fmt: str, out: IO[bytes], on_chunk: Callable[[int], None] | None, problems: list[InputError] | None
    ) -> None:
        self.fmt = fmt
        self.problems = problems
        self.out = out
        self.on_chunk = on_chunk
        self.total = 0
        self.last_day: str | None = None
        self.framing = framing_of(fmt)
        out.write(self.framing.begin.encode())

    def add(self, part: _Part, result: AsyncResult[PartResult]) -> None:
        path, count, first, last, damaged = result.get()
        if self.problems is not None and damaged:
            self.problems.extend(InputError(*p) for p in damaged)
        with open(path, "rb") as f:
            if count:
                self.out.write((self.framing.between if self.total else self.framing.lead).encode())
            if count and self.fmt == "text" and first == self.last_day:
                f.readline()  # the day header the previous part already wrote
            shutil.copyfileobj(f, self.out, 1 << 20)
        os.unlink(path)
        if count:
            self.total += count
            self.last_day = last
        if self.on_chunk is not None:
            self.on_chunk(len(part.chunks))

    def finish(self) -> int:
        self.out.write((self.framing.end if self.total else self.framing.end_empty).encode())
        return self.total


def _parts_in_order(
    root: str,
    channel: str,
    window: Window,
    chunks: Iterable[Chunk],
    *,
    fmt: str,
    filters: Filters,
    jobs: int,
    keep_going: bool,
) -> Iterator[tuple[_Part, AsyncResult[PartResult]]]:
    """Start rendering `chunks` in parts on `jobs` workers; yield each part with its result, in
    order, while the next ones render (their files live until the generator ends)."""
    with tempfile.TemporaryDirectory(prefix="chat-export-") as temp:
        parts = (
            _Part(root, channel, window, group, filters, fmt, os.path.join(temp, f"{i:08d}"), keep_going)
            for i, group in enumerate(_groups(chunks, PART_CHUNKS))
        )
        context = multiprocessing.get_context("forkserver")
        with context.Pool(jobs) as pool:
            # at most two parts per worker in flight (Pool.imap would read the whole plan at once)
            pending: deque[tuple[_Part, AsyncResult[PartResult]]] = deque()
            for part in parts:
                pending.append((part, pool.apply_async(_render_part, (part,))))
                if len(pending) >= 2 * jobs:
                    yield pending.popleft()
            while pending:
                yield pending.popleft()


def export_in_parts(
    root: str,
    channel: str,
    window: Window,
    chunks: Iterable[Chunk],
    *,
    fmt: str,
    out: IO[bytes],
    filters: Filters = NO_FILTERS,
    jobs: int = 2,
    on_chunk: Callable[[int], None] | None = None,
    problems: list[InputError] | None = None,
) -> int:
    """Render `chunks` in parts on `jobs` workers and write them to `out` in order; returns the
    number of records. Damaged files: as `shell.export` (`problems`)."""
    stitch = _Stitcher(fmt, out, on_chunk, problems)
    for part, result in _parts_in_order(
        root, channel, window, chunks, fmt=fmt, filters=filters, jobs=jobs, keep_going=problems is not None
    ):
        stitch.add(part, result)
    return stitch.finish()


def _lines_in_parts(
    root: str,
    channel: str,
    window: Window,
    chunks: Iterable[Chunk],
    *,
    filters: Filters,
    jobs: int,
    on_chunk: Callable[[int], None] | None,
    problems: list[InputError] | None,
) -> Iterator[bytes]:
    """The canonical lines (each with its newline) of `chunks`, in order, merged on `jobs` workers
    (each part as JSON lines in a temporary file). Damaged files: as `shell.export` (`problems`)."""
    for part, result in _parts_in_order(
        root, channel, window, chunks, fmt="jsonl", filters=filters, jobs=jobs, keep_going=problems is not None
    ):
        path, _count, _first, _last, damaged = result.get()
        if problems is not None and damaged:
            problems.extend(InputError(*p) for p in damaged)
        with open(path, "rb") as f:
            yield from f
        os.unlink(path)
        if on_chunk is not None:
            on_chunk(len(part.chunks))


def records_in_parts(
    root: str,
    channel: str,
    window: Window,
    chunks: Iterable[Chunk],
    *,
    filters: Filters = NO_FILTERS,
    jobs: int = 2,
    on_chunk: Callable[[int], None] | None = None,
    problems: list[InputError] | None = None,
) -> Iterator[dict[str, Any]]:
    """The records of `chunks`, in order, merged on `jobs` workers: for the formats one renderer
    must see whole (`render.WHOLE_WINDOW`). Damaged files: as `shell.export` (`problems`)."""
    lines = _lines_in_parts(
        root, channel, window, chunks, filters=filters, jobs=jobs, on_chunk=on_chunk, problems=problems
    )
    for line in lines:
        yield orjson.loads(line)


def line_time(line: bytes) -> float:
    """The time of a canonical line, read from its bytes: its last `,"time":` is the record's own
    (keys are sorted, `time` comes after `receivers` and `tags`, and inside a string a quote is
    escaped, so no value holds that text; a receiver or tag named `time` comes before). As a float,
    which is all the playback renderers make of it."""
    at = line.rindex(b',"time":') + 8
    return float(line[at : line.index(b',"time_range":', at)])


ROWS_AT_ONCE = 4096


def rows_in_parts(
    root: str,
    channel: str,
    window: Window,
    chunks: Iterable[Chunk],
    *,
    filters: Filters = NO_FILTERS,
    jobs: int = 2,
    on_chunk: Callable[[int], None] | None = None,
    problems: list[InputError] | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """`records_in_parts` as rows for `stream.write_rows` (time, 0, canonical line, place), a few
    thousand at a time: the renderer decodes a line only where it needs it."""
    lines = _lines_in_parts(
        root, channel, window, chunks, filters=filters, jobs=jobs, on_chunk=on_chunk, problems=problems
    )
    rows: list[tuple[Any, ...]] = []
    for place, line in enumerate(lines):
        stripped = line[:-1]
        rows.append((line_time(stripped), 0, stripped, place))
        if len(rows) >= ROWS_AT_ONCE:
            yield rows
            rows = []
    if rows:
        yield rows
