"""export's pure selection logic: time parsing, upstream's window rule, chunk plans, filters, and
the quiet-point trimming that keeps chunked folds equal to one global fold."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from export.window import (
    MAX_RANGE,
    ExportError,
    Filters,
    Window,
    plan_chunks,
    trim_before_quiet_points,
)
from formats.canonical import batch_time_of, canonical_json
from formats.times import TimeError, parse_time
from merge.view import fold_for_reading
from tests.strategies import MERGE_MINUTE0, archive_records, merge_observations


def rec(time: float, time_range: float) -> dict[str, Any]:
    return {"time": time, "time_range": time_range}


def test_window_rule_edges() -> None:
    w = Window(100, 200)
    assert w.meets(rec(100, 0)) and w.meets(rec(90, 10)) and w.meets(rec(199.999, 0))
    assert not w.meets(rec(89.9, 10)) and not w.meets(rec(200, 0)) and not w.meets(rec(99, 0.5))
    assert not w.meets(rec(150, -60))  # a conflict's end is before its start: upstream's rule as written
    with pytest.raises(ExportError):
        Window(5, 5)
    with pytest.raises(ExportError):
        Window(-62135596800, -62135595000)  # from the first moment of year 1: no room for the margins


def test_file_minutes_are_upstreams_margins() -> None:
    w = Window(1700000010, 1700000160)  # 22:13:30 .. 22:16:00
    assert list(w.file_minutes()) == list(range(1699999860, 1700000220 + 1, 60))  # 22:11 .. 22:17


@given(
    st.integers(MERGE_MINUTE0 - 10_000, MERGE_MINUTE0 + 10_000),
    st.integers(1, 20_000),
    st.integers(1, 15),
    st.floats(-30_000, 30_000),
)
def test_chunks_partition_the_line_within_upstreams_files(start: int, length: int, minutes: int, t: float) -> None:
    w = Window(start, start + length)
    chunks = list(plan_chunks(w, minutes))
    files = w.file_minutes()
    assert chunks[0].emit_from is None and chunks[-1].emit_to is None
    assert chunks[0].read_from == files[0] and chunks[-1].read_to == files[-1]
    assert all(files[0] <= c.read_from <= c.read_to <= files[-1] for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert before.emit_to == after.emit_from
        assert after.read_from + MAX_RANGE <= after.emit_from  # room for the quiet point
        assert before.read_to >= before.emit_to  # every file a record before the edge can sit in
    time = MERGE_MINUTE0 + t
    assert sum(c.emits(rec(time, 0)) for c in chunks) == 1


def test_filters() -> None:
    privmsg = {
        "command": "PRIVMSG",
        "sender": "alice",
        "user": "alice",
        "tags": {"display-name": "Alice"},
        "params": ["#c", "hi"],
    }
    timeout = {"command": "CLEARCHAT", "sender": "tmi.twitch.tv", "user": None, "tags": None, "params": ["#c", "bob"]}
    sub = {
        "command": "USERNOTICE",
        "sender": "tmi.twitch.tv",
        "user": None,
        "tags": {"login": "carol"},
        "params": ["#c"],
    }
    assert Filters().keeps(privmsg)
    assert Filters.of(["privmsg"], []).keeps(privmsg) and not Filters.of(["privmsg"], []).keeps(timeout)
    assert Filters.of([], ["ALICE"]).keeps(privmsg) and not Filters.of([], ["alice"]).keeps(timeout)
    assert Filters.of([], ["@bob"]).keeps(timeout) and Filters.of([], ["carol"]).keeps(sub)
    assert not Filters.of(["PRIVMSG"], ["bob"]).keeps(timeout)


@given(st.lists(archive_records(), max_size=5), st.lists(st.text(max_size=5), max_size=2))
def test_filters_never_raise(records: list[dict[str, Any]], users: list[str]) -> None:
    f = Filters.of(["PRIVMSG"], users)
    for r in records:
        f.keeps(r)


def shown_from(records: list[dict[str, Any]], edge: float) -> list[str]:
    return [canonical_json(r) for r in fold_for_reading(records) if r["time"] >= edge]


@given(merge_observations(), st.integers(0, 180))
def test_trimming_before_a_quiet_point_does_not_change_later_folds(records: list[dict[str, Any]], offset: int) -> None:
    edge = MERGE_MINUTE0 + offset
    trimmed = trim_before_quiet_points(records, edge, -float("inf"))
    assert shown_from(trimmed, edge) == shown_from(records, edge)


def test_trimming_drops_only_behind_a_quiet_point() -> None:
    def join(t: float, receiver: str) -> dict[str, Any]:
        return {
            "command": "JOIN",
            "params": ["#c"],
            "sender": "u",
            "user": "u",
            "host": None,
            "tags": None,
            "receivers": {receiver: t + 55},
            "time": t,
            "time_range": 55,
        }

    chained = [join(0, "a"), join(50, "b"), join(100, "c")]  # each range meets the next: no quiet point
    assert trim_before_quiet_points(chained, 120, -1e9) == chained
    apart = [join(0, "a"), join(60, "b"), join(130, "c")]
    assert trim_before_quiet_points(apart, 120, -1e9) == apart[1:]  # 60 > 0 + 55: quiet at 60
    assert trim_before_quiet_points(apart, 120, 61) == apart  # ... unless it is before `earliest`


def test_trimming_keeps_a_record_that_starts_at_the_edge_with_a_negative_range() -> None:
    """A range of -1 ends before it starts: the record at the edge ends before it, yet the chunk
    from the edge on shows it (its time is the edge), so its content is not dropped."""
    record = {
        "command": "JOIN",
        "params": ["#c", ""],
        "sender": "a",
        "user": None,
        "host": None,
        "tags": None,
        "receivers": {"h.s.0": 120.000001},
        "time": 120.0,
        "time_range": -1,
    }
    assert trim_before_quiet_points([dict(record)], 120, -1e9) == [record]
    assert shown_from(trim_before_quiet_points([dict(record)], 120, -1e9), 120) == [canonical_json(record)]
    assert trim_before_quiet_points([dict(record)], 121, -1e9) == []  # wholly before a later edge


@given(
    st.one_of(st.floats(allow_nan=True), st.integers(-(2**70), 2**70)),
    st.one_of(st.floats(allow_nan=True), st.integers(-(2**70), 2**70)),
)
def test_any_window_is_refused_or_names_real_files(start: float, end: float) -> None:
    """Whatever numbers the command line gives, a window either is refused with our error or every
    minute it reads has a batch file name (no OverflowError from a date out of range)."""
    from formats.canonical import batch_relpath

    try:
        window = Window(parse_time(repr(start)), parse_time(repr(end)))
    except (ExportError, TimeError):
        return
    minutes = window.file_minutes()
    for minute in (minutes[0], minutes[-1]):
        batch_relpath(minute, "x")
    assert next(plan_chunks(window, 2)).read_from == minutes[0]


def test_a_content_that_ends_before_the_chunk_is_dropped_whole_unless_the_merge_would_refuse_it() -> None:
    def join(who: str, t: float, receiver: str, when: float | int | None = None) -> dict[str, Any]:
        return {
            "command": "JOIN",
            "params": ["#c"],
            "sender": who,
            "user": who,
            "host": None,
            "tags": None,
            "receivers": {receiver: t + 55 if when is None else when},
            "time": t,
            "time_range": 55,
        }

    over = [join("u", 0, "a"), join("u", 10, "b")]  # both end before 120: no fold of them is shown from 120
    reaching = [join("v", 40, "a"), join("v", 90, "b")]  # chained, and 90 + 55 reaches past 120
    refused = [join("w", 0, "a", 2**60)]  # the merge refuses it: it stays, for the merge to say so
    assert trim_before_quiet_points(over + reaching + refused, 120, -1e9) == [*reaching, *refused]


@given(
    st.integers(MERGE_MINUTE0 - 10_000, MERGE_MINUTE0 + 10_000),
    st.integers(1, 200_000),
    st.integers(1, 15),
    st.lists(st.integers(-3_000, 3_000), max_size=6),
)
def test_a_plan_that_knows_the_files_skips_only_chunks_that_reach_none(
    start: int, length: int, minutes: int, offsets: list[int]
) -> None:
    """With `next_file`, the plan is the full plan less the chunks whose reach holds no file: the
    same chunks otherwise (so the same records), however the files lie."""
    import bisect

    w = Window(start, start + length)
    existing = sorted({batch_time_of(start) + 60 * k for k in offsets})

    def next_file(at: int) -> int | None:
        i = bisect.bisect_left(existing, at)
        return existing[i] if i < len(existing) else None

    full = list(plan_chunks(w, minutes))
    sparse = list(plan_chunks(w, minutes, next_file))
    kept = [c for c in full[:-1] if any(c.read_from <= m <= c.read_to for m in existing)] + full[-1:]
    assert sparse == kept


def test_a_window_of_centuries_over_a_few_minutes_is_a_few_chunks() -> None:
    minute = batch_time_of(MERGE_MINUTE0)
    w = Window(946_684_800, 253_402_214_400)  # 2000-01-01 .. 9999-12-31
    sparse = list(plan_chunks(w, 10, lambda at: minute if at <= minute else None))
    assert len(sparse) <= 4
    assert any(c.read_from <= minute <= c.read_to for c in sparse)
