"""serve and sync benchmark. Prints `name: value unit` lines:

- `chat.json` for a 2-hour window of a 100 messages/s channel seen by 3 receivers: time to the
  first and to the last byte, the server's peak RSS and what one reader added to it (peak minus
  the resident size before the request), and the ratio to `export --format json` of the same
  window timed in the same run (`..._vs_export_json`; the same ratio with `export --jobs 1`, one
  process as the server uses for one reader). The archive (the window plus upstream's read margins,
  generated once into bench/out/) is bench_verify's minute generator with a third receiver added
  to every observation, each minute written as the merge writes it (a line of several receivers
  with upstream's floats: what a host keeps, and what passes through a read undecoded).
  BENCH_SERVE_WINDOW_MINUTES=30 measures a shorter window (the names say which).
- `chat.jsonl` over bench_verify's day archive (generated once and shared with it): time to the
  last byte, records/s and the server's peak RSS, which must not grow with the window. By default
  the first 4 hours (BENCH_SERVE_JSONL_HOURS=24 streams the whole day; the names say which).
- `sync` from a `serve` host to an empty archive on loopback: files/s and MB/s, over the first
  BENCH_SERVE_SYNC_HOURS hours (default 4) of the day archive; the rate is per file and per byte,
  so it scales to a day (a whole day would copy about 5 GB). Then `verify` of the synced archive
  in the same run, and the ratio (`sync_..._vs_verify`).

Each server runs in its own process (`chat-archiver serve`), so its VmHWM is its own.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from typing import Any

import bench
from bench import bench_verify
from formats.store import write_batch_bytes
from merge.core import merge

CHANNEL = bench_verify.CHANNEL
START = bench_verify.START
WINDOW = 60 * int(os.environ.get("BENCH_SERVE_WINDOW_MINUTES", "120"))
WINDOW_TAG = "2h" if WINDOW == 7200 else f"{WINDOW // 60}m"
THIRD = "host3.Qq7Wn.0"
OUT_3R = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "out",
    "serve-2h-100ps-3r-merged" if WINDOW == 7200 else f"serve-{WINDOW_TAG}-100ps-3r-merged",
)
# the window read runs at several thousand records/s per core (export's merge and fold): a whole
# day (8.6M records) takes tens of minutes on a small shared machine, so by default 4 hours are
# streamed; memory does not depend on the window's length, which is the point of this figure
JSONL_HOURS = int(os.environ.get("BENCH_SERVE_JSONL_HOURS", "4"))
SYNC_HOURS = int(os.environ.get("BENCH_SERVE_SYNC_HOURS", "4"))
EXE = os.path.join(os.path.dirname(sys.executable), "chat-archiver")


def _three_receivers(minute: int) -> list[dict[str, Any]]:
    """bench_verify's minute with a third receiver: every PRIVMSG seen by it too, and one more
    JOIN/PART observation of its own for each one there."""
    records = bench_verify.minute_records(minute)
    extra = []
    seen_joins = set()
    for r in records:
        if r["command"] == "PRIVMSG":
            first = next(iter(r["receivers"].values()))
            r["receivers"][THIRD] = first + 0.05
        elif (key := (r["command"], r["sender"])) not in seen_joins:
            seen_joins.add(key)
            received = next(iter(r["receivers"].values())) + 0.5
            extra.append({**r, "receivers": {THIRD: received}, "time": max(minute, received - 55)})
    return records + extra


def _write_3r(minute: int) -> int:
    """The minute as the merge writes it (what a host keeps: a line combined from several receivers
    carries upstream's floats, so its stored line passes through a read as it is)."""
    merged = merge(_three_receivers(minute))
    write_batch_bytes(OUT_3R, CHANNEL, minute, merged.to_bytes())
    return len(merged.records())


def ensure_three_receiver_archive() -> str:
    marker = os.path.join(OUT_3R, "complete")
    if os.path.exists(marker):
        return OUT_3R
    shutil.rmtree(OUT_3R, ignore_errors=True)
    started = time.monotonic()
    minutes = range(START - 120, START + WINDOW + 120, 60)
    with multiprocessing.get_context("forkserver").Pool(os.cpu_count() or 1) as pool:
        total = sum(pool.imap_unordered(_write_3r, minutes, chunksize=2))
    with open(marker, "w") as f:
        f.write(str(total))
    print(
        f"generate_serve_{WINDOW_TAG}_3r_seconds: {time.monotonic() - started:.1f} s (once; cached in {OUT_3R})",
        flush=True,
    )
    return OUT_3R


class _Server:
    """`chat-archiver serve ROOT --port 0` in its own process."""

    def __init__(self, root: str) -> None:
        self.proc = subprocess.Popen([EXE, "serve", root, "--port", "0"], stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        self.url = line.split(" on ")[1].split()[0]

    def cpu_seconds(self) -> float:
        """The server's CPU time (user + system): on a shared machine, wall time also counts waiting."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_mib(self, field: str = "VmHWM") -> float:
        """The server's peak resident size (or `field` of /proc/PID/status: VmRSS, now)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        if self.proc.stderr:
            self.proc.stderr.close()


def _timed_get(url: str) -> tuple[float, float, int, int]:
    """(seconds to the first byte, to the last byte, body bytes, lines) of one GET."""
    started = time.monotonic()
    first = None
    size = lines = 0
    with urllib.request.urlopen(url, timeout=3600) as response:
        while chunk := response.read1(1 << 20):
            if first is None:
                first = time.monotonic() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
    return first or 0.0, time.monotonic() - started, size, lines


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000", time.gmtime(t))


def _measure(root: str, path: str, name: str) -> tuple[float, float]:
    """GET `path` from a fresh server of `root`; print the figures under `name`. Returns the
    seconds to the last byte and the server's CPU seconds."""
    server = _Server(root)
    try:
        _timed_get(server.url + "/healthz")  # the server's own start is not the reader's
        before = server.peak_mib("VmRSS")
        first, last, size, lines = _timed_get(server.url + path)
        peak, cpu = server.peak_mib(), server.cpu_seconds()
    finally:
        server.close()
    print(f"{name}_first_byte_seconds: {first:.2f} s")
    print(f"{name}_last_byte_seconds: {last:.1f} s")
    if lines:
        print(f"{name}_records_per_s: {lines / last:,.0f} records/s ({size / 2**20 / last:.1f} MiB/s)")
    print(f"{name}_server_cpu_seconds: {cpu:.1f} s")
    print(f"{name}_body: {size / 2**20:.0f} MiB")
    print(f"{name}_peak_rss: {peak:.0f} MiB")
    print(f"{name}_per_reader: {peak - before:.0f} MiB (peak minus resident before the request)", flush=True)
    return last, cpu


def _export_seconds(root: str, *extra: str) -> tuple[float, float]:
    """`chat-archiver export ROOT CHANNEL --format json` of the bench window to /dev/null: (wall
    seconds, CPU seconds of it and its workers)."""
    argv = [EXE, "export", root, CHANNEL, "--since", str(START), "--until", str(START + WINDOW), "--format", "json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run([*argv, *extra, "--out", os.devnull], check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _read_all(root: str) -> None:
    """Every file of `root` read once, so that no measured run pays for the disk."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                while f.read(1 << 20):
                    pass


def bench_chat_json() -> None:
    root = ensure_three_receiver_archive()
    query = f"start={_iso(START)}&end={_iso(START + WINDOW)}"
    name = f"serve_chat_json_{WINDOW_TAG}_3r"
    _read_all(root)
    export, _cpu = _export_seconds(root)
    served, served_cpu = _measure(root, f"/{CHANNEL}/chat.json?{query}", name)
    single, single_cpu = _export_seconds(root, "--jobs", "1")
    print(f"export_json_{WINDOW_TAG}_3r_seconds: {export:.1f} s (--jobs 1: {single:.1f} s, {single_cpu:.1f} s of CPU)")
    print(f"{name}_vs_export_json: {served / export:.2f} x (vs --jobs 1: {served / single:.2f} x)")
    print(
        f"{name}_cpu_vs_export_json_jobs_1: {served_cpu / single_cpu:.2f} x (CPU seconds, server vs export)", flush=True
    )


def bench_chat_jsonl(root: str) -> None:
    hours = min(JSONL_HOURS, bench_verify.HOURS)
    tag = "day" if hours == 24 else f"{hours}h"
    _measure(root, f"/{CHANNEL}/chat.jsonl?start={START}&end={START + hours * 3600}", f"serve_chat_jsonl_{tag}")


def bench_sync(root: str) -> None:
    from sync.shell import sync_once  # noqa: PLC0415 (in the measured run only)

    hours = min(SYNC_HOURS, bench_verify.HOURS)
    dest = os.path.join(os.path.dirname(OUT_3R), "sync-dest")
    shutil.rmtree(dest, ignore_errors=True)
    server = _Server(root)
    try:
        started = time.monotonic()
        stats = sync_once(dest, [server.url], start=START, end=START + hours * 3600 - 1, jobs=4)
        elapsed = time.monotonic() - started
        verify_started = time.monotonic()
        subprocess.run([EXE, "verify", dest], check=True, stdout=subprocess.DEVNULL)
        verify = time.monotonic() - verify_started
    finally:
        server.close()
        shutil.rmtree(dest, ignore_errors=True)
    assert not stats.refused, stats.refused[:3]
    tag = "day" if hours == 24 else f"{hours}h"
    print(f"verify_synced_{tag}_seconds: {verify:.1f} s")
    print(f"sync_{tag}_vs_verify: {elapsed / verify:.2f} x", flush=True)
    print(f"sync_{tag}_files: {stats.files_fetched} files ({stats.bytes_fetched / 2**20:,.0f} MiB)")
    print(f"sync_{tag}_files_per_s: {stats.files_fetched / elapsed:,.1f} files/s")
    print(f"sync_{tag}_mb_per_s: {stats.bytes_fetched / 1e6 / elapsed:,.1f} MB/s")
    print(f"sync_{tag}_seconds: {elapsed:.1f} s", flush=True)


def run() -> None:
    bench_chat_json()
    root, _total = bench_verify.ensure_archive()
    bench_chat_jsonl(root)
    bench_sync(root)


if __name__ == "__main__":
    bench.main(__spec__.name if __spec__ else __file__, __doc__, run, sys.argv[1:])
