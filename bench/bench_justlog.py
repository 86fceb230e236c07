"""justlog API benchmark: what the justlog frontend waits for, over real HTTP on loopback. Prints
`name: value unit` lines:

- a user's month (`/channel/C/user/U/Y/M?json&reverse`, the frontend's main request): time to the
  last byte, p50 and p99 over 100 requests for users drawn as often as they chat (the busiest
  user, about 2% of the channel, included);
- a channel's day (`/channel/C/Y/M/D?json`, 10,000 messages): time to the last byte and messages/s;
- a word search over the channel (`/channel/C/search?q=WORD&json&limit=100`): p99 over 100 words.

The archive: one channel, 300,000 Twitch-shaped PRIVMSGs from 5,000 users (Zipf-like activity)
over 30 days, written once into bench/out/ with its SQLite index beside it. The server runs in
this process (waitress on loopback); the figures include HTTP and the JSON rendering.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from typing import Any

import bench
from formats.canonical import format_batch
from formats.store import write_batch_bytes
from index import open_index
from serve.app import ChatApp
from serve.justlog import JustlogApi
from serve.server import Running

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "justlog-300k")
CHANNEL, ROOM = "benchchan", "424242"
START = 1717200000  # 2024-06-01T00:00:00Z
DAYS, MESSAGES, USERS = 30, 300_000, 5_000
WORDS = ["Kappa", "PogChamp", "hello", "gg", "lol", "what", "nice", "stream", "LUL", "monkaS", "yes", "no"]


def _user(i: int) -> tuple[str, str]:
    return f"user{i:05d}", str(10_000_000 + i)


def _generate() -> None:
    rng = random.Random(24)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(USERS)]
    authors = rng.choices(range(USERS), weights, k=MESSAGES)
    times = sorted(START + rng.random() * DAYS * 86400 for _ in range(MESSAGES))
    by_minute: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for n, (author, t) in enumerate(zip(authors, times, strict=True)):
        login, uid = _user(author)
        ms = int(t * 1000)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))
        tags = {
            "badge-info": "",
            "badges": "",
            "color": "#1E90FF",
            "display-name": login.capitalize(),
            "emotes": "",
            "id": f"00000000-0000-4000-8000-{n:012d}",
            "room-id": ROOM,
            "tmi-sent-ts": str(ms),
            "user-id": uid,
        }
        record = {
            "command": "PRIVMSG",
            "params": [f"#{CHANNEL}", text],
            "sender": login,
            "user": login,
            "host": f"{login}.tmi.twitch.tv",
            "tags": tags,
            "receivers": {"bench.AAAAA.0": ms / 1000 + 0.2},
            "time": ms / 1000,
            "time_range": 0,
        }
        by_minute[int(ms / 1000 // 60) * 60].append(record)
    partial = OUT + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    for minute, records in by_minute.items():
        write_batch_bytes(partial, CHANNEL, minute, format_batch(records))
    idx = open_index(partial)
    idx.update()
    idx.close()
    os.rename(partial, OUT)


def _activity() -> Counter[int]:
    rng = random.Random(24)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(USERS)]
    return Counter(rng.choices(range(USERS), weights, k=MESSAGES))


def _fetch(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def run() -> None:
    if not os.path.isdir(OUT):
        print(f"generating {MESSAGES:,} messages into {OUT} ...", file=sys.stderr)
        _generate()
    activity = _activity()
    rng = random.Random(7)
    users = list(activity)
    api = JustlogApi(lambda: open_index(OUT))
    try:
        with Running(ChatApp(OUT, extra=api)) as server:
            _fetch(f"{server.url}/channels")  # opens the index on a thread
            picks = [max(activity, key=activity.__getitem__), *rng.choices(users, [activity[u] for u in users], k=99)]
            month_times = []
            for user in picks:
                login, _ = _user(user)
                seconds, _ = _fetch(f"{server.url}/channel/{CHANNEL}/user/{login}/2024/6?json&reverse")
                month_times.append(seconds)
            print(f"justlog_user_month_p50: {_pct(month_times, 0.50) * 1000:.1f} ms")
            print(f"justlog_user_month_p99: {_pct(month_times, 0.99) * 1000:.1f} ms")
            day = time.gmtime(START + 86400 * 14)
            seconds, _size = _fetch(f"{server.url}/channel/{CHANNEL}/{day.tm_year}/{day.tm_mon}/{day.tm_mday}?json")
            per_day = MESSAGES / DAYS
            print(f"justlog_channel_day_seconds: {seconds:.2f} s")
            print(f"justlog_channel_day_rate: {per_day / seconds:,.0f} messages/s")
            search_times = []
            for _ in range(100):
                word = rng.choice(WORDS)
                seconds, _ = _fetch(f"{server.url}/channel/{CHANNEL}/search?q={word}&json&limit=100&reverse")
                search_times.append(seconds)
            print(f"justlog_search_p99: {_pct(search_times, 0.99) * 1000:.1f} ms")
    finally:
        api.close()


if __name__ == "__main__":
    bench.main(__name__, __doc__, run, sys.argv[1:])
