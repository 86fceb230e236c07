"""A host run unattended, as a new user runs it: relative paths, tokens, mistakes, damaged files,
deleted files, signals. Each test reproduces one thing a user met and checks what they should see."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from twitchlike import TwitchLikeServer
from typer.testing import CliRunner

from chat_archiver.cli import app

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
