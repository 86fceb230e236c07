"""Live archive benchmarks: restart cost after a day, memory over a day, latency.

- Restart: a recording of 24 h (and of 1 h) at 100 lines/s is followed up to one minute before
  its end (the follower is then "killed": its last checkpoint stays); the recorder's last minute is
  then written, and a new follower process starts. The figure is the wall time from launching that
  process to caught up (everything read, closed batches written and merged, checkpoint saved),
  Python start-up included.
- Memory: peak RSS of the follower process that followed the whole 1 h and 24 h recordings.
- Latency: three recorders at 100 lines/s each (a writer process), followed live.
  `BENCH_LIVE_PARTS=latency` runs only this part (`restart` only the others; both by default). Time is scaled:
  the writers' clock runs 10 (then 2) times faster than the wall clock, so a batch's deadline
  (`batch_time + 120 s` of recorder time) comes every 6 (30) wall seconds instead of every minute.
  The figure is the wall time from the moment all three raw streams show a minute's deadline has
  passed (the first event at or after it is on disk) to the moment that minute's merged file is on
  disk. It is the delay the follower adds; it does not depend on the scale, except that the
  follower reads `SCALE` times more lines per wall second than it would live, so it is pessimistic.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import ClassVar

import bench
from bench.gen import write_recording

OUT = os.path.join(os.path.dirname(__file__), "out")
RATE = 100

_FOLLOW = """
import json, resource, sys, time
from live.follow import Follower, FollowOptions
raw, out, cp = sys.argv[1:4]
f = Follower(FollowOptions((raw,), out, cp, idle=1e9, checkpoint_every=1e9))
start = time.perf_counter()
f.restore()
while f.pass_once():
    pass
f.save_checkpoint()
f.close()
print(json.dumps({"seconds": time.perf_counter() - start, "lines": f.status.lines_read,
                  "batches": f.status.batches_written, "checkpoint_bytes": f.status.checkpoint_bytes,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def day_recording(hours: int) -> str:
    path = os.path.join(OUT, f"live-{hours}h")
    if not os.path.exists(os.path.join(path, "done")):
        shutil.rmtree(path, ignore_errors=True)
        write_recording(path, hours * 3600 * RATE, rate=RATE, name="live")
        open(os.path.join(path, "done"), "w").close()
    return os.path.join(path, "live")


_AT = re.compile(rb'"at":(\d+)')


def _split_last_minute(last: str) -> int:
    """The offset of the first line of `last` received in the recording's final minute."""
    with open(last, "rb") as f:
        data = f.read()
    end = int(_AT.findall(data[-4096:])[-1])
    offset = 0
    for line in data.splitlines(keepends=True):
        m = _AT.search(line)
        if m is not None and int(m.group(1)) >= end - 60_000_000:
            return offset
        offset += len(line)
    return offset


def _follow(raw: str, out: str, cp: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _FOLLOW, raw, out, cp], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"follower failed:\n{done.stderr}")
    return json.loads(done.stdout)


def restart(hours: int) -> dict[str, float]:
    source = day_recording(hours)
    names = sorted(os.listdir(source))
    with tempfile.TemporaryDirectory(dir=OUT) as work:
        raw = os.path.join(work, "raw", "live")
        os.makedirs(raw)
        for name in names[:-1]:
            os.link(os.path.join(source, name), os.path.join(raw, name))  # read-only: no copy needed
        last = os.path.join(raw, names[-1])
        shutil.copyfile(os.path.join(source, names[-1]), last)
        cut = _split_last_minute(last)
        with open(last, "rb") as f:
            f.seek(cut)
            tail = f.read()
        os.truncate(last, cut)
        out, cp = os.path.join(work, "archive"), os.path.join(work, "cp.json")
        first = _follow(os.path.join(work, "raw"), out, cp)
        with open(last, "ab") as f:
            f.write(tail)  # the minute the recorder wrote while the follower was down
        start = time.perf_counter()
        second = _follow(os.path.join(work, "raw"), out, cp)
        wall = time.perf_counter() - start
    return {
        "first_seconds": first["seconds"],
        "first_lines": first["lines"],
        "peak_rss_mb": first["peak_rss_kb"] / 1024,
        "restart_wall": wall,
        "restart_inside": second["seconds"],
        "restart_lines": second["lines"],
        "checkpoint_bytes": first["checkpoint_bytes"],
    }


_WRITERS = """
import json, sys, time
from bench.gen import privmsg
import random
from recorder.rawwriter import RawWriter
raw, minutes, rate, scale, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = random.Random(3)
writers = [RawWriter(raw, f"rec{i}", f"Slug{i}", "h", "bench") for i in range(3)]
t0 = (int(time.time()) // 60 + 1) * 60 * 1_000_000 - 5_000_000
for i, w in enumerate(writers):
    w.write_open(0, "wss://sim", t0)
    w.write_recv(0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #desertbus", t0 + 1)
wall0 = time.time()
step = 1_000_000 // rate
crossed = {}
out = open(log, "w")
n = 0
at = t0
end = t0 + minutes * 60_000_000
while at < end:
    at += step
    while (at - t0) / scale > (time.time() - wall0) * 1_000_000:
        time.sleep(0.002)
    for i, w in enumerate(writers):
        w.write_recv(0, privmsg(rng, at // 1000 - rng.randint(50, 400), n), at + i * 1000)
    n += 1
    minute = (at // 60_000_000) * 60 - 120  # the batch whose deadline this event passes
    if minute not in crossed:
        crossed[minute] = time.time()
        out.write(json.dumps([minute, crossed[minute]]) + "\\n")
        out.flush()
for w in writers:
    w.write_close(0, "end", at + 5000)
    w.close()
"""


def latency(minutes: int, scale: int, merge_seconds: list[float] | None = None) -> list[float]:
    os.makedirs(OUT, exist_ok=True)
    from formats.memory import gc_paused  # noqa: PLC0415
    from live.follow import Follower, FollowOptions  # noqa: PLC0415 (in the bench process only)
    from replay.batches import ClosedBatch  # noqa: PLC0415

    with tempfile.TemporaryDirectory(dir=OUT) as work:
        raw, out, log = os.path.join(work, "raw"), os.path.join(work, "archive"), os.path.join(work, "log")
        os.makedirs(raw)
        merged: dict[int, float] = {}

        class Timed(Follower):
            written: ClassVar[set[int]] = set()

            def _merge(self) -> None:
                started = time.time()
                super()._merge()
                now = time.time()
                if merge_seconds is not None and self.written:
                    merge_seconds.append(now - started)
                for m in self.written:
                    merged[m] = now  # the last merge after a minute's batch was written
                self.written.clear()

            def _write(self, batch: ClosedBatch) -> None:
                super()._write(batch)
                self.written.add(batch.batch_time)

        writers = subprocess.Popen([sys.executable, "-c", _WRITERS, raw, str(minutes), str(RATE), str(scale), log])
        f = Timed(FollowOptions((raw,), out, os.path.join(work, "cp.json"), idle=1e9, poll=0.05))
        f.restore()
        with gc_paused():  # as Follower.run
            while writers.poll() is None:
                if not f.pass_once():
                    time.sleep(0.05)
            f.pass_once()
        with open(log) as fh:
            crossed = dict(json.loads(line) for line in fh)
    return [merged[m] - crossed[m] for m in sorted(crossed) if m in merged]


def run() -> None:
    os.makedirs(OUT, exist_ok=True)
    parts = os.environ.get("BENCH_LIVE_PARTS", "restart,latency").split(",")
    # The restarts first: a child's peak RSS counts its parent's memory at fork on Linux (exec keeps
    # the high-water mark), and the latency run below grows this process.
    for hours in (1, 24) if "restart" in parts else ():
        r = restart(hours)
        print(
            f"live_follow_{hours}h_throughput: {r['first_lines'] / r['first_seconds']:,.0f} lines/s "
            f"({r['first_lines']:,} lines in {r['first_seconds']:.0f} s)"
        )
        print(f"live_follow_{hours}h_peak_rss: {r['peak_rss_mb']:.0f} MB")
        print(
            f"live_restart_after_{hours}h_catch_up: {r['restart_wall']:.2f} s (process start to caught up; "
            f"{r['restart_inside']:.2f} s inside, {r['restart_lines']:,} lines of the last minute read)"
        )
        print(
            f"live_checkpoint_after_{hours}h: {r['checkpoint_bytes'] / 1024:.0f} KiB (what the restart loaded: "
            "the open batches of the last two minutes)"
        )
    for minutes, scale in ((10, 10), (5, 2)) if "latency" in parts else ():
        merges: list[float] = []
        lat = latency(minutes, scale, merges)
        qs = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        print(
            f"live_latency_x{scale}_deadline_to_merged_p50: {statistics.median(lat):.3f} s ({len(lat)} minutes, "
            f"3 recorders x {RATE} lines/s, clock x{scale})"
        )
        print(f"live_latency_x{scale}_deadline_to_merged_p99: {qs[98]:.3f} s")
        print(f"live_latency_x{scale}_merge_pass_p50: {statistics.median(merges):.3f} s (of which the merge stage)")


if __name__ == "__main__":
    bench.main(__spec__.name if __spec__ else __file__, __doc__, run, sys.argv[1:])
