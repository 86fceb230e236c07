"""Media benchmark: Twitch emotes for a day of a busy channel, against a fake CDN on loopback.

A generated day (deterministic) of a busy channel, 20 messages/s (1.73 M messages): 35% of
messages carry 1 to 3 emotes, drawn from a Zipf-like mix of 300 global emotes, 60 channel emotes,
a long tail of 3,000 emotes from other channels, and 5 new emote ids each hour (churn). Every
message is offered to the media keeper (`media.keeper.Keeper.offer_record`, what the live host's
media child does for each record), which fetches the six variants of each id not on disk from a
loopback CDN that answers emote-sized bodies (static PNGs of about 1.5/3.5/7 KB per scale, one id
in ten an animated GIF of about 15/45/100 KB). Two days are run on one store: the first starts
empty, the second shows the steady state (only new ids are fetched).

Figures: emote fetches per message, ids queued (distinct ids seen) and fetches per day, store growth per day, the
rate of the caller's side (messages offered per second: what the live host spends per record)
and the rate of fetches over loopback.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import bench
from media.keeper import Keeper, Options
from media.workers import MediaStats

RATE = 20  # messages per second
DAY = 86_400
GLOBAL, CHANNEL, TAIL, NEW_PER_HOUR = 300, 60, 3_000, 5
SIZES = {"1.0": 1_500, "2.0": 3_500, "3.0": 7_000}
ANIMATED = {"1.0": 15_000, "2.0": 45_000, "3.0": 100_000}


def variant_body(emote_id: str, scale: str) -> bytes:
    h = int(hashlib.sha256(emote_id.encode()).hexdigest()[:8], 16)
    animated = h % 10 == 0
    size = (ANIMATED if animated else SIZES)[scale] * (80 + h % 40) // 100
    head = b"GIF89a" if animated else b"\x89PNG\r\n\x1a\n"
    return head + bytes(size - len(head))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")  # emoticons/v2/<id>/default/<theme>/<scale>
        body = variant_body(parts[2], parts[5])
        self.send_response(200)
        self.send_header("Content-Type", "image/gif" if body.startswith(b"GIF") else "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def day_of_messages(day: int) -> tuple[list[dict[str, Any]], int]:
    """The day's messages (only their emotes tags: all the keeper reads) and how many there are."""
    rng = random.Random(day)
    pool = (
        [(f"g{i}", 1.0 / (i + 1)) for i in range(GLOBAL)]
        + [(f"c{i}", 2.0 / (i + 1)) for i in range(CHANNEL)]
        + [(f"t{i}", 0.02 / (i + 1) ** 0.5) for i in range(TAIL)]
    )
    names, weights = zip(*pool, strict=True)
    messages = []
    n = RATE * DAY
    for i in range(n):
        if rng.random() >= 0.35:
            messages.append({"tags": {"emotes": ""}})
            continue
        hour = i * 24 // n
        ids = rng.choices(names, weights, k=rng.randint(1, 3))
        if rng.random() < 0.01:  # a new emote of this hour, used now and then
            ids.append(f"n{day}h{hour}x{rng.randrange(NEW_PER_HOUR)}")
        messages.append({"tags": {"emotes": "/".join(f"{e}:{6 * k}-{6 * k + 4}" for k, e in enumerate(ids))}})
    return messages, n


def store_bytes(root: str) -> int:
    total = 0
    for folder, _dirs, files in os.walk(os.path.join(root, "emotes")):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def run() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cdn = f"http://127.0.0.1:{server.server_address[1]}"
    root = tempfile.mkdtemp(prefix="bench-media-")
    try:
        for day in (1, 2):
            messages, n = day_of_messages(day)
            stats = MediaStats()
            before = store_bytes(root)
            opts = Options(twitch_cdn=cdn, allow_private=True, workers=4, queue_size=100_000)
            with Keeper(root, opts, stats=stats) as keeper:
                began = time.perf_counter()
                for m in messages:
                    keeper.offer_record(m)
                offered = time.perf_counter() - began
                keeper.drain()
                fetching = time.perf_counter() - began
            fetches = stats.fetches.get(("emote", "ok"), 0)
            ids = stats.offers.get(("emote", "queued"), 0)
            tag = "cold" if day == 1 else "warm"
            print(f"media_{tag}_messages: {n} messages", flush=True)
            print(f"media_{tag}_emote_ids_queued: {ids} ids")
            print(f"media_{tag}_emote_fetches: {fetches} fetches")
            print(f"media_{tag}_emote_fetches_per_message: {fetches / n:.6f} fetches/message")
            print(f"media_{tag}_store_growth_per_day: {(store_bytes(root) - before) / 1e6:.2f} MB")
            print(f"media_{tag}_offer_rate: {n / offered:,.0f} messages/s")
            print(f"media_{tag}_fetch_rate: {fetches / max(fetching, 1e-9):,.0f} fetches/s", flush=True)
            if stats.refusals or stats.offers.get(("emote", "dropped")):
                print(f"# refusals {stats.refusals} dropped {stats.offers.get(('emote', 'dropped'), 0)}")
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    bench.main(__spec__.name if __spec__ else __file__, __doc__, run, sys.argv[1:])
