"""Live: chat sent to the Twitch-like server is answered by the justlog API within seconds of its
minute being written, with real processes: `chat-archiver archive` (a recorder, and the follower,
which updates the search index after each minute it writes) and `serve` reading that index.

The lines carry a server time four minutes old, so the follower closes their minutes as soon as
it reads them (a minute closes two minutes after it ends): the test waits seconds, not minutes,
and the delay it measures is from the minute's batch file appearing to the API showing it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from index import open_index
from serve.app import ChatApp
from serve.justlog import JustlogApi
from serve.server import Running
from tests.twitchlike import ServerConn, TwitchLikeServer, chat_line, wait_until

ROOT = Path(__file__).parent.parent
CLI = [sys.executable, "-m", "chat_archiver.cli"]
CHANNEL = "alpha"
SETTLED = 10.0  # seconds from a minute's file to the API showing its chat

pytestmark = [pytest.mark.integration]


def _privmsgs(base_ms: int, first: int, count: int) -> list[str]:
    """PRIVMSG lines only (chat_line's kinds 0-6), numbered from `first`."""
    lines: list[str] = []
    i = first
    while len(lines) < count:
        if i % 11 <= 6:
            lines.append(chat_line(i, CHANNEL, base_ms=base_ms))
        i += 1
    return lines


class Sender:
    """The server's side: after the join, sends whatever `batches` gets, as it gets it."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def add(self, lines: list[str]) -> None:
        with self.lock:
            self.pending.extend(lines)

    def script(self, conn: ServerConn) -> None:
        if not conn.wait_joined([CHANNEL], 20):
            return
        while not self.stop.wait(0.05):
            with self.lock:
                lines, self.pending = self.pending, []
            if lines:
                conn.send(*lines)


def ids_shown(base: str) -> set[str]:
    """The ids of every message the API shows for the channel, day by day (the frontend's way)."""
    found: set[str] = set()
    try:
        with urllib.request.urlopen(f"{base}/list?channel={CHANNEL}", timeout=10) as r:
            days = json.loads(r.read())["availableLogs"]
    except OSError:
        return found
    for day in days:
        with urllib.request.urlopen(
            f"{base}/channel/{CHANNEL}/{day['year']}/{day['month']}/{day['day']}?json", timeout=10
        ) as r:
            found.update(m["id"] for m in json.loads(r.read())["messages"])
    return found


def batch_files(root: Path) -> set[Path]:
    return set((root / CHANNEL / "chat").glob("*/*.json"))


def test_live_chat_reaches_the_api_within_seconds(tmp_path: Path) -> None:
    sender = Sender()
    host = tmp_path / "host"
    root = host / "archive"
    url = "sqlite:" + str(tmp_path / "index.sqlite")
    root.mkdir(parents=True)
    made = subprocess.run([*CLI, "index", str(root), "--db", url], cwd=ROOT, capture_output=True, check=False)
    assert made.returncode == 0, made.stderr  # an empty index, there before serve reads it
    with TwitchLikeServer(script=sender.script) as server:
        args = [
            *CLI,
            "archive",
            CHANNEL,
            "--dir",
            str(host),
            "--server",
            server.url,
            "--dialect",
            "twitch",
            "--db",
            url,
        ]
        log = open(tmp_path / "archive.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen([*args, "--db", url, "--name", "live", "--idle", "3"], cwd=ROOT, stdout=log, stderr=log)
        api = JustlogApi(lambda: open_index(str(root), url))
        try:
            assert wait_until(lambda: bool(server.conns) and server.conns[0].wait_joined([CHANNEL], 1), 30)
            with Running(ChatApp(str(root), extra=api)) as serve:
                base = serve.url
                for round_ in range(2):  # twice: the second round meets an index and a server already reading
                    lines = _privmsgs(int((time.time() - 240) * 1000), first=round_ * 100, count=5)
                    wanted = {line.split(";id=", 1)[1].split(";", 1)[0] for line in lines}
                    before = batch_files(root)
                    sender.add(lines)
                    assert wait_until(lambda b=before: batch_files(root) - b, 60), (
                        tmp_path / "archive.log"
                    ).read_text()
                    written = time.monotonic()
                    assert wait_until(lambda w=wanted: w <= ids_shown(base), 30), (wanted, ids_shown(base))
                    delay = time.monotonic() - written
                    assert delay < SETTLED, delay
        finally:
            sender.stop.set()
            proc.terminate()
            proc.wait(60)
            log.close()
            api.close()
