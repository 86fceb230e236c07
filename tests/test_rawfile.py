"""The raw recording format: writer and reader agree, damage is reported and skipped, never fatal."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from formats.errors import InputError
from formats.rawcodec import (
    RECV,
    SEND,
    Decoder,
    Event,
    Header,
    decode_line,
    encode_event,
    encode_header,
    redact,
)
from formats.rawfile import RawProblem, find_raw_files, group_streams, iter_stream_events
from recorder.rawwriter import RawWriter

HOUR_US = 3_600_000_000
T0 = 1_700_000_000_000_000 - (1_700_000_000_000_000 % HOUR_US)  # an hour boundary


def read_all(paths: list[str]) -> tuple[list[Event], list[str]]:
    problems: list = []
    events = []
    for stream in group_streams(find_raw_files(paths), problems):
        events.extend(iter_stream_events(stream, problems))
    return events, [str(p) for p in problems]


def test_writer_rotates_hourly_and_reader_reads_in_order(tmp_path: Path) -> None:
    w = RawWriter(str(tmp_path), "host1", "Ab3dE", "host1", "test")
    w.write_open(0, "ws://x", T0 + 1)
    w.write_recv(0, "line one", T0 + HOUR_US - 1)
    w.write_recv(0, "line two", T0 + HOUR_US)  # next hour: a new file with its own header
    w.write_send(0, "PASS oauth:secret", T0 + HOUR_US + 1)
    w.write_close(0, "bye", T0 + HOUR_US + 2)
    w.close()
    assert len(w.paths) == 2
    events, problems = read_all([str(tmp_path)])
    assert problems == []
    assert [(e.kind, e.text) for e in events] == [
        ("open", "ws://x"),
        ("recv", "line one"),
        ("recv", "line two"),
        ("send", "PASS ***"),
        ("close", "bye"),
    ]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert b"secret" not in b"".join(Path(p).read_bytes() for p in w.paths)


def test_torn_tail_and_corrupt_middle_are_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    data = encode_header(Header("h", "Slug1", "h", "t", 0, T0))
    data += encode_event(Event(RECV, 1, T0, 0, "a"))
    data += b'{"kind":"recv","seq":2,\n'  # corrupt line 3
    data += encode_event(Event(RECV, 3, T0, 0, "b"))
    data += encode_event(Event(RECV, 4, T0, 0, "c"))[:-7]  # torn last line 5
    path.write_bytes(data)
    events, problems = read_all([str(path)])
    assert [e.text for e in events] == ["a", "b"]
    assert problems[0].startswith(f"{path}:3: not JSON")
    assert problems[1].startswith(f"{path}:5: torn last line")


def test_gzip_and_plain_copies_of_one_hour_are_read_once(tmp_path: Path) -> None:
    data = encode_header(Header("h", "Slug1", "h", "t", 0, T0)) + encode_event(Event(RECV, 1, T0, 0, "x"))
    (tmp_path / "a.jsonl").write_bytes(data)
    with gzip.open(tmp_path / "a.jsonl.gz", "wb") as f:
        f.write(data)
    events, problems = read_all([str(tmp_path)])
    assert [e.text for e in events] == ["x"]
    assert problems == []


def test_truncated_gzip_keeps_what_is_readable(tmp_path: Path) -> None:
    lines = [encode_event(Event(RECV, i, T0, 0, f"line {i} " + "x" * 200)) for i in range(1, 200)]
    data = encode_header(Header("h", "Slug1", "h", "t", 0, T0)) + b"".join(lines)
    gz = gzip.compress(data)
    (tmp_path / "a.jsonl.gz").write_bytes(gz[: len(gz) // 2])
    events, problems = read_all([str(tmp_path)])
    assert 0 < len(events) < 199
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len(problems) == 1 and "a.jsonl.gz" in problems[0]


def test_file_without_header_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(encode_event(Event(RECV, 1, T0, 0, "x")))
    events, problems = read_all([str(tmp_path)])
    assert events == []
    assert "first line is not a header" in problems[0]


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    try:
        find_raw_files([str(tmp_path / "nope")])
    except InputError as e:
        assert "nope" in str(e)
    else:
        raise AssertionError("no error")


# -- properties --

lines = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@given(st.lists(lines, max_size=12), st.data())
def test_decoder_gives_the_same_events_for_any_chunking(texts: list[str], data: st.DataObject) -> None:
    raw = encode_header(Header("h", "Slug1", "h", "t", 0, T0)) + b"".join(
        encode_event(Event(RECV, i + 1, T0 + i, 0, t)) for i, t in enumerate(texts)
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    decoder = Decoder()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        if start == end:
            continue  # b"" means end of input, as in h11
        decoder.receive_data(raw[start:end])
        got.extend(decode_line(line) for line in decoder.next_block().split(b"\n")[:-1])
    decoder.receive_data(b"")
    assert decoder.next_block() == b"" and decoder.line_number == len(got)
    assert got[0] == decode_line(raw.split(b"\n")[0])
    assert [e.text for e in got[1:]] == texts


@given(lines)
def test_received_lines_round_trip_exactly(text: str) -> None:
    event = decode_line(encode_event(Event(RECV, 1, T0, 0, text))[:-1])
    assert event == Event(RECV, 1, T0, 0, text)


secret = st.text(st.characters(blacklist_categories=["Cs", "Zs", "Cc"]), min_size=1, max_size=30)


@given(secret, st.sampled_from(["PASS", "pass", "AUTHENTICATE", "OPER admin", "@t=1 PASS", ":me PASS", "@a :me PASS"]))
def test_sent_credentials_never_reach_disk(token: str, command: str) -> None:
    stored = decode_line(encode_event(Event(SEND, 1, T0, 0, f"{command} oauth:{token}"))[:-1])
    assert isinstance(stored, Event)
    # only the command word reaches disk (a token such as "*" is in "***" without being stored)
    assert stored.text.split(" ") == [command.split(" ")[-1 if command.startswith(("@", ":")) else 0].upper(), "***"]


def test_ordinary_sent_lines_are_kept() -> None:
    assert redact("NICK justinfan1") == "NICK justinfan1"
    assert redact("PRIVMSG #c :PASS word") == "PRIVMSG #c :PASS word"
    assert redact("PASSWORD x") == "PASSWORD x"


def test_fsync_happens_on_interval(tmp_path: Path) -> None:
    clock = [0.0]
    w = RawWriter(str(tmp_path), "h", "Slug1", "h", "t", fsync_interval=1.0, monotonic=lambda: clock[0])
    w.write_recv(0, "a", T0)
    clock[0] = 0.5
    w.write_recv(0, "b", T0 + 1)
    assert w.fsync_count == 0  # within the interval: flushed, not yet fsynced
    clock[0] = 5.0
    w.write_recv(0, "c", T0 + 2)
    assert w.fsync_count == 1  # past the interval: fsynced
    w.close()
    assert os.path.getsize(w.paths[0]) > 0


def test_a_file_damaged_throughout_is_summarised_not_listed_line_by_line(tmp_path: Path) -> None:
    from formats.rawfile import PROBLEMS_PER_FILE

    data = encode_header(Header("h", "Slug1", "h", "t", 0, T0)) + b"garbage\n" * 5000
    data += encode_event(Event(RECV, 1, T0, 0, "kept"))
    (tmp_path / "a.jsonl").write_bytes(data)
    events, problems = read_all([str(tmp_path)])
    assert [e.text for e in events] == ["kept"]
    assert len(problems) == PROBLEMS_PER_FILE + 1
    assert problems[-1].endswith(f"{5000 - PROBLEMS_PER_FILE} more damaged lines skipped")


# What a raw file may hold: good events, garbage lines, a second header; maybe a torn last line.
_file_lines = st.lists(
    st.one_of(lines.map(lambda t: ("event", t)), st.just(("garbage", "")), st.just(("header", ""))), max_size=20
)


@given(_file_lines, st.booleans(), st.integers(1, 64))
def test_file_reader_is_the_decoder_read_in_any_size(
    content: list[tuple[str, str]],
    torn: bool,
    size: int,
) -> None:
    """The product reads files through the Decoder, whatever the read size: good events in order,
    every damaged line reported at its number, the rest kept."""
    import tempfile

    from formats import rawfile

    data = encode_header(Header("h", "Slug1", "h", "t", 0, T0))
    expected_events, expected_lines = [], []
    for number, (kind, text) in enumerate(content, 2):
        if kind == "event":
            data += encode_event(Event(RECV, number, T0, 0, text))
            expected_events.append(text)
        else:
            data += b"garbage\n" if kind == "garbage" else encode_header(Header("h", "Slug1", "h", "t", 0, T0))
            expected_lines.append(number)
    if torn:
        data += encode_event(Event(RECV, 999, T0, 0, "torn"))[:-3]
        expected_lines.append(len(content) + 2)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "a.jsonl")
        Path(path).write_bytes(data)
        saved = rawfile.READ_SIZE
        rawfile.READ_SIZE = size
        try:
            problems: list[RawProblem] = []
            reader = rawfile.RawFileReader(path, problems)
            events = [
                event
                for first, block in reader.blocks()
                for number, raw in enumerate(reader.lines(block), first)
                if (event := reader.event(raw, number)) is not None
            ]
        finally:
            rawfile.READ_SIZE = saved
    assert [e.text for e in events] == expected_events
    assert [p.line for p in problems] == expected_lines


# ---------------------------------------------------------------- over-long lines

_REPLAY_UNDER_512_MIB = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
from replay.shell import replay
report = replay([sys.argv[1]], sys.argv[2])
print(json.dumps({"records": report.stats.records, "problems": [str(p) for p in report.raw_problems]}))
"""


def _gz_with_a_huge_line(path: Path, size: int) -> None:
    """A raw .gz whose third line is `size` bytes (zeros streamed through gzip, never held whole),
    followed by ordinary lines."""
    ok = "@tmi-sent-ts={ms};id=m{seq} :u!u@u PRIVMSG #c :hi"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(encode_header(Header("host", "Slug0", "h", "t", 0, T0)))
        f.write(encode_event(Event("open", 1, T0, 0, "wss://x", "twitch")))
        f.write(encode_event(Event(RECV, 2, T0, 0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c")))
        f.write(b'{"kind":"recv","seq":3,"at":%d,"conn":0,"line":"' % T0)
        zeros = b"0" * (1 << 20)
        for _ in range(size >> 20):
            f.write(zeros)
        f.write(b'"}\n')
        for seq in (4, 5):
            f.write(encode_event(Event(RECV, seq, T0 + seq, 0, ok.format(ms=T0 // 1000 + seq, seq=seq))))


@pytest.mark.integration
def test_a_gz_that_expands_to_a_huge_line_is_one_problem_in_bounded_memory(tmp_path: Path) -> None:
    """A raw line over MAX_LINE is never held whole: a 256 MiB line (a 256 KiB .gz) under a 512 MiB
    address-space limit is one problem naming its file and line, and the lines after it are read."""
    import json
    import subprocess
    import sys

    raw = tmp_path / "host.jsonl.gz"
    _gz_with_a_huge_line(raw, 256 << 20)
    assert raw.stat().st_size < 2 << 20
    done = subprocess.run(
        [sys.executable, "-c", _REPLAY_UNDER_512_MIB, str(raw), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["problems"] == [f"{raw}:4: line longer than 1,048,576 bytes; line skipped"]
    assert report["records"] == 2


def test_the_decoder_drops_an_over_long_line_in_any_chunking() -> None:
    from formats.rawcodec import MAX_LINE, OVERLONG

    good = encode_event(Event(RECV, 1, T0, 0, "x"))
    data = good + b"y" * (MAX_LINE + 1) + b"\n" + good + b"z" * MAX_LINE + b"\n" + good
    for size in (4093, MAX_LINE - 1, MAX_LINE + 5, len(data)):
        d = Decoder()
        blocks = []
        held = 0
        for at in range(0, len(data), size):
            d.receive_data(data[at : at + size])
            held = max(held, len(d._buffer))
            blocks.append(d.next_block())
        d.receive_data(b"")
        blocks.append(d.next_block())
        lines = b"".join(blocks).split(b"\n")[:-1]
        assert lines == [good[:-1], OVERLONG, good[:-1], b"z" * MAX_LINE, good[:-1]], size
        assert held <= MAX_LINE
