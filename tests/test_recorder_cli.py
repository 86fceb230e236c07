"""`chat-archiver record` as a user runs it: a real process, real signals, kill -9, the token."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from twitchlike import Recording, ServerConn, TwitchLikeServer, chat_line, wait_until
from typer.testing import CliRunner

from chat_archiver.cli import app
from demo.twitchlike import free_port

TOKEN = "s3cr3tT0kenValue42xyz"
_CLI = [sys.executable, "-c", "from chat_archiver.cli import main; main()", "record"]


class Proc:
    """The recorder as a subprocess, its stdout and stderr going to files (no pipe can fill up)."""

    def __init__(self, tmp: Path, args: list[str], env: dict[str, str] | None = None, tag: str = "p") -> None:
        self.out_path = tmp / f"{tag}.stdout"
        self.err_path = tmp / f"{tag}.stderr"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*_CLI, *args],
                stdout=out,
                stderr=err,
                env={**os.environ, "COLUMNS": "200", **(env or {})},
            )

    def output(self) -> str:
        return self.out_path.read_text() + self.err_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


def _recv_count(out: Path) -> int:
    """How many recv events are on disk now (torn or not; a rough count for polling)."""
    return sum(p.read_bytes().count(b'"kind":"recv"') for p in out.rglob("*.jsonl"))


def _stream(conn: ServerConn) -> None:
    """Connection 0 pushes chat until the client goes away; later ones send 20 lines."""
    assert conn.wait_joined(["alpha"])
    if conn.index == 0:
        i = 0
        while not conn.closed:
            conn.send(chat_line(i, "alpha"))
            i += 1
            if i % 20 == 0:
                time.sleep(0.002)
    else:
        for i in range(20):
            conn.send(chat_line(10_000 + i, "alpha"))


@pytest.mark.integration
@pytest.mark.slow
def test_kill_9_loses_nothing_written_and_restart_starts_a_new_file(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    with TwitchLikeServer(_stream) as server:
        args = ["alpha", "--out", str(out), "--server", server.url, "--dialect", "twitch", "--name", "crash"]
        first = Proc(tmp_path, args, tag="first")
        try:
            assert wait_until(lambda: _recv_count(out) >= 400, 30), first.output()
            seen_before_kill = _recv_count(out)
        finally:
            first.kill()
        assert first.proc.returncode == -signal.SIGKILL
        assert server.conns[0].wait_for(lambda: server.conns[0].closed)
        sent = list(server.conns[0].sent)

        recording = Recording(str(out))
        # a torn last line is the only acceptable damage after kill -9
        assert all("torn last line" in p.message for p in recording.problems), recording.problems
        recv = recording.by_conn("recv")[0]
        assert len(recv) >= seen_before_kill - 1  # all but possibly the torn one we counted
        assert recv == sent[: len(recv)]  # a prefix of what the server sent: nothing lost, nothing extra
        [old_file] = recording.paths
        old_digest = hashlib.sha256(Path(old_file).read_bytes()).digest()

        second = Proc(tmp_path, args, tag="second")
        try:
            assert server.wait_conns(2)
            conn1 = server.conns[1]
            assert wait_until(
                lambda: (
                    len(conn1.sent) >= 20 + 11 and set(conn1.sent) <= {e.text for e in Recording(str(out)).of("recv")}
                ),
                30,
            ), second.output()
            assert second.stop(signal.SIGINT) == 130, second.output()  # Ctrl-C stops as cleanly as SIGTERM
        finally:
            second.kill()
    after = Recording(str(out))
    assert len(after.streams) == 2  # a new process is a new stream (new slug), in a new file
    new_files = [p for p in after.paths if p != old_file]
    assert len(new_files) == 1
    assert hashlib.sha256(Path(old_file).read_bytes()).digest() == old_digest
    newest = next(s for s in after.streams if s.files[0][1] == new_files[0])
    assert newest.header.slug not in old_file
    assert [e.text for e in after.by_slug[newest.header.slug] if e.kind == "recv"] == conn1.sent


@pytest.mark.integration
def test_sigterm_flushes_closes_and_exits_0_and_the_token_never_leaks(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")

    def script(conn: ServerConn) -> None:
        assert conn.wait_joined(["alpha"])
        conn.send(*(chat_line(i, "alpha") for i in range(30)))

    metrics_port = free_port()
    with TwitchLikeServer(script, token=TOKEN) as server:
        args = [
            "#Alpha",
            "--out",
            str(out),
            "--server",
            server.url,
            "--dialect",
            "twitch",
            "--nick",
            "archivist",
            "--token-file",
            str(token_file),
            "--name",
            "tok",
            "--gzip",
            "--metrics-port",
            str(metrics_port),
        ]
        proc = Proc(tmp_path, args)
        try:
            assert server.wait_conns(1)
            conn = server.conns[0]
            assert wait_until(lambda: len(conn.sent) >= 30 + 11, 20), proc.output()
            assert conn.password == f"oauth:{TOKEN}"  # the server did get it
            cmdline = Path(f"/proc/{proc.proc.pid}/cmdline").read_bytes()
            assert TOKEN.encode() not in cmdline
            assert wait_until(lambda: _recv_count(out) >= 41, 20)
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
                metrics = response.read().decode()
            assert 'chat_archiver_recorder_lines_received_total{channel="alpha",command="PRIVMSG"}' in metrics
            assert TOKEN not in metrics
            assert proc.stop() == 0, proc.output()
        finally:
            proc.kill()
    output = proc.output()
    assert TOKEN not in output
    assert "Traceback" not in output
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != token_file]
    assert any(p.name.endswith(".jsonl.gz") for p in files)  # --gzip: the closed hour was compressed
    for p in files:
        data = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        assert TOKEN.encode() not in data, p
    recording = Recording(str(out))
    assert recording.problems == []
    assert "PASS ***" in recording.by_conn("send")[0]
    assert recording.of("close")[-1].text == "shutdown"


@pytest.mark.integration
def test_bad_token_says_login_failed_and_never_prints_it(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    with TwitchLikeServer(token="the-right-one") as server:
        args = ["alpha", "--out", str(out), "--server", server.url, "--dialect", "twitch", "--nick", "archivist"]
        proc = Proc(tmp_path, args, env={"CHAT_ARCHIVER_TOKEN": TOKEN})
        try:
            code = proc.proc.wait(30)
        finally:
            proc.kill()
    output = proc.output()
    assert code == 2, output
    assert "login failed" in output and "Login authentication failed" in output
    assert TOKEN not in output and "Traceback" not in output
    for p in out.rglob("*"):
        if p.is_file():
            assert TOKEN.encode() not in p.read_bytes()


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad channel!", "--out", "X"], "is not a plain channel name"),
        (["#", "--out", "X"], "is not a plain channel name"),
        (["alpha", "--out", "X", "--dialect", "irc"], "error: --dialect: 'irc' is not one of"),
        (["alpha", "--out", "X", "--metrics-port", "99999"], "must be a port number from 1 to 65535, not 99999"),
        (
            ["alpha", "--out", "X", "--metrics-port", "-1"],
            "--metrics-port must be a port number from 1 to 65535, not -1",
        ),
        (["alpha", "--out", "X", "--metrics-port", "0"], "--metrics-port must be a port number from 1 to 65535, not 0"),
        (
            ["alpha", "--out", "X", "--ping-timeout", "0"],
            "--ping-timeout must be a number of seconds, at least 0.1, not 0",
        ),
        (["alpha", "--out", "X", "--silence-limit", "nan"], "--silence-limit must be a number of seconds"),
        (["alpha", "--out", "X", "--server", "http://example.invalid"], "must be a ws:// or wss:// URL"),
        (["alpha", "--out", "X", "--token-file", "/nonexistent/token"], "cannot read the token file"),
        (["alpha", "--out", "X", "--name", "../evil"], "invalid recorder name"),
    ],
)
def test_bad_arguments_get_one_clear_line(args: list[str], message: str, tmp_path: Path) -> None:
    args = [a.replace("X", str(tmp_path / "raw")) for a in args]
    result = runner.invoke(app, ["record", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_token_without_a_nick_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_ARCHIVER_TOKEN", TOKEN)
    result = runner.invoke(app, ["record", "alpha", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "a token needs --nick" in result.output
    assert TOKEN not in result.output


def test_unwritable_output_folder_is_refused_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["record", "alpha", "--out", str(blocker / "raw"), "--server", "ws://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot write the recording in" in result.output
    assert "Traceback" not in result.output


def test_record_has_help() -> None:
    result = runner.invoke(app, ["record", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0
    options = (
        "--out",
        "--server",
        "--dialect",
        "--nick",
        "--token-file",
        "--name",
        "--gzip",
        "--metrics-port",
        "--ping-after",
        "--ping-timeout",
        "--silence-limit",
    )
    for option in options:
        assert option in result.output
    assert "--backoff-max" not in result.output
    # a one-line summary first, then prose that rewraps (its second paragraph fills its lines)
    paragraphs = [p.strip() for p in result.output.split("\n\n")]
    assert paragraphs[0].startswith("Usage: chat-archiver record [OPTIONS] CHANNEL...")
    assert paragraphs[1] == "Record chat into raw recordings until stopped."
    prose = paragraphs[2].splitlines()
    assert len(prose) > 2 and all(len(line) > 60 for line in prose[:-1]), prose
    for python_type in ("<int>", "<float>", "<str>", "<path>", "<bool>", "list["):
        assert python_type not in result.output


def test_dialect_is_a_case_insensitive_choice(tmp_path: Path) -> None:
    # '-x' is a legal name for neither dialect; the message shows which dialect's rule was applied
    result = runner.invoke(app, ["record", "--out", str(tmp_path), "--dialect", "IRCv3", "--", "-x"])
    assert result.exit_code == 2, result.output
    assert "not starting with '-' or '.'" in result.output


@pytest.mark.integration
def test_unreachable_server_is_retried_and_said_without_a_traceback(tmp_path: Path) -> None:
    port = free_port()  # nobody listens there
    url = f"ws://127.0.0.1:{port}/chat:-1:[old]"  # an emoji code and a markup tag: printed verbatim
    proc = Proc(tmp_path, ["alpha", "--out", str(tmp_path / "raw"), "--server", url])
    try:
        assert wait_until(lambda: proc.output().count("cannot connect") >= 2, 30), proc.output()
        assert proc.stop() == 0
    finally:
        proc.kill()
    output = proc.output()
    assert f"cannot connect to {url}: connection refused; retrying in" in output
    assert f"recording 1 channel from {url} (ircv3)" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "server",
    [
        f"wss://archivist:{TOKEN}@127.0.0.1:PORT/",
        f"wss://oauth:{TOKEN}@127.0.0.1:PORT",
        f"ws://127.0.0.1:PORT/?token={TOKEN}",
        f"ws://127.0.0.1:PORT/#{TOKEN}",
        f"ws://{TOKEN}@127.0.0.1:PORT/",
    ],
)
@pytest.mark.parametrize("command", ["record", "archive"])
def test_a_token_in_the_server_url_is_refused_and_never_shown(tmp_path: Path, server: str, command: str) -> None:
    """The URL goes into every raw file's open event, the log and a child's command line: one
    holding a secret is a usage error that never repeats it, before anything is connected."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.05)  # a connection made before the command returned is queued already
        url = server.replace("PORT", str(listener.getsockname()[1]))
        args = ["alpha", "--out", str(tmp_path / "raw")] if command == "record" else ["alpha", "--dir", str(tmp_path)]
        result = runner.invoke(app, [command, *args, "--server", url])
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody ever connected
    assert result.exit_code == 2, result.output
    assert "--server must not hold a user name, password, token or query" in result.output
    assert TOKEN not in result.output
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("token", "nick", "message"),
    [
        (TOKEN + "\r\nPRIVMSG #alpha :injected", "archivist", "the token holds a space, a line break"),
        (TOKEN + "\nJOIN #other", "archivist", "the token holds a space, a line break"),
        (TOKEN + "\x00", "archivist", "the token holds a space, a line break"),
        (TOKEN, "archivist\r\nPRIVMSG #alpha :injected", "--nick 'archivist\\r\\nPRIVMSG #alpha :injected' holds"),
        (TOKEN, "arch ivist", "holds a space, a control character"),
        (TOKEN, ":archivist", "leading ':'"),
    ],
)
def test_a_line_break_in_the_token_or_nick_is_refused_before_anything_is_sent(
    tmp_path: Path, token: str, nick: str, message: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.05)  # a connection made before the command returned is queued already
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}"
        args = [
            "alpha",
            "--out",
            str(tmp_path / "raw"),
            "--server",
            url,
            "--nick",
            nick,
            "--token-file",
            str(token_file),
        ]
        result = runner.invoke(app, ["record", *args])
        with pytest.raises(TimeoutError):
            listener.accept()  # refused before connecting: nothing was sent
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert TOKEN not in result.output
