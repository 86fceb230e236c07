"""plan_window_bytes (tests/reference/merge_fold.py) against the reference, merge.plan.plan_window: wherever the byte
path takes a window, its plan is the reference's, byte for byte (outputs, deletes, counts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from bench.bench_merge import recorder_archives, write_archive
from formats.canonical import batch_time_of, content_hash, format_batch, parse_batch
from formats.store import iter_batch_files
from merge import directory, fastplan, scan
from merge.core import merge_records
from merge.directory import merge_tree
from merge.fastplan import plan_window_lines
from merge.plan import InputFile, LinesFile, ScannedFile, WindowPlan, plan_window, summary_of
from tests.compiled import skip_unless_bound
from tests.reference.merge_fold import plan_window_bytes
from tests.reference.merge_scan import scan_batch_py
from tests.strategies import MERGE_MINUTE0, merge_archives

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

Files = dict[int, list[tuple[str, bytes]]]  # minute -> (path, data)


def files_of(archives: list[list[dict[str, Any]]]) -> Files:
    """One file per archive per minute, as recorders' replays write them."""
    out: Files = {}
    for i, archive in enumerate(archives):
        by_minute: dict[int, list[dict[str, Any]]] = {}
        for record in archive:
            by_minute.setdefault(batch_time_of(record["time"]), []).append(record)
        for minute, records in by_minute.items():
            out.setdefault(minute, []).append((f"f{i}@{minute}", format_batch(records)))
    return out


def both(minute: int, files: Files, full: bool) -> tuple[WindowPlan | None, WindowPlan | bool | None]:
    """The reference's plan and the byte path's; with the compiled scanner, the byte path on its
    `Lines` (what merge.directory runs) is checked to plan exactly what the byte path on the pure
    scans plans."""
    reference = {m: [InputFile(m, content_hash(d), p, parse_batch(d)) for p, d in fs] for m, fs in files.items()}
    scanned: dict[int, list[ScannedFile]] = {}
    for m, fs in files.items():
        scanned[m] = []
        for p, d in fs:
            scans = scan_batch_py(d)
            assert isinstance(scans, list)
            scanned[m].append(ScannedFile(m, content_hash(d), p, scans, summary_of(scans)))
    fast = plan_window_bytes(minute, scanned, full=full)
    if fastplan.fold_lines is not None and scan.scan_file is not None:
        own = [LinesFile(minute, content_hash(d), p, scan.scan_file(d)) for p, d in files.get(minute, [])]
        neighbours = [scan.scan_file(d) for m in (minute - 60, minute + 60) for _p, d in files.get(m, [])]
        lines = plan_window_lines(minute, own, neighbours, full=full)
        if isinstance(fast, WindowPlan) and isinstance(lines, WindowPlan):
            assert_same(fast, lines)
        else:
            assert lines is fast
    return plan_window(minute, reference, full=full), fast


def assert_same(ref: WindowPlan | None, fast: WindowPlan | None) -> None:
    if ref is None or fast is None:
        assert ref is fast
        return
    assert [(o.minute, o.data) for o in fast.outputs] == [(o.minute, o.data) for o in ref.outputs]
    assert [f.path for f in fast.deletes] == [f.path for f in ref.deletes]
    assert (fast.included, fast.records_in, fast.records_out, fast.counts) == (
        ref.included,
        ref.records_in,
        ref.records_out,
        ref.counts,
    )


def scannable(archives: list[list[dict[str, Any]]]) -> bool:
    return all(isinstance(scan_batch_py(format_batch(a)), list) for a in archives if a)


@settings(max_examples=examples(1), deadline=None)
@given(archives=merge_archives(), full=st.booleans(), merged_neighbour=st.booleans())
def test_byte_path_plans_what_the_reference_plans(
    archives: list[list[dict[str, Any]]], full: bool, merged_neighbour: bool
) -> None:
    archives = [[r for r in a if not (type(r["time_range"]) is float and r["time_range"] == 0.0)] for a in archives]
    if not scannable(archives):
        return
    files = files_of(archives)
    if merged_neighbour:  # the minute before, already merged (as a live merge leaves it)
        before = [r for fs in files.get(MERGE_MINUTE0, []) for r in parse_batch(fs[1])]
        if before:
            files[MERGE_MINUTE0] = [("merged", format_batch(merge_records(before)))]
    for minute in sorted(files):
        ref, fast = both(minute, files, full)
        if fast is False:
            continue  # not a window the byte path takes: the reference runs
        assert fast is not True
        assert_same(ref, fast)


@settings(max_examples=examples(0.4), deadline=None)
@given(archives=merge_archives(cross_minute=False), full=st.booleans())
def test_the_byte_path_takes_windows_whose_records_stay_in_their_minute(
    archives: list[list[dict[str, Any]]], full: bool
) -> None:
    archives = [[r for r in a if not (type(r["time_range"]) is float and r["time_range"] == 0.0)] for a in archives]
    if not scannable(archives):
        return
    files = files_of(archives)
    for minute in sorted(files):
        ref, fast = both(minute, files, full)
        if fast is not False:
            assert fast is not True
            assert_same(ref, fast)


@pytest.mark.parametrize("full", [False, True])
def test_twitch_shaped_minutes(full: bool) -> None:
    archives = recorder_archives(180, rate=8, seed=7)  # three recorders, JOINs, overlaps: the shape, not the volume
    files = files_of(archives)
    for minute in sorted(files):
        ref, fast = both(minute, files, full)
        assert fast is not False or minute == max(files)  # JOINs ranged back into the minute before
        if fast is not False:
            assert fast is not True
            assert_same(ref, fast)


@skip_unless_bound(fastplan.fold_lines is not None, "the compiled fold")
def test_the_directory_merge_takes_the_byte_path_and_scans_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Twitch-shaped minutes of three recorders, `merge_tree` plans every window but the last on
    `Lines` (the last: JOINs ranged back into the minute before, so the reference runs), scans each
    input once, never scans an output it wrote (the next window judges it by its `Ids`), and writes
    what the reference merge of everything writes."""
    archives = recorder_archives(180, rate=20, seed=7)
    for archive in archives:
        write_archive(str(tmp_path), "desertbus", archive)
    inputs = len(list(iter_batch_files(str(tmp_path), "desertbus")))
    scanned: list[bytes] = []
    reference: list[int] = []
    scan_file, plan_window = directory.scan_file, directory.plan_window
    assert scan_file is not None

    def counting_scan(data: bytes) -> object:
        scanned.append(data)
        return scan_file(data)

    def counting_plan(minute: int, *args: Any, **kwargs: Any) -> Any:
        reference.append(minute)
        return plan_window(minute, *args, **kwargs)

    monkeypatch.setattr(directory, "scan_file", counting_scan)
    monkeypatch.setattr(directory, "plan_window", counting_plan)
    stats = merge_tree(str(tmp_path))
    assert len(scanned) == inputs == stats.files_read
    minutes = sorted({f.batch_time for f in iter_batch_files(str(tmp_path), "desertbus")})
    assert reference in ([], [minutes[-1]])
    merged = merge_records([r for a in archives for r in a])
    by_minute: dict[int, list[dict[str, Any]]] = {}
    for record in merged:
        by_minute.setdefault(batch_time_of(record["time"]), []).append(record)
    written = {f.batch_time: Path(f.path).read_bytes() for f in iter_batch_files(str(tmp_path), "desertbus")}
    assert written == {m: format_batch(rs) for m, rs in by_minute.items()}
