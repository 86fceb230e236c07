"""A host run unattended, as a new user runs it: relative paths, tokens, mistakes, damaged files,
deleted files, signals. Each test reproduces one thing a user met and checks what they should see."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from ircd import free_port
from twitchlike import TwitchLikeServer
from typer.testing import CliRunner

from chat_archiver.cli import app
from fixtures.txt2raw import convert
from live.supervisor import GIVE_UP_AFTER, ChildSpec, Supervisor

ROOT = Path(__file__).parent.parent
CASES = ROOT / "fixtures" / "cases"
CLI = [sys.executable, "-m", "chat_archiver.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args: str) -> typer.testing.Result:  # type: ignore[name-defined]
    return CliRunner().invoke(app, list(args))


def test_follow_with_relative_out_and_bare_checkpoint_writes_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `replay raw/ --out archive/ --follow`: an --out without a parent folder, and a
    bare `--checkpoint ck.json`, put the checkpoint in the current folder."""
    shutil.copytree(CASES / "two_recorders", tmp_path / "raw")
    monkeypatch.chdir(tmp_path)
    result = run("replay", "raw/", "--out", "archive/", "--follow", "--until-idle", "--idle", "0", "--poll", "0.01")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".archive.follow-checkpoint.json").is_file()
    assert list((tmp_path / "archive").rglob("*.json"))
    result = run("replay", "raw", "-o", "other", "--follow", "--checkpoint", "ck.json", "--until-idle", "--idle", "0")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ck.json").is_file()


def _wait(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _out, errs = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, errs.decode()


@pytest.mark.integration
@pytest.mark.parametrize("how", ["file", "environment"])
def test_archive_logs_in_with_a_token_and_nick_as_record_does(tmp_path: Path, how: str) -> None:
    """docs/live.md's `archive CHANNEL --dir D --token-file FILE` (or CHAT_ARCHIVER_TOKEN): each
    recorder logs in with the token and `--nick`, as `record` does."""
    token = tmp_path / "tok"
    token.write_text("sekrit\n")
    env = {**ENV, "CHAT_ARCHIVER_TOKEN": "sekrit"} if how == "environment" else ENV
    with TwitchLikeServer(token="sekrit") as server:
        args = [*CLI, "archive", "alpha", "--dir", str(tmp_path / "host"), "--server", server.url]
        args += ["--dialect", "twitch", "--nick", "bot", "--restart-backoff", "0.5", "--ping-after", "5"]
        args += ["--token-file", str(token)] if how == "file" else []
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert _wait(lambda: any(c.nick == "bot" and "#alpha" in c.joined for c in server.conns)), [
                (c.nick, c.joined) for c in server.conns
            ]
            assert all(c.password == "oauth:sekrit" for c in server.conns if c.nick == "bot")
        finally:
            code, errs = _stop(proc)
    assert code == 0, errs
    assert "exited with status" not in errs and "Traceback" not in errs, errs


@pytest.mark.integration
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["bad name"], "'bad name' is not a plain channel name"),
        (["alpha", "--token-file", "/nonexistent/tok", "--nick", "bot"], "cannot read the token file /nonexistent/tok"),
        (["alpha", "--name", "a b"], "invalid recorder name 'a b-1'"),
        (["alpha", "--ping-after", "0"], "--ping-after must be a number of seconds"),
        (["alpha", "--metrics-port", "70000"], "--metrics-port must be a port number"),
    ],
)
def test_archive_checks_what_record_checks_up_front(tmp_path: Path, extra: list[str], message: str) -> None:
    """A mistake the recorders would meet one by one, again and again, is refused before anything
    starts: one line, exit 2, nothing left running."""
    args = ["archive", *extra, "--dir", str(tmp_path / "host"), "--server", "ws://127.0.0.1:9"]
    args += ["--recorders", "2"] if "--name" in extra else []
    result = subprocess.run([*CLI, *args], cwd=ROOT, env=ENV, capture_output=True, timeout=60, check=False)
    errs = result.stderr.decode()
    assert result.returncode == 2, errs
    assert errs.startswith("error: ") and message in errs, errs
    assert "started" not in errs and "Traceback" not in errs, errs


@pytest.mark.integration
def test_archive_token_in_the_environment_without_nick_is_refused_up_front(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "archive", "alpha", "--dir", str(tmp_path), "--server", "ws://127.0.0.1:9"],
        cwd=ROOT,
        env={**ENV, "CHAT_ARCHIVER_TOKEN": "sekrit"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    errs = result.stderr.decode()
    assert result.returncode == 2 and "a token needs --nick" in errs and "CHAT_ARCHIVER_TOKEN" in errs, errs
    assert "sekrit" not in errs


@pytest.mark.integration
def test_a_child_that_keeps_exiting_with_the_usage_status_is_not_restarted_forever() -> None:
    """A child that says "nothing could be done" every time it starts ends the supervisor's run,
    with the reason; one that fails otherwise (a crash) is restarted as before."""
    usage = ChildSpec("recorder-1", [sys.executable, "-c", "raise SystemExit(2)"], "recorder")
    steady = ChildSpec("follower", [sys.executable, "-c", "import time; time.sleep(60)"], "follower")
    logs: list[str] = []
    supervisor = Supervisor([usage, steady], log=lambda level, m: logs.append(m), backoff_max=0.1, grace=5)
    stop = threading.Event()
    timer = threading.Timer(60, stop.set)  # a safety net only: the run ends by itself long before
    timer.start()
    try:
        supervisor.run(stop, poll=0.02)
    finally:
        timer.cancel()
    assert not stop.is_set()
    assert supervisor.gave_up is not None and "recorder-1 exited with status 2" in supervisor.gave_up
    assert supervisor.children[0].exits == [2] * GIVE_UP_AFTER
    assert supervisor.up() == {"recorder-1": False, "follower": False}

    crash = ChildSpec("recorder-1", [sys.executable, "-c", "raise SystemExit(1)"], "recorder")
    supervisor = Supervisor([crash], log=lambda level, m: None, backoff_max=0.05, grace=5)
    stop = threading.Event()
    threading.Timer(3, stop.set).start()
    supervisor.run(stop, poll=0.02)
    assert supervisor.gave_up is None and len(supervisor.children[0].exits) > GIVE_UP_AFTER


def test_export_keeps_the_readable_lines_of_a_file_with_one_damaged_line(tmp_path: Path) -> None:
    """One damaged line in a batch file costs that line only: every other line of the file is
    exported (as verify and replay read line by line), the bad one is named FILE:LINE, exit 1."""
    root = tmp_path / "archive"
    assert run("replay", str(CASES), "-o", str(root), "--json").exit_code == 0
    window = ["--since", "2023-11-14T22:00Z", "--until", "2023-11-14T23:00Z", "--format", "jsonl"]
    before = run("export", str(root), "desertbus", *window)
    assert before.exit_code == 0, before.output
    records = [json.loads(line) for line in before.stdout.splitlines()]
    biggest = max(root.rglob("*.json"), key=lambda p: p.read_bytes().count(b"\n"))
    lines = biggest.read_bytes().split(b"\n")
    assert len(lines) > 4
    damaged = json.loads(lines[2])
    lines[2] = lines[2][: len(lines[2]) // 2]  # cut in half: not JSON any more
    biggest.write_bytes(b"\n".join(lines))
    after = run("export", str(root), "desertbus", *window)
    assert after.exit_code == 1, after.output
    assert [json.loads(line) for line in after.stdout.splitlines()] == [r for r in records if r != damaged]
    assert f"{biggest}:3: " in after.stderr


def test_export_keeps_and_reports_a_torn_last_line(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    assert run("replay", str(CASES), "-o", str(root), "--json").exit_code == 0
    window = ["--since", "2023-11-14T22:00Z", "--until", "2023-11-14T23:00Z", "--format", "jsonl"]
    before = run("export", str(root), "desertbus", *window)
    biggest = max(root.rglob("*.json"), key=lambda p: p.read_bytes().count(b"\n"))
    biggest.write_bytes(biggest.read_bytes()[:-1])
    after = run("export", str(root), "desertbus", *window)
    assert after.exit_code == 1 and after.stdout == before.stdout, after.output
    last = biggest.read_bytes().count(b"\n") + 1
    assert f"{biggest}:{last}: the last line has no newline" in after.stderr


M0 = 1_700_000_040  # 2023-11-14T22:14:00Z


def _chat_recording(folder: Path, minutes: int, channel: str = "chan", start: int = M0) -> None:
    """One recorder connected throughout, a PRIVMSG every 6 s for `minutes` minutes."""
    lines = [
        "header host1 Ab3dE host1",
        f"{start - 30}.000 open 0 twitch wss://irc-ws.chat.twitch.tv:443",
        f"{start - 29}.500 send 0 JOIN #{channel}",
        f"{start - 29}.900 recv 0 :justinfan1!justinfan1@justinfan1.tmi.twitch.tv JOIN #{channel}",
        f"{start - 28}.000 recv 0 @room-id=1;slow=0 :tmi.twitch.tv ROOMSTATE #{channel}",
    ]
    for i in range(minutes * 10):
        sent = start + 6 * i + 1
        tags = f"@id=id-{i};tmi-sent-ts={sent}125"
        lines.append(f"{sent}.400 recv 0 {tags} :v!v@v.tmi.twitch.tv PRIVMSG #{channel} :message {i}")
    lines.append(f"{start + 60 * minutes + 30}.000 close 0 bye")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "host1.jsonl").write_bytes(convert("\n".join(lines) + "\n"))


def test_verify_names_a_minute_the_raw_holds_chat_for_and_the_archive_lacks(tmp_path: Path) -> None:
    """A minute's batch file deleted while a recorder was connected: not a quiet minute but a
    problem naming the minute, exit 1."""
    raw, root = tmp_path / "raw", tmp_path / "archive"
    _chat_recording(raw, minutes=6)
    assert run("replay", str(raw), "-o", str(root), "--json").exit_code == 0
    healthy = run("verify", str(root), "--raw", str(raw), "--json")
    assert healthy.exit_code == 0, healthy.output
    (lost,) = root.glob("chan/chat/*/17:00-*.json")
    lost.unlink()
    result = run("verify", str(root), "--raw", str(raw), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    (missing,) = [f for f in report["findings"] if f["kind"] == "missing-chat"]
    assert missing["channel"] == "chan" and missing["start"] == M0 + 180 and missing["end"] == M0 + 240
    assert "2023-11-14T22:17:00Z" in missing["message"] and "10 lines" in missing["message"]
    text = run("verify", str(root), "--raw", str(raw))
    assert text.exit_code == 1 and "missing-chat" in text.stdout + text.stderr


def test_chat_minute_reads_the_command_words_only() -> None:
    from verify.coverage import chat_minute

    m = M0 + 60
    assert chat_minute(f"@id=x;tmi-sent-ts={m - 1}900 :a!a@a PRIVMSG #Chan :hi", m + 0.3) == ("chan", M0)
    assert chat_minute(":a!a@a PRIVMSG #chan :hi", m + 3.0) is None  # may have been sent the minute before
    assert chat_minute(":a!a@a PRIVMSG #chan :hi", m + 12.0) == ("chan", m)
    assert chat_minute("PRIVMSG #chan :hi", m + 12.0) == ("chan", m)
    assert chat_minute(":tmi.twitch.tv NOTICE #chan :PRIVMSG #chan x", m + 12.0) is None
    assert chat_minute(":a!a@a PRIVMSG user :a private message", m + 12.0) is None


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CLI, *args], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _until_stderr_has(proc: subprocess.Popen[bytes], text: bytes, timeout: float = 60.0) -> bytes:
    """Read stderr until `text` shows (the rest is left for communicate())."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.readline()
    assert text in seen, seen
    return seen


@contextlib.contextmanager
def _peer(tmp_path: Path, *extra: str) -> Iterator[str]:
    """The fixture recordings' archive served by `chat-archiver serve` on loopback: its URL."""
    peer = tmp_path / "peer"
    assert run("replay", str(CASES), "-o", str(peer), "--json").exit_code == 0
    port = free_port()
    server = _start(["serve", str(peer), "--port", str(port), *extra])
    try:
        _until_stderr_has(server, b"serving")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


@pytest.mark.integration
def test_sigterm_stops_merge_interval_cleanly_with_its_totals(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    assert run("replay", str(CASES), "-o", str(root), "--json", "--no-merge").exit_code == 0
    proc = _start(["merge", str(root), "--interval", "0.2"])
    try:
        _until_stderr_has(proc, b"pass 2:")
        proc.send_signal(signal.SIGTERM)
        out, errs = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errs
    assert b"stopped after" in errs and b"minutes merged" in out and b"Traceback" not in errs


@pytest.mark.integration
def test_sigterm_stops_sync_interval_cleanly_with_its_totals(tmp_path: Path) -> None:
    with _peer(tmp_path) as url:
        proc = _start(["sync", str(tmp_path / "mine"), "--from", url, "--since", "2023-11-14", "--interval", "0.2"])
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not list((tmp_path / "mine").rglob("*.json")):
                time.sleep(0.05)
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            out, errs = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, errs
    assert b"stopped after" in errs and b"totals of" in out and b"Traceback" not in errs, (out, errs)


INTERRUPT_WHILE_IMPORTING = """
import importlib.abc, os, signal, sys

class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == module:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the module starts to load
        return None

sys.meta_path.insert(0, Interrupt())
module = sys.argv[1]
sys.argv = ["chat-archiver", *sys.argv[2:]]
from chat_archiver.__main__ import main
main()
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("typer", ["--version"]),
        ("chat_archiver.cli", ["--version"]),
        ("rich.console", ["verify", "-h"]),  # a command's own modules, loaded when it runs
        ("verify.shell", ["verify", "x"]),
    ],
)
def test_ctrl_c_while_the_cli_imports_is_one_line_and_130(module: str, args: list[str]) -> None:
    """The script's own entry point, with a Ctrl-C that lands while the CLI's modules load."""
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPT_WHILE_IMPORTING, module, *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 130, result.stderr.decode()
    assert result.stderr.decode() == "interrupted: stopped\n"
    assert result.stdout == b""


def test_the_installed_script_is_the_guarded_entry_point() -> None:
    script = Path(sys.executable).parent / "chat-archiver"
    assert "from chat_archiver.__main__ import main" in script.read_text()


def test_merge_stdout_of_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    assert run("replay", str(CASES), "-o", str(root), "--json").exit_code == 0
    result = run("merge", str(root), "--stdout")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: --stdout takes batch files (FILE.json ...), and {root} is a folder; "
        f"to merge an archive in place: chat-archiver merge {root}\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("channel", "start", "message"),
    [
        ("chan", M0, "hold no connection to this channel"),
        ("desertbus", M0 + 365 * 86400, "do not cover this channel's span (2023-11-14T22:20:01Z"),
    ],
)
def test_verify_with_raw_recordings_of_another_channel_or_year_invents_no_gap(
    tmp_path: Path, channel: str, start: int, message: str
) -> None:
    root, raw = tmp_path / "archive", tmp_path / "raw"
    assert run("replay", str(CASES), "-o", str(root), "--json").exit_code == 0
    _chat_recording(raw, minutes=2, channel=channel, start=start)
    result = run("verify", str(root), "--raw", str(raw), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [f["kind"] for f in report["findings"] if f["severity"] == "problem"] == []
    (elsewhere,) = [f for f in report["findings"] if f["kind"] == "raw-elsewhere"]
    assert elsewhere["channel"] == "desertbus" and message in elsewhere["message"], elsewhere


@pytest.mark.integration
def test_a_second_follower_on_the_same_archive_is_refused_whatever_its_checkpoint(tmp_path: Path) -> None:
    raw, root = tmp_path / "raw", tmp_path / "archive"
    shutil.copytree(CASES / "two_recorders", raw)
    first = _start(["replay", str(raw), "-o", str(root), "--follow", "--checkpoint", str(tmp_path / "a.json")])
    try:
        _until_stderr_has(first, b"following")
        second = subprocess.run(
            [*CLI, "replay", str(raw), "-o", str(root), "--follow", "--checkpoint", str(tmp_path / "b.json")],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        first.send_signal(signal.SIGTERM)
        _out, errs = first.communicate(timeout=60)
    assert second.returncode == 2, second.stderr.decode()
    assert second.stderr.decode().endswith(f"error: another follower is writing this archive ({root})\n")
    assert first.returncode == 0, errs
    assert sorted(os.listdir(root)) == ["desertbus"]  # the lock added nothing to the archive


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--until-idle"], "--until-idle"),
        (["--checkpoint", "ck.json"], "--checkpoint"),
        (["--poll", "1"], "--poll"),
        (["--idle", "5", "--status-file", "s.json"], "--idle, --status-file"),
    ],
)
def test_follow_options_without_follow_are_refused(tmp_path: Path, extra: list[str], named: str) -> None:
    result = run("replay", str(CASES), "-o", str(tmp_path / "archive"), *extra)
    assert result.exit_code == 2, result.output
    verb = "go" if "," in named else "goes"
    assert result.stderr == f"error: {named} {verb} with --follow only\n"
    assert not (tmp_path / "archive").exists()


STAGES = ("export", "live", "merge", "recorder", "replay", "serve", "sync", "verify", "rich")
LOADED_AFTER = """
import sys
from chat_archiver.cli import app
try:
    app(sys.argv[2:], prog_name="chat-archiver")
except SystemExit:
    pass
stages = set(sys.argv[1].split(","))
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & stages)))
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        (["--version"], ""),
        (["export", "--help"], "export,merge,rich"),
        (["serve", "--help"], "rich"),
    ],
)
def test_a_command_imports_its_own_stage_only(args: list[str], loaded: str) -> None:
    """The CLI starts like a small tool: `--version` imports no stage (nor rich), and a command
    imports what it runs, not every stage."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, ",".join(STAGES), *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines()[-1] == loaded


def test_verify_of_a_folder_that_is_not_an_archive_says_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("verify", str(tmp_path / "empty"))
    assert (
        result.exit_code == 2
        and result.stderr == f"error: {tmp_path / 'empty'}: the folder is empty: no archive here\n"
    )
    shutil.copytree(CASES / "two_recorders", tmp_path / "raw")
    result = run("verify", str(tmp_path / "raw"))
    assert result.exit_code == 2
    assert "holds 2 raw recordings, not an archive; to make an archive of them: chat-archiver replay" in result.stderr


@pytest.mark.integration
def test_verify_json_of_an_archive_whose_path_is_not_utf8(tmp_path: Path) -> None:
    """A folder name with undecodable bytes: the report, not orjson's 'surrogates not allowed'."""
    root = os.path.join(os.fsencode(tmp_path), b"a\xffb").decode("utf-8", "surrogateescape")
    assert run("replay", str(CASES), "-o", root, "--json").exit_code == 0
    result = subprocess.run([*CLI, "verify", root, "--json"], cwd=ROOT, env=ENV, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["root"] == root


def test_a_millisecond_epoch_says_so_and_since_takes_a_duration(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    assert run("replay", str(CASES), "-o", str(root), "--json").exit_code == 0
    result = run("export", str(root), "desertbus", "--since", "1700000000000", "--until", "1700000001000")
    assert result.exit_code == 2
    assert "looks like milliseconds since 1970; in Unix seconds that is 1700000000" in result.stderr
    for command in (["export", str(root), "desertbus", "--until", "1h"], ["replay", str(CASES), "-o", str(root)]):
        result = run(*command, "--since", "6h")
        assert result.exit_code == 0, result.output
        assert "no records" in result.stderr


def test_a_host_name_that_does_not_resolve_is_said_without_python_wording() -> None:
    import socket

    from recorder.connection import describe_error

    error = socket.gaierror(-2, "Name or service not known")
    assert describe_error(error) == "the host name does not resolve (Name or service not known)"
    assert describe_error(FileNotFoundError(2, "No such file or directory")) == "No such file or directory"


@pytest.mark.integration
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_ctrl_c_is_130_and_sigterm_0_for_archive_and_the_follower(tmp_path: Path, sig: int, code: int) -> None:
    """Ctrl-C is 130 in every command, after the same clean stop as SIGTERM (which is exit 0)."""
    with TwitchLikeServer() as server:
        host = _start(
            ["archive", "alpha", "--dir", str(tmp_path / "host"), "--server", server.url, "--ping-after", "5"]
        )
        try:
            assert _wait(lambda: any("#alpha" in c.joined for c in server.conns)), "no recorder joined"
            assert _wait((tmp_path / "host" / "state" / "follow-checkpoint.json.lock").exists)
            time.sleep(1.0)  # the follower's own start (its signal handlers) is done by now
            host.send_signal(sig)
            _out, errs = host.communicate(timeout=60)
        finally:
            if host.poll() is None:
                host.kill()
    assert host.returncode == code, errs
    assert (b"interrupted: " in errs) == (sig == signal.SIGINT) and b"Traceback" not in errs, errs
    follower = _start(["replay", str(tmp_path / "host" / "raw"), "-o", str(tmp_path / "again"), "--follow"])
    try:
        _until_stderr_has(follower, b"following")
        time.sleep(0.5)
        follower.send_signal(sig)
        _out, errs = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == code, errs
    assert (b"interrupted: " in errs) == (sig == signal.SIGINT), errs


def test_out_dash_is_standard_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "archive"
    assert run("replay", str(CASES), "-o", str(root), "--json").exit_code == 0
    monkeypatch.chdir(tmp_path)
    window = ["--since", "2023-11-14", "--until", "2023-11-15", "--format", "jsonl"]
    to_stdout = run("export", str(root), "desertbus", *window)
    dash = run("export", str(root), "desertbus", *window, "-o", "-")
    assert dash.exit_code == 0 and dash.stdout == to_stdout.stdout and to_stdout.stdout
    assert not (tmp_path / "-").exists()
    refused = run("replay", str(CASES), "-o", "-")
    assert refused.exit_code == 2 and "--out - (standard output) is for export" in refused.stderr
    assert not (tmp_path / "-").exists()


def test_sync_from_peers_that_cannot_be_reached_is_exit_2(tmp_path: Path) -> None:
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    result = run("sync", str(tmp_path / "mine"), "--from", dead[0], "--from", dead[1], "--timeout", "2")
    assert result.exit_code == 2, result.output
    assert (
        result.stderr.splitlines()[-1]
        == f"error: no peer could be reached ({', '.join(sorted(dead))}): nothing was fetched"
    )
    assert "/extras/" not in result.stderr  # a peer the chat pass could not reach is not asked for media too


@pytest.mark.integration
def test_sync_interval_says_one_line_per_pass(tmp_path: Path) -> None:
    with _peer(tmp_path) as url:
        proc = _start(["sync", str(tmp_path / "mine"), "--from", url, "--since", "2023-11-14", "--interval", "0.2"])
        try:
            seen = _until_stderr_has(proc, b"pass 2: ")
            proc.send_signal(signal.SIGTERM)
            out, _errs = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert b"pass 1: 4 files fetched (" in seen and b"from 1 peer, " in seen, seen
    assert b"pass 2: 0 files fetched" in seen
    assert out.count(b"sync into") == 1 and b": totals of " in out and b" passes" in out, out  # the totals only


def _get(url: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_serve_writes_an_access_log_and_says_loudly_when_root_goes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import re

    from serve.app import ChatApp
    from serve.server import Running

    root = tmp_path / "archive"
    assert run("replay", str(CASES), "-o", str(root), "--json").exit_code == 0
    lines: list[str] = []
    with Running(ChatApp(str(root), access_log=lines.append)) as server:
        assert _get(server.url + "/files") == (200, b'["desertbus"]')
        assert _get(server.url + '/nothing"here?x=1')[0] == 404
        root.rename(tmp_path / "moved")
        with caplog.at_level("WARNING", logger="chat_archiver.serve"):
            assert _get(server.url + "/files") == (200, b"[]")  # listings: [] (a backfiller reads JSON)
            assert _get(server.url + "/files/desertbus/chat") == (200, b"[]")
            assert _get(server.url + "/healthz")[0] == 503
            (tmp_path / "moved").rename(root)
            assert _get(server.url + "/healthz") == (200, b"ok")
    clf = re.compile(
        r'^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] "([^"\\]|\\.)*" \d{3} (\d+|-)$'
    )
    assert len(lines) == 6 and all(clf.match(line) for line in lines), lines
    # a line is written by the worker that answered, once the answer is out: answers' lines can come
    # in another order than the requests
    ends = [line.split("] ", 1)[1] for line in lines]
    assert '"GET /files HTTP/1.1" 200 13' in ends and '"GET /nothing\\"here?x=1 HTTP/1.1" 404 9' in ends, ends
    said = [r.getMessage() for r in caplog.records if r.name == "chat_archiver.serve"]  # not waitress's queue notes
    assert said == [
        f"the archive root {root} is gone: listings answer [] and /healthz 503 until it is back",
        f"the archive root {root} is back",
    ], said


@pytest.mark.integration
def test_serve_access_log_goes_to_stdout_unless_turned_off(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    assert run("replay", str(CASES), "-o", str(root), "--json").exit_code == 0
    for extra, expected in (([], 1), (["--no-access-log"], 0)):
        port = free_port()
        server = _start(["serve", str(root), "--port", str(port), *extra])
        try:
            _until_stderr_has(server, b"serving")
            assert _get(f"http://127.0.0.1:{port}/files")[0] == 200
        finally:
            server.send_signal(signal.SIGTERM)
            out, errs = server.communicate(timeout=30)
        assert server.returncode == 0, errs
        assert out.decode().count('"GET /files HTTP/1.1" 200 13') == expected, out


def test_receivers_are_listed_as_people_count(tmp_path: Path) -> None:
    from tests.archives import write_batch
    from verify.analysis import natural_key

    assert sorted(["h.s.10", "h.s.2", "h.s.1", "g.s.3"], key=natural_key) == ["g.s.3", "h.s.1", "h.s.2", "h.s.10"]
    record = {
        "command": "PRIVMSG",
        "params": ["#chan", "hi"],
        "sender": "v",
        "user": "v",
        "host": "v.tmi.twitch.tv",
        "tags": {"id": "id-1"},
        "receivers": {f"host.s.{i}": M0 + 1.5 for i in (10, 2, 1)},
        "time": M0 + 1,
        "time_range": 0,
    }
    write_batch(str(tmp_path), "chan", M0, [record])
    report = json.loads(run("verify", str(tmp_path), "--json").stdout)
    assert list(report["channels"]["chan"]["receivers"]) == ["host.s.1", "host.s.2", "host.s.10"]
    text = run("verify", str(tmp_path)).stdout
    assert text.index("host.s.2 ") < text.index("host.s.10 "), text


@pytest.mark.integration
def test_the_followers_summary_is_one_line_in_a_log(tmp_path: Path) -> None:
    shutil.copytree(CASES / "two_recorders", tmp_path / "raw")
    args = ["replay", str(tmp_path / "raw"), "-o", str(tmp_path / "a"), "--follow", "--until-idle", "--idle", "0"]
    result = subprocess.run([*CLI, *args], cwd=ROOT, env={**ENV, "COLUMNS": "40"}, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    (line,) = result.stdout.decode().splitlines()
    assert line.startswith("events=") and line.split()[-1].startswith("streams="), line


def test_verify_connection_table_fits_80_columns(tmp_path: Path) -> None:
    raw, root = tmp_path / "raw", tmp_path / "archive"
    _chat_recording(raw, minutes=2)
    text = (raw / "host1.jsonl").read_bytes()
    lines = ["header host1.longer-name Ab3dE host1"]  # a longer recorder name, times in milliseconds
    lines += [
        f"{M0 - 30}.123 open 0 twitch wss://irc-ws.chat.twitch.tv:443",
        f"{M0 - 29}.500 send 0 JOIN #chan",
        f"{M0 + 150}.456 close 0 bye",
    ]
    (raw / "host2.jsonl").write_bytes(convert("\n".join(lines) + "\n"))
    assert text
    assert run("replay", str(raw), "-o", str(root), "--json").exit_code == 0
    result = CliRunner().invoke(app, ["verify", str(root), "--raw", str(raw)], terminal_width=80)
    table = result.stdout.split("recorder connections on 2023-11-14 (UTC)")[1].splitlines()[2:]
    assert table and all(len(line) <= 80 for line in table)
    assert all(line.split()[-2] in ("yes", "ended)") for line in table if line.strip()), table  # a row a line


@pytest.mark.integration
def test_sync_of_a_window_that_holds_nothing_says_the_peer_has_older_hours(tmp_path: Path) -> None:
    with _peer(tmp_path, "--no-access-log") as url:
        result = run("sync", str(tmp_path / "mine"), "--from", url)  # --since 14d
    assert result.exit_code == 0, result.output
    assert (
        "warning: the window (--since 14d) holds nothing the peers have; they hold 1 older hour, "
        "the newest 2023-11-14T22: to fetch them, --since 2023-11-14 (or earlier)"
    ) in result.stderr, result.stderr
