"""`chat-archiver merge` as a user runs it: stdout and stderr checked apart, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chat_archiver.cli import app
from chat_archiver.console import Settings
from formats.canonical import parse_batch
from formats.store import iter_batch_files
from merge.core import merge
from tests.strategies import MERGE_MINUTE0
from tests.test_merge_directory import _corrupt, _privmsg, _two_recorders, tree, write_archive


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["merge", *args])


def test_help_names_the_three_forms() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for text in ("--into", "--stdout", "--interval", "--channel", "--json", "quarantine"):
        assert text in result.stdout


def test_merge_root_prints_a_summary_and_leaves_one_file(tmp_path: Path) -> None:
    _two_recorders(str(tmp_path))
    result = run(str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert "minutes merged" in result.stdout and result.stderr == ""
    assert len(tree(str(tmp_path))) == 1


def test_json_summary_for_scripts(tmp_path: Path) -> None:
    _two_recorders(str(tmp_path))
    result = run(str(tmp_path), "--json", "--channel", "chan")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["minutes_merged"] == 1 and summary["files_deleted"] == 2 and summary["problems"] == []


def test_corrupt_input_exits_1_and_names_the_file_and_the_quarantine(tmp_path: Path) -> None:
    bad = _corrupt(str(tmp_path), "json")
    result = run(str(tmp_path), "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    (problem,) = summary["problems"]
    assert problem["path"] == bad and problem["line"] == 3
    assert f"{bad}:3" in result.stderr and "quarantine" in result.stderr


def test_stdout_prints_the_canonical_merge_only(tmp_path: Path) -> None:
    a, b = _two_recorders(str(tmp_path))
    result = run(a, b, "--stdout")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == merge(parse_batch(Path(a).read_bytes()), parse_batch(Path(b).read_bytes())).to_bytes()
    assert result.stderr == ""
    assert len(tree(str(tmp_path))) == 2  # --stdout never touches the files


def test_stdout_with_only_a_damaged_file_prints_nothing_names_it_and_exits_1(tmp_path: Path) -> None:
    bad = _corrupt(str(tmp_path), "hash")
    result = run(bad, "--stdout")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and bad in result.stderr and "hash" in result.stderr


def test_stdout_keeps_going_past_damaged_files(tmp_path: Path) -> None:
    """One damaged file (named with its line), one unreadable: the rest is merged and printed, exit 1."""
    root = str(tmp_path / "a")
    bad = _corrupt(root, "json")  # its third line is not JSON; beside it, two good files of that minute
    a, b = sorted(str(p) for p in Path(bad).parent.iterdir() if str(p) != bad)
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop.name)  # open() fails (ELOOP), even for root
    result = run(a, bad, str(loop), b, "--stdout")
    assert result.exit_code == 1
    assert result.stdout_bytes == merge(parse_batch(Path(a).read_bytes()), parse_batch(Path(b).read_bytes())).to_bytes()
    assert f"{bad}:3: " in result.stderr and f"{loop}: cannot read" in result.stderr
    assert result.stderr.count("\n") == 2


def test_into_brings_archives_together_and_a_second_run_copies_nothing(tmp_path: Path) -> None:
    src1, src2, dest = tmp_path / "a", tmp_path / "b", tmp_path / "dest"
    write_archive(str(src1), [_privmsg("host1.a.0", MERGE_MINUTE0 + 5.0)])
    write_archive(str(src2), [_privmsg("host2.b.0", MERGE_MINUTE0 + 5.0)])
    first = run(str(src1), str(src2), "--into", str(dest), "--json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["files_copied"] == 2
    merged = tree(str(dest))
    (data,) = merged.values()
    (record,) = parse_batch(data)
    assert record["receivers"].keys() == {"host1.a.0", "host2.b.0"}
    second = run(str(src1), str(src2), "--into", str(dest), "--json")
    assert json.loads(second.stdout)["files_copied"] == 0
    assert tree(str(dest)) == merged


def test_interval_runs_passes(tmp_path: Path) -> None:
    _two_recorders(str(tmp_path))
    result = CliRunner().invoke(app, ["merge", str(tmp_path), "--interval", "0.1"], obj=Settings(merge_passes=2))
    assert result.exit_code == 0, result.stderr
    assert "pass 1:" in result.stderr and "pass 2:" in result.stderr and "pass 3" not in result.stderr
    assert len(tree(str(tmp_path))) == 1


def test_passes_is_no_switch_of_the_product() -> None:
    result = run(".", "--interval", "1", "--passes", "2")
    assert result.exit_code == 2 and "--passes" in result.stderr


def test_interval_json_prints_each_pass_then_the_total_and_exit_1_after_a_quarantine(tmp_path: Path) -> None:
    bad = _corrupt(str(tmp_path), "json")
    result = CliRunner().invoke(
        app, ["merge", str(tmp_path), "--interval", "0.1", "--json"], obj=Settings(merge_passes=2)
    )
    assert result.exit_code == 1, result.output
    first, second, total = (json.loads(line) for line in result.stdout.splitlines())
    assert first["pass"] == 1 and second["pass"] == 2 and total["total"] is True
    assert first["files_deleted"] == 2 and second["files_deleted"] == 0 and total["files_deleted"] == 2
    assert [p["path"] for p in total["problems"]] == [bad]


@pytest.mark.integration
def test_interval_then_ctrl_c_sums_every_pass_and_exits_130(tmp_path: Path) -> None:
    bad = _corrupt(str(tmp_path), "json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chat_archiver.cli", "merge", str(tmp_path), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = ""
    while "pass 2:" not in seen:  # bounded: the pass lines come within a second, or stderr ends
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    proc.send_signal(signal.SIGINT)
    stdout, rest = proc.communicate(timeout=30)
    assert proc.returncode == 130, (stdout, seen + rest)  # Ctrl-C, with the totals; SIGTERM would give 1
    assert "Traceback" not in seen + rest
    assert f"{bad}:3" in seen
    cells = [line.split("│") for line in stdout.splitlines() if line.count("│") == 3]
    rows = {cell[1].strip(): cell[2].strip() for cell in cells}
    assert rows["files deleted"] == "2" and rows["minutes merged"] == "1" and rows["corrupt inputs"] == "1"


def test_merge_says_what_it_found_in_an_empty_or_raw_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(str(empty))
    assert result.exit_code == 2 and "empty" in result.stderr and result.stdout == ""
    raw = Path(__file__).parent.parent / "fixtures" / "cases"
    result = run(str(raw))
    assert result.exit_code == 2 and "raw recording" in result.stderr and "chat-archiver replay" in result.stderr


def test_merge_unknown_channel_says_so(tmp_path: Path) -> None:
    _two_recorders(str(tmp_path))
    result = run(str(tmp_path), "-c", "nobody")
    assert result.exit_code == 2
    assert "--channel nobody: no such channel" in result.stderr and "chan" in result.stderr
    into = run(str(tmp_path), "--into", str(tmp_path / "d"), "-c", "chan", "-c", "nobody")
    assert into.exit_code == 2 and "nobody" in into.stderr


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    cases = [
        [str(tmp_path / "missing")],
        [str(tmp_path), str(tmp_path)],
        [str(tmp_path), "--stdout", "--into", str(tmp_path)],
        [str(tmp_path), "--into", str(tmp_path / "d"), "--interval", "1"],
        [str(tmp_path / "nofile.json"), "--stdout"],
        [str(tmp_path), "--channel", "../up"],
    ]
    for args in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert result.stdout == "", args
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:"), (args, result.stderr)


def test_full_pass_normalises_a_single_file(tmp_path: Path) -> None:
    record = _privmsg("host1.a.0", MERGE_MINUTE0 + 5.0)
    (path,) = write_archive(str(tmp_path), [record, {**record, "receivers": {"host2.b.0": MERGE_MINUTE0 + 5.5}}])
    assert run(str(tmp_path), "--json").exit_code == 0
    assert Path(path).exists()  # one file in its minute: a normal pass leaves it
    result = run(str(tmp_path), "--full", "--json")
    assert result.exit_code == 0, result.stderr
    (data,) = tree(str(tmp_path)).values()
    (folded,) = parse_batch(data)
    assert folded["receivers"].keys() == {"host1.a.0", "host2.b.0"}
    assert run(str(tmp_path), "--full", "--interval", "1").exit_code == 2


def _unreadable(root: str) -> str:
    """Two good files of one minute and, beside them, a name no one can read (a symlink to itself:
    open() fails with ELOOP, even for root); return its path."""
    good, _ = _two_recorders(root)
    path = str(Path(good).parent / (Path(good).name[:6] + "U" * 43 + ".json"))
    Path(path).symlink_to(Path(path).name)
    return path


@pytest.mark.parametrize("full", [False, True], ids=["merge", "full"])
def test_an_unreadable_file_is_reported_and_left_in_place_not_quarantined(tmp_path: Path, full: bool) -> None:
    root = str(tmp_path)
    unreadable = _unreadable(root)
    result = run(root, "--json", *(["--full"] if full else []))
    assert result.exit_code == 1, result.output
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["path"] == unreadable and problem["quarantined_to"] is None
    assert "cannot read" in problem["message"] and f"{unreadable}: cannot read" in result.stderr
    assert Path(unreadable).is_symlink()  # left where it was
    assert not (tmp_path / "quarantine").exists()
    # the two readable files of that minute were merged into one all the same
    names = [bf.path for bf in iter_batch_files(root, "chan")]
    assert len(names) == 2 and unreadable in names
