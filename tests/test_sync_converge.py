"""Three hosts on loopback, each recording the same simulated server with gaps in different places,
each serving its archive and syncing from the other two on an interval (the real command, in its
own process, stopped with Ctrl-C): they converge on byte-identical archives, equal to replaying every recording at
once, holding every message any of them saw. Then a sync killed with SIGKILL at random moments
leaves no partial file, and the next one finishes the job.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profiles import examples, suppressing

from formats.canonical import content_hash
from formats.store import iter_batch_files
from serve.app import ChatApp
from serve.server import Running
from sync.shell import sync_once
from tests.archives import read_batch_file
from tests.pipeline import replay
from tests.simulation import BASE_MS, KINDS, event_index, record_scenario, scenarios

pytestmark = pytest.mark.integration

EXE = str(Path(sys.executable).parent / "chat-archiver")


def world(seed: int, events: int = 150) -> dict[str, Any]:
    """A server stream over about 12 minutes, and three recorders each missing a different part."""
    rng = random.Random(seed)
    sent, t = [], BASE_MS + rng.randrange(60_000)
    for _ in range(events):
        t += rng.randrange(0, 9_000)
        sent.append(t)
    kinds = [rng.choice(KINDS) for _ in range(events)]
    emitted = [s + (rng.randrange(30_000) if k in ("JOIN", "PART") else 0) for s, k in zip(sent, kinds, strict=True)]
    end = max(emitted) + 20_000
    third = (end - BASE_MS) // 3
    recorders = []
    for r in range(3):
        gap_start = BASE_MS + r * third + rng.randrange(third // 2)  # each loses a different stretch
        gap_end = gap_start + rng.randrange(60_000, third)
        windows = [(BASE_MS - 5_000, gap_start), (gap_end, end + 10_000)]
        recorders.append(
            {
                "name": f"host{r}",
                "offset": rng.randrange(-1_000, 1_000),
                "windows": windows,
                "latency": [rng.randrange(3_000) for _ in range(events)],
            }
        )
    return {"sent": sent, "kinds": kinds, "emitted": emitted, "recorders": recorders}


def tree(root: Path) -> dict[str, bytes]:
    out = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = Path(folder) / name
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def stable_tree(root: Path) -> dict[str, bytes] | None:
    """The tree, or None while a merge is deleting files under the walk."""
    try:
        return tree(root)
    except FileNotFoundError:
        return None


def wait_until(predicate: Any, timeout: float, interval: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def build_hosts(tmp: Path, seed: int) -> tuple[list[Path], dict[str, bytes], set[int]]:
    scn = world(seed)
    roots, everyone = [], []
    seen: set[int] = set()
    for i, rec in enumerate(scn["recorders"]):
        raw = tmp / f"raw{i}"
        delivered = record_scenario({**scn, "recorders": [rec]}, raw)
        seen |= {event for _receiver, event in delivered}
        root = tmp / f"host{i}"
        replay([str(raw)], str(root))
        roots.append(root)
        everyone.append(str(raw))
    replay(everyone, str(tmp / "all"))
    return roots, tree(tmp / "all"), seen


def events_in(root: Path) -> set[int]:
    return {event_index(r) for f in iter_batch_files(str(root), "sim") for r in read_batch_file(f.path)}


@pytest.mark.parametrize("seed", [1, 2])
def test_three_hosts_syncing_from_each_other_converge(tmp_path: Path, seed: int) -> None:
    roots, expected, seen = build_hosts(tmp_path, seed)
    assert len({frozenset(tree(r)) for r in roots}) == 3  # the gaps are in different places
    assert all(tree(r) != expected for r in roots)
    with (
        Running(ChatApp(str(roots[0]))) as a,
        Running(ChatApp(str(roots[1]))) as b,
        Running(ChatApp(str(roots[2]))) as c,
    ):
        urls = [a.url, b.url, c.url]
        procs = [
            subprocess.Popen(
                [
                    EXE,
                    "sync",
                    str(root),
                    *[a for j, u in enumerate(urls) if j != i for a in ("--from", u)],
                    "--since",
                    "2023-01-01",
                    "--interval",
                    "0.3",
                    "--json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, root in enumerate(roots)
        ]
        try:
            converged = wait_until(lambda: all(stable_tree(r) == expected for r in roots), timeout=120, interval=0.5)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGINT)  # Ctrl-C: the way to stop a sync that keeps running
            results = [proc.communicate(timeout=60) for proc in procs]
        for proc, (stdout, stderr) in zip(procs, results, strict=True):
            assert proc.returncode == 130 and "interrupted: sync stopped" in stderr, stderr
            assert "Traceback" not in stderr and "refused" not in stderr, stderr
            passes = [json.loads(line) for line in stdout.splitlines()]
            assert passes and all(p["refused"] == [] for p in passes)
        assert converged
        # Ctrl-C may have caught a sync in its merge, leaving a minute with several files (as a
        # killed merge does), which a peer may then have fetched: rounds of the same syncs until
        # nobody fetches anything finish the job
        for _round in range(4):
            fetched = 0
            for i, root in enumerate(roots):
                stats = sync_once(str(root), [u for j, u in enumerate(urls) if j != i], start=0, end=time.time())
                assert stats.refused == [] and stats.merge_problems == []
                fetched += stats.files_fetched
            if fetched == 0:
                break
    trees = [tree(r) for r in roots]
    assert trees[0] == trees[1] == trees[2]
    assert trees[0] == expected  # the same bytes as replaying every recording at once
    assert seen <= events_in(roots[0])  # every message any of them saw


@pytest.mark.slow
def test_a_sync_killed_at_any_moment_leaves_no_partial_file_and_the_next_finishes(tmp_path: Path) -> None:
    roots, _expected, _seen = build_hosts(tmp_path, 3)
    source = roots[0]
    want = tree(source)
    rng = random.Random(7)
    dest = tmp_path / "dest"
    with Running(ChatApp(str(source))) as server:
        for _attempt in range(6):
            proc = subprocess.Popen(
                [EXE, "sync", str(dest), "--from", server.url, "--since", "2023-01-01", "--jobs", "2"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.05, 0.8))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            for rel, data in tree(dest).items():
                assert rel.endswith(".json") and rel.rsplit("/", 1)[1][6:-5] == content_hash(data), rel
        done = subprocess.run(
            [EXE, "sync", str(dest), "--from", server.url, "--since", "2023-01-01", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert tree(dest) == want


@settings(
    max_examples=examples(0.1),
    deadline=None,
    suppress_health_check=suppressing(HealthCheck.function_scoped_fixture),
)
@given(scn=scenarios(), order=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=8))
def test_law_any_order_of_syncs_then_a_round_converges_on_the_merge_of_everything(
    tmp_path_factory: pytest.TempPathFactory, scn: dict[str, Any], order: list[tuple[int, int]]
) -> None:
    """Hosts that sync pairwise in any order, then each once from all the others (twice over: what
    one round spread, the next brings home), hold the replay of every recording at once."""
    tmp = tmp_path_factory.mktemp("law")
    count = len(scn["recorders"])
    raws, roots = [], []
    for i, rec in enumerate(scn["recorders"]):
        raws.append(tmp / f"raw{i}")
        record_scenario({**scn, "recorders": [rec]}, raws[-1])
        roots.append(tmp / f"host{i}")
        replay([str(raws[-1])], str(roots[-1]))
        roots[-1].mkdir(exist_ok=True)
    replay([str(r) for r in raws], str(tmp / "all"))
    servers = [Running(ChatApp(str(root))) for root in roots]
    for s in servers:
        s.__enter__()
    try:

        def sync(into: int, peers: list[int]) -> None:
            if not peers:
                return
            stats = sync_once(str(roots[into]), [servers[p].url for p in peers], start=0, end=time.time())
            assert stats.refused == [] and stats.merge_problems == [], stats

        for into, source in order:
            if into % count != source % count:
                sync(into % count, [source % count])
        for _round in range(2):
            for i in range(count):
                sync(i, [j for j in range(count) if j != i])
    finally:
        for s in servers:
            s.__exit__()
    expected = tree(tmp / "all")
    for root in roots:
        assert tree(root) == expected, root
