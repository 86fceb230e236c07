"""`archive` keeps the emotes live: real recorder, follower and media child against the Twitch-like
server and a fake CDN on loopback. Every emote id the messages name is on disk seconds after its
minute is archived, each variant fetched once however many messages use it; while the CDN is down,
recording loses nothing, and `media ROOT` fetches what was missed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from ircd import free_port
from twitchlike import ServerConn, TwitchLikeServer, wait_until

from formats.errors import InputError
from formats.store import iter_batch_files
from media import layout
from tests.archives import read_batch_file
from tests.fakecdn import FakeCDN

ROOT = Path(__file__).parent.parent
CLI = [sys.executable, "-m", "chat_archiver.cli"]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def emote_line(i: int, ids: list[str]) -> str:
    text = " ".join(["Kappa"] * len(ids)) + f" hello {i}"
    ranges = "/".join(f"{emote_id}:{6 * k}-{6 * k + 4}" for k, emote_id in enumerate(ids))
    ts = int(time.time() * 1000)
    return (
        f"@badges=;color=;display-name=U{i % 7};emotes={ranges};id=e-{i:06d};room-id=1;tmi-sent-ts={ts};"
        f"user-id={i % 7} :u{i % 7}!u{i % 7}@u{i % 7}.tmi.twitch.tv PRIVMSG #alpha :{text}"
    )


class Phases:
    """Phase 1 (CDN down): 200 messages naming ids d0..d4; phase 2 (CDN up): 300 naming 25 and
    u0..u9. Connection N sends phase N once the test says go."""

    def __init__(self) -> None:
        self.go = [threading.Event(), threading.Event()]
        self.last: list[str] = ["", ""]

    def script(self, conn: ServerConn) -> None:
        if not conn.wait_joined(["alpha"], 15) or conn.index > 1:
            return
        phase = conn.index
        if not self.go[phase].wait(120):
            return
        first, count = (0, 200) if phase == 0 else (200, 300)
        for i in range(first, first + count):
            ids = [f"d{i % 5}"] if phase == 0 else ["25", f"u{i % 10}"]
            conn.send(emote_line(i, ids))
            if i % 50 == 0:
                time.sleep(0.05)
        self.last[phase] = f"e-{first + count - 1:06d}"


def recorded(raw: Path, message_id: str) -> bool:
    """Whether a raw recording under `raw` holds the message (the recorder wrote it down)."""
    needle = f"id={message_id};".encode()
    return bool(message_id) and any(needle in p.read_bytes() for p in raw.rglob("*") if p.is_file())


def kill_recorder(state: Path) -> None:
    """SIGKILL the recorder: its stream falls silent, so the follower writes its minutes now
    rather than a minute later (the supervisor starts a new recorder, a new stream)."""
    pid = json.loads((state / "supervisor.json").read_text())["children"]["recorder-1"]["pid"]
    os.kill(pid, signal.SIGKILL)


def archived_ids(archive: Path) -> set[str]:
    """The test's message ids in the archive (empty while a merge replaces a file under us)."""
    out = set()
    for bf in iter_batch_files(str(archive), "alpha"):
        try:
            batch = read_batch_file(bf.path)
        except InputError:
            return set()
        for record in batch:
            tags = record.get("tags") or {}
            if record["command"] == "PRIVMSG" and str(tags.get("id", "")).startswith("e-"):
                out.add(tags["id"])
    return out


def status_of(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {"fetches": {}, "files_written": {}}


def on_disk(archive: Path, emote_id: str) -> bool:
    return all((archive / layout.emote_relpath(emote_id, v)).is_file() for v in layout.VARIANTS)


def test_archive_fetches_emotes_live_and_never_loses_chat(tmp_path: Path) -> None:
    phases = Phases()
    with FakeCDN() as cdn, TwitchLikeServer(script=phases.script) as server:
        cdn.mode = "down"
        host = tmp_path / "host"
        args = [
            *CLI,
            "archive",
            "alpha",
            "--dir",
            str(host),
            "--server",
            server.url,
            "--dialect",
            "twitch",
            "--idle",
            "2",
            "--restart-backoff",
            "0.5",
            "--twitch-cdn",
            cdn.url,
            "--allow-private-addresses",
            "--metrics-port",
            str(metrics_port := free_port()),
        ]
        log = open(tmp_path / "archive.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        archive = host / "archive"
        try:
            # phase 1, the CDN down: every message is archived all the same
            assert server.wait_conns(1, 30)
            phases.go[0].set()
            assert wait_until(lambda: recorded(host / "raw", phases.last[0]), 30)
            kill_recorder(host / "state")
            assert wait_until(lambda: len(archived_ids(archive)) == 200, 60), (tmp_path / "archive.log").read_text()
            status = host / "state" / "media-status.json"
            assert wait_until(lambda: status_of(status)["fetches"].get("emote/failed") == 5, 30)
            assert not any(on_disk(archive, f"d{k}") for k in range(5))
            # phase 2, the CDN up: every id on disk within seconds of its minute, each variant once
            cdn.mode = "ok"
            assert server.wait_conns(2, 30)
            phases.go[1].set()
            assert wait_until(lambda: recorded(host / "raw", phases.last[1]), 30)
            kill_recorder(host / "state")
            assert wait_until(lambda: len(archived_ids(archive)) == 500, 60)
            wanted = ["25"] + [f"u{k}" for k in range(10)]
            assert wait_until(lambda: all(on_disk(archive, e) for e in wanted), 20)
            hits = cdn.emote_hits()
            for emote_id in wanted:
                for variant in layout.VARIANTS:
                    theme, scale = variant.split("-")
                    assert hits[f"/emoticons/v2/{emote_id}/default/{theme}/{scale}"] == 1, (emote_id, variant)
            assert wait_until(lambda: status_of(status)["files_written"].get("emote") == 66, 10)
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
            assert 'chat_archiver_media_files_written_total{kind="emote"} 66.0' in metrics
            assert 'chat_archiver_archive_child_up{child="media"} 1.0' in metrics
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, (tmp_path / "archive.log").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        # what the CDN's outage missed, a pass over the archive fetches
        done = subprocess.run(
            [*CLI, "media", str(archive), "--twitch-cdn", cdn.url, "--allow-private-addresses", "--json"],
            cwd=ROOT,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        assert all(on_disk(archive, f"d{k}") for k in range(5))
        assert json.loads(done.stdout)["files_written"] == {"emote": 30}


def test_archive_no_emotes_runs_no_media_child(tmp_path: Path) -> None:
    with TwitchLikeServer() as server:
        host = tmp_path / "host"
        args = [*CLI, "archive", "alpha", "--dir", str(host), "--server", server.url, "--no-emotes"]
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            state = host / "state" / "supervisor.json"
            assert wait_until(lambda: state.exists() and "follower" in state.read_text(), 30)
            assert sorted(json.loads(state.read_text())["children"]) == ["follower", "recorder-1"]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
