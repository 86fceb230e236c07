"""Our merge and reader held against the clean-room model of upstream's (tests/wubloader_model.py,
from ARCHIVE_FORMAT.md sections 5-6 only).

(a) For minutes whose records all have an id or an exact time, upstream's merge gives the same
    result whatever order it reads the files in, and our merge's bytes are exactly those bytes
    (section 5.1): so a wubloader node and ours name the merged files alike and stop fetching each
    other's.
(c) `chat.json` gives the model's rows, sorted as upstream sorts them: by `(time, time_range)`,
    records with an id first at equal keys (section 6).

The mixed cluster (b) is tests/test_mixed_cluster.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from formats.canonical import batch_time_of, format_batch
from formats.identity import message_id
from merge.core import merge
from serve.app import ChatApp
from tests import wubloader_model as model
from tests.archives import write_batch
from tests.profiles import examples
from tests.strategies import MERGE_MINUTE0
from tests.test_serve import call

RECEIVERS = ("host1.Ab3dE.0", "host2.Zz9xY.0", "host3.Qq1wE.1", "host4.Mm5nB.0")
M0 = MERGE_MINUTE0 + 60
CHANNEL = "chan"
EIGHTHS = st.integers(0, 8 * 60).map(lambda n: n / 8)  # exact in binary: ranges add up exactly


@st.composite
def messages(draw: Any) -> list[dict[str, Any]]:
    """Messages over three minutes, each with an id (exact, or an estimated range from each
    receiver that contains the true time) or id-less and exact (CLEARCHAT): upstream's merge of
    such readings does not depend on the order it reads them in."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, float]] = set()
    for n in range(draw(st.integers(1, 10))):
        ms = draw(st.integers(0, 3 * 60_000 - 1))
        t = (M0 * 1000 + ms) / 1000
        kind = draw(st.sampled_from(["exact", "ranged", "clearchat"]))
        readers = draw(st.lists(st.sampled_from(RECEIVERS), min_size=1, max_size=4, unique=True))
        if kind == "clearchat":
            target = draw(st.sampled_from(["troll", "spammer"]))
            if (target, t) in seen:
                continue  # one message per content and time: readings of it are told apart by time only
            seen.add((target, t))
            content = {
                "command": "CLEARCHAT",
                "params": [f"#{CHANNEL}", target],
                "sender": "tmi.twitch.tv",
                "user": None,
                "host": None,
                "tags": {"room-id": "1", "tmi-sent-ts": str(M0 * 1000 + ms)},
            }
        else:
            content = {
                "command": "PRIVMSG",
                "params": [f"#{CHANNEL}", draw(st.sampled_from(["hi", "h\u00e9 \U0001f389", "a  b"]))],
                "sender": "viewer",
                "user": "viewer",
                "host": "viewer.tmi.twitch.tv",
                "tags": {"id": f"m{n}"},
            }
        readings = []
        for name in readers:
            # an archiver writes an exact reading's range as the int 0, an estimate's as a positive width
            before, after = (draw(EIGHTHS), draw(EIGHTHS) + 0.125) if kind == "ranged" else (0, 0)
            delay = draw(st.integers(1, 3000)) / 1000
            readings.append(
                {**content, "receivers": {name: t + delay}, "time": t - before, "time_range": before + after}
            )
        out.append({"kind": kind, "readings": readings})
    return out


def files_of(world: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """One file per receiver and minute, as each node's archiver writes them (canonical order)."""
    by_file: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for message in world:
        for reading in message["readings"]:
            (name,) = reading["receivers"]
            by_file.setdefault((name, batch_time_of(reading["time"])), []).append(reading)
    return [model.parse_file(format_batch(records)) for _key, records in sorted(by_file.items())]


def ours(files: list[list[dict[str, Any]]]) -> dict[int, bytes]:
    merged = merge(*files)
    return {minute: b"".join(item[2] + b"\n" for item in items) for minute, items in merged.by_batch().items()}


def theirs(files: list[list[dict[str, Any]]], *, receiver_check: bool = False) -> dict[int, bytes]:
    by_minute: dict[int, list[dict[str, Any]]] = {}
    for record in model.merge_files(files, receiver_check=receiver_check):
        by_minute.setdefault(model.batch_of(record), []).append(record)
    return {minute: model.file_bytes(records) for minute, records in by_minute.items()}


@settings(max_examples=examples(1))
@given(world=messages(), data=st.data())
def test_our_merge_is_upstreams_for_records_with_ids_or_exact_times(world: list[dict[str, Any]], data: Any) -> None:
    files = files_of(world)
    order = data.draw(st.permutations(files), label="the order upstream reads the files in")
    expected = ours(files)
    assert theirs(order) == expected, (theirs(order), expected)
    # upstream merges our merged file with files that arrive later, and we merge upstream's: alike
    cut = data.draw(st.integers(0, len(order)), label="files merged first")
    first = [model.parse_file(b) for b in theirs(order[:cut]).values()]
    assert theirs([*first, *order[cut:]]) == expected
    assert ours([*first, *order[cut:]]) == expected


def test_upstream_deletes_a_join_that_meets_the_next_one_of_its_user_and_ours_keeps_it() -> None:
    """The mixed cluster's residue (docs/serve-sync.md): two JOINs of one user 42 s apart, each seen
    by receivers A and B, the first in minute M0 (range [M0+20, M0+65]: a JOIN's estimate reaches 45 s
    back) and the second in M0+60 ([M0+62, M0+117]). Their ranges meet, so upstream's merge, reading
    the files minute by minute, folds the first JOIN into the second: section 5.1's numbers give one
    record at M0+62 with the range 65 - 62 = 3.0 and the second JOIN's receive times; the first JOIN's
    receptions are gone. No merge that keeps them writes upstream's bytes for minute M0, so a
    wubloader node fetches that file of ours on every pass. Had upstream's receiver check fired (A
    and B each with two receive times: section 5's fourth defect), it would keep both JOINs, each
    combined from A and B (45 -> 45.0, 55 -> 55.0): our merge's bytes."""
    join = {"command": "JOIN", "params": ["#chan"], "sender": "lurker", "user": "lurker"}
    join |= {"host": "lurker.tmi.twitch.tv", "tags": None}
    first = {**join, "time": M0 + 20.0, "time_range": 45}
    second = {**join, "time": M0 + 62.0, "time_range": 55}
    a, b = RECEIVERS[:2]
    files = [  # one file per receiver and minute, in the order upstream's merge loop reads them
        [{**first, "receivers": {a: M0 + 64.25}}],
        [{**first, "receivers": {b: M0 + 64.5}}],
        [{**second, "receivers": {a: M0 + 106.25}}],
        [{**second, "receivers": {b: M0 + 106.5}}],
    ]
    both_second = {a: M0 + 106.25, b: M0 + 106.5}
    assert theirs(files) == {
        M0 + 60: model.file_bytes([{**join, "receivers": both_second, "time": M0 + 62.0, "time_range": 3.0}])
    }
    kept = {
        M0: model.file_bytes([{**first, "receivers": {a: M0 + 64.25, b: M0 + 64.5}, "time_range": 45.0}]),
        M0 + 60: model.file_bytes([{**second, "receivers": both_second, "time_range": 55.0}]),
    }
    assert ours(files) == kept
    assert theirs(files, receiver_check=True) == kept


@settings(max_examples=examples(1 / 3))  # a whole window read through serve each
@given(world=messages(), data=st.data())
def test_chat_json_gives_upstreams_rows_in_upstreams_order(
    tmp_path_factory: Any, world: list[dict[str, Any]], data: Any
) -> None:
    root = tmp_path_factory.mktemp("archive")
    files = files_of(world)
    for records in files:
        write_batch(str(root), CHANNEL, batch_time_of(records[0]["time"]), records)
    start_ms = data.draw(st.integers(0, 2 * 60_000), label="start")
    start = (M0 * 1000 + start_ms) / 1000
    end = start + data.draw(st.integers(1, 120), label="length")
    status, _headers, body = call(ChatApp(str(root)), f"/{CHANNEL}/chat.json", f"start={start}&end={end}")
    assert status == 200, body
    rows = json.loads(body)
    by_minute: dict[int, list[list[dict[str, Any]]]] = {}
    for records in data.draw(st.permutations(files), label="the order upstream reads the files in"):
        by_minute.setdefault(batch_time_of(records[0]["time"]), []).append(records)
    expected = model.read_window(by_minute, start, end)
    assert sorted(map(model.line, rows)) == sorted(map(model.line, expected))
    assert [_order_key(r) for r in rows] == [_order_key(r) for r in expected]


def _order_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """What upstream's order fixes: the key, and at equal keys records with an id first."""
    return (record["time"], record["time_range"], message_id(record) is None)


def test_chat_json_lists_the_record_with_an_id_first_at_equal_keys(tmp_path: Path) -> None:
    t = M0 + 0.5
    clear = {"command": "CLEARCHAT", "params": ["#chan", "troll"], "sender": "tmi.twitch.tv", "user": None}
    clear |= {"host": None, "tags": {"room-id": "1"}, "receivers": {RECEIVERS[0]: t + 0.1}, "time": t, "time_range": 0}
    say = {"command": "PRIVMSG", "params": ["#chan", "hi"], "sender": "a", "user": "a", "host": "a.tmi.twitch.tv"}
    say |= {"tags": {"id": "x"}, "receivers": {RECEIVERS[0]: t + 0.1}, "time": t, "time_range": 0}
    write_batch(str(tmp_path), CHANNEL, M0, [clear, say])  # canonical order: CLEARCHAT's line first
    status, _headers, body = call(ChatApp(str(tmp_path)), f"/{CHANNEL}/chat.json", f"start={M0}&end={M0 + 60}")
    assert status == 200 and [r["command"] for r in json.loads(body)] == ["PRIVMSG", "CLEARCHAT"]
