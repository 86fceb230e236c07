"""verify on whole archives: each planted fault is found and named, a healthy archive is healthy,
and the CLI's exit status, report and --json agree with the findings.

Archives are built in tmp folders from records made here (two receivers, a PRIVMSG every 6 s with
realistic receive delays); raw recordings are written with fixtures.txt2raw.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chat_archiver.cli import app
from fixtures.txt2raw import convert
from formats.canonical import batch_relpath, content_hash, format_batch
from tests.archives import write_batch
from tests.pipeline import replay
from verify.render import report_json
from verify.shell import VerifyError, verify_archive

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

M0 = 1_700_000_040  # 2023-11-14T22:14:00Z
CHANNEL = "chan"
R1, R2, R3 = "host1.Ab3dE.0", "host2.Zz9yX.0", "host3.Qq1wE.0"
FIXTURES = Path(__file__).parent.parent / "fixtures"


def privmsg(t: float, n: int, delays: dict[str, float]) -> dict[str, Any]:
    return {
        "command": "PRIVMSG",
        "params": [f"#{CHANNEL}", f"message {n}"],
        "sender": "viewer",
        "user": "viewer",
        "host": "viewer.tmi.twitch.tv",
        "tags": {"id": f"id-{n}", "tmi-sent-ts": str(round(t * 1000))},
        "receivers": {name: t + d for name, d in delays.items()},
        "time": t,
        "time_range": 0.0 if len(delays) >= 2 else 0,  # as the merge writes it (ARCHIVE_FORMAT.md 5.1)
    }


def minute_records(minute: int, delays: dict[str, float] | None = None) -> list[dict[str, Any]]:
    delays = delays if delays is not None else {R1: 0.21, R2: 0.34}
    return [privmsg(M0 + 60 * minute + 6 * i + 0.125, minute * 10 + i, delays) for i in range(10)]


def build(root: Path, minutes: range = range(10), skip: tuple[int, ...] = (), **kw: Any) -> dict[int, str]:
    paths = {}
    for m in minutes:
        if m not in skip:
            paths[m], _ = write_batch(str(root), CHANNEL, M0 + 60 * m, minute_records(m, **kw))
    return paths


def raw(folder: Path, name: str, slug: str, lines: list[str]) -> None:
    text = f"header {name} {slug} {name}\n" + "\n".join(lines) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jsonl").write_bytes(convert(text))


def connected(conn: int, start: float, end: float | None) -> list[str]:
    lines = [
        f"{start:.3f} open {conn} twitch wss://irc-ws.chat.twitch.tv:443",
        f"{start + 0.1:.3f} send {conn} JOIN #{CHANNEL}",
    ]
    if end is not None:
        lines.append(f"{end:.3f} close {conn} bye")
    return lines


def kinds(root: Path, **kw: Any) -> list[str]:
    return sorted(f.kind for f in verify_archive(str(root), jobs=1, **kw).findings)


# ---------------------------------------------------------------- healthy


def test_healthy_archive_is_healthy(tmp_path: Path) -> None:
    build(tmp_path)
    report = verify_archive(str(tmp_path), jobs=1)
    assert report.findings == []
    assert report.exit_status == 0
    (ch,) = report.channels
    assert (ch.tally.files, ch.tally.records, ch.tally.messages, ch.tally.single) == (10, 100, 100, 0)
    assert ch.first_minute == M0 and ch.last_minute == M0 + 540
    assert [r.share for r in ch.receivers] == [1.0, 1.0]
    assert ch.receivers[0].delay_p50 == pytest.approx(0.21, abs=0.011)


def test_healthy_archive_with_raw_recordings_and_a_quiet_minute(tmp_path: Path) -> None:
    build(tmp_path / "a", skip=(4,))
    raw(tmp_path / "raw", "host1", "Ab3dE", connected(0, M0 - 30, M0 + 700))
    raw(tmp_path / "raw", "host2", "Zz9yX", connected(0, M0 - 20, M0 + 690))
    report = verify_archive(str(tmp_path / "a"), raw=[str(tmp_path / "raw")], jobs=1)
    assert report.findings == []
    (ch,) = report.channels
    assert [ch.state_of(M0 + 60 * m) for m in (3, 4, 5)] == [None, "quiet", None]
    assert ch.empty_spans == [(M0 + 240, M0 + 300, "quiet")]
    assert report.windows is not None and [w.receiver for w in report.windows] == [R1, R2]


def test_replayed_fixture_archive_verifies_with_its_recordings(tmp_path: Path) -> None:
    case = FIXTURES / "cases" / "two_recorders"
    recordings = sorted(str(p) for p in case.glob("*.jsonl"))
    replay(recordings, str(tmp_path), merge=True)
    report = verify_archive(str(tmp_path), raw=recordings, jobs=1)
    assert report.findings == [] and report.exit_status == 0  # two recorders, overlapping: healthy
    (ch,) = report.channels
    assert ch.gaps == [] and {r.recorder for r in ch.receivers} == {"host1", "host2"}


# ---------------------------------------------------------------- planted faults


def test_flipped_byte(tmp_path: Path) -> None:
    paths = build(tmp_path)
    data = bytearray(Path(paths[3]).read_bytes())
    data[data.index(b"message 3") + 8] ^= 0x01  # "message 30" -> "message 31": still valid JSON
    Path(paths[3]).write_bytes(bytes(data))
    report = verify_archive(str(tmp_path), jobs=1)
    assert [(f.kind, f.path) for f in report.findings] == [("hash-mismatch", paths[3])]
    assert report.exit_status == 1


def test_renamed_file_to_another_minute(tmp_path: Path) -> None:
    paths = build(tmp_path, skip=(5,))
    old = Path(paths[4])
    new = old.with_name(old.name.replace("18:00", "19:00"))  # minute 4 is 22:18, 5 would be 22:19
    old.rename(new)
    found = verify_archive(str(tmp_path), jobs=1).findings
    assert {f.kind for f in found} == {"wrong-minute"}
    assert {(f.path, f.line) for f in found if f.line is not None} == {(str(new), n) for n in range(1, 6)}


def test_renamed_file_to_another_hash(tmp_path: Path) -> None:
    paths = build(tmp_path)
    old = Path(paths[2])
    new = old.with_name(old.name[:6] + "A" * 43 + ".json")
    old.rename(new)
    found = verify_archive(str(tmp_path), jobs=1).findings
    assert [(f.kind, f.path) for f in found] == [("hash-mismatch", str(new))]


def test_record_in_the_wrong_minute(tmp_path: Path) -> None:
    build(tmp_path, skip=(6,))
    stray = minute_records(6)
    stray[-1]["time"] += 60  # belongs to minute 7
    stray[-1]["tags"]["tmi-sent-ts"] = str(round(stray[-1]["time"] * 1000))
    path, _ = write_batch(str(tmp_path), CHANNEL, M0 + 360, stray)
    found = verify_archive(str(tmp_path), jobs=1).findings
    assert [(f.kind, f.path, f.line) for f in found] == [("wrong-minute", path, 10)]


def test_unmerged_pair(tmp_path: Path) -> None:
    build(tmp_path)
    extra = minute_records(2, delays={R3: 0.3})
    second, _ = write_batch(str(tmp_path), CHANNEL, M0 + 120, extra)
    found = verify_archive(str(tmp_path), jobs=1).findings
    unmerged = [f for f in found if f.kind == "unmerged"]
    assert len(unmerged) == 1
    assert os.path.basename(second) in unmerged[0].message or unmerged[0].path == second


def test_leftover_temp_file_and_foreign_files(tmp_path: Path) -> None:
    paths = build(tmp_path)
    temp = paths[1] + ".0123456789abcdef.temp"
    Path(temp).write_bytes(b'{"partial')
    hour = Path(paths[1]).parent
    (hour / "notes.txt").write_text("hello")
    (hour.parent / "junk").mkdir()
    found = [(f.kind, f.path) for f in verify_archive(str(tmp_path), jobs=1).findings]
    assert ("debris", temp) in found
    assert ("foreign-file", str(hour / "notes.txt")) in found
    assert ("foreign-file", str(hour.parent / "junk")) in found
    assert len(found) == 3


def test_gap_while_no_recorder_was_connected(tmp_path: Path) -> None:
    # host1 drops at 22:17:30 and is back at 22:19:45; host2 was never connected then either.
    build(tmp_path / "a", skip=(4, 5))
    lines = connected(0, M0 - 30, M0 + 210) + connected(1, M0 + 345, M0 + 700)
    raw(tmp_path / "raw", "host1", "Ab3dE", lines)
    raw(
        tmp_path / "raw",
        "host2",
        "Zz9yX",
        connected(0, M0 - 20, M0 + 200) + connected(1, M0 + 350, None) + [f"{M0 + 650:.3f} recv 1 PING :tmi.twitch.tv"],
    )
    report = verify_archive(str(tmp_path / "a"), raw=[str(tmp_path / "raw")], jobs=1)
    gaps = [f for f in report.findings if f.kind == "gap"]
    assert [(f.start, f.end) for f in gaps] == [(M0 + 210, M0 + 345)]
    (ch,) = report.channels
    assert ch.empty_spans == [(M0 + 240, M0 + 360, "gap")]
    # host2's last connection has no close: it ends at the recording's last event
    assert [(w.receiver, w.end, w.closed) for w in report.windows or []][-1] == ("host2.Zz9yX.1", M0 + 650, False)
    assert report.exit_status == 1


def test_empty_minutes_without_raw_are_unknown_not_gaps(tmp_path: Path) -> None:
    build(tmp_path, skip=(4, 5))
    report = verify_archive(str(tmp_path), jobs=1)
    assert report.findings == []
    assert report.channels[0].empty_spans == [(M0 + 240, M0 + 360, "empty")]


def test_recorder_with_a_skewed_clock(tmp_path: Path) -> None:
    build(tmp_path, delays={R1: 0.21, R2: 0.34, R3: 4.5})
    found = verify_archive(str(tmp_path), jobs=1).findings
    assert [(f.kind, f.message.split(":")[0]) for f in found] == [("clock-skew", R3)]


def test_skew_between_two_receivers_blames_the_slower_one(tmp_path: Path) -> None:
    build(tmp_path, delays={R1: 0.21, R2: 3.0})
    found = verify_archive(str(tmp_path), jobs=1).findings
    assert [(f.kind, f.message.split(":")[0]) for f in found] == [("clock-skew", R2)]


def test_recorder_whose_clock_is_behind(tmp_path: Path) -> None:
    build(tmp_path, delays={R1: -3.0})
    found = verify_archive(str(tmp_path), jobs=1).findings
    assert ("clock-skew", R1) in [(f.kind, f.message.split(":")[0]) for f in found]


def test_single_receiver_is_a_notice_not_a_problem(tmp_path: Path) -> None:
    build(tmp_path, delays={R1: 0.2})
    report = verify_archive(str(tmp_path), jobs=1)
    assert [f.kind for f in report.findings] == ["single-receiver"]
    assert report.exit_status == 0


def test_conflict_record(tmp_path: Path) -> None:
    records = minute_records(0)
    records[0]["time_range"] = -1.5
    _path, _ = write_batch(str(tmp_path), CHANNEL, M0, records)
    assert [(f.kind, f.line) for f in verify_archive(str(tmp_path), jobs=1).findings] == [("conflict", 1)]


def test_process_pool_gives_the_same_report(tmp_path: Path) -> None:
    paths = build(tmp_path, minutes=range(70))
    Path(paths[33]).write_bytes(Path(paths[33]).read_bytes()[:-5])  # torn
    one = report_json(verify_archive(str(tmp_path), jobs=1))
    two = report_json(verify_archive(str(tmp_path), jobs=2))
    assert one == two
    assert {f["kind"] for f in one["findings"]} >= {"torn-file", "hash-mismatch"}


def test_missing_root_or_channel_or_raw_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(VerifyError):
        verify_archive(str(tmp_path / "nope"))
    build(tmp_path)
    with pytest.raises(VerifyError):
        verify_archive(str(tmp_path), channel="other")
    with pytest.raises(VerifyError):
        verify_archive(str(tmp_path), raw=[str(tmp_path / "no-raw")])


def test_folder_without_channels(tmp_path: Path) -> None:
    assert kinds(tmp_path) == ["no-channels"]


# ---------------------------------------------------------------- CLI


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["verify", *args])


def test_cli_healthy_report_and_exit_0(tmp_path: Path) -> None:
    build(tmp_path)
    result = run(str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert "healthy" in result.stdout and CHANNEL in result.stdout
    assert result.stderr == ""


def test_cli_json_matches_the_findings(tmp_path: Path) -> None:
    paths = build(tmp_path, skip=(5,))
    Path(paths[3]).write_bytes(Path(paths[3]).read_bytes().replace(b"message 3", b"message X"))
    Path(paths[1] + ".abc.temp").write_bytes(b"")
    result = run(str(tmp_path), "--json")
    assert result.exit_code == 1
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    report = verify_archive(str(tmp_path), jobs=1)
    assert doc == json.loads(json.dumps(report_json(report)))
    assert doc["status"] == "problems" and doc["exit_code"] == 1
    assert [(f["kind"], f["path"], f["line"]) for f in doc["findings"]] == [
        (f.kind, f.path, f.line) for f in report.findings
    ]
    assert {f["kind"] for f in doc["findings"]} == {"hash-mismatch", "debris"}
    assert doc["counts"] == {"problem": 1, "notice": 1, "unreadable": 0}
    chan = doc["channels"][CHANNEL]
    assert chan["records"] == 90 and chan["empty_spans"] == [
        {"start": "2023-11-14T22:19:00Z", "end": "2023-11-14T22:20:00Z", "state": "empty"}
    ]


def test_cli_unreadable_root_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run(str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "missing" in result.stderr


def test_cli_unreadable_file_exits_2(tmp_path: Path) -> None:
    paths = build(tmp_path, minutes=range(2))
    # a dangling symlink under a batch file's name cannot be opened, even by root
    os.unlink(paths[1])
    os.symlink(str(tmp_path / "gone"), paths[1])
    result = run(str(tmp_path), "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["findings"][0]["kind"] == "unreadable"


def test_cli_with_raw_and_channel(tmp_path: Path) -> None:
    build(tmp_path / "a")
    raw(tmp_path / "raw", "host1", "Ab3dE", connected(0, M0 - 30, M0 + 700))
    result = run(str(tmp_path / "a"), "--raw", str(tmp_path / "raw"), "--channel", "#CHAN")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "recorder connections" in result.stdout and R1 in result.stdout


def test_batch_relpath_helper_agrees_with_build() -> None:
    # guards the helpers above: a minute's file name is what the store writes
    data = format_batch(minute_records(0))
    hour, name = batch_relpath(M0, content_hash(data))
    assert (hour, name[:5]) == ("2023-11-14T22", "14:00")


def test_cli_report_marks_gap_minutes_in_the_heat_map_and_lists_gaps(tmp_path: Path) -> None:
    build(tmp_path / "a", skip=(4, 5))
    raw(tmp_path / "raw", "host1", "Ab3dE", connected(0, M0 - 30, M0 + 210) + connected(1, M0 + 345, M0 + 700))
    result = CliRunner().invoke(
        app, ["verify", str(tmp_path / "a"), "--raw", str(tmp_path / "raw")], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 1
    row = next(line for line in result.stdout.splitlines() if "2023-11-14 22 " in line)
    assert "××" in row  # minutes 22:18 and 22:19: nobody connected
    assert "spans with no recorder connected" in result.stdout and "135.0" in result.stdout
    assert "gap" in result.stdout and "problems (1)" in result.stdout


def test_report_of_a_long_archive_has_one_row_per_day(tmp_path: Path) -> None:
    from rich.console import Console

    from verify.render import render

    for day in range(4):  # beyond HEATMAP_MAX_HOURS: rows per day, cells per hour
        write_batch(str(tmp_path), CHANNEL, M0 + 86_400 * day, minute_records(1440 * day))
    Path(tmp_path / "empty" / "chat").mkdir(parents=True)  # a channel with no records at all
    console = Console(record=True, width=120)
    report = verify_archive(str(tmp_path), jobs=1)
    render(report, console)
    text = console.export_text()
    rows = [line for line in text.splitlines() if "█" in line]
    assert [row.split()[1] for row in rows] == ["2023-11-14", "2023-11-15", "2023-11-16", "2023-11-17"]
    assert "??????" in rows[1]  # empty hours without raw recordings: unexplained, not quiet
    assert "per day" in text and "per hour" in text  # the empty channel still has an (empty) hour table
    assert "no records" in text
    assert report.exit_status == 0


def test_verify_and_export_errors_belong_to_the_one_hierarchy() -> None:
    from export.window import ExportError
    from formats.errors import ArchiverError, UsageError

    assert issubclass(VerifyError, UsageError) and issubclass(ExportError, UsageError)
    assert issubclass(UsageError, ArchiverError)


def test_what_the_quarantine_holds_is_listed(tmp_path: Path) -> None:
    """A merge moves damaged files to ROOT/quarantine/; verify names them (a problem: their records
    are not in the archive), and the CLI exits 1."""
    from merge.directory import merge_tree

    paths = build(tmp_path, minutes=range(3))
    damaged = Path(paths[1]).read_bytes().replace(b"message 1", b"message X")
    extra = Path(paths[1]).parent / (Path(paths[1]).name[:6] + content_hash(b"x") + ".json")
    extra.write_bytes(damaged)  # a second file for minute 1 whose name is not its hash
    assert [p.path for p in merge_tree(str(tmp_path)).problems] == [str(extra)]
    report = verify_archive(str(tmp_path), jobs=1)
    (found,) = [f for f in report.findings if f.kind != "single-receiver"]
    assert found.kind == "quarantined" and found.path == str(tmp_path / "quarantine")
    assert found.message.startswith("1 file set aside by a merge as damaged")
    assert found.message.endswith(os.path.join(CHANNEL, "chat", extra.parent.name, extra.name))
    assert report.exit_status == 1
    result = run(str(tmp_path))
    assert result.exit_code == 1 and "quarantined" in result.stdout


# ---------------------------------------------------------------- merges from before section 5.1


def _old_merge(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records as the merge wrote them before ARCHIVE_FORMAT.md 5.1: a combined record's range `0`."""
    return [{**r, "time_range": 0} for r in records]


def test_files_merged_before_upstreams_numbers_are_named_and_merge_full_upgrades_them(tmp_path: Path) -> None:
    first = ""
    for m in range(4):
        records = minute_records(m)
        path, _ = write_batch(str(tmp_path), CHANNEL, M0 + 60 * m, _old_merge(records) if m < 3 else records)
        first = first or path
    single = minute_records(4, delays={R1: 0.2})
    write_batch(str(tmp_path), CHANNEL, M0 + 240, single)  # one receiver: `0` is what the merge writes
    report = verify_archive(str(tmp_path), jobs=1)
    (finding,) = [f for f in report.findings if f.kind == "old-merge"]
    assert finding.severity == "notice" and finding.message.startswith("3 files hold combined records")
    assert os.path.relpath(first, tmp_path) in finding.message  # the first such file, as an example
    assert "merge ROOT --full" in finding.message and report.exit_status == 0
    result = CliRunner().invoke(app, ["merge", str(tmp_path), "--full"])
    assert result.exit_code == 0, result.output
    assert "old-merge" not in kinds(tmp_path)
    upgraded = sorted(tmp_path.rglob("*.json"))
    assert len(upgraded) == 5
    assert all(b'"time_range":0,' not in p.read_bytes() for p in upgraded[:4])
    assert b'"time_range":0,' in upgraded[4].read_bytes()


def test_upstreams_lossy_merges_are_counted(tmp_path: Path) -> None:
    """Two PARTs of one user 16 s apart, folded into one record by a wubloader node's merge."""
    part = {"command": "PART", "params": [f"#{CHANNEL}"], "sender": "u", "user": "u", "host": "u.tmi.twitch.tv"}
    folded = {**part, "tags": None, "receivers": {R1: M0 + 50.5, R2: M0 + 66.5}, "time": M0 + 21.5, "time_range": 39.0}
    alike = {**part, "tags": None, "receivers": {R1: M0 + 50.5, R2: M0 + 50.7}, "time": M0 + 5.5, "time_range": 55.0}
    build(tmp_path, minutes=range(1, 3))
    write_batch(str(tmp_path), CHANNEL, M0, [alike, folded])
    (finding,) = [f for f in verify_archive(str(tmp_path), jobs=1).findings if f.kind == "lossy-merge"]
    assert finding.severity == "notice" and finding.message.startswith("1 id-less records")


# ---------------------------------------------------------------- far-dated records

YEAR_9999 = 253_402_300_740  # 9999-12-31T23:59:00Z

_UNDER_A_GIGABYTE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from chat_archiver.cli import app
sys.argv = ["chat-archiver", "verify", sys.argv[1], "--json"]
app()
"""


@pytest.mark.integration
def test_one_record_in_the_year_9999_verifies_in_bounded_memory(tmp_path: Path) -> None:
    """The work follows the minutes that exist: one correctly hashed file timed in 9999 beside a
    normal one must not make verify enumerate the four billion empty minutes between them."""
    import subprocess
    import sys

    build(tmp_path, minutes=range(2))
    write_batch(str(tmp_path), CHANNEL, YEAR_9999, [privmsg(YEAR_9999 + 1, 999, {R1: 0.2})])
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_A_GIGABYTE, str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr[-2000:]
    report = json.loads(done.stdout)
    chan = report["channels"][CHANNEL]
    assert chan["last_minute"] == "9999-12-31T23:59:00Z"
    assert chan["empty_spans"] == [{"start": "2023-11-14T22:16:00Z", "end": "9999-12-31T23:59:00Z", "state": "empty"}]
    assert [h["hour"] for h in chan["hours"]] == ["2023-11-14T22:00:00Z", "9999-12-31T23:00:00Z"]
    (finding,) = report["findings"]
    assert finding["kind"] == "implausible-time" and "9999-12-31T23" in finding["message"]


def test_report_of_a_far_dated_record_skips_the_empty_centuries(tmp_path: Path) -> None:
    from rich.console import Console

    from verify.render import render

    build(tmp_path, minutes=range(2))
    write_batch(str(tmp_path), CHANNEL, YEAR_9999, [privmsg(YEAR_9999 + 1, 999, {R1: 0.2})])
    console = Console(record=True, width=120)
    render(verify_archive(str(tmp_path), jobs=1), console)
    text = console.export_text()
    assert "days without records" in text
    assert "9999-12-31" in text and "2023-11-14" in text


# ---------------------------------------------------------------- crash debris


def _debris(batch_path: str, age: float) -> Path:
    """A temporary file as formats.store.write_bytes_atomic names it, last changed `age` s ago."""
    import uuid

    temp = Path(f"{batch_path}.{uuid.uuid4().hex}.temp")
    temp.write_bytes(b'{"partial')
    then = time.time() - age
    os.utime(temp, (then, then))
    return temp


def test_debris_of_a_killed_write_is_a_notice_and_the_next_merge_removes_it(tmp_path: Path) -> None:
    from merge.directory import merge_tree

    paths = build(tmp_path)
    old, fresh = _debris(paths[1], 3600), _debris(paths[2], 5)
    foreign = Path(paths[3] + ".upstream123.temp")
    foreign.write_bytes(b"")
    os.utime(foreign, (0, 0))
    report = verify_archive(str(tmp_path), jobs=1)
    assert sorted((f.kind, f.severity, f.path) for f in report.findings) == sorted(
        ("debris", "notice", str(p)) for p in (old, fresh, foreign)
    )
    assert report.exit_status == 0  # debris is no problem of the archive
    merge_tree(str(tmp_path))
    assert not old.exists()  # a killed writer's
    assert fresh.exists() and foreign.exists()  # maybe a writer at work now; not ours


def test_the_next_replay_into_a_folder_removes_its_debris(tmp_path: Path) -> None:
    case = FIXTURES / "cases" / "two_recorders"
    recordings = sorted(str(p) for p in case.glob("*.jsonl"))
    replay(recordings, str(tmp_path))
    batch = next(p for p in tmp_path.rglob("*.json"))
    old = _debris(str(batch), 3600)
    replay(recordings, str(tmp_path), merge=False)  # the replay alone, no merge after it
    assert not old.exists()
    assert "debris" not in kinds(tmp_path)


def test_the_receivers_table_shows_who_contributed_what(tmp_path: Path) -> None:
    """A peer's forged record carries a receiver name it chose: the report lists that receiver with
    what only it saw and when, beside the real ones."""
    from rich.console import Console

    from verify.render import render

    build(tmp_path, minutes=range(3))
    forged = privmsg(M0 + 61, 999, {"peer.Zz0zZ.0": 0.5})
    write_batch(str(tmp_path), CHANNEL, M0 + 60, [*minute_records(1), forged])  # a second file that minute
    from merge.directory import merge_tree

    merge_tree(str(tmp_path))
    console = Console(record=True, width=200)
    render(verify_archive(str(tmp_path), jobs=1), console)
    text = console.export_text()
    row = next(line for line in text.splitlines() if "peer.Zz0zZ.0 " in line).strip("│ ").split()
    assert row[:6] == ["peer.Zz0zZ.0", "1", "1", "9.1%", "1", "2023-11-14"]  # 1 of the 11 messages of its minute
    assert row[6] == "22:15"  # when it claims to have received it (first; then last)
    assert any("only it" in line and "first" in line and "last" in line for line in text.splitlines())


def test_batch_files_timed_before_2011_or_beyond_tomorrow_are_a_problem(tmp_path: Path) -> None:
    build(tmp_path, minutes=range(2))
    write_batch(str(tmp_path), CHANNEL, 1_000_020, [privmsg(1_000_021, 998, {R1: 0.2})])
    write_batch(str(tmp_path), CHANNEL, M0 + 2 * 86_400, [privmsg(M0 + 2 * 86_400 + 1, 999, {R1: 0.2})])
    found = verify_archive(str(tmp_path), jobs=1, now=M0).findings
    (finding,) = [f for f in found if f.kind == "implausible-time"]
    assert "2 batch file(s)" in finding.message and "1970-01-12T13, 2023-11-16T22" in finding.message
    assert not [f for f in verify_archive(str(tmp_path), jobs=1, now=M0 + 2 * 86_400).findings if "2023" in f.message]
