"""Replay and merge commute: replaying every recording at once gives the same tree as replaying each
recorder apart and merging the archives, in any order and grouping.

Recordings come from the replay soundness simulation (recorders with reconnects, clock offsets,
late JOIN/PARTs), so the archives hold what real ones do: ids seen by several connections, ranged
id-less records, several files per minute.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profiles import examples, suppressing

from merge.combine import merge_into
from merge.directory import merge_tree
from tests.pipeline import replay
from tests.simulation import record_scenario, scenarios

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core


def tree(root: Path) -> dict[str, bytes]:
    """Every batch file under root (temporary files and the quarantine aside)."""
    out = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if name.endswith(".json") and "quarantine" not in path.relative_to(root).parts:
                out[str(path.relative_to(root))] = path.read_bytes()
    return out


def per_recorder(scn: dict[str, Any], base: Path) -> list[Path]:
    """Each recorder's raw recording in its own folder."""
    folders = []
    for i, rec in enumerate(scn["recorders"]):
        folder = base / f"raw{i}"
        record_scenario({**scn, "recorders": [rec]}, folder)
        folders.append(folder)
    return folders


@settings(
    max_examples=examples(0.1), deadline=None, suppress_health_check=suppressing(HealthCheck.function_scoped_fixture)
)
@given(scn=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_replay_of_everything_equals_merge_of_per_recorder_replays(
    tmp_path_factory: Any, scn: dict[str, Any], seed: int
) -> None:
    tmp = tmp_path_factory.mktemp("replays")
    raws = per_recorder(scn, tmp)
    replay([str(r) for r in raws], str(tmp / "all"))
    expected = tree(tmp / "all")

    parts = []
    for i, raw in enumerate(raws):
        out = tmp / f"part{i}"
        replay([str(raw)], str(out))
        if not out.exists():
            out.mkdir()
        parts.append(out)
    rng = random.Random(seed)

    # Any order, all at once.
    shuffled = parts[:]
    rng.shuffle(shuffled)
    merge_into([str(p) for p in shuffled], str(tmp / "at_once"))
    assert tree(tmp / "at_once") == expected

    # Any grouping: fold the parts in one at a time, merging in between.
    acc = tmp / "folded"
    acc.mkdir()
    rng.shuffle(shuffled)
    for part in shuffled:
        merge_into([str(part)], str(acc))
    merge_tree(str(acc))
    assert tree(acc) == expected
