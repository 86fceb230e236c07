"""The CLI as a user meets it: what every command does the same way, checked as a user
runs it (typer's runner, or a real process where pipes, signals and exit statuses are the point)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from chat_archiver import cli
from chat_archiver.cli import app

ROOT = Path(__file__).parent.parent
CASES = ROOT / "fixtures" / "cases"
COMMANDS = sorted(cli.COMMANDS)
CLI = [sys.executable, "-m", "chat_archiver.cli"]


def run(*args: str) -> typer.testing.Result:  # type: ignore[name-defined]
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture recordings replayed: a healthy archive of one channel, desertbus."""
    root = tmp_path_factory.mktemp("archive")
    assert run("replay", str(CASES), "-o", str(root), "--json").exit_code == 0
    return root


# ---------------------------------------------------------------- help


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_well_at_80_columns(command: str) -> None:
    """Every registered command (new ones too): help fits 80 columns, starts with a one-line
    summary, shows no Python types or typer's braces, and no sentence breaks mid-line."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    text = result.stdout
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    for python in ("<bool>", "<str>", "<int", "<float", "list[", "Path]", "<path>", "{", "}"):
        assert python not in text, (python, text)
    paragraphs = text.split("\n\n")
    summary = paragraphs[1].strip()
    assert summary and summary[0].isupper() and summary.endswith("."), summary
    for paragraph in paragraphs[1:]:
        body = paragraph.splitlines()
        if body and not body[0].strip().endswith(":"):
            # a rewrapped paragraph fills its lines: no line ends early only to go on below
            for line, after in itertools.pairwise(body):
                if line.startswith("  ") and after.startswith("  ") and not after.lstrip().startswith("-"):
                    assert len(line) + 1 + len(after.split()[0]) > 78 or line.rstrip().endswith(":"), (line, after)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_summary_is_one_line_that_the_command_list_shows_whole(command: str) -> None:
    own = CliRunner().invoke(app, [command, "--help"], terminal_width=80).stdout.split("\n\n")[1]
    assert "\n" not in own.strip(), own
    listing = CliRunner().invoke(app, ["--help"], terminal_width=80).stdout
    line = next(line for line in listing.splitlines() if re.match(rf"^  {command}\s", line))
    assert line.split(None, 1)[1] == own.strip()


def test_the_root_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=80)
    assert result.exit_code == 0
    for command in COMMANDS:
        assert re.search(rf"^  {command}\s", result.stdout, re.M), command


# ---------------------------------------------------------------- user text printed verbatim


def test_paths_are_printed_verbatim_not_as_markup_or_emoji(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(CASES / "two_recorders" / "host1.jsonl", raw / "host1 [copy].jsonl")
    (raw / "host1 [copy].jsonl").write_bytes((raw / "host1 [copy].jsonl").read_bytes() + b"{oops\n")
    result = run("replay", str(raw), "-o", str(tmp_path / "a"))
    assert result.exit_code == 1
    assert "host1 [copy].jsonl:" in result.stderr
    smile = run("replay", str(tmp_path / "a:smile:b"), "-o", str(tmp_path / "b"))
    assert smile.exit_code == 2 and "a:smile:b" in smile.stderr and "😄" not in smile.stderr


def test_console_helpers_print_their_message_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    from chat_archiver.console import fail, note, warn

    text = "127.0.0.1:-1 [copy] a:smile:b [bold]x[/] :thumbs_down:"
    warn(text)
    note(text)
    with pytest.raises(typer.Exit) as done:
        fail(text)
    assert done.value.exit_code == 2
    assert capsys.readouterr().err == f"warning: {text}\n{text}\nerror: {text}\n"


def test_verify_keeps_brackets_of_a_foreign_file_name(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "a"
    shutil.copytree(archive, root)
    hour = next((root / "desertbus" / "chat").iterdir())
    (hour / "notes [old].txt").write_text("x")
    result = CliRunner().invoke(app, ["verify", str(root)], terminal_width=200)
    assert "notes [old].txt" in result.stdout


# ---------------------------------------------------------------- broken pipes


@pytest.mark.integration
@pytest.mark.parametrize(
    "args",
    [
        ["verify", "{root}"],
        ["verify", "{root}", "--json"],
        ["export", "{root}", "desertbus", "--since", "1700000000", "--until", "1700003600", "--format", "text"],
        ["merge", "{root}"],
    ],
)
def test_a_closed_pipe_ends_quietly_as_unix_tools_do(archive: Path, args: list[str]) -> None:
    """`... | head -1`: no "error: None: Broken pipe", no false "problems found" (exit 1): the
    status a shell shows for a tool that SIGPIPE ended, and nothing on stderr."""
    proc = subprocess.Popen(
        [*CLI, *(a.format(root=archive) for a in args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    with proc.stderr:
        stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, stderr
    assert stderr == ""


# ---------------------------------------------------------------- inputs that hold nothing


def test_verify_raw_with_no_recordings_invents_no_gap(archive: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    text = tmp_path / "notes.txt"
    text.write_text("not a recording\n")
    for raw in (empty, text):
        result = run("verify", str(archive), "--raw", str(raw))
        assert result.exit_code == 2, result.output
        assert "no raw recordings" in result.stderr or "no readable raw recordings" in result.stderr
        assert str(raw) in result.stderr and result.stdout == ""
        replay = run("replay", str(raw), "-o", str(tmp_path / "out"))
        assert replay.exit_code == 2 and replay.stderr.split(":")[0] == result.stderr.split(":")[0]


def test_verify_takes_several_raw_paths_and_channels(archive: Path) -> None:
    one, two = (str(p) for p in sorted(CASES.glob("*/host*.jsonl"))[:2])
    result = run(
        "verify", str(archive), "--raw", one, "--raw", two, "-c", "desertbus", "-c", "#DesertBus", "--json", "-j", "1"
    )
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert list(report["channels"]) == ["desertbus"] and report["connections"]
    unknown = run("verify", str(archive), "-c", "desertbus", "-c", "nobody")
    assert unknown.exit_code == 2 and "nobody" in unknown.stderr


# ---------------------------------------------------------------- times and windows


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e999", "soon"])
def test_every_command_refuses_the_same_bad_time_the_same_way(tmp_path: Path, archive: Path, bad: str) -> None:
    replay = run("replay", str(CASES), "-o", str(tmp_path / "a"), "--since", bad)
    export = run("export", str(archive), "desertbus", "--since", bad, "--until", "1700003600")
    for result in (replay, export):
        assert result.exit_code == 2, result.output
        assert f"--since: time {bad!r}" in result.stderr, result.stderr
        assert result.stdout == ""
    assert not (tmp_path / "a").exists()


def test_the_same_empty_window_is_refused_the_same_way(tmp_path: Path, archive: Path) -> None:
    since, until = "2023-11-14T22:30:00Z", "1700000000"
    replay = run("replay", str(CASES), "-o", str(tmp_path / "a"), "--since", since, "--until", until)
    export = run("export", str(archive), "desertbus", "--since", since, "--until", until)
    old = run("export", str(archive), "desertbus", "--start", since, "--end", until)
    expected = f"the window is empty: --until {until} is not after --since {since}"  # as the user typed them
    assert replay.exit_code == export.exit_code == 2
    assert expected in replay.stderr and expected in export.stderr and "empty" in old.stderr


def test_a_window_with_no_records_says_so(tmp_path: Path, archive: Path) -> None:
    replay = run("replay", str(CASES), "-o", str(tmp_path / "a"), "--since", "2030-01-01", "--until", "2030-01-02")
    assert replay.exit_code == 0 and "no records were written in the window --since 2030-01-01" in replay.stderr
    export = run("export", str(archive), "desertbus", "--since", "2030-01-01", "--until", "2030-01-02")
    assert export.exit_code == 0 and export.stdout == "[]\n" and "no records in the window" in export.stderr


def test_export_old_window_names_still_work_and_format_is_case_insensitive(archive: Path) -> None:
    new = run("export", str(archive), "desertbus", "--since", "1700000000", "--until", "1700003600", "--format", "TEXT")
    old = run("export", str(archive), "desertbus", "--start", "1700000000", "--end", "1700003600", "--format", "text")
    assert new.exit_code == old.exit_code == 0 and new.stdout == old.stdout and new.stdout
    both = run("export", str(archive), "desertbus", "--since", "1", "--start", "1", "--until", "2")
    assert both.exit_code == 2 and "same option" in both.stderr


def test_export_errors_name_the_users_file_never_the_temporary_one(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()  # the rename over a folder fails: the error must name `out`
    result = run("export", str(archive), "desertbus", "--since", "1700000000", "--until", "1700003600", "-o", str(out))
    assert result.exit_code == 2
    assert str(out) in result.stderr and ".partial" not in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


# ---------------------------------------------------------------- replay's exits and summary


def test_replay_of_a_file_with_nothing_readable_is_exit_2(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n")
    result = run("replay", str(notes), "-o", str(tmp_path / "a"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no readable raw recordings in") and f"{notes}:1" in result.stderr


def test_replay_unknown_channel_says_so(tmp_path: Path) -> None:
    result = run("replay", str(CASES), "-o", str(tmp_path / "a"), "-c", "desertbus", "-c", "nobody", "--json")
    assert result.exit_code == 1
    assert "--channel nobody: no records for it" in result.stderr
    assert json.loads(result.stdout)["channels"] == ["desertbus"]


def test_replay_errors_use_option_names(tmp_path: Path) -> None:
    result = run("replay", str(CASES), "-o", str(tmp_path / "a"), "--max-server-lag", "30")
    assert result.exit_code == 2 and "--max-server-lag 30" in result.stderr and "max_server_lag" not in result.stderr


def test_replay_summary_names_the_copies_the_merge_folded(tmp_path: Path) -> None:
    """26 records in, 21 out: the 5 are copies of one message from several receivers."""
    result = CliRunner().invoke(app, ["replay", str(CASES), "-o", str(tmp_path / "a")], terminal_width=120)
    assert result.exit_code == 0
    rows = {
        cells[1].strip(): cells[2].strip()
        for cells in (line.split("│") for line in result.stdout.splitlines() if line.count("│") == 3)
    }
    assert rows["merge: records in"] == "26" and rows["merge: records out"] == "21"
    assert rows["merge: copies of a message folded into one record"] == "5"
    as_json = json.loads(run("replay", str(CASES), "-o", str(tmp_path / "b"), "--json").stdout)
    assert as_json["merge"]["copies_folded"] == 5


def test_replay_reports_a_merge_problem_without_a_traceback(tmp_path: Path) -> None:
    """The replay's closing merge meets a damaged file already in the archive: it is named, the
    rest is merged, exit 1 (no traceback)."""
    out = tmp_path / "a"
    assert run("replay", str(CASES), "-o", str(out), "--no-merge").exit_code == 0
    victim = next(p for p in sorted(out.rglob("*.json")))
    victim.write_bytes(victim.read_bytes() + b"{oops\n")
    result = run("replay", str(CASES), "-o", str(out))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert str(victim) in result.stderr


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.integration
def test_ctrl_c_on_replay_says_interrupted_and_a_rerun_finishes(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _long_recording(raw / "big.jsonl", 100_000)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*CLI, "replay", str(raw), "-o", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not list(out.rglob("*.json")):  # bounded: the first minute's file comes within seconds
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr and "interrupted:" in stderr and "again" in stderr
    again = subprocess.run(
        [*CLI, "replay", str(raw), "-o", str(out), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    whole = tmp_path / "whole"
    assert run("replay", str(raw), "-o", str(whole), "--json").exit_code == 0
    assert _tree(out) == _tree(whole)


def _long_recording(path: Path, lines: int) -> None:
    """One recorder connection in #big: `lines` messages, 20 a second."""
    t0 = 1_700_000_400_000_000
    events = [
        {
            "kind": "header",
            "format": "chat-archiver-raw",
            "version": 1,
            "recorder": "big",
            "slug": "Bg1Ab",
            "host": "big",
            "software": "test",
            "seq": 0,
            "at": t0,
        },
        {
            "kind": "open",
            "seq": 1,
            "at": t0,
            "conn": 0,
            "server": "wss://irc-ws.chat.twitch.tv:443",
            "dialect": "twitch",
        },
        {
            "kind": "recv",
            "seq": 2,
            "at": t0 + 1000,
            "conn": 0,
            "line": ":justinfan1!justinfan1@justinfan1.tmi.twitch.tv JOIN #big",
        },
        {"kind": "recv", "seq": 3, "at": t0 + 2000, "conn": 0, "line": "@room-id=1 :tmi.twitch.tv ROOMSTATE #big"},
    ]
    with path.open("w", newline="") as f:
        f.writelines(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
        for i in range(lines):
            at = t0 + 10_000 + i * 50_000
            u = f"u{i % 97}"
            line = f"@id=m-{i};tmi-sent-ts={at // 1000 - 100} :{u}!{u}@{u}.tmi.twitch.tv PRIVMSG #big :number {i}"
            f.write(
                json.dumps({"kind": "recv", "seq": 4 + i, "at": at, "conn": 0, "line": line}, separators=(",", ":"))
                + "\n"
            )


# ---------------------------------------------------------------- docs


def test_readme_points_only_to_files_a_clone_has() -> None:
    readme = (ROOT / "README.md").read_text()
    paths = re.findall(r"`((?:\.\./|docs/|tests/|fixtures/|bench/)[\w./*-]*)`", readme)
    assert paths
    for path in paths:
        assert not path.startswith("../"), path
        assert list(ROOT.glob(path)), path
    assert ".venv/bin" in readme and "PATH" in readme  # how to get chat-archiver on PATH after make run


def test_docs_cli_shows_every_shared_option() -> None:
    """An option two commands share is a convention: docs/cli.md's table names it."""
    doc = (ROOT / "docs" / "cli.md").read_text()
    seen: dict[str, int] = {}
    for command in COMMANDS:
        text = CliRunner().invoke(app, [command, "--help"], terminal_width=200).stdout
        for option in set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text)) - {"--help"}:
            seen[option] = seen.get(option, 0) + 1
    shared = sorted(o for o, n in seen.items() if n > 1)
    assert {"--out", "--channel", "--jobs", "--since", "--until", "--json"} <= set(shared), shared
    for option in shared:
        assert option in doc, option


def test_progress_bars_show_work_with_a_rate_and_time_left() -> None:
    from rich.progress import DownloadColumn, TimeRemainingColumn, TransferSpeedColumn

    from chat_archiver.console import progress

    by_bytes = {type(c) for c in progress(unit="bytes").columns}
    assert {DownloadColumn, TransferSpeedColumn, TimeRemainingColumn} <= by_bytes
    counted = progress(unit="minutes")
    rate = next(c for c in counted.columns if type(c).__name__ == "_RateColumn")
    assert rate.render(SimpleNamespace(finished_speed=None, speed=1234.4)).plain == "1,234 minutes/s"
    assert any(isinstance(c, TimeRemainingColumn) for c in counted.columns)


def test_os_errors_name_the_file_a_temporary_name_stands_for(capsys: pytest.CaptureFixture[str]) -> None:
    from chat_archiver.console import os_error

    for temp in ("out.json.0a17b2c3d4e5f60718293a4b5c6d7e8f.partial", "out.json.0a17b2c3d4e5f60718293a4b5c6d7e8f.temp"):
        with pytest.raises(typer.Exit):
            os_error(PermissionError(13, "Permission denied", temp), "fallback")
        assert capsys.readouterr().err == "error: out.json: Permission denied\n"
    with pytest.raises(typer.Exit):
        os_error(OSError(28, "No space left on device"), "ROOT")
    assert capsys.readouterr().err == "error: ROOT: No space left on device\n"


def test_verify_never_splits_a_file_and_line(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "a-rather-long-folder-name-so-that-the-path-is-longer-than-eighty-columns"
    shutil.copytree(archive, root)
    victim = sorted(root.rglob("*.json"))[0]
    lines = victim.read_bytes().count(b"\n")
    victim.write_bytes(victim.read_bytes() + b"{oops\n")
    result = CliRunner().invoke(app, ["verify", str(root)], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 1
    assert f"{victim}:{lines + 1}" in result.stdout  # on one line, whatever the width


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_examples_that_the_command_takes(command: str) -> None:
    """Every command's help ends with examples (the README's lines), each one this command, and
    `-h` is `--help`; `-j` is `-j, --jobs N` wherever it is taken."""
    text = CliRunner().invoke(app, [command, "-h"], terminal_width=80).stdout
    assert text == CliRunner().invoke(app, [command, "--help"], terminal_width=80).stdout
    examples = text.split("  Examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert examples
    for line in examples:
        assert line.startswith((f"    chat-archiver {command} ", "        --")), line
    if "--jobs" in text:
        assert "-j, --jobs N " in text, text


def test_top_level_help_names_every_command() -> None:
    text = CliRunner().invoke(app, ["-h"], terminal_width=80).stdout
    summary = text.split("Options:")[0]
    for command in COMMANDS:
        assert f"{command}:" in summary, (command, summary)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["replay", "raw", "-o", "x", "--jobs", "0"],
            "error: --jobs: must be at least 1 (see chat-archiver replay -h)",
        ),
        (["replay"], "error: RAW... is required (see chat-archiver replay -h)"),
        (["replay", "raw"], "error: --out is required (see chat-archiver replay -h)"),
        (["verify", "x", "-j", "two"], "error: --jobs: must be a whole number (see chat-archiver verify -h)"),
        (["merge", "x", "--interval", "0"], "error: --interval: must be at least 0.1 (see chat-archiver merge -h)"),
        (
            ["export", "x", "c", "--format", "foo"],
            "error: --format: 'foo' is not one of 'json', 'jsonl', 'text', 'irc', 'ass', 'html', 'twitchdownloader' "
            "(see chat-archiver export -h)",
        ),
        (
            ["replay", "raw", "-o", "x", "--jbos", "2"],
            "error: no such option: --jbos; did you mean --jobs, --json? (see chat-archiver replay -h)",
        ),
        (["nosuch"], "error: no such command 'nosuch' (see chat-archiver -h)"),
    ],
)
def test_usage_errors_are_one_line_in_the_clis_words(args: list[str], line: str) -> None:
    """docs/cli.md: one line, `error: ...`, the option as typed; no click usage box, no validator's
    wording ("Input should be ...", "Value error, ...")."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr == line + "\n"


@pytest.mark.parametrize(
    "args",
    [
        ["emotes", "ROOT", "chan", "--every", "1e300"],
        ["emotes", "ROOT", "chan", "--every", "8761"],
        ["archive", "ROOT", "chan", "--emote-sets", "1e300"],
    ],
)
def test_an_interval_beyond_a_year_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    """An hours interval is at most 8760 (a year): more is exit 2 with the option's name, not an
    OverflowError traceback from the wait."""
    result = CliRunner().invoke(app, [str(tmp_path) if a == "ROOT" else a for a in args], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert args[3] in result.output and "Traceback" not in result.output
