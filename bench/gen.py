"""Generators of Twitch-like data for the benchmarks (deterministic: seeded)."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from typing import Any

from recorder.rawwriter import RawWriter

USERS = [f"viewer{i:05d}" for i in range(5000)]
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
    "BibleThump",
    "Jebaited",
    "omg",
    "and",
    "for",
    "you",
]
# Most chat is ASCII (emotes are words); about one line in ten carries an emoji or an accent.
RARE_WORDS = ["🎉", "café", "😂", "ñ", "日本"]


def privmsg(rng: random.Random, ms: int, i: int) -> str:
    user = rng.choice(USERS)
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 25))]
    if rng.random() < 0.1:
        words[rng.randrange(len(words))] = rng.choice(RARE_WORDS)
    text = " ".join(words)
    return (
        f"@badge-info=subscriber/{rng.randint(1, 60)};badges=subscriber/{rng.choice([0, 3, 6, 12, 24])},"
        f"bits/{rng.choice([1, 100, 1000])};client-nonce={rng.getrandbits(128):032x};color=#{rng.getrandbits(24):06X};"
        f"display-name={user.capitalize()};emotes=;first-msg=0;flags=;id={rng.getrandbits(128):032x};mod=0;"
        f"returning-chatter=0;room-id=22510310;subscriber=1;tmi-sent-ts={ms};turbo=0;user-id={10000 + i % 5000};"
        f"user-type= :{user}!{user}@{user}.tmi.twitch.tv PRIVMSG #desertbus :{text}"
    )


def write_recording(out_dir: str, lines: int, rate: float = 100.0, seed: int = 1, name: str = "bench") -> str:
    """A raw recording of `lines` received lines at `rate` lines/s (95% PRIVMSG, the rest JOIN/PART/NOTICE)."""
    rng = random.Random(seed)
    writer = RawWriter(out_dir, name, "Bench1", name, "bench", fsync_interval=3600)
    at = 1_700_000_000_000_000
    writer.write_open(0, "wss://irc-ws.chat.twitch.tv:443", at)
    writer.write_recv(0, "@room-id=22510310;slow=0 :tmi.twitch.tv ROOMSTATE #desertbus", at)
    step = int(1_000_000 / rate)
    for i in range(lines):
        at += rng.randint(0, 2 * step)
        roll = rng.random()
        if roll < 0.95:
            line = privmsg(rng, at // 1000 - rng.randint(50, 400), i)
        elif roll < 0.98:
            u = rng.choice(USERS)
            line = f":{u}!{u}@{u}.tmi.twitch.tv {rng.choice(['JOIN', 'PART'])} #desertbus"
        else:
            line = "@msg-id=slow_on :tmi.twitch.tv NOTICE #desertbus :This room is now in slow mode."
        writer.write_recv(0, line, at)
    writer.write_close(0, "end", at)
    writer.close()
    return os.path.join(out_dir, name)


def window_archives(
    out_dir: str, channel: str, minutes: range, records_of: Callable[[int], list[dict[str, Any]]]
) -> tuple[str, str]:
    """Two archives of the same records, generated once into `out_dir` (`unmerged`, `merged`):
    `unmerged` holds a file per receiver and minute (each record split into one per receiver: what
    wubloader nodes write before their merge loop, or `--no-merge`), `merged` is the directory
    merge of it (one file a minute, what a live host keeps)."""
    from formats.canonical import format_batch  # noqa: PLC0415 (only this generator needs the archive's formats)
    from formats.store import write_batch_bytes  # noqa: PLC0415
    from merge.directory import merge_tree  # noqa: PLC0415

    unmerged, merged = os.path.join(out_dir, "unmerged"), os.path.join(out_dir, "merged")
    marker = os.path.join(out_dir, "complete")
    if os.path.exists(marker):
        return unmerged, merged
    shutil.rmtree(out_dir, ignore_errors=True)
    for minute in minutes:
        by_receiver: dict[str, list[dict[str, Any]]] = {}
        for record in records_of(minute):
            for name, when in record["receivers"].items():
                by_receiver.setdefault(name, []).append({**record, "receivers": {name: when}})
        for records in by_receiver.values():
            write_batch_bytes(unmerged, channel, minute, format_batch(records))
    shutil.copytree(unmerged, merged)
    merge_tree(merged)
    with open(marker, "w") as f:
        f.write("ok\n")
    return unmerged, merged
