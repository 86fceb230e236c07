"""Convergence, statefully: replicas that record, copy each other's files and merge, against a model.

Two machines: one over generated records (with a model of what each replica was given), one over
real recordings replayed by `replay` (against replaying everything at once).

The model of a replica is just the list of records it was ever given; the real replica is a folder of
batch files. Invariants: nothing is ever lost (the files of a replica merge to the merge of its
model), a merge leaves exactly what the one-minute model says, and once every replica has every
file and has merged, all replicas hold identical trees equal to merging everything at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from profiles import examples

from formats.canonical import batch_time_of, parse_batch
from formats.store import iter_batch_files, write_batch_bytes, write_bytes_atomic
from merge.core import merge, merge_records
from merge.directory import merge_tree
from tests.pipeline import replay
from tests.simulation import record_scenario, scenarios
from tests.strategies import merge_observations
from tests.test_merge_directory import CHANNEL, canonical_tree, expected_tree, records_of, tree

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

REPLICAS = 3


class Replicas(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.base = tempfile.mkdtemp(prefix="merge_replicas_")
        self.roots = [os.path.join(self.base, f"r{i}") for i in range(REPLICAS)]
        for root in self.roots:
            os.makedirs(root)
        self.model: list[list[dict[str, Any]]] = [[] for _ in self.roots]

    def teardown(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    @rule(replica=st.integers(0, REPLICAS - 1), observations=merge_observations(cross_minute=False))
    def record(self, replica: int, observations: list[dict[str, Any]]) -> None:
        """A recorder's replay lands here: one canonical file per minute it covered."""
        by_batch: dict[int, list[dict[str, Any]]] = {}
        for r in observations:
            by_batch.setdefault(batch_time_of(r["time"]), []).append(r)
        for batch_time, records in by_batch.items():
            write_batch_bytes(self.roots[replica], CHANNEL, batch_time, merge(records).to_bytes())
        self.model[replica].extend(observations)

    @rule(src=st.integers(0, REPLICAS - 1), dst=st.integers(0, REPLICAS - 1), pick=st.integers(0, 10**6))
    def copy_one_file(self, src: int, dst: int, pick: int) -> None:
        files = sorted(iter_batch_files(self.roots[src], CHANNEL))
        if not files or src == dst:
            return
        chosen = files[pick % len(files)]
        data = Path(chosen.path).read_bytes()
        target = os.path.join(self.roots[dst], os.path.relpath(chosen.path, self.roots[src]))
        write_bytes_atomic(target, data)
        self.model[dst].extend(parse_batch(data))

    @rule(replica=st.integers(0, REPLICAS - 1))
    def merge_replica(self, replica: int) -> None:
        root = self.roots[replica]
        before = tree(root)
        merge_tree(root)
        after = tree(root)
        assert after == expected_tree(before)

    @precondition(lambda self: any(self.model))
    @rule()
    def exchange_everything_and_merge(self) -> None:
        """Every replica gets every file of every other, then all merge: they must converge."""
        everything = {path: data for root in self.roots for path, data in tree(root).items()}
        for i, root in enumerate(self.roots):
            for path, data in everything.items():
                target = os.path.join(root, path)
                if not os.path.exists(target):
                    write_bytes_atomic(target, data)
                    self.model[i].extend(parse_batch(data))
            merge_tree(root)
        trees = [tree(root) for root in self.roots]
        assert all(t == trees[0] for t in trees), "replicas did not converge"
        assert trees[0] == canonical_tree(merge_records(*self.model))

    @invariant()
    def nothing_is_lost(self) -> None:
        for root, model in zip(self.roots, self.model, strict=True):
            left, right = merge(records_of(tree(root))).to_bytes(), merge(model).to_bytes()
            assert left == right, (left, right)


Replicas.TestCase.settings = settings(max_examples=examples(0.2), stateful_step_count=12, deadline=None)
test_replicas_converge = Replicas.TestCase


# --- the same with real recordings: replicas start from their own recorder's replay --------------


class RecordingReplicas(RuleBasedStateMachine):
    """Each replica starts from one recorder's replayed archive (one simulated scenario, recorders
    with reconnects and late JOIN/PARTs). Rules copy files, merge, and replay another recorder's
    recording into a replica. Once every replica has every file and merged, all hold identical
    trees, equal to replaying every recording at once (`replay` merges at the end)."""

    def __init__(self) -> None:
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="merge_recordings_"))
        self.raws: list[Path] = []
        self.roots: list[str] = []

    def teardown(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    @initialize(scn=scenarios())
    def record_and_replay(self, scn: dict[str, Any]) -> None:
        for i, rec in enumerate(scn["recorders"]):
            raw = self.base / f"raw{i}"
            record_scenario({**scn, "recorders": [rec]}, raw)
            self.raws.append(raw)
            root = self.base / f"replica{i}"
            root.mkdir()
            replay([str(raw)], str(root), merge=False)  # as upstream's archiver left it: unmerged
            self.roots.append(str(root))

    def _tree(self, i: int) -> dict[str, bytes]:
        return all_files(Path(self.roots[i]))

    @rule(src=st.integers(0, 2), dst=st.integers(0, 2), pick=st.integers(0, 10**6))
    def copy_one_file(self, src: int, dst: int, pick: int) -> None:
        n = len(self.roots)
        src, dst = src % n, dst % n
        files = sorted(self._tree(src))
        if not files or src == dst:
            return
        chosen = files[pick % len(files)]
        write_bytes_atomic(os.path.join(self.roots[dst], chosen), self._tree(src)[chosen])

    @rule(replica=st.integers(0, 2))
    def merge_replica(self, replica: int) -> None:
        merge_tree(self.roots[replica % len(self.roots)])

    @rule(raw=st.integers(0, 2), replica=st.integers(0, 2))
    def replay_a_recording_into(self, raw: int, replica: int) -> None:
        replay([str(self.raws[raw % len(self.raws)])], self.roots[replica % len(self.roots)], merge=False)

    @rule()
    def exchange_everything_and_merge(self) -> None:
        everything: dict[str, bytes] = {}
        for i in range(len(self.roots)):
            everything.update(self._tree(i))
        for root in self.roots:
            for rel, data in everything.items():
                if not os.path.exists(os.path.join(root, rel)):
                    write_bytes_atomic(os.path.join(root, rel), data)
            merge_tree(root)
        trees = [self._tree(i) for i in range(len(self.roots))]
        assert all(t == trees[0] for t in trees), "replicas did not converge"
        at_once = self.base / f"at_once{len(list(self.base.iterdir()))}"
        replay([str(r) for r in self.raws], str(at_once))
        assert trees[0] == all_files(at_once)


def all_files(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every batch file under root, all channels."""
    out = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            if name.endswith(".json"):
                path = Path(folder) / name
                out[str(path.relative_to(root))] = path.read_bytes()
    return out


RecordingReplicas.TestCase.settings = settings(max_examples=examples(0.05), stateful_step_count=8, deadline=None)
test_recording_replicas_converge = RecordingReplicas.TestCase
