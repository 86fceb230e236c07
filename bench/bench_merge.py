"""Merge benchmark: three recorders' archives of one hour of a 100 messages/s channel.

Prints `name: value unit` lines. The data is synthetic but shaped like Twitch: every PRIVMSG has an
`id` and an exact server time and reaches each recorder (a few are missed) at its own receive time;
JOIN/PART arrive in bursts with per-recorder estimated ranges, so they never fold; CLEARCHAT is
exact and id-less. `naive_merge` is a straightforward implementation of upstream's pairing rule
(ids matched by id, id-less records by a first-match scan for equal content and overlapping
ranges), run on the same data so the ratio compares like with like. On Twitch-like data, ids
dominate and the naive rule is a dict lookup, so it is about as fast as ours (and wrong on the
cases in docs/merge.md); with many id-less records its scan is quadratic, which section 4 shows.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import bench
from formats.canonical import batch_time_of, format_batch
from formats.memory import gc_paused
from formats.store import write_batch_bytes
from merge.core import merge

START = 1_700_002_800  # an hour boundary
RECEIVERS = ("host1.Ab3dE.0", "host2.Zz9xY.0", "host3.Qq1wE.0")


def recorder_archives(
    seconds: int = 3600,
    rate: int = 100,
    *,
    seed: int = 1,
    recorders: int = 3,
    start: int = START,
    joins_per_second: float = 1.0,
    join_miss: float = 0.002,
) -> list[list[dict[str, Any]]]:
    """`recorders` archives (record lists) of one channel, as separate recorders would replay them.

    `join_miss` is the chance that a recorder misses a JOIN/PART (1.0 - a tiny bit: each is seen by
    about one recorder only, the naive rule's worst case)."""
    rng = random.Random(seed)
    names = tuple(RECEIVERS[i] if i < len(RECEIVERS) else f"host{i + 1}.Rr{i:03d}.0" for i in range(recorders))
    out: list[list[dict[str, Any]]] = [[] for _ in names]
    users = [f"user{i:04d}" for i in range(2000)]
    for second in range(seconds):
        for _ in range(rate):
            ms = (start + second) * 1000 + rng.randrange(1000)
            user = rng.choice(users)
            tags = {
                "badge-info": "",
                "badges": "subscriber/12",
                "color": "#1E90FF",
                "display-name": user,
                "emotes": "",
                "first-msg": "0",
                "flags": "",
                "id": f"{rng.getrandbits(122):031x}",
                "mod": "0",
                "room-id": "22510310",
                "subscriber": "1",
                "tmi-sent-ts": str(ms),
                "turbo": "0",
                "user-id": str(rng.randrange(10**8)),
                "user-type": "",
            }
            text = " ".join(rng.choice(("Kappa", "hello", "PogChamp", "lol", "h\u00e9h\u00e9", "gg")) for _ in range(5))
            for i, name in enumerate(names):
                if rng.random() < 0.002:
                    continue  # a recorder that missed it (reconnecting)
                out[i].append(
                    {
                        "command": "PRIVMSG",
                        "params": ["#desertbus", text],
                        "sender": user,
                        "user": user,
                        "host": f"{user}.tmi.twitch.tv",
                        "tags": tags,
                        "receivers": {name: (ms + rng.randrange(50, 400)) / 1000 + rng.randrange(1000) / 1e6},
                        "time": ms / 1000,
                        "time_range": 0,
                    }
                )
        for _ in range(int(joins_per_second) + (rng.random() < joins_per_second % 1)):
            user = rng.choice(users)
            command = rng.choice(("JOIN", "PART"))
            seen = [i for i in range(len(names)) if rng.random() >= join_miss] or [rng.randrange(len(names))]
            for i in seen:
                name = names[i]
                received = start + second + rng.randrange(10**6) / 1e6
                out[i].append(
                    {
                        "command": command,
                        "params": ["#desertbus"],
                        "sender": user,
                        "user": user,
                        "host": f"{user}.tmi.twitch.tv",
                        "tags": None,
                        "receivers": {name: received},
                        "time": received - 50,
                        "time_range": 55,
                    }
                )
        if second % 60 == 30:
            ms = (start + second) * 1000
            for i, name in enumerate(names):
                out[i].append(
                    {
                        "command": "CLEARCHAT",
                        "params": ["#desertbus", "spammer"],
                        "sender": "tmi.twitch.tv",
                        "user": None,
                        "host": None,
                        "tags": {"room-id": "22510310", "tmi-sent-ts": str(ms)},
                        "receivers": {name: ms / 1000 + 0.2},
                        "time": ms / 1000,
                        "time_range": 0,
                    }
                )
    return out


def write_archive(root: str, channel: str, records: list[dict[str, Any]]) -> int:
    """Write records as one batch file per minute (as one recorder's replay would). Returns files written."""
    by_batch: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_batch.setdefault(batch_time_of(record["time"]), []).append(record)
    for batch_time, batch in by_batch.items():
        write_batch_bytes(root, channel, batch_time, format_batch(batch))
    return len(by_batch)


# --- the naive reference: upstream's pairing rule, written plainly ------------------------------


def _content_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in a if k not in ("receivers", "time", "time_range"))


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return max(a["time"], b["time"]) <= min(a["time"] + a["time_range"], b["time"] + b["time_range"])


def _fold(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    lo = max(a["time"], b["time"])
    hi = min(a["time"] + a["time_range"], b["time"] + b["time_range"])
    return {**a, "receivers": {**b["receivers"], **a["receivers"]}, "time": lo, "time_range": hi - lo}


def naive_merge(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Upstream's rule: ids by id; each id-less record on the left takes the first match on the right."""
    by_id: dict[str, dict[str, Any]] = {}
    rest: list[dict[str, Any]] = []
    for r in right:
        mid = (r["tags"] or {}).get("id")
        if isinstance(mid, str):
            by_id[mid] = r
        else:
            rest.append(r)
    out = []
    for a in left:
        mid = (a["tags"] or {}).get("id")
        if isinstance(mid, str):
            match = by_id.pop(mid, None)
            out.append(a if match is None else _fold(a, match))
            continue
        for j, b in enumerate(rest):
            if _content_equal(a, b) and _overlap(a, b):
                out.append(_fold(a, b))
                del rest[j]
                break
        else:
            out.append(a)
    return out + list(by_id.values()) + rest


def _naive_seconds(archives: list[list[dict[str, Any]]]) -> float:
    """Naive pairwise merge of the archives, then the batch bytes (upstream writes them too).

    The GC is paused as our merge pauses it, so the comparison is of the algorithms."""
    gc.collect()
    with gc_paused():
        started = time.perf_counter()
        result = archives[0]
        for archive in archives[1:]:
            result = naive_merge(result, archive)
        format_batch(result)
        return time.perf_counter() - started


# --- measurements ------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    """Peak resident memory of this process. Linux's VmHWM belongs to this process image alone;
    ru_maxrss survives fork and exec, so a child started from a big parent would report the parent's."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _tree_child(root: str, queue: Any) -> None:
    from formats.speedups import load  # noqa: PLC0415 (imported in the fresh child only)
    from merge.directory import merge_tree  # noqa: PLC0415

    started = time.perf_counter()
    stats = merge_tree(root)
    core = "pure" if load() is None else "compiled"
    queue.put((time.perf_counter() - started, stats.records_in, _peak_rss_mib(), core))


def _lines(results: dict[str, tuple[float, str]]) -> Iterator[str]:
    for name, (value, unit) in results.items():
        yield f"{name}: {value:.4g} {unit}"


def run() -> None:
    seconds = int(os.environ.get("BENCH_MERGE_SECONDS", "3600"))
    started = time.perf_counter()
    gc.collect()
    rss_empty = _rss_mib()
    archives = recorder_archives(seconds)
    gc.collect()
    input_mib = _rss_mib() - rss_empty
    total = sum(len(a) for a in archives)
    print(
        f"merge.input_records: {total} records ({seconds} s, 100 msg/s, 3 recorders; "
        f"generated in {time.perf_counter() - started:.1f} s)"
    )

    # 1. In memory: the pure merge of the three archives.
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    merged = merge(*archives)
    data = merged.to_bytes()
    core_seconds = time.perf_counter() - t0
    print(
        f"merge.core_records_per_s: {total / core_seconds:.0f} records/s ({core_seconds:.2f} s, "
        f"{merged.counts.records_out} records out, {len(data) / 2**20:.0f} MiB)"
    )
    print(
        f"merge.core_peak_rss: {_peak_rss_mib():.0f} MiB (whole process: the generated input, the merge and its output)"
    )
    growth = _peak_rss_mib() - rss_before
    print(f"merge.core_rss_growth: {growth:.0f} MiB (peak during the merge, over the input held)")
    print(f"merge.core_input_rss: {input_mib:.0f} MiB (the input records held, measured as they were made)")
    print(
        f"merge.core_memory_over_input: {(input_mib + growth) / input_mib:.2f} x (input and merge at the peak, "
        "over the input alone)"
    )

    # 2. On disk: one file per recorder per minute, merged by merge_tree in a fresh process.
    root = tempfile.mkdtemp(prefix="bench_merge_")
    try:
        files = sum(write_archive(root, "desertbus", a) for a in archives)
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=_tree_child, args=(root, queue))
        child.start()
        tree_seconds, records_in, child_rss, core = queue.get()
        child.join()
        print(
            f"merge.tree_records_per_s: {total / tree_seconds:.0f} records/s ({tree_seconds:.2f} s, "
            f"{files} files, {records_in} records replaced, {core} scanner)"
        )
        print(
            f"merge.tree_peak_rss: {child_rss:.0f} MiB (fresh process running merge_tree only, {seconds} s of archive)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    # 3. The naive reference on the same data, measured (GC paused for both, bytes produced by both).
    del merged, data
    naive = _naive_seconds(archives)
    ours = _ours_seconds(archives)
    print(f"merge.naive_seconds: {naive:.2f} s (upstream's pairing rule on the same {total} records)")
    print(f"merge.core_seconds: {ours:.2f} s (same conditions)")
    print(f"merge.speedup_vs_naive: {naive / ours:.2f} x (above 1: ours is faster)")
    del archives

    # 4. Where the naive rule is quadratic: id-less records that find no match on the other side
    #    (each JOIN/PART seen by one recorder, 10/s; first-match then scans the whole list). Doubling
    #    the stream about quadruples the naive time and doubles ours; both measured, not extrapolated.
    for span in (150, 300):
        flood = recorder_archives(span, joins_per_second=10.0, join_miss=0.999, seed=3)
        records = sum(len(a) for a in flood)
        naive, ours = _naive_seconds(flood), _ours_seconds(flood)
        print(
            f"merge.unmatched_joins_{span}s_naive_seconds: {naive:.2f} s ({records} records, "
            "10 JOIN/PART per s, each seen by one recorder)"
        )
        print(f"merge.unmatched_joins_{span}s_core_seconds: {ours:.2f} s")
        print(f"merge.unmatched_joins_{span}s_speedup_vs_naive: {naive / ours:.1f} x")
    print(f"merge.bench_seconds: {time.perf_counter() - started:.0f} s")


def _ours_seconds(archives: list[list[dict[str, Any]]]) -> float:
    gc.collect()
    started = time.perf_counter()
    merge(*archives).to_bytes()
    return time.perf_counter() - started


if __name__ == "__main__":
    bench.main(__spec__.name if __spec__ else __file__, __doc__, run, sys.argv[1:])
