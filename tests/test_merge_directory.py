"""The directory merge: one file per minute, equal to merging everything; safe with damage,
concurrency and kill -9; `merge_into` and `merge_files`."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profiles import examples, suppressing

from formats.canonical import batch_relpath, batch_time_of, canonical_json, content_hash, format_batch, parse_batch
from formats.errors import UsageError
from formats.store import iter_batch_files, write_batch_bytes
from merge import directory
from merge.combine import merge_files, merge_into
from merge.core import items_to_bytes, merge
from merge.directory import QUARANTINE, merge_tree
from tests.strategies import MERGE_MINUTE0, MERGE_RECEIVERS, archive_records, merge_archives, merge_observations

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

REPO = Path(__file__).resolve().parent.parent
CHANNEL = "chan"


def write_archive(root: str, records: list[dict[str, Any]], channel: str = CHANNEL) -> list[str]:
    """Write records as one batch file per minute, as one recorder's replay would."""
    by_batch: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_batch.setdefault(batch_time_of(record["time"]), []).append(record)
    return [write_batch_bytes(root, channel, t, format_batch(rs))[0] for t, rs in sorted(by_batch.items())]


def tree(root: str, channel: str = CHANNEL) -> dict[str, bytes]:
    """Relative path -> bytes of every batch file of a channel (what readers see)."""
    return {os.path.relpath(bf.path, root): Path(bf.path).read_bytes() for bf in iter_batch_files(root, channel)}


def records_of(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [r for data in files.values() for r in parse_batch(data)]


def expected_tree(before: dict[str, bytes]) -> dict[str, bytes]:
    """The model: a minute with several files becomes the merge of their records; others stay."""
    by_minute: dict[str, list[str]] = {}
    for path in before:
        by_minute.setdefault(path[: -len("-HASH.json") - 39], []).append(path)  # hashes hold "-" too
    out: dict[str, bytes] = {}
    for prefix, paths in by_minute.items():
        if len(paths) == 1:
            out[paths[0]] = before[paths[0]]
            continue
        data = merge(*(parse_batch(before[p]) for p in paths)).to_bytes()
        out[f"{prefix}-{content_hash(data)}.json"] = data
    return out


def canonical_tree(records: list[dict[str, Any]]) -> dict[str, bytes]:
    """One file per minute holding the merge of everything: where replicas must converge."""
    out: dict[str, bytes] = {}
    for batch_time, items in merge(records).by_batch().items():
        data = items_to_bytes(items)
        hour, name = batch_relpath(batch_time, content_hash(data))
        out[os.path.join(CHANNEL, "chat", hour, name)] = data
    return out


settings_dir = settings(
    max_examples=examples(0.1), deadline=None, suppress_health_check=suppressing(HealthCheck.function_scoped_fixture)
)


@settings_dir
@given(archives=merge_archives(cross_minute=False))
def test_merge_tree_leaves_one_file_per_minute_equal_to_merging_its_files(
    tmp_path: Path, archives: list[list[dict[str, Any]]]
) -> None:
    root = tempfile.mkdtemp(dir=tmp_path)
    for archive in archives:
        write_archive(root, archive)
    before = tree(root)
    stats = merge_tree(root)
    after = tree(root)
    assert after == expected_tree(before)
    assert merge(records_of(after)).to_bytes() == merge(*archives).to_bytes()
    assert not stats.problems
    again = merge_tree(root)
    assert tree(root) == after and again.files_written == again.files_deleted == 0
    shutil.rmtree(root)


def _privmsg(receiver: str, t: float, text: str = "hi", mid: str = "m1") -> dict[str, Any]:
    return {
        "command": "PRIVMSG",
        "params": ["#chan", text],
        "sender": "bob",
        "user": "bob",
        "host": "b",
        "tags": {"id": mid},
        "receivers": {receiver: t + 0.5},
        "time": t,
        "time_range": 0,
    }


def _two_recorders(root: str, t: float = MERGE_MINUTE0 + 5.0) -> tuple[str, str]:
    a = write_archive(root, [_privmsg("host1.a.0", t), _privmsg("host1.a.0", t + 1, "x", "m2")])
    b = write_archive(root, [_privmsg("host2.b.0", t), _privmsg("host2.b.0", t + 2, "y", "m3")])
    return a[0], b[0]


def _corrupt(root: str, kind: str) -> str:
    """Plant one corrupt file in the same minute as two good ones; return its path."""
    good, _ = _two_recorders(root)
    folder = os.path.dirname(good)
    if kind == "hash":
        data = Path(good).read_bytes().replace(b"hi", b"ho")
        path = os.path.join(folder, os.path.basename(good)[:6] + content_hash(b"other") + ".json")
    else:
        line = b"{not json" if kind == "json" else b'{"command":"PRIVMSG"}'
        data = Path(good).read_bytes() + line + b"\n"
        path = os.path.join(folder, os.path.basename(good)[:6] + content_hash(data) + ".json")
    Path(path).write_bytes(data)
    return path


@pytest.mark.parametrize(("kind", "line"), [("json", 3), ("schema", 3), ("hash", None)])
def test_corrupt_input_is_reported_quarantined_and_the_rest_merged(tmp_path: Path, kind: str, line: int | None) -> None:
    root = str(tmp_path)
    bad = _corrupt(root, kind)
    data = Path(bad).read_bytes()
    seen: list[directory.MergeProblem] = []
    stats = merge_tree(root, on_problem=seen.append)
    (problem,) = stats.problems
    assert seen == [problem]
    assert problem.path == bad and problem.line == line
    assert problem.quarantined_to is not None
    assert problem.quarantined_to.startswith(os.path.join(root, QUARANTINE, CHANNEL, "chat"))
    assert Path(problem.quarantined_to).read_bytes() == data  # moved, never altered or deleted
    (merged,) = tree(root).values()
    assert len(parse_batch(merged)) == 3


def test_corrupt_input_left_in_place_without_quarantine(tmp_path: Path) -> None:
    root = str(tmp_path)
    bad = _corrupt(root, "json")
    data = Path(bad).read_bytes()
    stats = merge_tree(root, quarantine=False)
    assert [p.path for p in stats.problems] == [bad] and stats.problems[0].quarantined_to is None
    assert Path(bad).read_bytes() == data
    assert len(tree(root)) == 2  # the corrupt file and the merged one


def test_a_file_that_appears_during_a_merge_is_not_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(tmp_path)
    a, _ = _two_recorders(root)
    late = _privmsg("host3.c.0", MERGE_MINUTE0 + 30.0, "late", "m9")
    real_plan = directory._Channel.plan
    planted: list[str] = []

    def plan_and_plant(*args: Any) -> Any:
        if not planted:  # a recorder writes a new file while the merge is between reading and deleting
            planted.append(write_archive(root, [late])[0])
        return real_plan(*args)

    monkeypatch.setattr(directory._Channel, "plan", staticmethod(plan_and_plant))
    merge_tree(root)
    monkeypatch.undo()
    assert Path(planted[0]).exists() or any(b"late" in data for data in tree(root).values())
    merge_tree(root)
    (data,) = tree(root).values()
    assert b"late" in data and len(parse_batch(data)) == 4
    del a


def test_a_clean_neighbour_minute_is_left_alone(tmp_path: Path) -> None:
    root = str(tmp_path)
    _two_recorders(root)
    # A single, non-canonical file next door (0.0 range, one id twice): not this merge's business.
    raw = [_privmsg("host1.a.0", MERGE_MINUTE0 + 65.0), _privmsg("host2.b.0", MERGE_MINUTE0 + 65.0)]
    raw[0]["time_range"] = 0.0
    (neighbour,) = write_archive(root, [{**r, "tags": {"id": "n1"}} for r in raw])
    before = Path(neighbour).read_bytes()
    merge_tree(root)
    assert Path(neighbour).read_bytes() == before


def test_an_id_split_across_a_minute_boundary_is_merged_once(tmp_path: Path) -> None:
    root = str(tmp_path)
    edge = MERGE_MINUTE0 + 60
    ranged = {**_privmsg("host1.a.0", edge - 4), "time_range": 10, "tags": {"msgid": "x"}}
    later = {**_privmsg("host2.b.0", edge + 1), "time_range": 10, "tags": {"msgid": "x"}}
    for r in (ranged, later):
        write_archive(root, [r])
        # Another file in each minute, so both minutes are merged.
        write_archive(root, [{**_privmsg("host3.c.0", r["time"] + 0.25, "z", f"z{r['time']}")}])
    merge_tree(root)
    records = records_of(tree(root))
    (folded,) = [r for r in records if r["tags"] == {"msgid": "x"}]
    assert folded["receivers"].keys() == {"host1.a.0", "host2.b.0"}
    assert (folded["time"], folded["time_range"]) == (edge + 1, 5)
    assert len(records) == 3


def test_merge_tree_refuses_a_missing_root_and_unsafe_channels(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        merge_tree(str(tmp_path / "nope"))
    with pytest.raises(UsageError):
        merge_tree(str(tmp_path), channels=["../etc"])


# --- several archives ---------------------------------------------------------------------------


def test_merge_into_equals_merging_everything_and_a_second_run_writes_nothing(tmp_path: Path) -> None:
    src1, src2, dest = (str(tmp_path / n) for n in ("host1", "host2", "dest"))
    t = MERGE_MINUTE0 + 5.0
    write_archive(src1, [_privmsg("host1.a.0", t), _privmsg("host1.a.0", t + 70, "b", "m5")])
    write_archive(src2, [_privmsg("host2.b.0", t), _privmsg("host2.b.0", t + 130, "c", "m6")])
    src_before = (tree(src1), tree(src2))
    stats = merge_into([src1, src2], dest)
    after = tree(dest)
    assert len(after) == 3 and stats.files_copied == 4
    assert merge(records_of(after)).to_bytes() == merge(records_of(src_before[0]), records_of(src_before[1])).to_bytes()
    assert (tree(src1), tree(src2)) == src_before
    mtimes = {p: os.stat(os.path.join(dest, p)).st_mtime_ns for p in after}
    again = merge_into([src1, src2], dest)
    assert again.files_copied == again.files_written == again.files_deleted == 0
    assert tree(dest) == after
    assert {p: os.stat(os.path.join(dest, p)).st_mtime_ns for p in after} == mtimes


def test_merge_into_skips_a_corrupt_source_file_and_leaves_it(tmp_path: Path) -> None:
    src, dest = str(tmp_path / "src"), str(tmp_path / "dest")
    bad = _corrupt(src, "hash")
    stats = merge_into([src], dest)
    assert [p.path for p in stats.problems] == [bad]
    assert Path(bad).exists() and len(tree(dest)) == 1


def test_merge_files_checks_names_and_merges(tmp_path: Path) -> None:
    root = str(tmp_path)
    a, b = _two_recorders(root)
    merged, problems = merge_files([a, b])
    assert merged.to_bytes() == merge(parse_batch(Path(a).read_bytes()), parse_batch(Path(b).read_bytes())).to_bytes()
    assert problems == []
    bad = _corrupt(str(tmp_path / "x"), "hash")
    merged, problems = merge_files([a, bad])
    assert merged.to_bytes() == Path(a).read_bytes()  # the readable file, merged alone
    assert [(p.path, "hash" in p.message) for p in problems] == [(bad, True)]
    with pytest.raises(UsageError, match=r"missing\.json: no such file"):
        merge_files([a, str(tmp_path / "missing.json")])


# --- concurrency and crashes ------------------------------------------------------------------


def _big_archive(root: str, seconds: int = 240, rate: int = 20) -> None:
    sys.path.insert(0, str(REPO))
    from bench.bench_merge import recorder_archives

    for archive in recorder_archives(seconds, rate, seed=7, joins_per_second=0.5):
        write_archive(root, archive, channel="desertbus")


def _merge_process(root: str, full: bool = False) -> subprocess.Popen[bytes]:
    code = f"from merge.directory import merge_tree; merge_tree({root!r}, full={full!r})"
    return subprocess.Popen([sys.executable, "-c", code], cwd=str(REPO))


def _reference(tmp_path: Path, source: str, full: bool = False) -> dict[str, bytes]:
    ref = str(tmp_path / "reference")
    shutil.copytree(source, ref)
    merge_tree(ref, full=full)
    return tree(ref, "desertbus")


@pytest.mark.integration
def test_concurrent_merges_on_one_root_lose_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "root")
    _big_archive(root, seconds=180)
    expected = _reference(tmp_path, root)
    procs = [_merge_process(root) for _ in range(3)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    merge_tree(root)
    assert tree(root, "desertbus") == expected


@pytest.mark.slow
@pytest.mark.parametrize("full", [False, True])
def test_kill_9_at_random_moments_then_rerun_gives_the_uninterrupted_result(tmp_path: Path, full: bool) -> None:
    """Rounds of: a fresh copy, one to three merges killed with SIGKILL at random moments within the
    time a whole run takes, then a run to the end. Each round must end with the uninterrupted tree."""
    pristine = str(tmp_path / "pristine")
    _big_archive(pristine, seconds=180)  # three minutes: kills still land anywhere in a whole run
    expected = _reference(tmp_path, pristine, full)
    everything = merge(records_of(expected)).to_bytes()
    timing = str(tmp_path / "timing")
    shutil.copytree(pristine, timing)
    started = time.monotonic()
    assert _merge_process(timing, full).wait() == 0
    full_run = time.monotonic() - started
    rng = random.Random(4)
    interrupted = 0
    for round_ in range(8):
        root = str(tmp_path / f"round{round_}")
        shutil.copytree(pristine, root)
        for _ in range(rng.randint(1, 3)):
            proc = _merge_process(root, full)
            time.sleep(rng.uniform(0.0, full_run))
            proc.send_signal(signal.SIGKILL)
            interrupted += proc.wait() == -signal.SIGKILL
            # Whatever the moment, nothing is lost: the files still merge to the same bytes.
            assert merge(records_of(tree(root, "desertbus"))).to_bytes() == everything
        merge_tree(root, full=full)
        assert tree(root, "desertbus") == expected
    assert interrupted >= 4  # not vacuous: kills landed while the process was still running


def test_a_damaged_file_holding_the_output_name_is_quarantined_not_overwritten(tmp_path: Path) -> None:
    root = str(tmp_path)
    a, b = _two_recorders(root)
    expected = merge(parse_batch(Path(a).read_bytes()), parse_batch(Path(b).read_bytes())).to_bytes()
    hour = os.path.dirname(a)
    squatter = os.path.join(hour, os.path.basename(a)[:6] + content_hash(expected) + ".json")
    Path(squatter).write_bytes(b"torn")
    stats = merge_tree(root, quarantine=False)  # even so: overwriting would destroy it
    assert [p.path for p in stats.problems] == [squatter]
    assert Path(stats.problems[0].quarantined_to or "").read_bytes() == b"torn"
    assert tree(root) == {os.path.relpath(squatter, root): expected}


@settings_dir
@given(
    junk=st.one_of(
        st.binary(max_size=200),
        st.lists(st.one_of(st.just(b"{}"), st.just(b'{"time":1}'), st.binary(max_size=40)), max_size=4).map(
            lambda lines: b"\n".join(lines) + b"\n"
        ),
        archive_records().map(lambda r: (canonical_json(r) + "\n").encode("ascii")),
    )
)
def test_any_file_content_is_merged_or_reported_never_an_unexpected_error(tmp_path: Path, junk: bytes) -> None:
    """The fuzz invariant for the shell: whatever a file holds, the merge either uses it or reports it."""
    root = tempfile.mkdtemp(dir=tmp_path)
    _two_recorders(root)
    good = records_of(tree(root))
    folder = os.path.dirname(next(iter(iter_batch_files(root, CHANNEL))).path)
    path = os.path.join(folder, "14:00-" + content_hash(junk) + ".json")
    Path(path).write_bytes(junk)
    stats = merge_tree(root)
    after = tree(root)
    by_minute = [p[: -len("-HASH.json") - 39] for p in after]
    assert len(by_minute) == len(set(by_minute))  # one file per minute (a misplaced record moves)
    if stats.problems:
        (problem,) = stats.problems
        assert problem.path == path and Path(problem.quarantined_to or "").read_bytes() == junk
        assert merge(records_of(after)).to_bytes() == merge(good).to_bytes()
    else:
        assert merge(records_of(after)).to_bytes() == merge(good, parse_batch(junk)).to_bytes()


def test_a_name_rewritten_since_it_was_read_is_read_again_not_deleted_blind(tmp_path: Path) -> None:
    """Two merges writing the same output replace one file by another of the same name (a new
    inode): the one that read the first must not delete the second on the strength of that read."""
    root = str(tmp_path)
    a, _ = _two_recorders(root)
    state = directory._Channel(root, CHANNEL, directory.MergeStats(), True, None)
    digest = os.path.basename(a)[6:-5]
    assert state.read(a, digest, MERGE_MINUTE0) is not None
    same_bytes = Path(a).read_bytes()
    os.unlink(a)
    Path(a).write_bytes(same_bytes)  # same bytes, another file
    os.utime(a, ns=(1, 1))
    state.delete_if_same(a)
    assert Path(a).exists()
    assert state.read(a, digest, MERGE_MINUTE0) is not None  # read again: now it is the one read
    state.delete_if_same(a)
    assert not Path(a).exists()


@st.composite
def straddling_archives(draw: Any) -> list[list[dict[str, Any]]]:
    """Three archives of a stream where some messages (IRCv3 `msgid`, estimated ranges) have copies
    on both sides of a minute boundary, so they land in two adjacent minutes' files."""
    world = draw(merge_observations(cross_minute=False))
    for k in range(draw(st.integers(1, 4))):
        boundary = MERGE_MINUTE0 + 60 * draw(st.integers(1, 2))
        for name in draw(st.sets(st.sampled_from(MERGE_RECEIVERS), min_size=1)):
            start = boundary + draw(st.integers(-9_000, 3_000)) / 1000
            world.append(
                {
                    "command": "PRIVMSG",
                    "params": ["#chan", "edge"],
                    "sender": "eve",
                    "user": "eve",
                    "host": "e",
                    "tags": {"msgid": f"s{k}"},
                    "receivers": {name: start + 10.5},
                    "time": start,
                    "time_range": 10,
                }
            )
    archives: list[list[dict[str, Any]]] = [[], [], []]
    for record in world:
        for home in draw(st.sets(st.integers(0, 2), min_size=1)):
            archives[home].append(record)
    return archives


@settings_dir
@given(archives=straddling_archives())
def test_full_merge_folds_across_minutes_into_the_merge_of_everything(
    tmp_path: Path, archives: list[list[dict[str, Any]]]
) -> None:
    root = tempfile.mkdtemp(dir=tmp_path)
    for archive in archives:
        write_archive(root, archive)
    merge_tree(root, full=True)
    assert tree(root) == canonical_tree([r for a in archives for r in a])
    again = merge_tree(root, full=True)
    assert again.files_written == again.files_deleted == 0


def test_merge_into_does_not_trust_a_damaged_file_holding_a_source_name(tmp_path: Path) -> None:
    src, dest = str(tmp_path / "src"), str(tmp_path / "dest")
    (path,) = write_archive(src, [_privmsg("host1.a.0", MERGE_MINUTE0 + 5.0)])
    squatter = os.path.join(dest, os.path.relpath(path, src))
    os.makedirs(os.path.dirname(squatter))
    Path(squatter).write_bytes(b"torn")
    stats = merge_into([src], dest)
    assert [p.path for p in stats.problems] == [squatter]
    assert tree(dest) == tree(src)
