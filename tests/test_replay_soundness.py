"""Soundness in simulation: the reconstructed ranges contain the true send times, and nothing is lost.

The world is drawn by `tests.simulation.scenarios` (a server stream with true send times, recorders
with clock offsets, FIFO delivery with 0-3 s latency, JOIN/PART up to 30 s late, drops and
overlapping reconnects). The replayed archive must then:
- give every record a range [time, time + time_range] that holds its true send time, and
- hold every kept line that a connection received after its channel was initialised.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from profiles import examples

from formats.canonical import parse_batch
from tests.pipeline import replay
from tests.simulation import EPSILON, event_index, record_scenario, scenarios

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core


def read_archive(root: Path) -> list[dict[str, Any]]:
    records = []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            records.extend(parse_batch((Path(folder) / name).read_bytes()))
    return records


@pytest.mark.parametrize("merge", [False, True], ids=["per-connection", "merged"])
@settings(max_examples=examples(0.2))
@given(scn=scenarios())
def test_ranges_hold_true_send_times_and_nothing_is_lost(
    tmp_path_factory: Any, merge: bool, scn: dict[str, Any]
) -> None:
    tmp = tmp_path_factory.mktemp("sim")
    delivered = record_scenario(scn, tmp / "raw")
    replay([str(tmp / "raw")], str(tmp / "archive"), merge=merge)
    archived = set()
    for record in read_archive(tmp / "archive"):
        i = event_index(record)
        true_time = scn["sent"][i] / 1000
        assert record["time"] - EPSILON <= true_time <= record["time"] + record["time_range"] + EPSILON, (
            record,
            true_time,
        )
        archived.update((receiver, i) for receiver in record["receivers"])
    assert archived == delivered
