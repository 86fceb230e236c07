"""The I/O shell of export: read a window's batch files chunk by chunk, merge, fold, select, write.

Memory holds a chunk of minutes at a time (see `window.plan_chunks`), so an export of a day costs
no more than one of ten minutes. Each minute's files are read once: records of the minutes two
chunks share stay in a small cache until the chunk that needs them last is done.

What a reader is shown comes from the merge package: `merge.view.fold_for_reading` merges the
records (`merge.core.merge_records`) and then folds ranged duplicates from different receivers.
It is a parameter so tests can pin it, and imported only when an export runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import IO, Any

from chat_archiver.exporting.formats import Renderer
from chat_archiver.exporting.window import (
    MAX_RANGE,
    ExportError,
    Filters,
    Window,
    plan_chunks,
    trim_before_quiet_points,
)
from replay.canonical import BATCH_INTERVAL, batch_relpath, canonical_json, parse_batch_name
from replay.store import read_batch_file

Records = list[dict[str, Any]]
RecordsFn = Callable[[Records], Records]
NO_FILTERS = Filters()


def default_view() -> RecordsFn:
    """merge_records, then the reading fold (fold_for_reading does both)."""
    from merge.view import fold_for_reading  # noqa: PLC0415 (lazy: only an export needs it)

    return fold_for_reading


def channel_folder(root: str, channel: str) -> str:
    """The channel's chat folder; ExportError if the root or the channel is not there."""
    if not os.path.isdir(root):
        raise ExportError(f"{root}: not a folder")
    name = channel.lstrip("#").lower()
    if not name or "/" in name or name in (".", ".."):
        raise ExportError(f"not a channel name: {channel!r}")
    chat = os.path.join(root, name, "chat")
    if not os.path.isdir(chat):
        raise ExportError(f"{root}: no channel {name!r} (no {name}/chat folder)")
    return chat


class MinuteFiles:
    """The batch files of each minute of one channel, listing each hour folder once."""

    def __init__(self, chat: str) -> None:
        self.chat = chat
        self._hour: str | None = None
        self._by_minute: dict[int, list[str]] = {}

    def paths(self, minute: int) -> list[str]:
        hour, _name = batch_relpath(minute, "")
        if hour != self._hour:
            self._hour = hour
            self._by_minute = {}
            folder = os.path.join(self.chat, hour)
            try:
                names = sorted(os.listdir(folder))
            except FileNotFoundError:
                names = []
            except OSError as e:
                raise ExportError(f"{folder}: cannot list: {e.strerror}") from None
            for name in names:
                parsed = parse_batch_name(hour, name)  # skips .temp and foreign files, as upstream
                if parsed is not None:
                    start = parsed[0] - parsed[0] % BATCH_INTERVAL
                    self._by_minute.setdefault(start, []).append(os.path.join(folder, name))
        return self._by_minute.get(minute, [])


def iter_window(
    root: str, channel: str, window: Window, filters: Filters = NO_FILTERS, *,
    view: RecordsFn | None = None, chunk_minutes: int = 10,
) -> Iterator[tuple[dict[str, Any], str]]:
    """The records of `window`, merged, folded, selected, filtered and sorted, with their canonical
    lines, chunk by chunk. A damaged file raises replay's InputError naming it and its line."""
    from merge.errors import MergeError  # noqa: PLC0415 (lazy, as the merge itself)

    view = view or default_view()
    files = MinuteFiles(channel_folder(root, channel))
    cache: dict[int, Records] = {}
    for chunk in plan_chunks(window, chunk_minutes):
        for minute in [m for m in cache if m < chunk.read_from]:
            del cache[minute]
        records: Records = []
        for minute in range(chunk.read_from, chunk.read_to + 1, BATCH_INTERVAL):
            if minute not in cache:
                cache[minute] = [r for path in files.paths(minute) for r in read_batch_file(path)]
            records.extend(cache[minute])
        if chunk.emit_from is not None:
            records = trim_before_quiet_points(records, chunk.emit_from, chunk.read_from + MAX_RANGE)
        try:
            shown = view(records)
        except MergeError as e:
            raise ExportError(f"cannot merge the files of {batch_relpath(chunk.read_from, '')[0]}: {e}") from None
        keep = [r for r in shown if chunk.emits(r) and window.meets(r) and filters.keeps(r)]
        keyed = [(r["time"], r["time_range"], canonical_json(r), r) for r in keep]
        keyed.sort(key=lambda k: (k[0], k[1], k[2]))
        for _t, _r, line, record in keyed:
            yield record, line


def write_export(records: Iterator[tuple[dict[str, Any], str]], fmt: str, out: IO[bytes]) -> int:
    """Render `records` in `fmt` to `out` (UTF-8). Returns the number of records written."""
    renderer = Renderer(fmt)
    canonical = fmt in ("json", "jsonl")
    count = 0
    out.write(renderer.begin().encode())
    buffer: list[str] = []
    for record, line in records:
        buffer.append(renderer.add_line(line) if canonical else renderer.add(record))
        count += 1
        if len(buffer) >= 4096:
            out.write("".join(buffer).encode("utf-8", "replace"))
            buffer.clear()
    buffer.append(renderer.end())
    out.write("".join(buffer).encode("utf-8", "replace"))
    return count
