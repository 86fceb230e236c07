"""THE LAW end to end, with real processes: `archive` (two real recorders and the follower under the
supervisor) against the Twitch-like server and against InspIRCd, the follower killed with -9 at
random moments and a recorder killed once; once the recorders stop and the follower has caught
up, the live archive is byte for byte `replay RAW --out OTHER`."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from ircd import INSPIRCD, InspIRCd, IrcClient, free_port
from twitchlike import ServerConn, TwitchLikeServer, chat_line, wait_until

from formats.store import is_debris_name

ROOT = Path(__file__).parent.parent
CLI = [sys.executable, "-m", "chat_archiver.cli"]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def tree(root: Path) -> dict[str, bytes]:
    """Every file of the archive. A temporary file of a write the kill -9 cut short is debris, not
    part of the archive (verify says so; the next replay or merge removes it once it is old)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and not is_debris_name(p.name)
    }


class Broadcast:
    """A busy channel: a new line every 10 ms, sent to every joined connection (so the two recorders
    and their overlapping connections see the same messages, and the merge has work to do)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.lines: list[str] = []
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self.stop.wait(0.01):
            self.lines.append(chat_line(i, self.channel, base_ms=int(time.time() * 1000) - i * 37))
            i += 1

    def script(self, rng: random.Random) -> object:
        def run(conn: ServerConn) -> None:
            if not conn.wait_joined([self.channel], 15):
                return
            sent = len(self.lines)
            end = time.monotonic() + rng.uniform(2.0, 6.0)
            while not self.stop.is_set() and time.monotonic() < end:
                now = len(self.lines)
                if now > sent:
                    conn.send(*self.lines[sent:now])
                    sent = now
                time.sleep(0.01)
            if not self.stop.is_set():
                conn.drop()  # the recorder writes a close event (its batches close) and reconnects

        return run


def _children(state: Path) -> dict[str, int | None]:
    try:
        data = json.loads((state / "supervisor.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name: c["pid"] for name, c in data["children"].items()}


def _run_archive_and_kill(
    tmp: Path,
    server_url: str,
    dialect: str,
    channel: str,
    *,
    seconds: float,
    seed: int,
    metrics_port: int | None = None,
) -> tuple[Path, list[str]]:
    rng = random.Random(seed)
    host = tmp / "host"
    args = [
        *CLI,
        "archive",
        channel,
        "--dir",
        str(host),
        "--server",
        server_url,
        "--dialect",
        dialect,
        "--recorders",
        "2",
        "--name",
        "test",
        "--idle",
        "3",
        "--restart-backoff",
        "0.5",
    ]
    if metrics_port is not None:
        args += ["--metrics-port", str(metrics_port)]
    log = open(tmp / "archive.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    notes: list[str] = []
    try:
        state = host / "state"
        assert wait_until(lambda: all(_children(state).get(n) for n in ("recorder-1", "recorder-2", "follower")), 30)
        recorders = {n: _children(state)[n] for n in ("recorder-1", "recorder-2")}
        end = time.monotonic() + seconds
        killed_recorder = False
        while time.monotonic() < end:
            time.sleep(rng.uniform(1.0, 3.5))
            pids = _children(state)
            if not killed_recorder and time.monotonic() > end - seconds / 2:
                os.kill(pids["recorder-1"] or 0, signal.SIGKILL)  # a recorder crash: restarted, new slug
                notes.append("recorder-1 killed")
                killed_recorder = True
                continue
            follower = pids.get("follower")
            if follower:
                os.kill(follower, signal.SIGKILL)
                notes.append(f"follower {follower} killed")
                assert wait_until(lambda f=follower: _children(state).get("follower") not in (None, f), 20)
        # a follower crash never stopped a recorder: recorder-2 is the same process throughout
        assert _children(state)["recorder-2"] == recorders["recorder-2"]
        if metrics_port is not None:
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
            key = 'chat_archiver_archive_restarts_total{child="follower"}'
            restarts = [line for line in text.splitlines() if line.startswith(key)]
            assert restarts and float(restarts[0].split()[-1]) >= 1, text
            assert "chat_archiver_archive_seconds_behind" in text and "chat_archiver_archive_lines_behind" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, (tmp / "archive.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    return host, notes


def _catch_up_and_compare(tmp: Path, host: Path) -> None:
    # The recorders have stopped: the follower catches up (the killed recorder's stream has ended)
    done = subprocess.run(
        [
            *CLI,
            "replay",
            str(host / "raw"),
            "--out",
            str(host / "archive"),
            "--follow",
            "--until-idle",
            "--idle",
            "0",
            "--checkpoint",
            str(host / "state" / "follow-checkpoint.json"),
            "--poll",
            "0.05",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr.decode()
    assert b"Traceback" not in done.stderr
    offline = subprocess.run(
        [*CLI, "replay", str(host / "raw"), "--out", str(tmp / "offline"), "--json"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert offline.returncode in (0, 1), offline.stderr.decode()
    live, other = tree(host / "archive"), tree(tmp / "offline")
    assert other  # one file per minute (the merge ran in both)
    assert sorted(live) == sorted(other)
    assert live == other


@pytest.mark.parametrize("seed", [1, 2])
def test_live_archive_equals_replay_after_kill_9s_twitchlike(tmp_path: Path, seed: int) -> None:
    broadcast = Broadcast("alpha")
    rng = random.Random(seed)
    with TwitchLikeServer(script=broadcast.script(rng)) as server:  # type: ignore[arg-type]
        try:
            host, notes = _run_archive_and_kill(
                tmp_path, server.url, "twitch", "alpha", seconds=16, seed=seed, metrics_port=free_port()
            )
        finally:
            broadcast.stop.set()
    assert any("follower" in n for n in notes) and "recorder-1 killed" in notes
    _catch_up_and_compare(tmp_path, host)


@pytest.mark.skipif(INSPIRCD is None, reason="inspircd is not installed here (CI installs it)")
def test_live_archive_equals_replay_after_kill_9s_inspircd(tmp_path: Path) -> None:
    with InspIRCd(tmp_path / "ircd") as ircd:
        stop = threading.Event()

        def talk() -> None:
            talker = IrcClient(ircd.irc_port, "talker")
            talker.send("JOIN #lobby")
            i = 0
            while not stop.wait(0.02):
                talker.send(f"PRIVMSG #lobby :message {i} ✓")
                i += 1
            talker.close()

        thread = threading.Thread(target=talk, daemon=True)
        thread.start()
        try:
            host, notes = _run_archive_and_kill(tmp_path, ircd.ws_url, "ircv3", "lobby", seconds=12, seed=3)
        finally:
            stop.set()
            thread.join(10)
    assert any("follower" in n for n in notes)
    _catch_up_and_compare(tmp_path, host)
