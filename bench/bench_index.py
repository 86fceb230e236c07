"""The search index (index/) on both backends. Prints `name: value unit` lines:

- `index_{backend}_build_records_per_s`: a fresh index of the whole archive (target >= 100,000);
- `index_{backend}_minute_update_ms`: `update_minutes` after one more minute (6,000 messages) is
  written, as the live follower calls it (target < 200 ms); `..._median_ms` over ten such minutes;
- `index_{backend}_settle_ms`: then `settle`, moving those ten minutes' rows to the main tier (the
  follower does it every 60,000 rows, after a minute is indexed: not part of any minute's update);
- `index_{backend}_user_month_p99_ms`: the justlog frontend's main request, one user's month in a
  channel, oldest first, over 200 users (target < 50 ms), and `..._p50_ms`; the reads, this one and
  the next, from a second opening of the index once the writer has closed (as `serve` reads it);
- `index_{backend}_search_p99_ms`: a word or a two-word phrase over the channel, newest 100, over
  100 queries (target < 300 ms);
- `index_{backend}_user_month_cold_p99_ms` (and `_p50`), SQLite's: 100 other users' months once the
  index file's pages are dropped from the page cache, as on a host whose memory is smaller than
  its index;
- `index_{backend}_size_mb` and `index_{backend}_size_vs_archive`: the index against the archive;
- each figure for SQLite twice: as made by default (`sqlite`) and keeping lines by user
  (`sqlite_lines_by_user`: `index --lines-by-user`);
- `index_read_batch_us_per_record` and `index_read_batch_py_us_per_record`: reading ten minutes'
  files into rows (`index.extract.read_batch`, with the compiled core its scan of the lines) and
  by the pure reference (`read_batch_py`), alternately in one process, the best of three each.

The archive is a busy channel (100 messages/s, 5,000 viewers each with a stable id, a removal
now and then), BENCH_INDEX_MESSAGES messages long (default 10,000,000, about 28 hours: 4.3 GB,
with 9 GB for each index; BENCH_INDEX_MESSAGES=1000000 for a quick run), generated once into
bench/out/. PostgreSQL runs as a throwaway server
(tests/pgserver.py) with 2 GB of shared buffers; without its binaries that backend is skipped, said in one line.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

import bench
from bench import gen
from formats import speedups
from formats.canonical import format_batch
from formats.store import write_batch_bytes
from index import ChatIndex, Query, extract, open_index

MESSAGES = int(os.environ.get("BENCH_INDEX_MESSAGES", "10000000"))
RATE = 100  # messages per second
PER_MINUTE = RATE * 60
START = 1_700_006_400  # 2023-11-15T00:00:00Z
CHANNEL = "desertbus"
USERS = 5000
SETTLE_MINUTES = 10  # live minutes measured, then settled (the follower settles every 60,000 rows)
PG_SHARED_BUFFERS = "2GB"  # the throwaway server's (a quarter of RAM is PostgreSQL's advice; this machine has 23 GB)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", f"index-{MESSAGES}")
WORDS = [*gen.WORDS, "good", "speedrun", "clip", "donate", ":)", "<3", "D:", "caf\u00e9", "\U0001f389"]


def minute_records(minute: int) -> list[dict[str, Any]]:
    """One minute of the channel, deterministic per minute."""
    rng = random.Random(minute)
    out: list[dict[str, Any]] = []
    ids: list[str] = []
    for _ in range(PER_MINUTE):
        ms = minute * 1000 + rng.randrange(60_000)
        t = ms / 1000
        n = rng.randrange(USERS)
        user = f"viewer{n:05d}"
        tags: dict[str, Any] = {"room-id": "22510310", "tmi-sent-ts": str(ms)}
        roll = rng.random()
        if roll < 0.995:
            mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))  # Twitch's ids are UUIDs
            ids.append(mid)
            tags.update(
                {"badges": "subscriber/12", "display-name": user.capitalize(), "id": mid, "user-id": str(10_000 + n)}
            )
            text = " ".join(rng.choices(WORDS, k=rng.randint(2, 14)))
            out.append(_record("PRIVMSG", [f"#{CHANNEL}", text], user, tags, t, rng=rng))
        elif roll < 0.998 and ids:
            tags.update({"login": user, "target-msg-id": rng.choice(ids)})
            out.append(_record("CLEARMSG", [f"#{CHANNEL}", "removed"], "tmi.twitch.tv", tags, t, rng=rng))
        else:
            tags.update({"ban-duration": "600", "target-user-id": str(10_000 + n)})
            out.append(_record("CLEARCHAT", [f"#{CHANNEL}", user], "tmi.twitch.tv", tags, t, rng=rng))
    return out


def _record(
    command: str, params: list[str], sender: str, tags: dict[str, Any], t: float, *, rng: Any
) -> dict[str, Any]:
    user = None if sender == "tmi.twitch.tv" else sender
    return {
        "command": command,
        "host": f"{user}.tmi.twitch.tv" if user else None,
        "params": params,
        "receivers": {"host1.Ab3dE.0": t + rng.randrange(80_000, 600_000) / 1e6},
        "sender": sender,
        "tags": tags,
        "time": t,
        "time_range": 0,
        "user": user,
    }


def _write_minute(args: tuple[str, int]) -> int:
    root, minute = args
    write_batch_bytes(root, CHANNEL, minute, format_batch(minute_records(minute)))
    return PER_MINUTE


def minutes() -> list[int]:
    return [START + 60 * i for i in range(max(1, MESSAGES // PER_MINUTE))]


def ensure_archive() -> str:
    marker = os.path.join(OUT, "complete")
    if os.path.exists(marker):
        return OUT
    shutil.rmtree(OUT, ignore_errors=True)
    started = time.monotonic()
    with multiprocessing.get_context("forkserver").Pool(os.cpu_count() or 1) as pool:
        total = sum(pool.imap_unordered(_write_minute, [(OUT, m) for m in minutes()], chunksize=4))
    with open(marker, "w") as f:
        f.write(str(total))
    print(f"index_generate_seconds: {time.monotonic() - started:.1f} s (once; cached in {OUT})", flush=True)
    return OUT


def _tree_size(path: str) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files if f.endswith(".json"))
    return total


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _user_months(index: ChatIndex, rng: random.Random, n: int) -> list[float]:
    """The time of `n` random users' months (November 2023), in seconds."""
    samples = []
    month_start, month_end = 1_698_796_800, 1_701_388_800
    for _ in range(n):
        user_id = str(10_000 + rng.randrange(USERS))
        started = time.perf_counter()
        index.messages(Query(channel=CHANNEL, user_id=user_id, since=month_start, until=month_end, oldest_first=True))
        samples.append(time.perf_counter() - started)
    return samples


def _drop_from_page_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def measure(
    name: str, root: str, make: Any, size_of: Any, archive_bytes: int, *, index_files: tuple[str, ...] = ()
) -> None:
    """`index_files`: the index's files, for the months read with none of their pages in memory."""
    index: ChatIndex = make(root)
    started = time.perf_counter()
    report = index.update()
    built = time.perf_counter() - started
    print(f"index_{name}_build_records_per_s: {report.records_read / built:,.0f} records/s", flush=True)
    print(f"index_{name}_build_seconds: {built:.1f} s ({report.records_read:,} records)", flush=True)
    # ru_maxrss: KiB, the peak of this process's life so far: the writer's (the readers are the
    # forkserver's children, not ours to measure this way)
    writer = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"index_{name}_build_peak_rss_mb: {writer:.0f} MB (the writer)", flush=True)

    # one more minute, as the live follower writes it, then the cheap update it calls; then nine
    # more (the median of the ten), and the settle the follower does after about ten minutes
    extras = [minutes()[-1] + 60 * (i + 1) for i in range(SETTLE_MINUTES)]
    took = []
    try:
        for extra in extras:
            write_batch_bytes(root, CHANNEL, extra, format_batch(minute_records(extra)))
            started = time.perf_counter()
            index.update_minutes(CHANNEL, [extra])
            took.append((time.perf_counter() - started) * 1000)
            if extra == extras[0]:
                print(f"index_{name}_minute_update_ms: {took[0]:.0f} ms", flush=True)
        print(
            f"index_{name}_minute_update_median_ms: {statistics.median(took):.0f} ms"
            f" ({len(took)} minutes, {min(took):.0f}-{max(took):.0f})",
            flush=True,
        )
        recent = index.recent_rows()
        started = time.perf_counter()
        index.settle()
        print(f"index_{name}_settle_ms: {(time.perf_counter() - started) * 1000:.0f} ms ({recent:,} rows)", flush=True)
    finally:
        gone = {(time.strftime("%Y-%m-%dT%H", time.gmtime(e)), time.strftime("%M:%S", time.gmtime(e))) for e in extras}
        for folder, _, files in os.walk(os.path.join(root, CHANNEL, "chat")):
            for f in files:
                if (os.path.basename(folder), f[:5]) in gone:
                    os.unlink(os.path.join(folder, f))
        index.update_minutes(CHANNEL, extras)
        index.settle()
    # the reads from a second opening, as `serve` reads the index the follower writes, once the
    # writer is closed: its last writes (the cleanup above, which no live host does) written out,
    # not copied from the log under the first reads
    index.close()
    index = make(root)

    rng = random.Random(7)
    samples = _user_months(index, rng, 200)
    print(f"index_{name}_user_month_p99_ms: {_p99(samples) * 1000:.1f} ms", flush=True)
    print(f"index_{name}_user_month_p50_ms: {statistics.median(samples) * 1000:.1f} ms", flush=True)

    samples = []
    for i in range(100):
        words = rng.sample(WORDS, 2)
        text = f'"{words[0]} {words[1]}"' if i % 2 else words[0]
        started = time.perf_counter()
        index.messages(Query(channel=CHANNEL, text=text, limit=100))
        samples.append(time.perf_counter() - started)
    print(f"index_{name}_search_p99_ms: {_p99(samples) * 1000:.1f} ms", flush=True)
    if index_files:  # last: the reads above are of an index in memory
        # the index not in memory (a host smaller than its index): its files' pages dropped from the
        # page cache (clean, once the writer closed), then 100 other users' months
        for path in index_files:
            _drop_from_page_cache(path)
        samples = _user_months(index, random.Random(8), 100)
        print(f"index_{name}_user_month_cold_p99_ms: {_p99(samples) * 1000:.1f} ms", flush=True)
        print(f"index_{name}_user_month_cold_p50_ms: {statistics.median(samples) * 1000:.1f} ms", flush=True)

    size = size_of(index)
    print(f"index_{name}_size_mb: {size / 1e6:.0f} MB", flush=True)
    print(
        f"index_{name}_size_vs_archive: {size / archive_bytes:.2f} x ({archive_bytes / 1e6:.0f} MB archive)", flush=True
    )
    index.close()


def measure_reading(root: str) -> None:
    """Both ways of reading a file into rows, over the same ten minutes, alternately (one ratio)."""
    every = (os.path.join(f, n) for f, _, ns in os.walk(os.path.join(root, CHANNEL)) for n in ns)
    paths = sorted(p for p in every if p.endswith(".json"))[:10]
    datas = []
    for p in paths:
        with open(p, "rb") as f:
            datas.append((p, f.read()))
    records = sum(extract.read_batch_py(d, p, CHANNEL).records for p, d in datas)
    best = {"read_batch": float("inf"), "read_batch_py": float("inf")}
    for _ in range(3):
        for name, so_far in best.items():
            read = getattr(extract, name)
            started = time.perf_counter()
            for p, d in datas:
                read(d, p, CHANNEL)
            best[name] = min(so_far, time.perf_counter() - started)
    for name, took in best.items():
        print(f"index_{name}_us_per_record: {took / records * 1e6:.2f} us ({records:,} records)", flush=True)


def run() -> None:
    root = ensure_archive()
    archive_bytes = _tree_size(root)
    print(f"index_core: {speedups.core_name()}", flush=True)
    measure_reading(root)
    for name, lines in (("sqlite", False), ("sqlite_lines_by_user", True)):
        work = tempfile.mkdtemp(prefix="bench-index-")
        try:
            path = os.path.join(work, "index.sqlite")

            def make(r: str, path: str = path, lines: bool = lines) -> ChatIndex:
                index = open_index(r, path)
                index.set_lines_by_user(lines)  # a new file's choice, before it holds rows
                return index

            measure(
                name,
                root,
                make,
                lambda _i, path=path: sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s)),
                archive_bytes,
                index_files=(path,),
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)  # its pages out of the page cache too
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.pgserver import postgres_server, unavailable_reason  # noqa: PLC0415 - the test helper, only here

    reason = unavailable_reason()
    if reason is not None:
        print(f"# index_postgres skipped: {reason}", flush=True)
        return
    # a host's server sized for its index (the default 128 MB of shared buffers is a tenth of the
    # B-trees of 10M messages, and each live row then read and wrote back pages: docs/performance.md)
    with postgres_server(f"-c shared_buffers={PG_SHARED_BUFFERS}") as url:

        def pg_size(index: Any) -> int:
            return int(index._fetch("SELECT pg_database_size(current_database())")[0][0])

        measure("postgres", root, lambda r: open_index(r, url), pg_size, archive_bytes)


if __name__ == "__main__":
    bench.main(__name__, __doc__, run, sys.argv[1:])
