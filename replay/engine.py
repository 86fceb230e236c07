"""The incremental replay engine: raw events in, closed batches of archive records out.

Feed a recorder process's events in sequence order with `feed()`; each call returns the batches
that event closed (usually none). `finish()` closes the rest: end of input is explicit, as in h11.
Feeding the same events in any chunking gives the same batches, since only the events matter.

Each connection has its own receiver name (`RECORDER.SLUG.CONN`), server clock, per-channel
initialisation and open batches, exactly as upstream ran one archiver per connection.

Time passes on a connection only through its own events. A received line moves the connection's
`now` to its receive time, which closes every batch whose deadline has passed; a `tick` (raw format
version 2: "connection open, every line received before `at` is recorded") moves `now` exactly the
same way and archives nothing. So a quiet channel's batch closes at the first tick past its
deadline, and a replay run live (following files as they grow) closes batches at exactly the same
events as one run later over the finished files: same batches, same bytes. A tick of a connection
that is not open is ignored. Version 1 recordings have no ticks: their batches close on the
other events alone.

`state()` and `StreamReplayer.from_state()` save and restore everything an event can depend on
(connections, clocks, initialised channels, open batches), so a follower can stop after any event
and resume as if it had never stopped (replay/checkpoint.py).

The bulk replay asks for a compact engine (`compact=True`): where the compiled core is built, a
Twitch line's record is then kept as its canonical bytes but for its two numbers (replay/compact.py,
written by `replay.compact.batch_bytes`), and `feed_raw` lets the compiled lane take the common
raw lines straight from the file's bytes, doing for each exactly what `feed` does; every other
line still goes through `feed`. The decisions are this module's, in one place (`_line`); the lane
takes only lines for which they are all plain (native/replay.c says which).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from formats.dialect import TWITCH, Dialect, get_dialect
from formats.errors import IRCParseError
from formats.irc import CompatFields, parse_compat
from formats.names import channel_folder_name, channel_ok
from formats.rawcodec import CLOSE, OPEN, RECV, TICK, Event, receiver_name
from replay.batches import ClosedBatch, OpenBatches
from replay.compact import PARTS, archive_record, compiled_lane, compiled_twitch_line, receiver_key
from replay.timestamps import DEFAULT_TIMING, MAX_CLOCK_DISTANCE, ServerClock, Timing

# Reasons a received line is not archived (the summary counts them).
SKIP_UNPARSABLE = "unparsable IRC line"
SKIP_NOT_KEPT = "command not archived"
SKIP_BEFORE_INIT = "before channel initialised"
SKIP_NO_CHANNEL = "no channel"
SKIP_FILTERED = "channel not selected"
SKIP_BAD_CHANNEL = "unsafe channel name"
SKIP_FAR_TIME = "server time far from receive time"


# Unparsable lines are described one by one up to this many per stream; all are counted in `skipped`.
PROBLEMS_KEPT = 1000


@dataclass
class ReplayStats:
    """Counters of one replay; summed over streams by the shell."""

    events: int = 0
    lines: int = 0
    records: int = 0
    connections: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def add(self, other: ReplayStats) -> None:
        self.events += other.events
        self.lines += other.lines
        self.records += other.records
        self.connections += other.connections
        self.skipped.update(other.skipped)
        self.problems.extend(other.problems)


class _Connection:
    __slots__ = ("batches", "clock", "dialect", "ready", "receiver", "receiver_key")

    def __init__(self, receiver: str, dialect: Dialect, timing: Timing) -> None:
        self.receiver = receiver
        self.receiver_key = receiver_key(receiver)
        self.dialect = dialect
        self.clock = ServerClock(timing)
        self.ready: set[str] = set()
        self.batches = OpenBatches(timing)


# A channel's folder name is checked once per name, not once per line.
_safe_folder = functools.lru_cache(maxsize=4096)(channel_ok)


# What most events close: nothing. Immutable, so a caller cannot change it for the next one.
_NO_BATCHES: tuple[ClosedBatch, ...] = ()


class StreamReplayer:
    """Replays the events of one recorder process (one raw stream)."""

    def __init__(
        self,
        recorder: str,
        slug: str,
        *,
        timing: Timing = DEFAULT_TIMING,
        channels: frozenset[str] | None = None,
        compact: bool = False,
    ) -> None:
        self.recorder = recorder
        # compact: keep records as their bytes (replay/compact.py) where the compiled step is built;
        # closed batches then hold compact records, written by `replay.compact.record_bytes`.
        self._twitch_line = compiled_twitch_line() if compact else None
        self._lane = compiled_lane() if compact else None
        self.slug = slug
        self.timing = timing
        self.channels = channels
        self.stats = ReplayStats()
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
            closed: Sequence[ClosedBatch] = c.batches.close_due(now) if now >= c.batches.next_deadline else _NO_BATCHES
            self._line(c, event.text, now, event.seq)
            return closed
        if kind == OPEN:
            closed = self._drop(event.conn)
            self._open(event.conn, get_dialect(event.dialect))
            return closed
        if kind == TICK:
            c = self._conns.get(event.conn)
            if c is None:
                return _NO_BATCHES
            now = event.at / 1_000_000
            return c.batches.close_due(now) if now >= c.batches.next_deadline else _NO_BATCHES
        if kind == CLOSE:
            return self._drop(event.conn)
        return _NO_BATCHES

    @property
    def has_lane(self) -> bool:
        """Whether `feed_raw` takes lines (a compact engine, with the compiled core built)."""
        return self._lane is not None

    def feed_raw(self, block: bytes, offset: int, last_seq: int) -> tuple[int, int, int]:
        """Feed raw lines (a block as formats.rawfile reads it, each line ending with b"\\n") from
        byte `offset` on, as long as the compiled lane (native/replay.c) takes them: the common
        received line, which closes no batch and goes to an open one. Returns (offset of the first
        line not taken, last seq read, lines passed); the caller decodes that line and feeds its
        event (or skips it) as usual, then calls again. Repeated seqs are skipped (and passed) as
        `iter_stream_events` skips them. Takes nothing when the engine is not compact or the
        compiled core is not built (`has_lane`)."""
        if self._lane is None:
            return offset, last_seq, 0
        stop, last_seq, taken, lines = self._lane(
            block,
            offset,
            last_seq,
            self._conns,
            TWITCH,
            TWITCH.kept,
            self.channels,
            _safe_folder,
        )
        if taken:
            stats = self.stats
            stats.events += taken
            stats.lines += taken
            stats.records += taken
        return stop, last_seq, lines

    def state(self) -> dict[str, Any]:
        """Everything later events depend on, as plain JSON-able data (the open batches' records are
        the live ones: serialise before feeding more). Counters are kept; problem texts are not."""
        s = self.stats
        return {
            "stats": [s.events, s.lines, s.records, s.connections, dict(s.skipped)],
            "conns": [
                [conn, c.dialect.name, c.clock.state(), sorted(c.ready), c.batches.state()]
                for conn, c in self._conns.items()
            ],
        }

    @classmethod
    def from_state(
        cls,
        recorder: str,
        slug: str,
        state: dict[str, Any],
        *,
        timing: Timing = DEFAULT_TIMING,
        channels: frozenset[str] | None = None,
        compact: bool = False,
    ) -> StreamReplayer:
        """The replayer `state()` described; it goes on exactly as the saved one would have."""
        self = cls(recorder, slug, timing=timing, channels=channels, compact=compact)
        events, lines, records, connections, skipped = state["stats"]
        self.stats = ReplayStats(events, lines, records, connections, Counter(skipped))
        for conn, dialect, clock, ready, batches in state["conns"]:
            c = _Connection(receiver_name(recorder, slug, conn), get_dialect(dialect), timing)
            c.clock = ServerClock.from_state(timing, clock)
            c.ready = set(ready)
            c.batches = OpenBatches.from_state(timing, batches)
            self._conns[conn] = c
        return self

    @property
    def open_batches(self) -> int:
        return sum(len(c.batches) for c in self._conns.values())

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
        dialect = c.dialect
        fast = self._twitch_line
        got = fast(line, c.receiver_key, now) if fast is not None and dialect is TWITCH else None
        fields: CompatFields | None = None
        if got is not None:
            # the compiled step (replay/compact.py): the record's bytes, but for its times, at once
            command, first, server_time, head, tail = got
            init_param = first
        else:
            try:
                fields = parse_compat(line)
            except IRCParseError as e:
                stats.skipped[SKIP_UNPARSABLE] += 1
                if len(stats.problems) < PROBLEMS_KEPT:
                    stats.problems.append(f"{self.recorder}.{self.slug} seq {seq}: {e.message}")
                return
            command, params = fields[0], fields[1]
            first = params[0] if params else None
            index = dialect.init_channel_param
            init_param = params[index] if len(params) > index else None
            server_time = None
        if command == dialect.init_command:
            name = channel_folder_name(init_param) if init_param is not None else None
            if name is not None and name not in c.ready:
                # The first one of a channel on a connection ends the per-connection noise.
                c.ready.add(name)
                stats.skipped[SKIP_BEFORE_INIT] += 1
                return
        if command not in dialect.kept:
            stats.skipped[SKIP_NOT_KEPT] += 1
            return
        name = channel_folder_name(first) if first is not None else None
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
        if fields is not None:
            server_time = dialect.server_time(fields[5])
        time: float
        time_range: int | float
        if server_time is not None and not abs(server_time - now) <= MAX_CLOCK_DISTANCE:
            # A server time a day or more from when the line arrived is a lie or a broken clock:
            # archived, it would open a minute in the year 9999 (or 1970) that nothing else is near.
            stats.skipped[SKIP_FAR_TIME] += 1
            if len(stats.problems) < PROBLEMS_KEPT:
                stats.problems.append(
                    f"{self.recorder}.{self.slug} seq {seq}: server time {server_time!r} is more than"
                    f" {MAX_CLOCK_DISTANCE} s from the receive time {now!r}; record skipped"
                )
            return
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
        if fields is None:
            compact_record: Any = {"time": time, "time_range": time_range, PARTS: (head, tail, line, c.receiver, now)}
            c.batches.add(name, compact_record)
            return
        c.batches.add(name, archive_record(fields, c.receiver, now, time, time_range))
