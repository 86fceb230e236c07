"""The incremental replay engine: raw events in, closed batches of archive records out.

Feed a recorder process's events in sequence order with `feed()`; each call returns the batches
that event closed (usually none). `finish()` closes the rest: end of input is explicit, as in h11.
Feeding the same events in any chunking gives the same batches, since only the events matter.

Each connection has its own receiver name (`RECORDER.SLUG.CONN`), server clock, per-channel
initialisation and open batches, exactly as upstream ran one archiver per connection.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from formats.canonical import check_channel_dirname
from formats.errors import IRCParseError, UsageError
from formats.irc import parse_compat
from formats.rawcodec import CLOSE, OPEN, RECV, Event, receiver_name
from replay.batches import ClosedBatch, OpenBatches
from replay.dialect import TWITCH, Dialect, get_dialect
from replay.timestamps import DEFAULT_TIMING, ServerClock, Timing

# Reasons a received line is not archived (the summary counts them).
SKIP_UNPARSABLE = "unparsable IRC line"
SKIP_NOT_KEPT = "command not archived"
SKIP_BEFORE_INIT = "before channel initialised"
SKIP_NO_CHANNEL = "no channel"
SKIP_FILTERED = "channel not selected"
SKIP_BAD_CHANNEL = "unsafe channel name"


# Unparsable lines are described one by one up to this many per stream; all are counted in `skipped`.
PROBLEMS_KEPT = 1000


@dataclass
class Stats:
    """Counters of one replay; summed over streams by the shell."""

    events: int = 0
    lines: int = 0
    records: int = 0
    connections: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def add(self, other: Stats) -> None:
        self.events += other.events
        self.lines += other.lines
        self.records += other.records
        self.connections += other.connections
        self.skipped.update(other.skipped)
        self.problems.extend(other.problems)


class _Connection:
    __slots__ = ("batches", "clock", "dialect", "ready", "receiver")

    def __init__(self, receiver: str, dialect: Dialect, timing: Timing) -> None:
        self.receiver = receiver
        self.dialect = dialect
        self.clock = ServerClock(timing)
        self.ready: set[str] = set()
        self.batches = OpenBatches(timing)


def channel_folder_name(param: str) -> str | None:
    """`#Chan` -> `chan`; None if the parameter is not a channel: only `#` and at least one more
    character names one (ARCHIVE_FORMAT.md section 3; upstream archives no `&` channel)."""
    if len(param) < 2 or param[0] != "#":
        return None
    return param[1:].lower()


@functools.lru_cache(maxsize=4096)
def _safe_folder(name: str) -> bool:
    try:
        check_channel_dirname(name)
    except UsageError:
        return False
    return True


# What most events close: nothing. Immutable, so a caller cannot change it for the next one.
_NO_BATCHES: tuple[ClosedBatch, ...] = ()


class StreamReplayer:
    """Replays the events of one recorder process (one raw stream)."""

    def __init__(
        self, recorder: str, slug: str, *, timing: Timing = DEFAULT_TIMING,
        channels: frozenset[str] | None = None,
    ) -> None:
        self.recorder = recorder
        self.slug = slug
        self.timing = timing
        self.channels = channels
        self.stats = Stats()
        self._conns: dict[int, _Connection] = {}

    def _open(self, conn: int, dialect: Dialect) -> _Connection:
        c = _Connection(receiver_name(self.recorder, self.slug, conn), dialect, self.timing)
        self._conns[conn] = c
        self.stats.connections += 1
        return c

    def feed(self, event: Event) -> Sequence[ClosedBatch]:
        self.stats.events += 1
        kind = event.kind
        if kind == RECV:
            c = self._conns.get(event.conn)
            if c is None:
                # The open event was lost (a damaged file): assume the stream's usual dialect.
                c = self._open(event.conn, TWITCH)
            now = event.at / 1_000_000
            closed: Sequence[ClosedBatch] = (
                c.batches.close_due(now) if now >= c.batches.next_deadline else _NO_BATCHES
            )
            self._line(c, event.text, now, event.seq)
            return closed
        if kind == OPEN:
            closed = self._drop(event.conn)
            self._open(event.conn, get_dialect(event.dialect))
            return closed
        if kind == CLOSE:
            return self._drop(event.conn)
        return _NO_BATCHES

    def _drop(self, conn: int) -> Sequence[ClosedBatch]:
        c = self._conns.pop(conn, None)
        return c.batches.close_all() if c is not None else _NO_BATCHES

    def finish(self) -> list[ClosedBatch]:
        """End of input: close every open batch of every connection."""
        closed: list[ClosedBatch] = []
        for conn in sorted(self._conns):
            closed.extend(self._conns[conn].batches.close_all())
        self._conns.clear()
        return closed

    def _line(self, c: _Connection, line: str, now: float, seq: int) -> None:
        stats = self.stats
        stats.lines += 1
        try:
            command, params, sender, user, host, tags = parse_compat(line)
        except IRCParseError as e:
            stats.skipped[SKIP_UNPARSABLE] += 1
            if len(stats.problems) < PROBLEMS_KEPT:
                stats.problems.append(f"{self.recorder}.{self.slug} seq {seq}: {e.message}")
            return
        dialect = c.dialect
        if command == dialect.init_command:
            index = dialect.init_channel_param
            name = channel_folder_name(params[index]) if len(params) > index else None
            if name is not None and name not in c.ready:
                # The first one of a channel on a connection ends the per-connection noise.
                c.ready.add(name)
                stats.skipped[SKIP_BEFORE_INIT] += 1
                return
        if command not in dialect.kept:
            stats.skipped[SKIP_NOT_KEPT] += 1
            return
        name = channel_folder_name(params[0]) if params else None
        if name is None:
            stats.skipped[SKIP_NO_CHANNEL] += 1
            return
        if name not in c.ready:
            stats.skipped[SKIP_BEFORE_INIT] += 1
            return
        if not _safe_folder(name):
            stats.skipped[SKIP_BAD_CHANNEL] += 1
            if len(stats.problems) < PROBLEMS_KEPT:
                stats.problems.append(f"{self.recorder}.{self.slug} seq {seq}: unsafe channel name {name!r} skipped")
            return
        clock = c.clock
        server_time = dialect.server_time(tags)
        time: float
        time_range: int | float
        if server_time is not None:
            time, time_range = server_time, 0
            clock.observe(server_time, now)
            c.batches.shrink(name, server_time)
        else:
            time, time_range = clock.estimate(now, command in dialect.delayed)
        if self.channels is not None and name not in self.channels:
            # Filtered after the clock update: the other channels' ranges must not depend on it.
            stats.skipped[SKIP_FILTERED] += 1
            return
        stats.records += 1
        c.batches.add(name, {
            "command": command, "params": params, "sender": sender, "user": user, "host": host,
            "tags": tags, "receivers": {c.receiver: now}, "time": time, "time_range": time_range,
        })


def replay_events(
    recorder: str, slug: str, events: Iterable[Event], *, timing: Timing = DEFAULT_TIMING,
) -> list[ClosedBatch]:
    """One-call wrapper: every batch of one stream, in the order they close."""
    r = StreamReplayer(recorder, slug, timing=timing)
    out: list[ClosedBatch] = []
    for event in events:
        out.extend(r.feed(event))
    out.extend(r.finish())
    return out
