"""Replay benchmark: a generated Twitch-like recording of 1,000,000 lines (issue 2, "Speed")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import bench
from bench.gen import write_recording
from formats.rawfile import find_raw_files, group_streams, iter_stream_events

OUT = os.path.join(os.path.dirname(__file__), "out")

_CHILD = """
import json, resource, sys, time
from replay.api import replay
start = time.perf_counter()
report = replay([sys.argv[1]], sys.argv[2])
elapsed = time.perf_counter() - start
print(json.dumps({"lines": report.stats.lines, "seconds": elapsed,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def recording(lines: int) -> str:
    path = os.path.join(OUT, f"replay-{lines}")
    if not os.path.exists(os.path.join(path, "done")):
        shutil.rmtree(path, ignore_errors=True)
        write_recording(path, lines)
        open(os.path.join(path, "done"), "w").close()
    return path


def decode_seconds(path: str) -> tuple[int, float]:
    problems: list = []
    start = time.perf_counter()
    count = 0
    for stream in group_streams(find_raw_files([path]), problems):
        for _event in iter_stream_events(stream, problems):
            count += 1
    return count, time.perf_counter() - start


def replay_in_child(path: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", _CHILD, path, out], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def run() -> None:
    big = recording(1_000_000)
    small = recording(250_000)
    events, decode_s = decode_seconds(big)
    full = replay_in_child(big)
    part = replay_in_child(small)
    replay_rate = full["lines"] / full["seconds"]
    decode_rate = events / decode_s
    print(f"replay_throughput_1M_lines: {replay_rate:,.0f} lines/s")
    print(f"raw_decode_only_throughput: {decode_rate:,.0f} lines/s")
    print(f"replay_time_over_decode_time: {decode_rate / replay_rate:.2f} x")
    print(f"replay_peak_rss_1M_lines: {full['peak_rss_kb'] / 1024:.0f} MB")
    print(f"replay_peak_rss_250k_lines: {part['peak_rss_kb'] / 1024:.0f} MB")


if __name__ == "__main__":
    bench.main(__spec__.name if __spec__ else __file__, __doc__, run, sys.argv[1:])
