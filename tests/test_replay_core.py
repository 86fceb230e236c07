"""The replay's compiled step and lane (native/replay.c) are byte-identical to the pure reference:
the step to `twitch_line_py` (tests/reference/replay_step.py) (parse_compat_py + canonical_bytes_py), the compact
record's bytes to `canonical_bytes` of the full record, the lane to the pure engine fed event by
event; and the compact engine saves and restores as the pure one does."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from formats.canonical import canonical_bytes_py, format_batch
from formats.errors import IRCParseError
from formats.rawcodec import RECV, Event, Header, encode_event, encode_header
from formats.rawfile import RawProblem, find_raw_files, group_streams, iter_stream_events
from formats.store import write_batch_bytes
from replay import compact
from replay.batches import ClosedBatch
from replay.engine import StreamReplayer
from replay.shell import replay
from tests.compiled import NATIVE, native, needs_native
from tests.reference.replay_step import twitch_line_py
from tests.strategies import (
    RAW_T0_US,
    damaged_irc_lines,
    irc_lines,
    raw_event_streams,
    receive_time,
    receiver,
    server_time,
    twitch_shaped_lines,
)

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fixtures" / "corpus" / "twitch-lines.txt"


def _step(line: str, name: str, now: float) -> object:
    """The compiled step's answer where it gives one, checked against the reference's."""
    fast = native().twitch_line(line, compact.receiver_key(name), now)
    try:
        ref: object = twitch_line_py(line, name, now)
    except IRCParseError:
        ref = None
    if fast is not None:
        assert fast == ref, line
        assert [type(x) for x in fast] == [type(x) for x in ref]  # type: ignore[attr-defined]
    return fast


@needs_native
@given(st.one_of(twitch_shaped_lines, damaged_irc_lines(), irc_lines().map(lambda x: x[0])), receiver, receive_time)
def test_the_step_is_the_reference(line: str, name: str, now: float) -> None:
    _step(line, name, now)


@needs_native
def test_the_step_is_the_reference_on_the_corpus() -> None:
    with open(CORPUS, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    taken = 0
    for line in lines:
        for variant in (line, line + "\r\n", f" {line}"):
            taken += _step(variant, "host1.Slug1.0", 1_700_000_000.123456) is not None
    assert taken >= len(lines) - 20  # the step reads nearly every real line itself (the test is not vacuous)


@needs_native
@given(
    st.one_of(
        server_time,
        receive_time,
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(0, 2**64 - 1).map(lambda b: struct.unpack("d", struct.pack("Q", b))[0]),
    )
)
def test_times_print_as_repr(x: float) -> None:
    if math.isfinite(x):
        assert native().float_repr(x) == repr(x)


_number = st.one_of(
    server_time, receive_time, st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.floats(0, 1e-3), st.just(0)
)


@given(twitch_shaped_lines, receiver, receive_time, _number, _number)
def test_a_compact_record_is_its_full_record(line: str, name: str, now: float, time: Any, time_range: Any) -> None:
    """record_bytes (and the compiled `batch`) of a compact record = canonical bytes of the full one."""
    try:
        _command, _first, _st, head, tail = twitch_line_py(line, name, now)
    except IRCParseError:
        return
    record = {"time": time, "time_range": time_range, compact.PARTS: (head, tail, line, name, now)}
    full = compact.full_record(record)
    if not all(type(v) is float and not math.isfinite(v) for v in (time,)):
        assert compact.record_bytes(record) == canonical_bytes_py(full)
    assert format_batch([record, full], compact.record_bytes) == format_batch([full, full])
    if compact.compiled_lane() is not None:  # the engine makes compact records only with the compiled core
        assert compact.batch_bytes([record, full]) == format_batch([full, full])
    if NATIVE is not None:
        got = NATIVE.replay_batch([record, full, record], compact.record_bytes)
        assert got is None or got == format_batch([full, full, full])
        exact = [
            (type(x) is float and math.isfinite(x)) or (type(x) is int and abs(x) < 2**53) for x in (time, time_range)
        ]
        if all(exact):
            assert got is not None  # the reference path only for numbers a double does not hold


def _raw_file(path: Path, events: list[Event], extra: tuple[bytes, ...] | list[bytes] = ()) -> None:
    data = encode_header(Header("host", "Slug0", "h", "t", 0, RAW_T0_US))
    data += b"".join(encode_event(e) for e in events) + b"".join(extra)
    path.write_bytes(data)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def _reference_tree(events: list[Event], out: Path, recorder: str = "host", slug: str = "Slug0") -> dict[str, bytes]:
    r = StreamReplayer(recorder, slug)
    for b in [*[b for e in events for b in r.feed(e)], *r.finish()]:
        if b.records:
            write_batch_bytes(str(out), b.channel, b.batch_time, format_batch(b.records))
    return _tree(out)


def _busy(events: list[Event]) -> list[Event]:
    """The stream with a run of exact PRIVMSGs after each of its exact ones, so the lane has runs to take."""
    out: list[Event] = []
    seq = 0
    for e in events:
        seq += 1
        out.append(e._replace(seq=seq))
        if e.kind == RECV and "tmi-sent-ts=" in e.text:
            for k in range(3):
                seq += 1
                out.append(e._replace(seq=seq, at=e.at + k, text=e.text.replace(" :hi", f' :hi{k} "é😂\\')))
    return out


@settings(max_examples=examples(0.2), deadline=None)
@given(raw_event_streams(), st.integers(0, 4))
def test_the_lane_replays_as_the_engine_fed_event_by_event(
    tmp_path_factory: Any, events: list[Event], overlap: int
) -> None:
    """replay.shell (the compact engine, the lane taking the common lines) writes the very files the
    pure engine writes, with the same counts, also when a file repeats the previous one's last events."""
    events = _busy(events)
    tmp = tmp_path_factory.mktemp("lane")
    half = len(events) // 2
    _raw_file(tmp / "a.jsonl", events[:half])
    # the second file starts `overlap` events early: those are read once (their seq repeats)
    second = events[max(0, half - overlap) :]
    data = encode_header(Header("host", "Slug0", "h", "t", second[0].seq if second else 0, RAW_T0_US))
    (tmp / "b.jsonl").write_bytes(data + b"".join(encode_event(e) for e in second))
    report = replay([str(tmp)], str(tmp / "fast"))
    assert _tree(tmp / "fast") == _reference_tree(events, tmp / "ref")
    ref = StreamReplayer("host", "Slug0")
    for e in events:
        ref.feed(e)
    ref.finish()
    s = report.stats
    assert (s.events, s.lines, s.records, s.skipped) == (
        ref.stats.events,
        ref.stats.lines,
        ref.stats.records,
        ref.stats.skipped,
    )


@given(raw_event_streams(), st.data())
def test_the_compact_engine_saves_and_restores(events: list[Event], data: Any) -> None:
    """state()/from_state() of the compact engine give full records and the same bytes as the pure
    engine that never stopped (the live follower's checkpoint)."""

    def out(batches: list[ClosedBatch]) -> list[tuple[str, int, bytes]]:
        return [(b.channel, b.batch_time, compact.batch_bytes(b.records)) for b in batches]

    events = _busy(events)
    cuts = set(data.draw(st.lists(st.integers(0, len(events)), max_size=4)))
    r = StreamReplayer("host", "Slug0", compact=True)
    got: list[tuple[str, int, bytes]] = []
    for i, e in enumerate(events):
        if i in cuts:
            state = orjson.loads(orjson.dumps(r.state()))
            r = StreamReplayer.from_state("host", "Slug0", state, compact=True)
        got.extend(out(list(r.feed(e))))
    got.extend(out(r.finish()))
    ref = StreamReplayer("host", "Slug0")
    want = [(b.channel, b.batch_time, format_batch(b.records)) for e in events for b in ref.feed(e)]
    want += [(b.channel, b.batch_time, format_batch(b.records)) for b in ref.finish()]
    assert got == want


def test_raw_lines_the_lane_must_not_take(tmp_path: Path) -> None:
    """Lines a recorder does not write (other spacing, \\u escapes, bad UTF-8, leading zeros, CR) and
    damaged ones are read by the reference: decoded the same, or reported by file and line."""
    line = "@tmi-sent-ts=1700000001000 :u!u@u PRIVMSG #c :hi"
    events = [
        Event("open", 1, RAW_T0_US, 0, "ws://x", "twitch"),
        Event(RECV, 2, RAW_T0_US, 0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c"),
        Event(RECV, 3, RAW_T0_US + 1, 0, line),
    ]
    odd = [
        b'{"kind":"recv", "seq":4,"at":1700000000000002,"conn":0,"line":"' + line.encode() + b'"}\n',
        b'{"kind":"recv","seq":5,"at":1700000000000003,"conn":0,"line":"'
        + line.replace("hi", "\\u00e9").encode()
        + b'"}\n',
        b'{"kind":"recv","seq":6,"at":1700000000000004,"conn":0,"line":"' + line.encode() + b'"}\r\n',
        b'{"kind":"recv","seq":07,"at":1700000000000005,"conn":0,"line":"' + line.encode() + b'"}\n',
        b'{"kind":"recv","seq":8,"at":1700000000000006,"conn":0,"line":"' + line.encode() + b'\xff"}\n',
        b'{"kind":"recv","seq":9,"at":1700000000000007,"conn":0,"line":"' + line.encode() + b'\t"}\n',
        b'{"kind":"recv","seq":18446744073709551615,"at":1700000000000008,"conn":0,"line":"'
        + line.encode()
        + b'"}\n',  # a seq beyond what C's long long holds: read, then every later line is a repeat
        b'{"kind":"recv","seq":10,"at":1700000000000009,"conn":0,"line":"' + line.encode() + b'"}\n',
        b'{"kind":"recv","seq":11,"at":1700000000000010,"conn":0,"line":"' + line.encode() + b'"}',  # torn
    ]
    _raw_file(tmp_path / "raw.jsonl", events, odd)
    report = replay([str(tmp_path / "raw.jsonl")], str(tmp_path / "out"))
    assert [p.line for p in report.raw_problems] == [8, 9, 10, 13]
    assert "torn last line" in report.raw_problems[-1].message
    assert report.stats.records == 5  # seq 3; 4 (spaced); 5 (\u00e9); 6 (CR after the JSON); 2**64 - 1
    # the same as the reference reader (iter_stream_events) feeding the pure engine
    problems: list[RawProblem] = []
    (stream,) = group_streams([str(tmp_path / "raw.jsonl")], problems)
    decoded = list(iter_stream_events(stream, problems))
    assert [p.line for p in problems] == [8, 9, 10, 13]
    assert _tree(tmp_path / "out") == _reference_tree(decoded, tmp_path / "ref")


def test_a_busy_channel_goes_through_the_lane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's kind of recording (95% PRIVMSG with exact times, JOIN/PART, NOTICE): the lane takes
    nearly every line, and the archive is the pure engine's."""
    from bench.gen import write_recording

    write_recording(str(tmp_path / "raw"), 3000, rate=20.0)
    taken = 0
    feed_raw = StreamReplayer.feed_raw

    def counting(self: StreamReplayer, block: bytes, offset: int, last_seq: int) -> tuple[int, int, int]:
        nonlocal taken
        before = self.stats.events
        result = feed_raw(self, block, offset, last_seq)
        taken += self.stats.events - before
        return result

    monkeypatch.setattr(StreamReplayer, "feed_raw", counting)
    report = replay([str(tmp_path / "raw")], str(tmp_path / "fast"))
    problems: list[RawProblem] = []
    (stream,) = group_streams(find_raw_files([str(tmp_path / "raw")]), problems)
    decoded = list(iter_stream_events(stream, problems))
    assert _tree(tmp_path / "fast") == _reference_tree(decoded, tmp_path / "ref", "bench", "Bench1")
    assert report.stats.records == 3000
    if compact.compiled_lane() is not None:
        assert taken > 0.9 * report.stats.lines
    else:
        assert taken == 0


@needs_native
@given(
    st.lists(
        st.tuples(
            twitch_shaped_lines,
            st.sampled_from([1.5, 2, 2.0, 1_700_000_000.25, -3.0]),
            st.sampled_from([0, 0.0, 10, 2.5]),
            st.booleans(),
        ),
        max_size=12,
    )
)
def test_the_compiled_batch_sorts_as_the_reference(items: list[tuple[str, float, float, bool]]) -> None:
    """Ties of time and time range (ints against floats too) are ordered by the line, as Python orders
    the (time, time_range, line) tuples; compact and full records mix."""
    records: list[dict[str, Any]] = []
    for line, time, time_range, full in items:
        try:
            _c, _f, _s, head, tail = twitch_line_py(line, "h.S1.0", 1_700_000_000.5)
        except IRCParseError:
            continue
        record: dict[str, Any] = {
            "time": time,
            "time_range": time_range,
            compact.PARTS: (head, tail, line, "h.S1.0", 1_700_000_000.5),
        }
        records.append(dict(compact.full_record(record)) if full else record)
    want = format_batch([compact.full_record(r) for r in records])
    assert native().replay_batch(records, compact.record_bytes) == want


@pytest.mark.parametrize(
    ("channels", "window"), [(["desertbus"], None), (["other"], None), (None, (1_700_000_020.0, 1_700_000_050.5))]
)
def test_the_lane_keeps_the_channel_and_window_selection(
    tmp_path: Path, channels: list[str] | None, window: tuple[float, float] | None
) -> None:
    from bench.gen import write_recording
    from replay.shell import _in_window

    write_recording(str(tmp_path / "raw"), 1500, rate=20.0)
    since, until = window if window is not None else (None, None)
    replay([str(tmp_path / "raw")], str(tmp_path / "fast"), channels=channels, since=since, until=until)
    problems: list[RawProblem] = []
    (stream,) = group_streams(find_raw_files([str(tmp_path / "raw")]), problems)
    r = StreamReplayer("bench", "Bench1", channels=frozenset(channels) if channels else None)
    events = list(iter_stream_events(stream, problems))
    for b in [*[b for e in events for b in r.feed(e)], *r.finish()]:
        records = [x for x in b.records if _in_window(x, since, until)]
        if records:
            write_batch_bytes(str(tmp_path / "ref"), b.channel, b.batch_time, format_batch(records))
    assert _tree(tmp_path / "fast") == _tree(tmp_path / "ref")
    assert (_tree(tmp_path / "fast") == {}) == (channels == ["other"])


def test_a_gzipped_recording_goes_through_the_lane_the_same(tmp_path: Path) -> None:
    import gzip

    from bench.gen import write_recording

    write_recording(str(tmp_path / "raw"), 1500, rate=20.0)
    (plain,) = find_raw_files([str(tmp_path / "raw")])
    (tmp_path / "gz").mkdir()
    with open(plain, "rb") as f, gzip.open(tmp_path / "gz" / (os.path.basename(plain) + ".gz"), "wb") as g:
        g.write(f.read())
    replay([str(tmp_path / "raw")], str(tmp_path / "a"))
    report = replay([str(tmp_path / "gz")], str(tmp_path / "b"))
    assert report.raw_problems == [] and report.stats.records == 1500
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b") != {}


_DAMAGE = [
    b"garbage\n",
    b'{"kind":"recv","seq":1,"at":1,"conn":0,"line":"x\n',
    encode_header(Header("host", "Slug0", "h", "t", 0, RAW_T0_US)),
]


@settings(max_examples=examples(0.2), deadline=None)
@given(raw_event_streams(), st.data())
def test_the_lane_counts_lines_as_the_reader_does(tmp_path_factory: Any, events: list[Event], data: Any) -> None:
    """The lane counts each block's lines as it walks them (the reader then skips its own count):
    damaged lines anywhere, in blocks of any size, are reported at the same line numbers as the
    reference reader reports them, and the archive is the pure engine's."""
    from formats import rawfile

    events = _busy(events)
    lines = [encode_event(e) for e in events]
    marks = data.draw(st.lists(st.tuples(st.integers(0, len(lines)), st.sampled_from(_DAMAGE)), max_size=6))
    for at, bad in sorted(marks, key=lambda m: m[0], reverse=True):
        lines.insert(at, bad)
    damaged = [n for n, raw in enumerate(lines, 2) if raw in _DAMAGE]
    tmp = tmp_path_factory.mktemp("count")
    _raw_file(tmp / "raw.jsonl", [], lines)
    saved = rawfile.READ_SIZE
    rawfile.READ_SIZE = data.draw(st.sampled_from([64, 300, 1000, 1 << 20]))
    try:
        report = replay([str(tmp / "raw.jsonl")], str(tmp / "fast"))
    finally:
        rawfile.READ_SIZE = saved
    assert [p.line for p in report.raw_problems] == damaged
    problems: list[RawProblem] = []
    (stream,) = group_streams([str(tmp / "raw.jsonl")], problems)
    decoded = list(iter_stream_events(stream, problems))
    assert [p.line for p in problems] == damaged
    assert _tree(tmp / "fast") == _reference_tree(decoded, tmp / "ref")


def test_a_block_reader_that_does_not_count_gets_numbers_from_the_reader(tmp_path: Path) -> None:
    """A caller of `iter_stream_blocks` that does not count a block's lines (`lines_passed` left
    None) still gets each block's first line number right: the reader counts them itself."""
    from formats import rawfile

    events = [Event(RECV, seq, RAW_T0_US + seq, 0, f"PING :{seq}") for seq in range(1, 200)]
    _raw_file(tmp_path / "raw.jsonl", events)
    saved = rawfile.READ_SIZE
    rawfile.READ_SIZE = 500
    try:
        (stream,) = group_streams([str(tmp_path / "raw.jsonl")], [])
        firsts, want = [], 1  # the header is line 1, in the first block
        for _reader, first, block in rawfile.iter_stream_blocks(stream, []):
            firsts.append(first)
            assert first == want
            want += block.count(b"\n")
    finally:
        rawfile.READ_SIZE = saved
    assert len(firsts) > 10 and want == 201


@pytest.mark.parametrize("text", ["a\rb", "a\nb", "a\x00b", "a\r\nb", "\r", "hi\n", "x \r y"])
def test_control_characters_escaped_in_the_text_go_the_reference_way(tmp_path: Path, text: str) -> None:
    """The lane skips the scans for CR, LF and NUL only on a text it decoded without an escape (none
    can be there); a text holding them through `\\r`, `\\n`, `\\u0000` is read as the reference reads it."""
    line = f"@tmi-sent-ts=1700000001000 :u!u@u PRIVMSG #c :{text}"
    events = [
        Event("open", 1, RAW_T0_US, 0, "ws://x", "twitch"),
        Event(RECV, 2, RAW_T0_US, 0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c"),
        Event(RECV, 3, RAW_T0_US + 1, 0, "@tmi-sent-ts=1700000001000 :u!u@u PRIVMSG #c :hi"),
        Event(RECV, 4, RAW_T0_US + 2, 0, line),
        Event(RECV, 5, RAW_T0_US + 3, 0, line.replace(f":{text}", f"{text}:")),
        Event(RECV, 6, RAW_T0_US + 4, 0, line.replace("tmi-sent-ts=", f"x={text};tmi-sent-ts=")),
    ]
    _raw_file(tmp_path / "raw.jsonl", events)
    report = replay([str(tmp_path / "raw.jsonl")], str(tmp_path / "fast"))
    assert report.raw_problems == []
    assert _tree(tmp_path / "fast") == _reference_tree(events, tmp_path / "ref")
    ref = StreamReplayer("host", "Slug0")
    for e in events:
        ref.feed(e)
    ref.finish()
    assert (report.stats.records, report.stats.skipped) == (ref.stats.records, ref.stats.skipped)


# The bytes that end a run of plain ones in the word-at-a-time scans (native/replay.c `plain_run`,
# `json_plain_run`), and their neighbours that do not.
_EDGES = ["\x1f", " ", '"', "\\", "~", "\x7f", "\x80", "é", "\u0100", "😂", "!", "#", "[", "]"]


@needs_native
@pytest.mark.parametrize("edge", _EDGES)
def test_every_byte_position_of_an_odd_character_reads_as_the_reference(tmp_path: Path, edge: str) -> None:
    """An odd character at each position of a word (the scans read 8 bytes at a time), in the text,
    a tag value, the user name and a tag name: the step and the lane write the reference's bytes."""
    lines = []
    for at in range(20):
        plain = "abcdefghijklmnopqrstuvwx"
        text = plain[:at] + edge + plain[at:]
        lines += [
            f"@tmi-sent-ts=1700000001000 :u!u@u PRIVMSG #c :{text}",
            f"@a={text};tmi-sent-ts=1700000001000 :u!u@u PRIVMSG #c :hi",
            f"@tmi-sent-ts=1700000001000 :{text}!{text}@u PRIVMSG #c :hi",
            f"@{text}=1;tmi-sent-ts=1700000001000 :u!u@u PRIVMSG #c :hi",
        ]
    taken = sum(_step(line, "host.Slug0.0", 1_700_000_000.5) is not None for line in lines)
    assert taken >= 20  # at least the lines with it in the text: the test is not vacuous
    events = [
        Event("open", 1, RAW_T0_US, 0, "ws://x", "twitch"),
        Event(RECV, 2, RAW_T0_US, 0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c"),
        *[Event(RECV, seq, RAW_T0_US + seq, 0, line) for seq, line in enumerate(lines, 3)],
    ]
    _raw_file(tmp_path / "raw.jsonl", events)
    report = replay([str(tmp_path / "raw.jsonl")], str(tmp_path / "fast"))
    assert report.raw_problems == []
    assert _tree(tmp_path / "fast") == _reference_tree(events, tmp_path / "ref")


@st.composite
def _ranged_streams(draw: Any) -> list[Event]:
    """One Twitch connection: estimated lines (JOIN, PART, a delayed NOTICE: ranged records) and
    exact PRIVMSGs whose server times fall inside, before and after their ranges, so the lane cuts
    ranges (native/replay.c `cut_c`) often, several at once, with ties."""
    events = [
        Event("open", 1, RAW_T0_US, 0, "ws://x", "twitch"),
        Event(RECV, 2, RAW_T0_US, 0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c"),
        Event(RECV, 3, RAW_T0_US, 0, "@tmi-sent-ts=1700000000000 :u!u@u PRIVMSG #c :first"),
    ]
    at, last_ms = RAW_T0_US, 1_700_000_000_000
    for seq in range(4, 4 + draw(st.integers(1, 60))):
        at += draw(st.sampled_from([0, 1, 1000, 250_000, 1_000_000, 4_000_000]))
        kind = draw(st.integers(0, 4))
        if kind == 0:
            text = f":u{seq}!u@u {draw(st.sampled_from(['JOIN', 'PART']))} #c"
        elif kind == 1:
            text = "@msg-id=x :tmi.twitch.tv NOTICE #c :delayed"
        else:
            # around the last exact time: an estimated range is [last, last + 10] (padding 5)
            ms = last_ms + draw(
                st.sampled_from([-6_000, -5_000, -1, 0, 1, 2_500, 5_000, 9_999, 10_000, 10_001, 15_000, 60_000])
            )
            last_ms = ms
            text = f"@tmi-sent-ts={ms} :u!u@u PRIVMSG #c :m{seq}"
        events.append(Event(RECV, seq, at, 0, text))
    return events


@settings(max_examples=examples(0.3), deadline=None)
@given(_ranged_streams())
def test_the_lane_cuts_ranges_as_the_engine(tmp_path_factory: Any, events: list[Event]) -> None:
    """Exact lines cutting the ranges of estimated ones, taken by the lane: the very bytes of the
    pure engine (every cut time range, to the last bit)."""
    tmp = tmp_path_factory.mktemp("cut")
    _raw_file(tmp / "raw.jsonl", events)
    report = replay([str(tmp / "raw.jsonl")], str(tmp / "fast"))
    assert report.raw_problems == []
    assert _tree(tmp / "fast") == _reference_tree(events, tmp / "ref")


@needs_native
def test_the_lane_contract_is_declared_and_holds() -> None:
    """The names native/replay.c reads and writes on the engine's objects are the ones
    replay.compact.LANE_CONTRACT declares, and each exists on its class: a rename in Python that the
    C does not follow fails here, not silently in the lane."""
    import importlib

    declared = [name for names in compact.LANE_CONTRACT.values() for name in names]
    assert sorted(native().lane_names()) == sorted(declared)
    assert len(set(declared)) == len(declared)
    for where, names in compact.LANE_CONTRACT.items():
        if where == "record":
            continue
        module, _, cls_name = where.rpartition(".")
        cls = getattr(importlib.import_module(module), cls_name)
        for name in names:
            assert name in getattr(cls, "__slots__", ()) or callable(getattr(cls, name, None)), (where, name)


def test_a_server_time_a_day_from_the_receive_time_is_not_archived(tmp_path: Path) -> None:
    """A `tmi-sent-ts` in the year 9999 or 1970 (a lie or a broken clock) is a finding, not a
    record: one would make the archive span centuries. The lane hands such a line to the engine
    even when it would go to a batch already open (a day ahead, just within the limit)."""
    t0 = RAW_T0_US // 1_000_000

    def msg(seq: int, at: int, ts_ms: int, text: str) -> Event:
        return Event(RECV, seq, at, 0, f"@tmi-sent-ts={ts_ms};id=m{seq} :u!u@u PRIVMSG #c :{text}")

    day_ahead = (t0 + 86_399) * 1000  # believed: opens a batch a day ahead
    events = [
        Event("open", 1, RAW_T0_US, 0, "ws://x", "twitch"),
        Event(RECV, 2, RAW_T0_US, 0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c"),
        msg(3, RAW_T0_US + 1, t0 * 1000 + 1, "now"),
        msg(4, RAW_T0_US + 2, 253_402_300_799_000, "year 9999"),
        msg(5, RAW_T0_US + 3, 1000, "year 1970"),
        msg(6, RAW_T0_US + 4, day_ahead, "a day ahead"),
        msg(7, RAW_T0_US + 5, day_ahead + 31_000, "into the open batch, but too far"),
        msg(8, RAW_T0_US + 6, t0 * 1000 + 7, "now again"),
    ]
    _raw_file(tmp_path / "raw.jsonl", events)
    report = replay([str(tmp_path / "raw.jsonl")], str(tmp_path / "out"))
    assert report.stats.records == 3
    assert report.stats.skipped["server time far from receive time"] == 3
    assert [p.split(":")[0] for p in report.stats.problems] == [f"host.Slug0 seq {n}" for n in (4, 5, 7)]
    hours = sorted(p.name for p in (tmp_path / "out" / "c" / "chat").iterdir())
    assert hours == ["2023-11-14T22", "2023-11-15T22"]
    assert _tree(tmp_path / "out") == _reference_tree(events, tmp_path / "ref")
