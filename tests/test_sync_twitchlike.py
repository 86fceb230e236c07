"""The whole path, with real parts: three real recorders on the Twitch-like server, each dropped
at a different moment (so each recording has its own gap), replayed into three archives; each
archive served over HTTP and synced from the other two by the `sync` command: the three archives
end byte-identical, equal to replaying the three recordings at once, holding every PRIVMSG that any
recorder received."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from twitchlike import Recording, RunningRecorder, ServerConn, TwitchLikeServer, chat_line, fast_config, wait_until

from formats.store import iter_batch_files
from serve.app import ChatApp
from serve.server import Running
from tests.archives import read_batch_file
from tests.pipeline import replay
from tests.test_sync_converge import tree

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXE = str(Path(sys.executable).parent / "chat-archiver")
LINES = 240
GAPS = (50, 110, 170)  # where each recorder's first connection is dropped


class Broadcast:
    """One chat stream, sent to whichever connection of each recorder is joined right now."""

    def __init__(self) -> None:
        self.live: dict[int, ServerConn] = {}
        self.lock = threading.Lock()
        self.sent = 0
        self.reached = threading.Condition(self.lock)

    def attach(self, recorder: int, conn: ServerConn) -> None:
        with self.lock:
            self.live[recorder] = conn

    def detach_at(self, recorder: int, conn: ServerConn, index: int) -> None:
        """Drop `conn` once the stream has sent `index` lines: the lines until it reconnects are lost."""
        with self.reached:
            self.reached.wait_for(lambda: self.sent >= index, timeout=60)
            if self.live.get(recorder) is conn:
                del self.live[recorder]
        conn.drop()

    def run(self) -> None:
        for i in range(LINES):
            with self.reached:
                for conn in self.live.values():
                    conn.send(chat_line(i, "alpha"))
                self.sent = i + 1
                self.reached.notify_all()
            time.sleep(0.01)


def privmsg_ids(lines: list[str]) -> set[str]:
    return {line.split(";id=")[1].split(";")[0] for line in lines if " PRIVMSG " in line}


def test_three_real_recorders_with_gaps_converge_through_serve_and_sync(tmp_path: Path) -> None:
    stream = Broadcast()

    def script_for(recorder: int):  # type: ignore[no-untyped-def]
        def script(conn: ServerConn) -> None:
            assert conn.wait_joined(("alpha",))
            stream.attach(recorder, conn)
            if conn.index == 0:
                stream.detach_at(recorder, conn, GAPS[recorder])

        return script

    servers = [TwitchLikeServer(script_for(r)) for r in range(3)]
    raws = [tmp_path / f"raw{r}" for r in range(3)]
    recorders = [
        RunningRecorder(
            fast_config(servers[r].url, str(raws[r]), channels=("alpha",), name=f"host{r}"), slug=f"Slug{r}"
        )
        for r in range(3)
    ]
    try:
        assert all(
            wait_until(lambda s=s: bool(s.conns) and s.conns[0].wait_joined(("alpha",), 0.1), 20) for s in servers
        )
        stream.run()
        assert all(wait_until(lambda s=s: len(s.conns) >= 2, 20) for s in servers)  # each reconnected

        def recorded() -> bool:
            return all(
                Recording(str(raws[r])).by_conn("recv") == {c.index: c.sent for c in servers[r].conns} for r in range(3)
            )

        assert wait_until(recorded, 30)
    finally:
        for rec in recorders:
            rec.stop()
        for server in servers:
            server.close()
    assert not any(s.script_errors for s in servers)
    seen = [privmsg_ids([line for c in s.conns for line in c.sent]) for s in servers]
    assert all(seen[r] != seen[(r + 1) % 3] for r in range(3))  # each lost a different stretch

    roots = [tmp_path / f"host{r}" for r in range(3)]
    for raw, root in zip(raws, roots, strict=True):
        replay([str(raw)], str(root))
    replay([str(r) for r in raws], str(tmp_path / "all"))
    expected = tree(tmp_path / "all")

    with (
        Running(ChatApp(str(roots[0]))) as a,
        Running(ChatApp(str(roots[1]))) as b,
        Running(ChatApp(str(roots[2]))) as c,
    ):
        urls = [a.url, b.url, c.url]
        for _round in range(2):  # the second round brings what the first spread; a third changes nothing
            for i, root in enumerate(roots):
                peers = [arg for j, u in enumerate(urls) if j != i for arg in ("--from", u)]
                done = subprocess.run(
                    [EXE, "sync", str(root), *peers, "--since", "2020-01-01", "--json"],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                assert done.returncode == 0, done.stderr
    trees = [tree(r) for r in roots]
    assert trees[0] == trees[1] == trees[2] == expected
    archived = {
        rec["tags"]["id"]
        for f in iter_batch_files(str(roots[0]), "alpha")
        for rec in read_batch_file(f.path)
        if rec["command"] == "PRIVMSG"
    }
    assert seen[0] | seen[1] | seen[2] <= archived
