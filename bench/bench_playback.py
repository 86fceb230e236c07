"""Chat playback benchmark: `export --format ass` and `--format html` of a 4-hour window of a 100
messages/s channel (time, file size, peak RSS, and the time as a ratio to `--format json` of the
same window in the same run); the read paths of one window (`read_paths`: json, ass and html
from a merged archive and from the same records not yet merged, as ratios); and the html page's
time to first render with 100,000 messages in headless Chromium (performance.now() in the page,
read by selenium), plus the time a seek takes there.

The archive is bench_verify's (a day when `make bench` already generated it, else its first
BENCH_PLAYBACK_HOURS hours, generated once into bench/out/). Each export runs in a fresh process so
its peak RSS is its own. The browser part is skipped, saying so, without chromium and chromedriver.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import time
from typing import Any

import bench

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
HOURS = int(os.environ.get("BENCH_PLAYBACK_HOURS", "4"))
PAGE_MESSAGES = 100_000


def archive() -> str:
    """bench_verify's archive: the day if it is there, else `HOURS` hours of it (generated once)."""
    day = os.path.join(OUT, "verify-24h-100ps")
    if os.path.exists(os.path.join(day, "complete")):
        return day
    os.environ["BENCH_VERIFY_HOURS"] = str(max(HOURS, 1))
    from bench import bench_verify  # noqa: PLC0415 (reads BENCH_VERIFY_HOURS on import)

    return bench_verify.ensure_archive()[0]


def _measure_export(root: str, fmt: str, path: str, conn: Any) -> None:
    from bench.bench_verify import CHANNEL, START, _PeakWatcher  # noqa: PLC0415
    from export.shell import export  # noqa: PLC0415 (in the measured process only)
    from export.window import Window  # noqa: PLC0415
    from verify.shell import default_jobs  # noqa: PLC0415

    watcher = _PeakWatcher()
    started = time.monotonic()
    with open(path, "wb") as out:  # as the command runs it: workers merge, this process renders
        count = export(root, CHANNEL, Window(START, START + HOURS * 3600), fmt, out, jobs=default_jobs())
    elapsed = time.monotonic() - started
    conn.send((elapsed, count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, watcher.stop()))


READ_MINUTES = int(os.environ.get("BENCH_READ_MINUTES", "60"))
READ_FORMATS = ("json", "ass", "html")


def _measure_read(root: str, fmt: str, minutes: int, conn: Any) -> None:
    """One export of the first `minutes` of the bench channel in this process (jobs=1), to nowhere."""
    from bench.bench_verify import CHANNEL, START  # noqa: PLC0415
    from export.shell import export  # noqa: PLC0415 (in the measured process only)
    from export.window import Window  # noqa: PLC0415

    started, cpu = time.monotonic(), time.process_time()
    with open(os.devnull, "wb") as out:
        count = export(root, CHANNEL, Window(START, START + minutes * 60), fmt, out, jobs=1)
    conn.send((time.monotonic() - started, time.process_time() - cpu, count))


def read_paths() -> None:
    """One window read from two archives of the same records (bench/gen.py: `merged`, a file a
    minute; `unmerged`, a file per receiver and minute), in json, ass and html, each in a fresh
    process: the figures that hold on a noisy machine are the ratios within this run."""
    from bench import gen  # noqa: PLC0415
    from bench.bench_verify import CHANNEL, START, _in_process, minute_records  # noqa: PLC0415

    folder = os.path.join(OUT, f"readpaths-{READ_MINUTES}m-100ps")
    minutes = range(START, START + READ_MINUTES * 60, 60)
    made = gen.window_archives(folder, CHANNEL, minutes, minute_records)
    archives = dict(zip(("unmerged", "merged"), made, strict=True))
    wall: dict[tuple[str, str], float] = {}
    cpu: dict[tuple[str, str], float] = {}
    for fmt in READ_FORMATS:
        for kind in ("merged", "unmerged"):
            elapsed, used, count = _in_process(_measure_read, archives[kind], fmt, READ_MINUTES)
            wall[fmt, kind], cpu[fmt, kind] = elapsed, used
            print(f"read_{READ_MINUTES}m_{fmt}_{kind}_seconds: {elapsed:.2f} s ({count:,} records)")
            print(f"read_{READ_MINUTES}m_{fmt}_{kind}_cpu_seconds: {used:.2f} s", flush=True)
    # ratios of CPU time (one process each: steadier than wall time on a shared machine), wall in brackets
    for fmt in READ_FORMATS:
        ratio, wall_ratio = cpu[fmt, "unmerged"] / cpu[fmt, "merged"], wall[fmt, "unmerged"] / wall[fmt, "merged"]
        print(f"read_{READ_MINUTES}m_{fmt}_unmerged_to_merged: {ratio:.2f} x (wall {wall_ratio:.2f} x)")
    for fmt in READ_FORMATS[1:]:
        for kind in ("merged", "unmerged"):
            ratio, wall_ratio = cpu[fmt, kind] / cpu["json", kind], wall[fmt, kind] / wall["json", kind]
            print(f"read_{READ_MINUTES}m_{fmt}_{kind}_to_json: {ratio:.2f} x (wall {wall_ratio:.2f} x)")
    sys.stdout.flush()


def page_with(messages: int, emotes: bool = False) -> str:
    """The html page of the first `messages` chat messages of the bench channel; with `emotes`, its
    words poggers, monkaS, BibleThump and Jebaited are third-party emotes of a snapshot (about one
    message in two shows one), embedded as images."""
    from bench.bench_verify import START, minute_records  # noqa: PLC0415
    from export.emotes import ChatImages  # noqa: PLC0415
    from export.html import render_page  # noqa: PLC0415
    from media.thirdparty import Emote, Snapshot  # noqa: PLC0415

    records: list[dict[str, Any]] = []
    minute = START
    while len(records) < messages:
        records.extend(
            sorted((r for r in minute_records(minute) if r["command"] == "PRIVMSG"), key=lambda r: r["time"])
        )
        minute += 60
    del records[messages:]
    images = None
    if emotes:
        words = ("poggers", "monkaS", "BibleThump", "Jebaited")
        png = bytes.fromhex("89504e470d0a1a0a") + bytes(200)  # what the page embeds: the bytes, not a decode
        sets = (Emote("7tv", f"e{i}", w, False, f"{i:064x}.png") for i, w in enumerate(words))
        images = ChatImages.of("desertbus", [Snapshot("7tv", "desertbus", 0.0, tuple(sets))], read_image=lambda _n: png)
    return render_page(records, title="bench", start=START, end=records[-1]["time"] + 1, images=images)


def browser_figures(path: str) -> tuple[float, float, float] | None:
    """(first render ms, mean seek-and-render ms, rows in the DOM) of the page in headless Chromium."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        print("# player: chromium or chromedriver missing, browser figures skipped")
        return None
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1000,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(120)
        firsts = []
        for _ in range(3):
            driver.get("about:blank")
            driver.get(f"file://{path}#t=999999")  # the end: every message in the list
            WebDriverWait(driver, 120).until(
                lambda d: d.execute_script("return document.documentElement.dataset.ready")
            )
            firsts.append(driver.execute_script("return window.chatPlayer.firstRenderMs"))
        seek = driver.execute_script("""
            var p = window.chatPlayer, n = 200, t0 = performance.now();
            for (var i = 0; i < n; i++) { p.follow = true; p.seek(p.duration * ((i * 7919) % n) / n); }
            return (performance.now() - t0) / n;""")
        rows = driver.execute_script("return document.querySelectorAll('#rows .row').length")
        return sorted(firsts)[1], seek, rows
    finally:
        driver.quit()


def warm(root: str) -> None:
    """Read the window's files once, so that neither export pays for the disk alone."""
    from bench.bench_verify import CHANNEL, START  # noqa: PLC0415
    from formats.canonical import batch_relpath  # noqa: PLC0415

    for hour in range(START, START + HOURS * 3600, 3600):
        folder = os.path.join(root, CHANNEL, "chat", batch_relpath(hour, "")[0])
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), "rb") as f:
                while f.read(1 << 20):
                    pass


def run() -> None:
    root = archive()  # first: it sets what bench_verify reads on import
    from bench.bench_verify import _in_process  # noqa: PLC0415

    warm(root)
    os.makedirs(OUT, exist_ok=True)
    read_paths()
    seconds = {}
    for fmt in ("json", "ass", "html"):
        path = os.path.join(OUT, f"playback.{fmt}")
        elapsed, count, rss, workers = _in_process(_measure_export, root, fmt, path)
        size = os.path.getsize(path)
        os.unlink(path)
        print(f"export_{fmt}_{HOURS}h_seconds: {elapsed:.1f} s ({count:,} records)")
        print(f"export_{fmt}_{HOURS}h_records_per_s: {count / elapsed:,.0f} records/s")
        print(f"export_{fmt}_{HOURS}h_file_size: {size / 2**20:.1f} MiB ({size / count:.0f} bytes/record)")
        print(f"export_{fmt}_{HOURS}h_peak_rss_main: {rss / 1024:.0f} MiB")
        print(f"export_{fmt}_{HOURS}h_peak_rss_per_worker: {workers / 1024:.0f} MiB", flush=True)
        seconds[fmt] = elapsed
    for fmt in ("ass", "html"):
        print(f"export_{fmt}_{HOURS}h_to_json: {seconds[fmt] / seconds['json']:.2f} x (same window, this run)")
    page = os.path.join(OUT, "player-100k.html")
    started = time.monotonic()
    text = page_with(PAGE_MESSAGES)
    with open(page, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"player_100k_page_build_seconds: {time.monotonic() - started:.1f} s")
    print(f"player_100k_file_size: {len(text.encode()) / 2**20:.1f} MiB")
    started = time.monotonic()
    with_emotes = page_with(PAGE_MESSAGES, emotes=True)
    print(f"player_100k_page_build_with_emotes_seconds: {time.monotonic() - started:.1f} s")
    print(f"player_100k_with_emotes_file_size: {len(with_emotes.encode()) / 2**20:.1f} MiB")
    figures = browser_figures(page)
    if figures is not None:
        first, seek, rows = figures
        print(f"player_100k_first_render: {first:.0f} ms (median of 3 loads, from navigation start)")
        print(f"player_100k_seek_render: {seek:.2f} ms per seek ({rows} rows in the DOM)")
    sys.stdout.flush()


if __name__ == "__main__":
    bench.main(__spec__.name if __spec__ else __file__, __doc__, run, sys.argv[1:])
