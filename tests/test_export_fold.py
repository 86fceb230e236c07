"""merge.view.fold_rows, the merge and reading fold export runs on the records that do not pass
through: the view itself (`fold_for_reading`, after export's trim before quiet points when one is
given), record for record, to the byte, in the same order and with the same keys in the same
order, or the same error. Held over random lists: crowded contents (many records of one content,
equal, overlapping and touching ranges, one (time, range) from several receivers, a receiver's own
two sightings, int and float twins, -0.0, 0.0, ints beyond 2**53), a realistic merge world, merged
archives, any records of the schema, and all of them mixed."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from export.window import trim_before_quiet_points, trim_content
from formats.canonical import canonical_bytes
from formats.errors import InputError
from merge.core import as_merged, merge_records, taken_as_they_are
from merge.view import fold_for_reading, fold_rows
from tests.strategies import (
    MERGE_MINUTE0,
    archive_records,
    crowded_contents,
    merge_observations,
    records_in_minute,
)

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

_lists = st.one_of(
    crowded_contents(),
    crowded_contents(),
    merge_observations(),
    merge_observations().map(merge_records),
    records_in_minute(),
    st.lists(archive_records(), max_size=6),
    st.tuples(crowded_contents(), merge_observations(), st.lists(archive_records(), max_size=3)).map(
        lambda parts: [r for part in parts for r in part]
    ),
)


def _shown(record: dict[str, Any]) -> object:
    """A record as a reader sees it, with the types of its numbers and the order of its keys."""
    numbers = [(type(v), v) for v in (record["time"], record["time_range"], *record["receivers"].values())]
    return canonical_bytes(record), record, list(record), list(record["receivers"]), numbers


def _reference(records: list[dict[str, Any]]) -> object:
    try:
        return [_shown(r) for r in fold_for_reading(records)]
    except InputError as e:
        return ("InputError", str(e))


def _rows(records: list[dict[str, Any]], trim: Any = None) -> object:
    try:
        rows = fold_rows(records, trim)
    except InputError as e:
        return ("InputError", str(e))
    for time, time_range, line, record in rows:
        assert (time, type(time), time_range, type(time_range), line) == (
            record["time"],
            type(record["time"]),
            record["time_range"],
            type(record["time_range"]),
            canonical_bytes(record),
        )
    return [_shown(row[3]) for row in rows]


@settings(max_examples=examples(2), deadline=None)
@given(_lists, st.randoms(use_true_random=False))
def test_fold_rows_is_the_view(records: list[dict[str, Any]], rng: Any) -> None:
    rng.shuffle(records)
    assert _rows(list(records)) == _reference(list(records))


@settings(max_examples=examples(1), deadline=None)
@given(_lists, st.randoms(use_true_random=False), st.integers(-30, 150), st.sampled_from([-1e9, 0, 30, 70]))
def test_fold_rows_with_the_trim_is_the_view_of_the_trimmed_records(
    records: list[dict[str, Any]],
    rng: Any,
    before: int,
    earliest: int,
) -> None:
    rng.shuffle(records)
    edge, low = MERGE_MINUTE0 + before, MERGE_MINUTE0 + earliest
    trim = partial(trim_content, before=edge, earliest=low)
    expected = _reference(trim_before_quiet_points([dict(r) for r in records], edge, low))
    assert _rows(list(records), trim) == expected


def _join(name: str, time: float, time_range: float, received: float) -> dict[str, Any]:
    return {
        "command": "JOIN",
        "params": ["#chan"],
        "sender": "alice",
        "user": "alice",
        "host": "alice.tmi.twitch.tv",
        "tags": None,
        "receivers": {name: received},
        "time": time,
        "time_range": time_range,
    }


T0 = MERGE_MINUTE0


def test_a_content_of_records_each_alone_in_its_merge_group_skips_the_merge(monkeypatch: Any) -> None:
    from merge import view

    merged: list[list[dict[str, Any]]] = []
    real = view.merge

    def merge(records: Any) -> Any:
        merged.append(list(records))
        return real(records)

    monkeypatch.setattr(view, "merge", merge)
    # two receivers' estimates of one JOIN (folded), one (time, range) from two receivers (one merge
    # group, no receiver twice), a PART of its own
    records = [
        _join("a", T0, 55, T0 + 50),
        _join("b", T0 + 3, 55, T0 + 52),
        _join("a", T0 + 60, 55, T0 + 100),
        _join("b", T0 + 60, 55, T0 + 101),
        dict(_join("a", T0 + 1, 10, T0 + 9), command="PART"),
    ]
    rows = fold_rows(records)
    assert merged == []
    assert [_shown(row[3]) for row in rows] == [_shown(r) for r in fold_for_reading(records)]
    assert len(rows) == 3
    # a range 0.0 (the merge writes the int 0), a receiver's own two sightings of one (time, range),
    # and 1 beside 1.0 (two merge groups) do go through the merge, each with its content only
    odd = [_join("a", T0, 0.0, T0 + 1)]
    twice = [_join("a", T0 + 5, 2, T0 + 6), _join("a", T0 + 5, 2, T0 + 7)]
    twins = [dict(_join("b", T0 + 5, 2, T0 + 6), command="PART"), dict(_join("c", T0 + 5, 2.0, T0 + 6), command="PART")]
    for case in (odd, twice, twins):
        merged.clear()
        rows = fold_rows(case)
        assert merged == [case]
        assert [_shown(row[3]) for row in rows] == [_shown(r) for r in fold_for_reading(case)]


def test_a_record_the_merge_refuses_gets_the_merges_own_error() -> None:
    records = [_join("a", T0, 55, T0 + 50), _join("b", T0, 2**53 + 1, T0 + 50)]
    assert _rows(records) == _reference(records)
    assert _rows(records)[0] == "InputError"  # type: ignore[index]


def test_as_merged_is_what_the_merge_makes_of_a_group() -> None:
    group = [_join("b", T0, 55, T0 + 50), _join("a", T0, 55, T0 + 52)]
    assert taken_as_they_are(group)
    (expected,) = merge_records(group)
    got = as_merged(group)
    assert (got, list(got), list(got["receivers"])) == (expected, list(expected), list(expected["receivers"]))


def test_taken_as_they_are_refuses_what_the_merge_changes_or_refuses() -> None:
    assert taken_as_they_are([_join("a", T0, 55, T0 + 50), _join("b", 5, 0, 7.5)])
    for time, time_range, received in [
        (-0.0, 1, T0),
        (0.0, 1, T0),
        (T0, 0.0, T0),
        (T0, 1, -0.0),
        (2**53 + 1, 1, T0),
        (T0, 2**60, T0),
        (T0, 1, float("inf")),
        (T0, 1, float("nan")),
        (T0, True, T0),
        (T0, 1, "x"),
    ]:
        assert not taken_as_they_are([_join("a", T0, 55, T0 + 50), _join("b", time, time_range, received)])
    assert not taken_as_they_are([{**_join("a", T0, 1, T0), "receivers": {}}])
    assert not taken_as_they_are([{**_join("a", T0, 1, T0), "receivers": {1: T0}}])
    assert not taken_as_they_are([{**_join("a", T0, 1, T0), "receivers": [("a", T0)]}])
