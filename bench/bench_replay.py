"""Replay benchmark: a generated Twitch-like recording of 1,000,000 lines."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import bench
from bench.gen import write_recording
from formats.rawfile import find_raw_files, group_streams, iter_stream_blocks, iter_stream_events
from formats.speedups import core_name

OUT = os.path.join(os.path.dirname(__file__), "out")

_CHILD = """
import json, resource, sys, time
from replay.shell import replay
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


def replay_in_child(path: str, pure: bool = False) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("CHAT_ARCHIVER_PURE", None)
    if pure:
        env["CHAT_ARCHIVER_PURE"] = "1"
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, path, out], check=True, capture_output=True, text=True, env=env
        )
    return json.loads(done.stdout)


class _Discard:
    """A BatchWriter that writes nothing (the engine stage's batch files are encoded, not stored)."""

    written = existing = 0

    def put(self, channel: str, batch_time: int, data: bytes) -> None:
        pass


def stage_microseconds(path: str) -> dict[str, float]:
    """Microseconds per line of each replay stage, by difference of cumulative runs (gc off, as replay runs):
    read (the raw files in blocks of lines); + engine (the compiled lane, the reference engine for the
    other lines, and the batch files' bytes: canonical lines, sort, join); + write (hash, file write and
    fsyncs on the writer thread, and what of them does not overlap the engine)."""
    from replay.shell import Options, ReplayReport, _feed_stream, replay_stream  # noqa: PLC0415

    problems: list = []
    (stream,) = group_streams(find_raw_files([path]), problems)

    def read() -> None:
        for _reader, _first, _lines in iter_stream_blocks(stream, problems):
            pass

    def engine() -> None:
        _feed_stream(stream, Options("unused"), ReplayReport(), _Discard(), None)  # type: ignore[arg-type]

    def full() -> None:
        with tempfile.TemporaryDirectory() as out:
            replay_stream(stream, Options(out))

    gc.disable()
    seconds = {}
    for name, step in (("read", read), ("engine", engine), ("full", full)):
        start = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - start
    gc.enable()
    lines, _ = decode_seconds(path)
    per = {k: v / lines * 1e6 for k, v in seconds.items()}
    return {
        "read": per["read"],
        "engine": per["engine"] - per["read"],
        "write": per["full"] - per["engine"],
        "total": per["full"],
    }


def run() -> None:
    big = recording(1_000_000)
    small = recording(250_000)
    events, decode_s = decode_seconds(big)
    full = replay_in_child(big)
    pure = replay_in_child(big, pure=True)
    part = replay_in_child(small)
    replay_rate = full["lines"] / full["seconds"]
    decode_rate = events / decode_s
    from replay.compact import compiled_lane  # noqa: PLC0415

    print(f"replay_core: {core_name()}")
    print(f"replay_lane: {'compiled' if compiled_lane() is not None else 'pure'}")
    print(f"replay_throughput_1M_lines: {replay_rate:,.0f} lines/s")
    print(f"replay_throughput_1M_lines_pure: {pure['lines'] / pure['seconds']:,.0f} lines/s")
    print(f"raw_decode_only_throughput: {decode_rate:,.0f} lines/s")
    print(f"replay_time_over_decode_time: {decode_rate / replay_rate:.2f} x")
    print(f"replay_peak_rss_1M_lines: {full['peak_rss_kb'] / 1024:.0f} MB")
    print(f"replay_peak_rss_250k_lines: {part['peak_rss_kb'] / 1024:.0f} MB")
    for stage, us in stage_microseconds(small).items():
        print(f"replay_stage_{stage}_250k_lines: {us:.2f} us/line")


if __name__ == "__main__":
    bench.main(__spec__.name if __spec__ else __file__, __doc__, run, sys.argv[1:])
