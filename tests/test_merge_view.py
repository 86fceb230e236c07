"""The display fold (merge.view): deterministic, loses no receiver, folds only what a reader would."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from formats.identity import message_id
from merge.core import merge_records
from merge.view import fold_for_reading
from tests.strategies import MERGE_MINUTE0, merge_archives

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

T0 = MERGE_MINUTE0 + 10


def join(receiver: str, start: float, width: float, received: float = T0 + 60) -> dict[str, Any]:
    return {
        "command": "JOIN",
        "params": ["#chan"],
        "sender": "alice",
        "user": "alice",
        "host": "alice.tmi.twitch.tv",
        "tags": None,
        "receivers": {receiver: received},
        "time": start,
        "time_range": width,
    }


@given(merge_archives(), st.randoms(use_true_random=False))
def test_view_depends_only_on_the_observations(archives: list[list[dict[str, Any]]], random: Any) -> None:
    everything = [r for a in archives for r in a]
    shuffled = everything[:]
    random.shuffle(shuffled)
    left = fold_for_reading(everything)
    right = fold_for_reading(merge_records(shuffled[: len(shuffled) // 2]) + shuffled[len(shuffled) // 2 :])
    assert left == right, (left, right)


@given(merge_archives())
def test_view_keeps_every_receiver_and_never_folds_one_receiver_twice(archives: list[list[dict[str, Any]]]) -> None:
    merged = merge_records(*archives)
    view = fold_for_reading(merged)
    assert len(view) <= len(merged)
    seen_in = {(r["command"], name) for r in merged for name in r["receivers"]}
    seen_out = {(r["command"], name) for r in view for name in r["receivers"]}
    assert seen_in == seen_out
    assert sum(len(r["receivers"]) for r in view) == sum(len(r["receivers"]) for r in merged)
    for r in view:
        if message_id(r) is None and r["time_range"] != 0:
            assert r["time_range"] >= 0


def test_overlapping_joins_of_three_receivers_show_as_one() -> None:
    view = fold_for_reading([join("a", T0, 55), join("b", T0 + 3, 55), join("c", T0 + 1, 55)])
    (record,) = view
    assert record["receivers"].keys() == {"a", "b", "c"}
    assert (record["time"], record["time_range"]) == (T0 + 3, 52)


def test_chained_ranges_fold_deterministically() -> None:
    chained = [join("a", T0, 0.5), join("b", T0, 1), join("c", T0 + 1, 0.5)]
    assert fold_for_reading(chained) == fold_for_reading(chained[::-1])
    assert len(fold_for_reading(chained)) == 2  # a and b meet on [0, 0.5]; c starts after that ends


def test_one_receiver_two_joins_stay_two() -> None:
    view = fold_for_reading([join("a", T0, 55, T0 + 60), join("a", T0 + 2, 55, T0 + 62)])
    assert len(view) == 2


def test_disjoint_ranges_stay_apart() -> None:
    assert len(fold_for_reading([join("a", T0, 1), join("b", T0 + 5, 1)])) == 2
