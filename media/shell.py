"""The media stage's I/O shell on the archive side: the records of a whole pass (`records`) and of a
tail (`Tail`), read from the batch files.

A pass reads the batch files of the chosen channels and window once. The tail is how the live
host keeps up: every few seconds it lists the newest two hour folders of each channel and reads
only the files it has not read yet (the follower's new minutes, and the merged files that replace
them), so its work is proportional to what was written since the last look.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from formats.canonical import BATCH_INTERVAL, batch_relpath, parse_batch
from formats.errors import InputError
from formats.store import QUARANTINE, hour_batch_files, list_channels, list_hours

Problem = Callable[[InputError], None]


def read_batch_file(path: str) -> list[dict[str, Any]]:
    """One batch file's records; InputError naming the file for damage or a file gone."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path) from None
    return parse_batch(data, path)


def hour_name(t: float) -> str:
    """The hour folder (`YYYY-MM-DDTHH`) that holds time `t`."""
    return batch_relpath(int(t) // BATCH_INTERVAL * BATCH_INTERVAL, "")[0]


def _channels(root: str, channels: Iterable[str] | None) -> list[str]:
    here = [c for c in list_channels(root) if c != QUARANTINE]
    if channels is None:
        return here
    wanted = {c.lower().lstrip("#") for c in channels}
    return [c for c in here if c in wanted]


def records(
    root: str,
    channels: Iterable[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    on_problem: Problem = lambda e: None,
) -> Iterator[dict[str, Any]]:
    """Every record of the channels' batch files whose minute overlaps [since, until)."""
    first = None if since is None else hour_name(since - BATCH_INTERVAL)
    last = None if until is None else hour_name(until)
    for channel in _channels(root, channels):
        for hour in list_hours(root, channel):
            if (first is not None and hour < first) or (last is not None and hour > last):
                continue
            for bf in hour_batch_files(root, channel, hour):
                if since is not None and bf.batch_time + BATCH_INTERVAL < since:
                    continue
                if until is not None and bf.batch_time >= until:
                    continue
                try:
                    yield from read_batch_file(bf.path)
                except InputError as e:
                    on_problem(e)


class Tail:
    """The files written since the last `poll`, in the newest two hours of each channel."""

    def __init__(self, root: str, channels: Iterable[str] | None = None, hours: int = 2) -> None:
        self.root = root
        self.channels = None if channels is None else list(channels)
        self.hours = hours
        self._seen: dict[tuple[str, str], set[str]] = {}

    def poll(self, on_problem: Problem = lambda e: None) -> Iterator[dict[str, Any]]:
        """The records of every batch file not read before (each file is read once)."""
        keep: set[tuple[str, str]] = set()
        for channel in _channels(self.root, self.channels):
            for hour in list_hours(self.root, channel)[-self.hours :]:
                keep.add((channel, hour))
                seen = self._seen.setdefault((channel, hour), set())
                for bf in hour_batch_files(self.root, channel, hour):
                    name = bf.path.rsplit("/", 1)[-1]
                    if name in seen:
                        continue
                    seen.add(name)
                    try:
                        yield from read_batch_file(bf.path)
                    except InputError as e:
                        if os.path.exists(bf.path):  # a file a merge just replaced is no problem
                            on_problem(e)
        for key in set(self._seen) - keep:  # hours that fell out of the window: forget them
            del self._seen[key]
