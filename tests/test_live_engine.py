"""The live follower's engine laws: ticks close batches as lines do, and a replayer saved and
restored at any event goes on exactly as one that never stopped (the checkpoint's foundation)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from formats.canonical import format_batch
from formats.rawcodec import CLOSE, OPEN, RECV, TICK, Event
from replay.batches import ClosedBatch
from replay.engine import StreamReplayer
from tests.strategies import RAW_T0_US, raw_event_streams

Out = list[tuple[str, int, bytes]]


def _bytes(batches: list[ClosedBatch]) -> Out:
    return [(b.channel, b.batch_time, format_batch(b.records)) for b in batches]


def _straight(events: list[Event]) -> Out:
    r = StreamReplayer("host", "Slug0")
    out: list[ClosedBatch] = []
    for e in events:
        out.extend(r.feed(e))
    return _bytes(out) + _bytes(r.finish())


def _restored(r: StreamReplayer) -> StreamReplayer:
    # Through bytes, as a checkpoint stores it: nothing may survive that the state does not hold.
    return StreamReplayer.from_state("host", "Slug0", orjson.loads(orjson.dumps(r.state())))


@given(raw_event_streams(), st.data())
def test_save_restore_at_any_events_changes_nothing(events: list[Event], data: Any) -> None:
    cuts = set(data.draw(st.lists(st.integers(0, len(events)), max_size=6)))
    r = StreamReplayer("host", "Slug0")
    out: Out = []
    for i, e in enumerate(events):
        if i in cuts:
            r = _restored(r)
        out.extend(_bytes(r.feed(e)))
    if len(events) in cuts:
        r = _restored(r)
    out.extend(_bytes(r.finish()))
    assert out == _straight(events)


@given(raw_event_streams())
def test_ticks_archive_nothing(events: list[Event]) -> None:
    """Dropping every tick changes no record, only when batches close (finish closes the rest)."""

    def records(evs: list[Event]) -> list[tuple[str, int, bytes]]:
        r = StreamReplayer("host", "Slug0")
        closed = [b for e in evs for b in r.feed(e)] + r.finish()
        merged: dict[tuple[str, int], list[Any]] = {}
        for b in closed:
            merged.setdefault((b.channel, b.batch_time), []).extend(b.records)
        return sorted((c, t, format_batch(rs)) for (c, t), rs in merged.items())

    assert records(events) == records([e for e in events if e.kind != TICK])


def _line(seq: int, sent_s: float) -> str:
    return f"@id=m{seq};tmi-sent-ts={int(sent_s * 1000)} :u!u@u.tmi.twitch.tv PRIVMSG #c :hi"


def test_a_tick_past_the_deadline_closes_the_quiet_batch_exactly_as_a_line_would() -> None:
    t0 = (RAW_T0_US // 1_000_000 // 60 + 1) * 60  # a minute boundary
    base = [
        Event(OPEN, 0, t0 * 10**6, 0, "wss://x", "twitch"),
        Event(RECV, 1, (t0 + 1) * 10**6, 0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c"),
        Event(RECV, 2, (t0 + 2) * 10**6, 0, _line(2, t0 + 2)),
    ]
    deadline = t0 + 60 + 60
    r = StreamReplayer("host", "Slug0")
    for e in base:
        assert not r.feed(e)
    assert not r.feed(Event(TICK, 3, (deadline - 1) * 10**6, 0, ""))  # before the deadline
    assert not r.feed(Event(TICK, 4, deadline * 10**6, 5, ""))  # another connection's tick: not open
    closed = r.feed(Event(TICK, 5, deadline * 10**6, 0, ""))  # at the deadline: closes
    assert [(b.channel, b.batch_time, len(b.records)) for b in closed] == [("c", t0, 1)]
    assert r.stats.records == 1 and r.open_batches == 0
    # the same moment as a line: a received line at the deadline closes the same batch
    r2 = StreamReplayer("host", "Slug0")
    for e in base:
        r2.feed(e)
    closed2 = r2.feed(Event(RECV, 3, deadline * 10**6, 0, _line(3, deadline)))
    assert _bytes(closed2) == _bytes(closed)


def test_version_1_stream_without_ticks_closes_only_at_lines() -> None:
    t0 = (RAW_T0_US // 1_000_000 // 60 + 1) * 60
    r = StreamReplayer("host", "Slug0")
    r.feed(Event(OPEN, 0, t0 * 10**6, 0, "wss://x", "twitch"))
    r.feed(Event(RECV, 1, (t0 + 1) * 10**6, 0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c"))
    r.feed(Event(RECV, 2, (t0 + 2) * 10**6, 0, _line(2, t0 + 2)))
    assert r.open_batches == 1  # nothing passes time without events: the batch waits
    assert [b.batch_time for b in r.feed(Event(CLOSE, 3, (t0 + 500) * 10**6, 0, "bye"))] == [t0]
