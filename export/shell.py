"""The entry point of an export: a window of a channel's archive to one output, serial or in parts.

It chooses the path by size and format: a short window (or `jobs` <= 1) is read and written in
this process (`export.stream`), a long one is cut into parts for a process pool (`export.parts`),
and the playback formats, which need the whole window in one renderer, take the pool's records
and render them here. Every path writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from export import parts
from export.render import WHOLE_WINDOW, Playback
from export.stream import (
    CHUNK_MINUTES,
    LINE_FORMATS,
    NO_FILTERS,
    channel_name,
    iter_chunk_rows,
    iter_chunks,
    next_file_finder,
    write_export,
    write_lines,
    write_rows,
)
from export.window import Filters, Window, plan_chunks
from formats.errors import InputError
from formats.memory import gc_paused

# formats whose renderer reads a stored line without decoding what it does not show (`write_rows`)
STORED_FORMATS = frozenset({"ass", "html"})


def export(
    root: str,
    channel: str,
    window: Window,
    fmt: str,
    out: IO[bytes],
    *,
    filters: Filters = NO_FILTERS,
    jobs: int = 1,
    on_plan: Callable[[int], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
    problems: list[InputError] | None = None,
    playback: Playback | None = None,
) -> int:
    """Write the export of `window` to `out`; returns the number of records.

    With a `problems` list, a damaged batch file is added there (each once) and skipped, and the
    export goes on with everything readable; without one, it raises InputError.

    `on_plan(n)` is told the number of chunks once, `on_chunk(k)` each time k more are done (the
    CLI hangs its progress bar on them). A window of at least two parts with `jobs` > 1 goes to a
    process pool (`export.parts`), with the same bytes as the serial export. The playback
    formats (`WHOLE_WINDOW`; `playback` defaults to the window) take the pool's records and render
    them here, in one renderer.
    """
    # only the chunks that can reach a file: the work follows the archive, not the window's length
    next_file = next_file_finder(root, channel_name(root, channel))
    count = sum(1 for _ in plan_chunks(window, CHUNK_MINUTES, next_file))
    if on_plan is not None:
        on_plan(count)
    chunks = plan_chunks(window, CHUNK_MINUTES, next_file)
    found: list[InputError] | None = None if problems is None else []
    if (jobs <= 1 or count < 2 * parts.PART_CHUNKS) and fmt in LINE_FORMATS:
        rows = iter_chunk_rows(root, channel, window, chunks, filters, on_chunk=on_chunk, problems=found, lines=True)
        with gc_paused():  # no cycles in rows and lines; else a full pass over the cache after each chunk
            written = write_lines(rows, fmt, out)
    elif (jobs <= 1 or count < 2 * parts.PART_CHUNKS) and fmt in STORED_FORMATS:
        rows = iter_chunk_rows(root, channel, window, chunks, filters, on_chunk=on_chunk, problems=found)
        with gc_paused():
            written = write_rows(rows, fmt, out, playback or Playback(window.start, window.end))
    elif jobs <= 1 or count < 2 * parts.PART_CHUNKS:
        records = iter_chunks(root, channel, window, chunks, filters, on_chunk=on_chunk, problems=found)
        written = write_export(records, fmt, out, playback or Playback(window.start, window.end))
    elif fmt in STORED_FORMATS:  # workers merge, this process renders from their lines
        channel_name(root, channel)  # fail before starting workers
        rows = parts.rows_in_parts(
            root, channel, window, chunks, filters=filters, jobs=jobs, on_chunk=on_chunk, problems=found
        )
        with gc_paused():
            written = write_rows(rows, fmt, out, playback or Playback(window.start, window.end))
    elif fmt in WHOLE_WINDOW:  # workers merge, this process renders
        channel_name(root, channel)  # fail before starting workers
        records = parts.records_in_parts(
            root, channel, window, chunks, filters=filters, jobs=jobs, on_chunk=on_chunk, problems=found
        )
        written = write_export(records, fmt, out, playback or Playback(window.start, window.end))
    else:
        channel_name(root, channel)  # fail before starting workers
        written = parts.export_in_parts(
            root,
            channel,
            window,
            chunks,
            fmt=fmt,
            out=out,
            filters=filters,
            jobs=jobs,
            on_chunk=on_chunk,
            problems=found,
        )
    if problems is not None and found:
        # a file read by two chunks (or two parts) is reported once
        problems.extend({str(p): p for p in found}.values())
    return written
