"""Compatibility: where upstream's pairing rule is well defined (ids, unambiguous ranges), our merge
plus the reading fold shows the same messages, receivers and numerically equal ranges."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from merge.core import merge_records
from merge.view import fold_for_reading
from tests.strategies import MERGE_MINUTE0, MERGE_RECEIVERS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_merge import naive_merge  # the bench holds the upstream reference

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core


@st.composite
def well_behaved(draw: Any) -> list[list[dict[str, Any]]]:
    """One archive per receiver: PRIVMSGs with distinct ids and exact times, and JOINs whose ranges
    (one per receiver) all contain the true join time, each user joining once."""
    per_receiver: dict[str, list[dict[str, Any]]] = {name: [] for name in MERGE_RECEIVERS}
    for i in range(draw(st.integers(0, 6))):
        t = (MERGE_MINUTE0 * 1000 + draw(st.integers(0, 119_999))) / 1000
        for name in draw(st.sets(st.sampled_from(MERGE_RECEIVERS), min_size=1)):
            per_receiver[name].append(
                {
                    "command": "PRIVMSG",
                    "params": ["#chan", f"m{i}"],
                    "sender": "u",
                    "user": "u",
                    "host": "u.tmi",
                    "tags": {"id": f"id{i}"},
                    "receivers": {name: t + 0.3},
                    "time": t,
                    "time_range": 0,
                }
            )
    for i in range(draw(st.integers(0, 4))):
        true_time = MERGE_MINUTE0 + draw(st.integers(0, 100))
        for name in draw(st.sets(st.sampled_from(MERGE_RECEIVERS), min_size=1)):
            before, after = draw(st.integers(0, 50)), draw(st.integers(0, 10))
            per_receiver[name].append(
                {
                    "command": "JOIN",
                    "params": ["#chan"],
                    "sender": f"j{i}",
                    "user": f"j{i}",
                    "host": "j.tmi",
                    "tags": None,
                    "receivers": {name: true_time + after + 0.5},
                    "time": true_time - before,
                    "time_range": before + after,
                }
            )
    return list(per_receiver.values())


def shown(records: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (
            r["command"],
            r["sender"],
            tuple(r["params"]),
            tuple(sorted(r["receivers"].items())),
            float(r["time"]),
            float(r["time"] + r["time_range"]),
        )
        for r in records
    }


@given(well_behaved())
def test_same_messages_receivers_and_ranges_as_upstream(archives: list[list[dict[str, Any]]]) -> None:
    upstream: list[dict[str, Any]] = []
    for archive in archives:
        upstream = naive_merge(upstream, archive)
    ours = fold_for_reading(merge_records(*archives))
    assert shown(ours) == shown(upstream)
