"""`make run`: the real job on an embedded default, in about a minute and a half.

A local Twitch-like chat server on loopback (demo/twitchlike.py) emits a busy channel (#demo, about
50 lines a second, every connection asked to RECONNECT now and then, as Twitch does). `chat-archiver
archive` runs against it with two recorders and the follower; half-way, one recorder is killed
(-9) and the supervisor starts it again. Then the host is stopped (SIGTERM), the follower catches up,
`verify` prints its report of the live archive, and the live archive is compared, byte for byte,
with an offline `replay` of the same raw recordings. Exit status 0 only if they are identical.

    python -m demo.live [FOLDER] [--seconds N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from demo.twitchlike import ServerConn, TwitchLikeServer, chat_line, free_port

CLI = [sys.executable, "-m", "chat_archiver.cli"]


class BusyChannel:
    """One line every 20 ms, broadcast to every joined connection; RECONNECT after 10-25 s."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.lines: list[str] = []
        self.stop = threading.Event()
        self.rng = random.Random(9)
        threading.Thread(target=self._produce, daemon=True).start()

    def _produce(self) -> None:
        i = 0
        while not self.stop.wait(0.02):
            self.lines.append(chat_line(i, self.channel, base_ms=int(time.time() * 1000) - i * 37))
            i += 1

    def script(self, conn: ServerConn) -> None:
        if not conn.wait_joined([self.channel], 15):
            return
        sent = len(self.lines)
        reconnect_at = time.monotonic() + self.rng.uniform(10, 25)
        while not self.stop.is_set() and not conn.closed:
            now = len(self.lines)
            if now > sent:
                conn.send(*self.lines[sent:now])
                sent = now
            if time.monotonic() > reconnect_at:
                conn.send(":tmi.twitch.tv RECONNECT")  # the recorder overlaps a new connection, then closes this
                reconnect_at = float("inf")
            time.sleep(0.02)


def _children(state: Path) -> dict[str, int | None]:
    try:
        return {n: c["pid"] for n, c in json.loads((state / "supervisor.json").read_text())["children"].items()}
    except (OSError, ValueError, KeyError):
        return {}


def _metric(port: int, name: str) -> str:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return "?"
    values = [line.split()[-1] for line in text.splitlines() if line.startswith(name)]
    return ",".join(values) or "?"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="live-demo")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    folder = Path(args.folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    busy = BusyChannel("demo")
    metrics = free_port()
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {text}", flush=True)

    with TwitchLikeServer(script=busy.script) as server:
        say(f"Twitch-like server on {server.url}, #demo at ~50 lines/s")
        log = open(folder / "archive.log", "wb")  # noqa: SIM115 (closed below)
        host = subprocess.Popen(
            [
                *CLI,
                "archive",
                "demo",
                "--dir",
                str(folder),
                "--server",
                server.url,
                "--dialect",
                "twitch",
                "--recorders",
                "2",
                "--name",
                "demo",
                "--idle",
                "5",
                "--metrics-port",
                str(metrics),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        say(
            f"chat-archiver archive demo --dir {folder} --recorders 2 (log: {folder}/archive.log, "
            f"metrics: http://127.0.0.1:{metrics}/metrics)"
        )
        killed = False
        try:
            while time.monotonic() - started < args.seconds:
                time.sleep(10)
                elapsed = time.monotonic() - started
                if not killed and elapsed > args.seconds / 2:
                    pid = _children(folder / "state").get("recorder-1")
                    if pid:
                        os.kill(pid, signal.SIGKILL)
                        killed = True
                        say(f"killed recorder-1 (pid {pid}) with -9; the supervisor starts it again (new slug)")
                say(
                    f"batches written {_metric(metrics, 'chat_archiver_archive_batches_written_total')}, "
                    f"merge passes {_metric(metrics, 'chat_archiver_archive_merge_passes_total')}, "
                    f"seconds behind {_metric(metrics, 'chat_archiver_archive_seconds_behind')}, "
                    f"files in the live archive {len(_files(folder / 'archive'))}"
                )
            say("stopping the host (SIGTERM): recorders close their recordings, then the follower")
            host.send_signal(signal.SIGTERM)
            host.wait(60)
        finally:
            busy.stop.set()
            if host.poll() is None:
                host.kill()
                host.wait()
            log.close()
    say("the follower catches up (the killed recorder's stream has ended: its open minute is written)")
    subprocess.run(
        [
            *CLI,
            "replay",
            str(folder / "raw"),
            "--out",
            str(folder / "archive"),
            "--follow",
            "--until-idle",
            "--idle",
            "0",
            "--checkpoint",
            str(folder / "state" / "follow-checkpoint.json"),
        ],
        check=False,
    )
    say(f"verify {folder}/archive --raw {folder}/raw")
    subprocess.run([*CLI, "verify", str(folder / "archive"), "--raw", str(folder / "raw")], check=False)
    say(f"offline: replay {folder}/raw --out {folder}/offline")
    subprocess.run(
        [*CLI, "replay", str(folder / "raw"), "--out", str(folder / "offline"), "--json"],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    live, offline = _files(folder / "archive"), _files(folder / "offline")
    if live == offline and live:
        say(f"live archive == offline replay, byte for byte ({len(live)} batch files)")
        return 0
    say(
        f"MISMATCH: live {len(live)} files, offline {len(offline)}; "
        f"only live: {sorted(set(live) - set(offline))[:3]}, only offline: {sorted(set(offline) - set(live))[:3]}"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
