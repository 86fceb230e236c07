"""Which records an export returns: upstream's reader rule (ARCHIVE_FORMAT.md section 6), as data.

A record's range is `[time, time + time_range]`; it *meets* the window `[start, end)` when
`start <= time + time_range` and `time < end`. Upstream's reader reads the batch files from two
minutes before `start` to one minute after `end` (a record's file is the minute its range
starts in, and a range reaches back at most a minute), merges them all, keeps the records that
meet the window and sorts them by `(time, time_range)`. Ties are ordered by the canonical line,
which upstream leaves to its merge's output order; we pin it so that an export is reproducible.

Upstream caps a window at two hours because it holds everything in memory. Here a window of any
length is cut into chunks of a few minutes (`plan_chunks`): each chunk reads its files with the
same margins as upstream does for the whole window, plus `EXTRA_CONTEXT` minutes before, and
emits the records whose time falls in the chunk. The chunks add up to one pass over the whole
window:

- the merge is local: records fold only with records that share their id (and then their exact
  server time, or a range at most a minute wide) or their exact time and range, all inside the
  chunk's reach;
- the reading fold is a sweep in time order that joins equal id-less records whose ranges meet
  (an exact time being a point range), so what it does after a moment depends on what came
  before only through folds still open then. `trim_before_quiet_points` finds, per content, a
  moment before the chunk where no range of that content is open, and drops that content's
  earlier records: the sweep from there on is the global sweep. Only a chain of overlapping equal
  ranges running back over the whole extra context (minutes of one user's JOINs, each range
  meeting the next) leaves nothing to trim, and then the chunk's fold starts a few minutes
  earlier than the global one would have.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from formats.canonical import BATCH_INTERVAL, batch_time_of
from formats.errors import InputError, UsageError
from merge.core import check_records
from merge.view import trimmed

BEFORE = 2 * BATCH_INTERVAL  # upstream reads from two minutes before start...
AFTER = BATCH_INTERVAL  # ... to one minute after end
EXTRA_CONTEXT = 2 * BATCH_INTERVAL  # more context for inner chunk edges, for folds that reach back


# batch file names are dates: keep the window, with upstream's margins, inside what they can name
_FIRST_MOMENT = datetime(1, 1, 1, tzinfo=UTC).timestamp() + BEFORE + BATCH_INTERVAL
_LAST_MOMENT = datetime(9999, 12, 31, 23, 0, tzinfo=UTC).timestamp()


class ExportError(UsageError):
    """The caller asked for something impossible: a bad time, an empty window, an unknown format."""


@dataclass(frozen=True)
class Window:
    """A half-open time window `[start, end)` in Unix seconds."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ExportError("window bounds must be finite")
        if self.end <= self.start:
            raise ExportError(f"window is empty: end ({self.end}) is not after start ({self.start})")
        if not (self.start >= _FIRST_MOMENT and self.end <= _LAST_MOMENT):
            raise ExportError("window must lie between the years 1 and 9999 (file names hold dates)")

    def meets(self, record: Mapping[str, Any]) -> bool:
        """Upstream's rule: the record's range meets the window."""
        time = record["time"]
        return bool(self.start <= time + record["time_range"] and time < self.end)

    def file_minutes(self) -> range:
        """Batch times of the files upstream reads for this window (two minutes before, one after)."""
        return range(batch_time_of(self.start) - BEFORE, batch_time_of(self.end) + AFTER + 1, BATCH_INTERVAL)


@dataclass(frozen=True)
class Chunk:
    """One step of a streamed export: read files of minutes `[read_from, read_to]`, emit the
    records whose time is in `[emit_from, emit_to)` (None: unbounded on that side)."""

    read_from: int
    read_to: int
    emit_from: float | None
    emit_to: float | None

    def emits(self, record: Mapping[str, Any]) -> bool:
        time = record["time"]
        return (self.emit_from is None or time >= self.emit_from) and (self.emit_to is None or time < self.emit_to)


def plan_chunks(
    window: Window, minutes: int = 10, next_file: Callable[[int], int | None] | None = None
) -> Iterator[Chunk]:
    """Cut `window` into chunks of `minutes` (see the module docstring), lazily. The first chunk
    reads from upstream's start margin and emits everything before its end; the last reads to
    upstream's end margin.

    With `next_file` (the first batch time at or after a moment that may hold files, None if
    none: `export.stream.next_file_finder`), a chunk none of whose files exist is not made: the
    plan jumps to the first chunk that can reach a file. The chunks it does make are exactly those
    of the plan without it (same grid, same bounds), and a skipped one would have emitted nothing,
    so the records are the same; the work follows the files that exist, not the window's length
    (a window of centuries over a few minutes of chat is a few chunks)."""
    if minutes < 1:
        raise ExportError("chunk must be at least one minute")
    first_file = batch_time_of(window.start) - BEFORE
    last_file = batch_time_of(window.end) + AFTER
    step = minutes * BATCH_INTERVAL
    lower: int | None = None
    edge = batch_time_of(window.start) + step
    while True:
        upper = edge if edge < window.end else None
        read_from = first_file if lower is None else max(first_file, lower - BEFORE - EXTRA_CONTEXT)
        read_to = last_file if upper is None else min(last_file, upper + AFTER)
        if next_file is not None and upper is not None:
            found = next_file(read_from)
            if found is None or found > read_to:
                # the first chunk whose reach (upper + AFTER) gets to `found`, or the last one
                target = window.end if found is None else min(window.end, found - AFTER)
                skip = max(1, math.ceil((target - edge) / step))
                lower = edge + (skip - 1) * step
                edge += skip * step
                continue
        yield Chunk(read_from, read_to, lower, upper)
        if upper is None:
            return
        lower = upper
        edge += step


MAX_RANGE = 60  # s, the widest range the archiver writes (a delayed JOIN/PART)


def trim_before_quiet_points(records: list[dict[str, Any]], before: float, earliest: float) -> list[dict[str, Any]]:
    """Drop id-less records that cannot change the reading fold from `before` on (the fold joins
    equal id-less records whose ranges meet; an exact time is the point range `[t, t]`).

    For each content, the quiet point is the latest start `q` in `[earliest, before]` such that
    every record of that content starting before `q` ends before `q`: no fold open at `q` can
    take a record starting at or after it, so that content's records before `q` are dropped (their
    own folds end before `before` and are not emitted). `earliest` must be at least the first
    file's minute plus `MAX_RANGE`, so that no unread record can reach past `q` either.

    A content whose every record starts and ends before `before` is dropped whole: each of its folds
    starts before `before` (a negative range ends before it starts, so the end alone does not tell),
    none can take a later record, and contents never fold together. Unless the merge would refuse
    one of its numbers (`merge.core.check_records`): then it stays, so the merge reports it.
    """
    return trimmed(records, partial(trim_content, before=before, earliest=earliest))


def trim_content(group: list[dict[str, Any]], before: float, earliest: float) -> list[dict[str, Any]]:
    """`trim_before_quiet_points` of one content's id-less records (sorted by time in place); [] when
    the whole content is dropped."""
    group.sort(key=lambda r: r["time"])
    quiet = None
    reach = -math.inf
    for record in group:
        start = record["time"]
        if start > reach and earliest <= start <= before:
            quiet = start
        reach = max(reach, start + record["time_range"])
    if reach < before and group[-1]["time"] < before and _mergeable(group):
        return []
    return group if quiet is None else [r for r in group if r["time"] >= quiet]


def _mergeable(records: list[dict[str, Any]]) -> bool:
    try:
        check_records(records)
    except InputError:
        return False
    return True


def _lower(value: object) -> str | None:
    return value.lower() if isinstance(value, str) else None


def record_users(record: Mapping[str, Any]) -> set[str]:
    """The users a record is about, lower case: who sent it (nick, user, display name, `login`),
    and whom a CLEARCHAT times out or bans (its second parameter)."""
    users = {_lower(record.get("sender")), _lower(record.get("user"))}
    tags = record.get("tags") or {}
    users.add(_lower(tags.get("display-name")))
    users.add(_lower(tags.get("login")))
    params = record.get("params") or []
    if record.get("command") == "CLEARCHAT" and len(params) > 1:
        users.add(_lower(params[1]))
    users.discard(None)
    return users  # type: ignore[return-value]


@dataclass(frozen=True)
class Filters:
    """Keep only these commands (upper case) and records about these users (lower case); empty
    means no filter."""

    commands: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    @classmethod
    def of(cls, commands: Iterable[str], users: Iterable[str]) -> Filters:
        return cls(frozenset(c.upper() for c in commands), frozenset(u.lstrip("@").lower() for u in users))

    def keeps(self, record: Mapping[str, Any]) -> bool:
        if self.commands and record.get("command") not in self.commands:
            return False
        return not self.users or not self.users.isdisjoint(record_users(record))
