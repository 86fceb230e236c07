"""sync against peers that list too much or answer too slowly: memory stays bounded whatever a
peer lists, a dripping answer costs at most `--timeout`, and a slow peer delays no other.

The peers are real HTTP servers on loopback (tests/httpfakes.py); every hostile behaviour ends by
itself (bounded loops, waits on the node's stop event)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from formats.canonical import batch_relpath
from sync.shell import Refusal, sync_once
from tests.httpfakes import FakeNode, send
from tests.test_sync import T0, make_archive, tree

pytestmark = pytest.mark.integration

NAMES_PER_HOUR = 9_999
DAYS = 14


def _hours(now: float) -> list[str]:
    first = int(now - DAYS * 86400) // 3600 * 3600
    return [batch_relpath(t, "")[0] for t in range(first, int(now) + 1, 3600)]


def _names(hour_start: int) -> list[str]:
    """9,999 distinct batch names in the hour (166 or 167 a minute), made on demand."""
    return [batch_relpath(hour_start + 60 * (i % 60), f"{i:043d}")[1] for i in range(NAMES_PER_HOUR)]


def _peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_peer_listing_14_days_of_9999_names_an_hour_keeps_sync_under_200_mb(tmp_path: Path) -> None:
    """The peer makes each hour's listing when asked (336 hours of 9,999 names: 3.4 million files)
    and answers every file 404 at once (merged away). The sync runs in a process of its own for
    10 s (longer on a loaded machine: until it asked for 1,500 files), fetching as fast as it can;
    its peak resident size is read from /proc, then it is stopped. Planning every fetch up front
    held about 23 MB per listed hour."""
    now = time.time()
    hours = _hours(now)
    listed: list[str] = []

    def hour_listing(handler: BaseHTTPRequestHandler) -> None:
        hour = handler.path.split("?")[0].rsplit("/", 1)[1]
        listed.append(hour)
        start = int(time.mktime(time.strptime(hour, "%Y-%m-%dT%H"))) - time.timezone
        send(handler, 200, json.dumps(_names(start)).encode(), "application/json")

    def gone(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 404, b"Not found")

    overrides = {
        "/files": lambda h: send(h, 200, b'["big"]'),
        "/files/big/chat": lambda h: send(h, 200, json.dumps(hours).encode()),
        "/files/big/chat/*": hour_listing,
        **{f"/segments/big/chat/{hour}/*": gone for hour in hours},
    }
    script = textwrap.dedent(
        """
        import sys, time
        from sync.shell import sync_once
        now = time.time()
        sync_once(sys.argv[1], [sys.argv[2]], start=now - 14 * 86400, end=now, jobs=4, retries=0)
        """
    )
    with FakeNode(str(tmp_path / "empty"), overrides) as node:
        child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "local"), node.url])
        try:
            peak = 0.0
            started = time.monotonic()
            # at least 10 s, and on a loaded machine on until 1,500 files were asked for (90 s at most)
            while child.poll() is None and time.monotonic() - started < 90:
                peak = max(peak, _peak_mib(child.pid))
                if time.monotonic() - started >= 10 and _fetches(node.requests) >= 1500:
                    break
                time.sleep(0.5)
            assert child.poll() is None  # 3.4 million files take longer than that
            peak = max(peak, _peak_mib(child.pid))
        finally:
            child.kill()
            child.wait(10)
        fetched = _fetches(node.requests)
    assert fetched >= 1500 and len(listed) >= 1  # it was working, not stuck
    assert len(listed) <= 2 + fetched // NAMES_PER_HOUR + 2  # listed just ahead of its fetches
    assert peak < 200, f"peak {peak:.0f} MiB"


def _fetches(requests: list[str]) -> int:
    return sum(r.startswith("/segments/") for r in list(requests))


def _dripping(handler: BaseHTTPRequestHandler) -> None:
    """A 1000-byte answer, one byte every 0.5 s (never silent long enough for a read timeout)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    stop = handler.server.node.stop  # type: ignore[attr-defined]
    for _ in range(1000):
        if stop.wait(0.5):
            return
        try:
            handler.wfile.write(b"z")
            handler.wfile.flush()
        except OSError:
            return


def test_a_dripping_peer_costs_at_most_the_timeout_per_file_and_delays_no_other_peer(tmp_path: Path) -> None:
    """Peer one drips each of its two files; peer two is a good node. With --timeout 3 (and three
    retries) each dripping file is refused as too slow after about 3 s, not after minutes; the
    good node's files are asked for while the drips are still running, so they arrive whatever
    the order of the peers."""
    slow_dir, good_dir = tmp_path / "slow", tmp_path / "good"
    make_archive(good_dir, [1, 61])
    hour = batch_relpath(T0, "")[0]
    names = [batch_relpath(T0 + 120, "D" * 43)[1], batch_relpath(T0 + 180, "E" * 43)[1]]
    asked: list[float] = []

    def good_file(handler: BaseHTTPRequestHandler) -> None:
        asked.append(time.monotonic())
        name = handler.path.rsplit("/", 1)[1].replace("%3A", ":")
        send(handler, 200, (good_dir / "sim" / "chat" / hour / name).read_bytes(), "application/json")

    slow_overrides = {
        "/files": lambda h: send(h, 200, b'["sim"]'),
        "/files/sim/chat": lambda h: send(h, 200, json.dumps([hour]).encode()),
        f"/files/sim/chat/{hour}": lambda h: send(h, 200, json.dumps(names).encode()),
        f"/segments/sim/chat/{hour}/*": _dripping,
    }
    refused: list[Refusal] = []
    with (
        FakeNode(str(slow_dir), slow_overrides) as slow,
        FakeNode(str(good_dir), {f"/segments/sim/chat/{hour}/*": good_file}) as good,
    ):
        began = time.monotonic()
        stats = sync_once(
            str(tmp_path / "local"),
            [slow.url, good.url],
            start=0,
            end=time.time(),
            jobs=1,  # one fetch at a time per peer: the drips come one after the other
            timeout=3.0,
            retries=3,
            backoff=0.01,
            on_refusal=refused.append,
        )
        elapsed = time.monotonic() - began
    reasons = [r.reason for r in refused]
    assert len(reasons) == 2 and all("too slow" in r for r in reasons), reasons
    assert stats.files_fetched == 2 and len(tree(tmp_path / "local")) == 2
    assert asked and asked[0] - began < 3.0  # not after the slow peer's files
    # two files one after another, 3 s each, retries included; not 4 tries of 30 s each
    assert elapsed < 2 * 3.0 + 5, elapsed


def test_an_endless_body_is_cut_at_a_few_mib_by_default(tmp_path: Path) -> None:
    """What a fetch may hold is bounded by the largest plausible batch file (16 MiB unless
    --max-file says otherwise), not 256 MiB: at -j 8 an endless peer costs 8 of them at most."""
    hour = batch_relpath(T0, "")[0]
    name = batch_relpath(T0 + 120, "C" * 43)[1]

    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"y" * 65536
        try:
            for _ in range(100_000):  # 6 GB at most, far past any limit; ends with the test
                if handler.server.node.stop.is_set():  # type: ignore[attr-defined]
                    return
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass

    overrides = {
        "/files": lambda h: send(h, 200, b'["sim"]'),
        "/files/sim/chat": lambda h: send(h, 200, json.dumps([hour]).encode()),
        f"/files/sim/chat/{hour}": lambda h: send(h, 200, json.dumps([name]).encode()),
        f"/segments/sim/chat/{hour}/{name}": endless,
    }
    refused: list[Refusal] = []
    with FakeNode(str(tmp_path / "peer"), overrides) as node:
        sync_once(str(tmp_path / "local"), [node.url], start=0, end=time.time(), on_refusal=refused.append)
    assert [r.reason for r in refused] == [f"body is over the limit of {16 << 20:,} bytes"]
