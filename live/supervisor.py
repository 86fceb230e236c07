"""One host's live archive: recorder processes and a follower process under one supervisor.

The recorders and the follower are separate processes on purpose: the follower's work (parsing,
writing, merging) can crash or be killed without touching a recorder, whose only job is to get
every line to disk. A child that exits while the supervisor is running is started again after a
backoff (1 s, doubling to `backoff_max`, back to 1 s once a child has run a minute); a restarted
recorder writes a new stream (new slug), and a restarted follower resumes from its checkpoint.

Stopping (SIGTERM to the supervisor) stops the recorders first, so they write their `close`
events, then the follower, which reads those, writes what they closed and saves its checkpoint.
A child that does not stop within `grace` seconds is killed.

Metrics are computed at scrape time: the supervisor's own (children up, restarts) and the
follower's, which it writes as a JSON status file after every pass (live/follow.py FollowStatus).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from formats.store import write_bytes_atomic

Log = Callable[[str, str], None]
PREFIX = "chat_archiver_archive"
# A child that exits with the CLI's "nothing could be done" status (a bad option, a refused login,
# an unwritable folder) this many times in a row, each within `STEADY` seconds of its start, will
# not get better by itself: the supervisor stops everything and says so instead of restarting it
# forever.
USAGE_STATUS = 2
GIVE_UP_AFTER = 5
STEADY = 60.0


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    role: str  # "recorder", "follower" or "media" (stopped in that order)
    # the child's whole environment (None: the supervisor's); how a secret reaches a child, since
    # a command line is visible to every user of the host in `ps`
    env: dict[str, str] | None = None


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 0.0  # set from the supervisor's first backoff
    next_start: float = 0.0
    exits: list[int] = field(default_factory=list)
    quick_usage_exits: int = 0  # exits with USAGE_STATUS in a row, each soon after its start


class Supervisor:
    def __init__(
        self,
        children: list[ChildSpec],
        *,
        log: Log,
        state_path: str | None = None,
        backoff_max: float = 30.0,
        grace: float = 30.0,
    ) -> None:
        self.first_backoff = min(1.0, backoff_max)
        self.children = [_Child(c, backoff=self.first_backoff) for c in children]
        self.log = log
        self.state_path = state_path
        self.backoff_max = backoff_max
        self.grace = grace
        self.gave_up: str | None = None  # why run() stopped by itself
        self._lock = threading.Lock()

    def _start(self, child: _Child) -> None:
        # Each child in its own process group: a Ctrl-C in the terminal reaches the supervisor
        # only, which stops the children in the right order.
        child.proc = subprocess.Popen(child.spec.argv, start_new_session=True, env=child.spec.env)
        child.started = time.monotonic()
        self.log("info", f"started {child.spec.name} (pid {child.proc.pid})")
        self._write_state()

    def _write_state(self) -> None:
        if self.state_path is None:
            return
        state = {
            "supervisor": os.getpid(),
            "children": {
                c.spec.name: {
                    "role": c.spec.role,
                    "pid": c.proc.pid if c.proc and c.proc.poll() is None else None,
                    "restarts": c.restarts,
                }
                for c in self.children
            },
        }
        with contextlib.suppress(OSError):
            write_bytes_atomic(self.state_path, orjson.dumps(state))

    def restarts(self) -> dict[str, int]:
        return {c.spec.name: c.restarts for c in self.children}

    def up(self) -> dict[str, bool]:
        return {c.spec.name: c.proc is not None and c.proc.poll() is None for c in self.children}

    def run(self, stop: threading.Event, poll: float = 0.2) -> None:
        """Run the children until `stop` is set, restarting any that exits; then stop them. A child
        that keeps failing with the usage status ends the run early, with `gave_up` saying why."""
        with self._lock:
            for child in self.children:
                self._start(child)
        while not stop.wait(poll) and self.gave_up is None:
            now = time.monotonic()
            with self._lock:
                for child in self.children:
                    self._watch(child, now)
        self._stop_all()

    def _watch(self, child: _Child, now: float) -> None:
        proc = child.proc
        if proc is not None:
            code = proc.poll()
            if code is None:
                return
            child.exits.append(code)
            child.proc = None
            if now - child.started > STEADY:
                child.backoff = self.first_backoff
            quick_usage = code == USAGE_STATUS and now - child.started <= STEADY
            child.quick_usage_exits = child.quick_usage_exits + 1 if quick_usage else 0
            if child.quick_usage_exits >= GIVE_UP_AFTER:
                self.gave_up = (
                    f"{child.spec.name} exited with status {code} {child.quick_usage_exits} times in a row, "
                    "each soon after it started (its own message above says why); stopped"
                )
                self._write_state()
                return
            child.next_start = now + child.backoff
            self.log("warn", f"{child.spec.name} exited with status {code}; starting it again in {child.backoff:g} s")
            child.backoff = min(self.backoff_max, child.backoff * 2)
            self._write_state()
            return
        if now >= child.next_start:
            child.restarts += 1
            self._start(child)

    def _stop_all(self) -> None:
        with self._lock:
            for role in ("recorder", "follower", "media"):
                group = [c for c in self.children if c.spec.role == role and c.proc is not None]
                for c in group:
                    assert c.proc is not None
                    with contextlib.suppress(ProcessLookupError):
                        c.proc.send_signal(signal.SIGTERM)
                for c in group:
                    assert c.proc is not None
                    try:
                        c.proc.wait(self.grace)
                    except subprocess.TimeoutExpired:
                        self.log("warn", f"{c.spec.name} did not stop within {self.grace:g} s; killed")
                        c.proc.kill()
                        c.proc.wait()
                    c.proc = None
            self._write_state()


def read_status(path: str) -> dict[str, Any]:
    """The follower's last status (live/follow.py FollowStatus.as_dict), {} if none yet."""
    try:
        with open(path, "rb") as f:
            obj = orjson.loads(f.read())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return obj if isinstance(obj, dict) else {}


class ArchiveCollector(Collector):
    """Prometheus metrics of one host's live archive, computed at scrape time."""

    def __init__(self, supervisor: Supervisor, follower_status: str) -> None:
        self.supervisor = supervisor
        self.follower_status = follower_status

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_child_up", "1 if the child process is running.", labels=["child"])
        for name, running in sorted(self.supervisor.up().items()):
            up.add_metric([name], 1.0 if running else 0.0)
        yield up
        restarts = CounterMetricFamily(
            f"{PREFIX}_restarts",
            "Times a child process was started again after it exited.",
            labels=["child"],
        )
        for name, n in sorted(self.supervisor.restarts().items()):
            restarts.add_metric([name], n)
        yield restarts
        s = read_status(self.follower_status)
        yield GaugeMetricFamily(
            f"{PREFIX}_lines_behind",
            "Raw lines written but not yet read by the follower (estimated from bytes).",
            value=s.get("lines_behind", 0),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_bytes_behind",
            "Raw bytes written but not yet read by the follower.",
            value=s.get("bytes_behind", 0),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_seconds_behind",
            "Wall-clock seconds since the receive time of the last event the follower fed (ticks keep it near 1).",
            value=s.get("seconds_behind", 0.0),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_batches_written",
            "Batch files the follower wrote (since it last started).",
            value=s.get("batches_written", 0),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_merge_passes",
            "Merge passes over the minutes the follower wrote (since it last started).",
            value=s.get("merge_passes", 0),
        )
        last = GaugeMetricFamily(
            f"{PREFIX}_last_batch_time",
            "Start (Unix seconds) of the latest batch written, by channel.",
            labels=["channel"],
        )
        for channel, t in sorted(s.get("last_batch_time", {}).items()):
            last.add_metric([channel], t)
        yield last
