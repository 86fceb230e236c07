"""When was anyone listening? Connection windows from raw recordings, and the gaps between them.

An empty minute in the archive means one of two things: the channel was quiet, or nobody was
recording. Only the raw recordings can tell them apart, because they say when each connection was
open. A connection's window runs from its `open` event to its `close` event; a recording that ends
without a `close` (the process died, or the file is still being written) ends the windows it left
open at its last event, the last moment the process is known to have been alive.

Which channels a connection covered comes from the `JOIN` lines it sent or received. A connection that sent no
JOIN we can read is taken to cover every channel: an IRCv3 server may join it by configuration, and
assuming coverage is the one reading that does not invent a gap the recording does not show.

Everything here is pure: events in, windows and spans out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from formats.canonical import BATCH_INTERVAL
from formats.errors import InputError
from formats.irc import parse_compat
from formats.rawcodec import CLOSE, OPEN, RECV, SEND, Event, receiver_name


@dataclass(frozen=True)
class Window:
    """One connection's time on the air, in Unix seconds."""

    receiver: str
    start: float
    end: float
    closed: bool  # False: the recording ended with the connection still open
    channels: frozenset[str] | None  # None: unknown, taken as all channels

    def covers(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


def _joined_channels(line: str) -> list[str]:
    try:
        command, params, *_rest = parse_compat(line)
    except InputError:
        return []
    if command != "JOIN" or not params:
        return []
    return [c.lstrip("#").lower() for c in params[0].split(",") if c.strip("#")]


def connection_windows(recorder: str, slug: str, events: Iterable[Event]) -> list[Window]:
    """The windows of every connection in one recorder process's events (in sequence order)."""
    opened: dict[int, float] = {}
    channels: dict[int, set[str]] = {}
    windows: list[Window] = []
    last_at: float | None = None

    def finish(conn: int, end: float, closed: bool) -> None:
        start = opened.pop(conn)
        joined = channels.pop(conn, set())
        windows.append(
            Window(
                receiver_name(recorder, slug, conn),
                start,
                max(start, end),
                closed,
                frozenset(joined) if joined else None,
            )
        )

    for event in events:
        at = event.at / 1_000_000
        last_at = at
        if event.kind == OPEN:
            if event.conn in opened:  # reopened without a close: the old one ended here at the latest
                finish(event.conn, at, False)
            opened[event.conn] = at
        elif event.kind == CLOSE:
            if event.conn in opened:
                finish(event.conn, at, True)
        elif event.conn in opened and (event.kind == SEND or (event.kind == RECV and " JOIN " in event.text)):
            # a JOIN we sent, or any JOIN we received (ours echoed, or someone's in a channel we are in)
            joined = _joined_channels(event.text)
            if joined:
                channels.setdefault(event.conn, set()).update(joined)
    for conn in sorted(opened):
        assert last_at is not None
        finish(conn, last_at, False)
    windows.sort(key=lambda w: (w.start, w.receiver))
    return windows


def uncovered(start: float, end: float, windows: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of [start, end] that no window covers, in order."""
    spans: list[tuple[float, float]] = []
    cursor = start
    for lo, hi in sorted(windows):
        if hi <= cursor:
            continue
        if lo > cursor:
            spans.append((cursor, min(lo, end)))
        cursor = max(cursor, hi)
        if cursor >= end:
            break
    if cursor < end:
        spans.append((cursor, end))
    return [(a, b) for a, b in spans if b > a]


def empty_runs(minutes: Iterable[int]) -> list[tuple[int, int]]:
    """The runs of empty minutes between the minutes that hold records, as [first, last + 60) spans.

    One run per hole, however long: the work follows the minutes that exist, never the span between
    the first and the last (a record timed centuries away must not make billions of empty minutes)."""
    runs: list[tuple[int, int]] = []
    previous: int | None = None
    for minute in sorted(minutes):
        if previous is not None and minute > previous + BATCH_INTERVAL:
            runs.append((previous + BATCH_INTERVAL, minute))
        previous = minute
    return runs


def classify_empty_runs(
    runs: Iterable[tuple[int, int]],
    gaps: list[tuple[float, float]],
    have_raw: bool,
) -> list[tuple[int, int, str]]:
    """Name the minutes of each empty run, as (start, end, state) spans in order: `quiet` (a recorder
    was connected all minute long), `gap` (at some point nobody was), or `empty` (no raw recordings
    were given, so nobody can tell). `gaps` are sorted and disjoint, as `uncovered` returns them; the
    work is proportional to the runs and the gaps, not to the minutes they span."""
    out: list[tuple[int, int, str]] = []

    def add(a: int, b: int, state: str) -> None:
        if b <= a:
            return
        if out and out[-1][1] == a and out[-1][2] == state:
            out[-1] = (out[-1][0], b, state)
        else:
            out.append((a, b, state))

    first_gap = 0
    for start, end in sorted(runs):
        if not have_raw:
            add(start, end, "empty")
            continue
        cursor = start
        while first_gap < len(gaps) and gaps[first_gap][1] <= start:
            first_gap += 1  # gaps are sorted and disjoint, so their ends are sorted too
        i = first_gap
        while i < len(gaps) and gaps[i][0] < end:
            lo, hi = gaps[i]
            # a minute m is a gap minute when [m, m + 60) meets (lo, hi)
            g_from = max(cursor, int(lo // BATCH_INTERVAL) * BATCH_INTERVAL)
            g_to = min(end, -int(-hi // BATCH_INTERVAL) * BATCH_INTERVAL)
            if g_to > g_from:
                add(cursor, g_from, "quiet")
                add(g_from, g_to, "gap")
                cursor = g_to
            i += 1
        add(cursor, end, "quiet")
    return out
