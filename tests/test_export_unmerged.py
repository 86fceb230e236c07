"""A window not yet merged (several files a minute: a file per receiver, as wubloader nodes keep
them before their merge loop) reads as the same window merged: every export format gives the same
bytes for the two archives, and they are upstream's rule (the reference: every record decoded,
merged at once). The unmerged read merges each minute's files first through the compiled merge
(merge.fastplan.merged_minute); these tests hold it to the reference and check that it is taken."""

from __future__ import annotations

import io
import random
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from export import stream
from export.emotes import ChatImages
from export.render import Playback
from export.shell import export
from export.stream import write_export
from export.window import Window
from formats.canonical import format_batch
from media.thirdparty import Emote, Snapshot
from merge import fastplan
from merge.core import merge_records
from merge.directory import merge_tree
from tests.compiled import needs_native
from tests.strategies import MERGE_MINUTE0, export_windows, merge_archives
from tests.test_export_golden import upstream_rule
from tests.test_export_stream import write_archives

pytestmark = pytest.mark.core

FORMATS = ("json", "jsonl", "text", "irc", "ass", "html")


def split_by_receiver(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each receiver's own archive: a record seen by several receivers split into one a receiver
    (what each node writes before a merge), records in their order."""
    archives: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        for name, when in record["receivers"].items():
            archives[name].append({**record, "receivers": {name: when}})
    return list(archives.values())


def write_unmerged(root: str, archives: list[list[dict[str, Any]]]) -> None:
    """Each archive's records as its own files, one a minute (so a minute has a file per archive)."""
    write_archives(root, archives)
    Path(root, "chan", "chat").mkdir(parents=True, exist_ok=True)


def images() -> ChatImages:
    png = bytes.fromhex("89504e470d0a1a0a") + bytes(40)
    emotes = (Emote("7tv", "e1", "Kappa", False, f"{1:064x}.png"),)
    return ChatImages.of("chan", [Snapshot("7tv", "chan", 0.0, emotes)], read_image=lambda _n: png)


def exported(root: str, window: Window, fmt: str) -> bytes:
    out = io.BytesIO()
    export(root, "chan", window, fmt, out, playback=Playback(window.start, window.end, images=images()))
    return out.getvalue()


def reference(root: str, window: Window, fmt: str) -> bytes:
    """Upstream's rule rendered: every file decoded and merged at once, no byte path."""
    out = io.BytesIO()
    records = upstream_rule(root, "chan", window.start, window.end)
    write_export(iter(records), fmt, out, Playback(window.start, window.end, images=images()))
    return out.getvalue()


@settings(max_examples=examples(0.3), deadline=None)
@given(merge_archives(), export_windows, st.sampled_from(FORMATS), st.booleans())
def test_unmerged_window_reads_as_merged_window(
    archives: list[list[dict[str, Any]]], bounds: tuple[int, int], fmt: str, by_receiver: bool
) -> None:
    if by_receiver:  # duplicates split across files, a file per receiver
        archives = split_by_receiver([r for records in archives for r in records])
    window = Window(*bounds)
    with tempfile.TemporaryDirectory() as unmerged, tempfile.TemporaryDirectory() as base:
        write_unmerged(unmerged, archives)
        merged = str(Path(base, "merged"))
        shutil.copytree(unmerged, merged)
        merge_tree(merged)
        expected = reference(unmerged, window, fmt)
        assert exported(merged, window, fmt) == expected
        assert exported(unmerged, window, fmt) == expected


def bench_like_minute(minute: int, receivers: int) -> list[dict[str, Any]]:
    """A busy minute as bench/gen.py writes it: messages with ids, each seen by every receiver."""
    rng = random.Random(minute)
    out = []
    for i in range(200):
        t = minute + rng.randrange(60_000) / 1000
        out.append(
            {
                "command": "PRIVMSG",
                "params": ["#chan", f"hello {i} Kappa"],
                "sender": "alice",
                "user": "alice",
                "host": "alice.tmi.twitch.tv",
                "tags": {"id": f"{rng.getrandbits(64):016x}", "display-name": "Alice"},
                "receivers": {f"host{k}.Ab3dE.0": t + 0.2 + k / 10 for k in range(receivers)},
                "time": t,
                "time_range": 0,
            }
        )
    return out


@needs_native
def test_a_minute_split_by_receiver_takes_the_compiled_merge() -> None:
    """The unmerged read of a Twitch-like minute is the compiled merge's, and that merge gives the
    merged minute's bytes (the reference merge's: combined records' numbers are floats)."""
    if fastplan.fold_lines is None:
        pytest.skip("CHAT_ARCHIVER_PURE: the unmerged read takes the reference way")
    records = bench_like_minute(MERGE_MINUTE0, 3)
    parts = [format_batch(part) for part in split_by_receiver(records)]
    assert len(parts) == 3
    assert fastplan.merged_minute(MERGE_MINUTE0, parts) == format_batch(merge_records(records))


def test_a_minute_the_fast_merge_refuses_is_read_file_by_file() -> None:
    """A record lying in another minute than its file's, or a damaged file: None (the files are
    then read one by one, which names the damage)."""
    records = bench_like_minute(MERGE_MINUTE0, 2)
    good = format_batch(records[:10])
    assert fastplan.merged_minute(MERGE_MINUTE0 + 60, [good, good]) is None
    assert fastplan.merged_minute(MERGE_MINUTE0, [good, b'{"command":\n']) is None


@needs_native
def test_an_unmerged_minute_of_messages_is_read_without_decoding_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each message of the minute in two files (a file per receiver): merged by the compiled merge,
    every message then passes through as its merged line, none is decoded."""
    if fastplan.fold_lines is None:
        pytest.skip("CHAT_ARCHIVER_PURE: the unmerged read takes the reference way")
    records = bench_like_minute(MERGE_MINUTE0, 2)
    write_unmerged(str(tmp_path), split_by_receiver(records))
    decoded: list[bytes] = []
    real = stream.decode_line
    monkeypatch.setattr(stream, "decode_line", lambda line: decoded.append(line) or real(line))
    monkeypatch.setattr(stream, "orjson", None)  # nor decoded in bulk
    out = io.BytesIO()
    window = Window(MERGE_MINUTE0, MERGE_MINUTE0 + 60)
    assert export(str(tmp_path), "chan", window, "jsonl", out) == len(records)
    assert decoded == []
    assert out.getvalue() == format_batch(merge_records(records))
