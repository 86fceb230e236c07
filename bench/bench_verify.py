"""verify and export benchmark: a generated day of a 100 messages/s channel (about 8.6M records).

Prints `name: value unit` lines: records/s and peak RSS of `verify` over the whole archive, and of
`export` (json to /dev/null; jsonl too in one process), as the commands run them (a worker per CPU); and the same in one
process (`jobs=1`, the issue's measure: no pool, figures per core). Each measurement runs in a fresh
process so its peak RSS is its own; verify's workers are measured apart (from /proc). Which core
ran (compiled or pure: CHAT_ARCHIVER_PURE=1) is printed first.

The archive is generated once into bench/out/ (gitignored) and reused; a `complete` marker says it
is whole. It is shaped like a merged Twitch archive: one file a minute; 95% PRIVMSGs with an id,
an exact time and Twitch's usual tags, seen by two receivers (a few by one); the rest JOIN/PART
with estimated ranges, one line per receiver observation, as merges store them. Set
BENCH_VERIFY_HOURS to generate fewer hours (the names then say so).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import shutil
import sys
import threading
import time
from typing import Any

import bench
from formats.canonical import format_batch
from formats.store import write_batch_bytes

START = 1_700_006_400  # 2023-11-15T00:00:00Z, a day boundary
RATE = 100  # messages per second
HOURS = int(os.environ.get("BENCH_VERIFY_HOURS", "24"))
# export runs at about a quarter of verify's speed (the merge and fold dominate): a whole day would
# take several minutes, so by default it exports the first EXPORT_HOURS and says so in the names
EXPORT_HOURS = int(os.environ.get("BENCH_EXPORT_HOURS", "4"))
CHANNEL = "desertbus"
RECEIVERS = ("host1.Ab3dE.0", "host2.Zz9yX.0")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", f"verify-{HOURS}h-{RATE}ps")
WORDS = [
    "Kappa",
    "PogChamp",
    "LUL",
    "hello",
    "gg",
    "what",
    "is",
    "this",
    "chat",
    "desert",
    "bus",
    "lol",
    "nice",
    "emote",
    "poggers",
    "monkaS",
    "the",
    "a",
    "run",
    "\U0001f389",
    "caf\u00e9",
]


def minute_records(minute: int) -> list[dict[str, Any]]:
    """One minute of the channel (deterministic per minute, so workers can build minutes apart)."""
    rng = random.Random(minute)
    out: list[dict[str, Any]] = []
    for _ in range(RATE * 60):
        ms = minute * 1000 + rng.randrange(60_000)
        t = ms / 1000
        if rng.random() < 0.95:
            user = f"viewer{rng.randrange(5000):05d}"
            seen = RECEIVERS if rng.random() < 0.99 else (rng.choice(RECEIVERS),)
            out.append(
                {
                    "command": "PRIVMSG",
                    "params": [f"#{CHANNEL}", " ".join(rng.choices(WORDS, k=rng.randint(3, 20)))],
                    "sender": user,
                    "user": user,
                    "host": f"{user}.tmi.twitch.tv",
                    "tags": {
                        "badge-info": "",
                        "badges": "subscriber/12",
                        "color": f"#{rng.getrandbits(24):06X}",
                        "display-name": user.capitalize(),
                        "emotes": "",
                        "first-msg": "0",
                        "flags": "",
                        "id": f"{rng.getrandbits(128):032x}",
                        "mod": "0",
                        "room-id": "22510310",
                        "subscriber": "1",
                        "tmi-sent-ts": str(ms),
                        "turbo": "0",
                        "user-id": str(rng.randrange(10**8)),
                        "user-type": "",
                    },
                    "receivers": {name: t + rng.randrange(80_000, 600_000) / 1e6 for name in seen},
                    "time": t,
                    "time_range": 0,
                }
            )
        else:
            user = f"viewer{rng.randrange(5000):05d}"
            command = rng.choice(("JOIN", "PART"))
            for name in RECEIVERS:  # one line per receiver observation, each its own estimate
                received = t + rng.randrange(1_000_000, 30_000_000) / 1e6
                start = max(minute, received - 55)
                out.append(
                    {
                        "command": command,
                        "params": [f"#{CHANNEL}"],
                        "sender": user,
                        "user": user,
                        "host": f"{user}.tmi.twitch.tv",
                        "tags": None,
                        "receivers": {name: received},
                        "time": start,
                        "time_range": 55,
                    }
                )
    return out


def _write_minute(minute: int) -> int:
    records = minute_records(minute)
    write_batch_bytes(OUT, CHANNEL, minute, format_batch(records))
    return len(records)


def ensure_archive() -> tuple[str, int]:
    """The cached archive and its record count, generating it (on all cores) if missing."""
    marker = os.path.join(OUT, "complete")
    if os.path.exists(marker):
        with open(marker) as f:
            return OUT, int(f.read())
    shutil.rmtree(OUT, ignore_errors=True)
    started = time.monotonic()
    minutes = range(START, START + HOURS * 3600, 60)
    with multiprocessing.get_context("forkserver").Pool(os.cpu_count() or 1) as pool:
        total = sum(pool.imap_unordered(_write_minute, minutes, chunksize=4))
    with open(marker, "w") as f:
        f.write(str(total))
    print(f"generate_{HOURS}h_seconds: {time.monotonic() - started:.1f} s (once; cached in {OUT})", flush=True)
    return OUT, total


class _PeakWatcher:
    """Peak RSS (VmHWM) over this process's descendants, polled from /proc: pool workers are
    children of the forkserver, so RUSAGE_CHILDREN never sees them."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            parents: dict[int, int] = {}
            hwm: dict[int, int] = {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/status") as f:
                        fields = dict(line.split(":", 1) for line in f if ":" in line)
                except OSError:
                    continue
                parents[int(entry)] = int(fields["PPid"])
                if "VmHWM" in fields:
                    hwm[int(entry)] = int(fields["VmHWM"].split()[0])
            for pid, peak in hwm.items():
                ancestor = parents.get(pid)
                while ancestor and ancestor != me:
                    ancestor = parents.get(ancestor)
                if ancestor == me:
                    self.peak_kib = max(self.peak_kib, peak)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kib


def _measure_verify(root: str, jobs: int | None, conn: Any) -> None:
    from verify.shell import verify_archive  # noqa: PLC0415 (in the measured process only)

    watcher = _PeakWatcher()
    started = time.monotonic()
    report = verify_archive(root, jobs=jobs)
    elapsed = time.monotonic() - started
    conn.send(
        (
            elapsed,
            report.exit_status,
            sum(ch.tally.records for ch in report.channels),
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            watcher.stop(),
        )
    )


def _measure_export(root: str, hours: int, jobs: int | None, fmt: str, conn: Any) -> None:
    from export.shell import export  # noqa: PLC0415 (in the measured process only)
    from export.window import Window  # noqa: PLC0415
    from verify.shell import default_jobs  # noqa: PLC0415

    watcher = _PeakWatcher()
    started = time.monotonic()
    with open(os.devnull, "wb") as sink:
        count = export(root, CHANNEL, Window(START, START + hours * 3600), fmt, sink, jobs=jobs or default_jobs())
    elapsed = time.monotonic() - started
    conn.send((elapsed, count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, watcher.stop()))


def _in_process(target: Any, *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    proc = context.Process(target=target, args=(*args, child))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def run() -> None:
    from formats.speedups import core_name  # noqa: PLC0415

    root, total = ensure_archive()
    print(f"verify_core: {core_name()}", flush=True)
    tag = f"{HOURS}h" if HOURS != 24 else "day"
    elapsed, status, records, _rss, _workers = _in_process(_measure_verify, root, 1)
    assert records == total and status == 0, (records, total, status)
    print(f"verify_{tag}_records_per_s_1_process: {records / elapsed:,.0f} records/s", flush=True)
    elapsed, status, records, rss, workers = _in_process(_measure_verify, root, None)
    assert records == total and status == 0, (records, total, status)
    print(f"verify_{tag}_records_per_s: {records / elapsed:,.0f} records/s")
    print(f"verify_{tag}_seconds: {elapsed:.1f} s")
    print(f"verify_{tag}_peak_rss_main: {rss / 1024:.0f} MiB")
    print(f"verify_{tag}_peak_rss_per_worker: {workers / 1024:.0f} MiB")
    export_hours = min(HOURS, EXPORT_HOURS)
    etag = f"{export_hours}h" if export_hours != 24 else "day"
    elapsed, count, rss, _workers = _in_process(_measure_export, root, 1, 1, "json")
    print(f"export_json_1h_records_per_s_1_process: {count / elapsed:,.0f} records/s", flush=True)
    print(f"export_json_1h_peak_rss_1_process: {rss / 1024:.0f} MiB", flush=True)
    elapsed, count, _rss, _workers = _in_process(_measure_export, root, 1, 1, "jsonl")
    print(f"export_jsonl_1h_records_per_s_1_process: {count / elapsed:,.0f} records/s", flush=True)
    elapsed, count, rss, workers = _in_process(_measure_export, root, export_hours, None, "json")
    print(f"export_json_{etag}_records_per_s: {count / elapsed:,.0f} records/s")
    print(f"export_json_{etag}_seconds: {elapsed:.1f} s")
    print(f"export_json_{etag}_peak_rss_main: {rss / 1024:.0f} MiB")
    print(f"export_json_{etag}_peak_rss_per_worker: {workers / 1024:.0f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    bench.main(__spec__.name if __spec__ else __file__, __doc__, run, sys.argv[1:])
