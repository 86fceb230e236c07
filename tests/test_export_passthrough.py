"""Export keeps out of the merge the records the merge would give back unchanged
(export.stream.passing_through): the view with them kept out is the view itself, to the byte and in
the same order, or the same error. Held over random lists of records: a realistic merge world
(duplicate deliveries, id conflicts, 0 vs 0.0 ranges, ranged ids, folds), merged archives, any
records of the schema (odd numbers: -0.0, huge ints, ranged ids), and all of them mixed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from export.stream import canonical_order, passing_through
from formats.canonical import canonical_json
from formats.errors import InputError
from merge.core import merge_records
from merge.view import fold_for_reading
from tests.strategies import archive_records, merge_observations, records_in_minute

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core


def _outcome(view: Any, records: list[dict[str, Any]]) -> object:
    try:
        return [canonical_json(r) for r in view(list(records))]
    except InputError as e:
        return ("InputError", str(e))


_lists = st.one_of(
    merge_observations(),
    merge_observations().map(merge_records),
    records_in_minute(),
    st.lists(archive_records(), max_size=6),
    st.tuples(merge_observations(), records_in_minute(), st.lists(archive_records(), max_size=3)).map(
        lambda parts: [r for part in parts for r in part]
    ),
)


@settings(max_examples=examples(1.5), deadline=None)
@given(_lists, st.randoms(use_true_random=False))
def test_the_view_with_lone_records_kept_out_is_the_view(records: list[dict[str, Any]], rng: Any) -> None:
    rng.shuffle(records)
    assert _outcome(passing_through(fold_for_reading), records) == _outcome(fold_for_reading, records)


@settings(max_examples=examples(0.7), deadline=None)
@given(st.lists(archive_records(), max_size=8))
def test_canonical_order_is_the_merge_order(records: list[dict[str, Any]]) -> None:
    expected = sorted(records, key=lambda r: (r["time"], r["time_range"], canonical_json(r)))
    got = canonical_order(list(records))
    assert [canonical_json(r) for r in got] == [canonical_json(r) for r in expected]


def test_a_lone_exact_message_skips_the_merge_and_the_rest_does_not() -> None:
    calls: list[list[dict[str, Any]]] = []

    def view(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        calls.append(list(records))
        return fold_for_reading(records)

    def record(mid: str | None, time: float, time_range: float, received: float) -> dict[str, Any]:
        return {
            "command": "PRIVMSG",
            "params": ["#c", "hi"],
            "sender": "a",
            "user": "a",
            "host": None,
            "tags": {"id": mid} if mid else None,
            "receivers": {"h.S.0": received},
            "time": time,
            "time_range": time_range,
        }

    lone = record("m1", 1700000040.5, 0, 1700000040.7)
    twice = [record("m2", 1700000041.5, 0, 1700000041.7), record("m2", 1700000041.5, 0, 1700000041.9)]
    ranged = record(None, 1700000042.0, 10, 1700000052.1)
    as_float = record("m3", 1700000043.5, 0.0, 1700000043.6)  # the merge writes its range as 0
    shown = passing_through(view)([lone, *twice, ranged, as_float])
    assert calls == [[*twice, ranged, as_float]]
    assert shown[0] is lone
    assert [canonical_json(r) for r in shown] == [
        canonical_json(r) for r in fold_for_reading([lone, *twice, ranged, as_float])
    ]


def test_a_file_whose_lines_are_not_one_record_each_is_read_line_by_line() -> None:
    from export.stream import decode_batch
    from tests.test_verify_core import _split_inside_a_string

    data = _split_inside_a_string()
    try:
        decode_batch(data, "f.json")
    except InputError as e:
        assert (e.source, e.line) == ("f.json", 1)
    else:
        raise AssertionError("read three records from lines that hold none")
