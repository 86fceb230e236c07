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

import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator
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


# A chat line without a server time counts for the minute it was received in only if it came at
# least this long after the minute's start: one sent just before would belong to the minute before.
CHAT_MARGIN = 10.0

ChatCounts = dict[str, dict[int, int]]  # channel -> batch time -> chat lines received for it


def chat_minute(text: str, at: float) -> tuple[str, int] | None:
    """The channel and minute of a received PRIVMSG line (by its `tmi-sent-ts`, else by when it
    was received, see CHAT_MARGIN); None for other lines. Reads the words only, not the message."""
    words = text.split(" ", 4)
    i = 0
    sent: float | None = None
    if words[0].startswith("@"):
        tags = words[0]
        k = tags.find("tmi-sent-ts=")
        if k >= 0:
            value = tags[k + 12 :].split(";", 1)[0]
            if value.isdigit():
                sent = int(value) / 1000
        i = 1
    if i < len(words) and words[i].startswith(":"):
        i += 1
    if i + 1 >= len(words) or words[i] != "PRIVMSG" or not words[i + 1].startswith("#"):
        return None
    channel = words[i + 1][1:].lower()
    if sent is not None:
        return channel, int(sent // BATCH_INTERVAL) * BATCH_INTERVAL
    minute = int(at // BATCH_INTERVAL) * BATCH_INTERVAL
    return (channel, minute) if at - minute >= CHAT_MARGIN else None


def count_chat(events: Iterable[Event], counts: ChatCounts) -> Iterator[Event]:
    """Pass `events` through, counting each received PRIVMSG line into `counts` (see `chat_minute`):
    what the raw recordings say the archive should hold something for."""
    for event in events:
        if event.kind == RECV and "PRIVMSG" in event.text:
            found = chat_minute(event.text, event.at / 1_000_000)
            if found is not None:
                per_minute = counts.setdefault(found[0], {})
                per_minute[found[1]] = per_minute.get(found[1], 0) + 1
        yield event


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


def minute_spans(minutes: Iterable[int]) -> list[tuple[int, int]]:
    """Runs of consecutive batch times, as [first, last + 60) spans (work proportional to the
    minutes given)."""
    spans: list[tuple[int, int]] = []
    for minute in sorted(minutes):
        if spans and spans[-1][1] == minute:
            spans[-1] = (spans[-1][0], minute + BATCH_INTERVAL)
        else:
            spans.append((minute, minute + BATCH_INTERVAL))
    return spans


def in_runs(runs: list[tuple[int, int]], minute: int) -> bool:
    """Whether `minute` lies in one of `runs` (sorted, disjoint [start, end) spans)."""
    i = bisect_right(runs, (minute, math.inf)) - 1
    return i >= 0 and runs[i][0] <= minute < runs[i][1]


def _add_span(spans: list[tuple[int, int, str]], a: int, b: int, state: str) -> None:
    """Append the span [a, b) named `state` to `spans` (sorted, disjoint), joined to the last span
    when it meets it with the same state; an empty span adds nothing."""
    if b <= a:
        return
    if spans and spans[-1][1] == a and spans[-1][2] == state:
        spans[-1] = (spans[-1][0], b, state)
    else:
        spans.append((a, b, state))


def unknown_outside(spans: list[tuple[int, int, str]], known: tuple[float, float] | None) -> list[tuple[int, int, str]]:
    """`spans` (sorted (start, end, state) runs of empty minutes) with every minute the raw
    recordings say nothing about (one not meeting `known`, or all of them when None) named `empty`:
    unknown, not quiet. Work proportional to the spans."""
    if known is None:
        lo_m = hi_m = 0
    else:
        lo_m = math.floor(known[0] / BATCH_INTERVAL) * BATCH_INTERVAL  # first minute ending after known[0]
        hi_m = math.ceil(known[1] / BATCH_INTERVAL) * BATCH_INTERVAL  # end of the last starting before known[1]
    out: list[tuple[int, int, str]] = []

    for a, b, state in spans:
        if hi_m <= lo_m:
            _add_span(out, a, b, "empty")
            continue
        _add_span(out, a, min(b, lo_m), "empty")
        _add_span(out, max(a, lo_m), min(b, hi_m), state)
        _add_span(out, max(a, hi_m), b, "empty")
    return out


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

    first_gap = 0
    for start, end in sorted(runs):
        if not have_raw:
            _add_span(out, start, end, "empty")
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
                _add_span(out, cursor, g_from, "quiet")
                _add_span(out, g_from, g_to, "gap")
                cursor = g_to
            i += 1
        _add_span(out, cursor, end, "quiet")
    return out
