"""native/merge.c against its reference, scan_line_py (tests/reference/merge_scan.py): the same answer
(the same fields, or the same refusal) for random records, damaged lines and real ones."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from bench.bench_merge import recorder_archives
from formats.canonical import batch_time_of, canonical_bytes, format_batch
from merge import scan
from replay.shell import replay
from tests.compiled import native, needs_native
from tests.pipeline import replay_events
from tests.reference import merge_fold
from tests.reference import merge_scan as spec
from tests.strategies import MERGE_MINUTE0, archive_records, merge_archives, merge_observations
from tests.test_exact_text import corpus_events

REPO = Path(__file__).resolve().parent.parent

pytestmark = needs_native


def same(line: bytes) -> None:
    # repr: 1 and 1.0 are different answers
    assert repr(native().scan_line(line)) == repr(spec.scan_line_py(line)), line
    # a file of it: scan_file's verdict (Lines of one line, or the line number) is scan_batch_py's
    verdict, reference = native().scan_file(line + b"\n"), spec.scan_batch_py(line + b"\n")
    assert (verdict if isinstance(verdict, int) else len(verdict)) == (
        reference if isinstance(reference, int) else len(reference)
    ), line


@settings(max_examples=examples(1.5))
@given(record=archive_records())
def test_random_records(record: dict[str, object]) -> None:
    same(canonical_bytes(record))


@settings(max_examples=examples(0.7))
@given(records=merge_observations())
def test_merge_shaped_records_are_vouched_for(records: list[dict[str, object]]) -> None:
    for record in records:
        line = canonical_bytes(record)
        same(line)
        if not (type(record["time_range"]) is float and record["time_range"] == 0.0):  # written 0 by a merge
            assert spec.scan_line_py(line) is not None  # the fast path really runs on these


def _mutations(line: bytes) -> st.SearchStrategy[bytes]:
    cut = st.integers(0, max(0, len(line) - 1))
    return st.one_of(
        cut.map(lambda i: line[:i] + line[i + 1 :]),  # a byte gone
        st.tuples(cut, st.binary(min_size=1, max_size=3)).map(lambda t: line[: t[0]] + t[1] + line[t[0] :]),
        st.tuples(
            cut,
            st.sampled_from(
                [
                    b'"',
                    b"\\",
                    b"}",
                    b",",
                    b" ",
                    b"0",
                    b"-",
                    b"e",
                    b".",
                    b"\x7f",
                    b"\xc3",
                    b"\\u00e9",
                    b"\\ud83c",
                    b"\\u0041",
                    b"\\/",
                    b"true",
                    b"null",
                ]
            ),
        ).map(lambda t: line[: t[0]] + t[1] + line[t[0] + 1 :]),  # a byte replaced
        st.just(line.replace(b",", b", ", 1)),
        st.just(line.upper()),
    )


@settings(max_examples=examples(2))
@given(data=st.data(), record=archive_records())
def test_damaged_lines(data: st.DataObject, record: dict[str, object]) -> None:
    line = canonical_bytes(record)
    same(data.draw(_mutations(line)))


NUMBERS = [
    b"0",
    b"-0",
    b"00",
    b"1",
    b"-1",
    b"0.0",
    b"-0.0",
    b"1.0",
    b"1e5",
    b"1e+16",
    b"1e-05",
    b"1E+16",
    b"1.5e+300",
    b"1e999",
    b"999999999999999",
    b"1000000000000000",
    b"9007199254740993",
    b"0.1",
    b"1700000000.123",
    b"1700000000.1230",
    b".5",
    b"5.",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"true",
    b"253401999999",
    b"253402300000",
    b"-5",
    b"1.7e9",
    b"1700000000.0",
]


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("field", ["time", "time_range", "receiver"])
def test_numbers_in_every_numeric_field(number: bytes, field: str) -> None:
    values = {"time": b"1700000000.5", "time_range": b"0", "receiver": b"1700000001.25"}
    values[field] = number
    line = (
        b'{"command":"JOIN","host":null,"params":["#c"],"receivers":{"h1":'
        + values["receiver"]
        + b'},"sender":"a","tags":null,"time":'
        + values["time"]
        + b',"time_range":'
        + values["time_range"]
        + b',"user":"a"}'
    )
    same(line)


@pytest.mark.parametrize(
    "tags",
    [
        b"null",
        b"{}",
        b'{"id":"x"}',
        b'{"msgid":"y"}',
        b'{"id":"x","msgid":"y"}',
        b'{"id":true,"msgid":"y"}',
        b'{"id":true}',
        b'{"id":false}',
        b'{"a":"1","a":"2"}',
        b'{"b":"1","a":"2"}',
        b'{"a b":"1","a":"2"}',
        b'{"a":"1","a b":"2"}',
        b'{"\\u00e9":"1"}',
        b'{"id":"\\u00e9\\ud83c\\udf89"}',
        b'{"id":"\\ud83c"}',
        b'{"id":"\\udf89"}',
        b'{"id":"a\\"b\\\\"}',
        b'{"id":"\\u0000\\u001f\\u007f"}',
        b'{"id":"\\u000a"}',
        b'{"id":"\\u0041"}',
        b'{"id":"\\u00E9"}',
        b'{"x":1}',
        b'{"x":null}',
        b"[]",
    ],
)
def test_tags(tags: bytes) -> None:
    line = (
        b'{"command":"PRIVMSG","host":null,"params":[],"receivers":{"h1":1700000001.25,"h2":1700000001},'
        b'"sender":null,"tags":' + tags + b',"time":1700000000,"time_range":0.5,"user":null}'
    )
    same(line)


@pytest.mark.parametrize(
    "receivers",
    [
        b"{}",
        b'{"h1":1,"h1":2}',
        b'{"h2":1,"h1":2}',
        b'{"h 1":1,"h":2}',
        b'{"h":1,"h 1":2}',
        b'{"\\u00e9":1}',
        b'{"a\\"":1}',
        b'{"h":true}',
        b'{"h":"1"}',
        b'{"":1}',
    ],
)
def test_receivers(receivers: bytes) -> None:
    line = (
        b'{"command":"PRIVMSG","host":null,"params":["a","b"],"receivers":'
        + receivers
        + b',"sender":null,"tags":null,"time":1700000000,"time_range":0.5,"user":null}'
    )
    same(line)


def test_real_lines_from_the_fixtures_and_the_corpus_replayed(tmp_path: Path) -> None:
    """Every line of the fixture recordings replayed (real Twitch lines), of the spec's worked
    examples, and of the bench's Twitch-shaped records."""
    replay([str(p) for p in sorted((REPO / "fixtures" / "cases").rglob("*.jsonl"))], str(tmp_path))
    seen = 0
    for path in [*(REPO / "fixtures").rglob("*.json"), *tmp_path.rglob("*.json")]:
        if path.parent.name[:2].isdigit():  # an hour folder of an archive
            for line in path.read_bytes().splitlines():
                same(line)
                seen += 1
    for archive in recorder_archives(5):
        data = format_batch(archive)
        assert repr(native().merge_scan_batch(data)) == repr(spec.scan_batch_py(data))
        assert isinstance(native().merge_scan_batch(data), list)
    assert seen > 40
    # the real corpus (581 lines Twitch sent), each line replayed as one recorder would
    records = [r for batch in replay_events("host1", "Ab3dE", corpus_events()) for r in batch.records]
    assert len(records) > 200
    for record in records:
        same(canonical_bytes(record))


@pytest.mark.parametrize("data", [b"", b"\n", b"x\n", b'{"a":1}', b"\n\n"])
def test_batches_that_are_not_vouched_for(data: bytes) -> None:
    assert native().merge_scan_batch(data) == spec.scan_batch_py(data)


def test_twin_is_bound_unless_pure() -> None:
    if os.environ.get("CHAT_ARCHIVER_PURE", "") not in ("", "0"):
        assert scan.scan_file is None
    json.dumps(None)


@settings(max_examples=examples(5))
@given(
    value=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(0, 2e9),
        st.integers(0, 10**17).map(lambda n: n / 10**6),
        st.integers(0, 10**13).map(lambda n: n / 1000),
        st.tuples(st.integers(10**14, 10**17), st.integers(1, 12)).map(lambda t: t[0] / 10 ** t[1]),
    ),
    form=st.sampled_from(["repr", "%.15g", "%.16g", "%.17g", "%.3f", "%.6f", "%.7f", "%.8f", "repr0", "%.1f"]),
    field=st.sampled_from(["time", "time_range", "receiver"]),
)
def test_floats_written_every_way(value: float, form: str, field: str) -> None:
    """The scanner's shortcut (few digits: surely repr) and its check (writing repr) against repr."""
    text = repr(value) + "0" if form == "repr0" else repr(value) if form == "repr" else form % value
    values = {"time": b"1700000000.5", "time_range": b"0", "receiver": b"1700000001.25"}
    values[field] = text.encode()
    line = (
        b'{"command":"JOIN","host":null,"params":["#c"],"receivers":{"h1":'
        + values["receiver"]
        + b'},"sender":"a","tags":null,"time":'
        + values["time"]
        + b',"time_range":'
        + values["time_range"]
        + b',"user":"a"}'
    )
    same(line)


def _windows(archives: list[list[dict[str, object]]], extra: list[dict[str, object]]) -> dict[int, list[bytes]]:
    """Each archive's files, one per minute (as recorders' replays write them); the odd records of
    `extra` as one more file of the first minute."""
    files: dict[int, list[bytes]] = {}
    for records in archives:
        by_minute: dict[int, list[dict[str, object]]] = {}
        for record in records:
            by_minute.setdefault(batch_time_of(record["time"]), []).append(record)  # type: ignore[arg-type]
        for minute, batch in by_minute.items():
            files.setdefault(minute, []).append(format_batch(batch))
    if extra:
        files.setdefault(MERGE_MINUTE0, []).append(format_batch(extra))
    return files


@settings(max_examples=examples(1), deadline=None)
@given(archives=merge_archives(), extra=st.lists(archive_records(), max_size=3), shuffled=st.randoms())
def test_fold_lines_twin(
    archives: list[list[dict[str, object]]], extra: list[dict[str, object]], shuffled: random.Random
) -> None:
    """formats._native.scan_file and fold_lines against tests.reference.merge_fold.fold_window_py over the windows of
    several recorders' files (shared ids, re-deliveries, merged files, odd records, records that
    cross minutes), minute after minute as a directory merge goes (a merged minute's output is the
    next window's neighbour, as its Ids): the same verdict for each file, the same fold (or
    refusal) for each window, the same summary of its output."""
    compiled = native()
    files = _windows(archives, extra)
    lines: dict[int, list[object]] = {}
    scans: dict[int, list[list[scan.Scanned]]] = {}
    for minute, datas in files.items():
        shuffled.shuffle(datas)
        for data in datas:
            ours, reference = compiled.scan_file(data), spec.scan_batch_py(data)
            if isinstance(reference, int):
                assert ours == reference
                continue
            assert len(ours) == len(reference)
            lines.setdefault(minute, []).append(ours)
            scans.setdefault(minute, []).append(reference)
    written: dict[int, tuple[object, object]] = {}  # minute -> its output's Ids and reference summary
    for minute in sorted([*files, MERGE_MINUTE0 - 60]):
        before, after = minute - 60, minute + 60
        if before in written:  # merged already: the output replaced the minute's files
            ids, summary = written[before]
            ours_n, want_n = [ids, *lines.get(after, [])], [summary, *map(merge_fold.summary_of, scans.get(after, []))]
        else:
            ours_n = [*lines.get(before, []), *lines.get(after, [])]
            want_n = [merge_fold.summary_of(x) for n in (before, after) for x in scans.get(n, [])]
        got = compiled.fold_lines(minute, lines.get(minute, []), ours_n)
        want = merge_fold.fold_window_py(minute, scans.get(minute, []), want_n)
        if want is None:
            assert got is None
            continue
        assert repr(got[:4]) == repr(want[:4])
        assert got[4].summary() == want[4]
        written[minute] = (got[4], want[4])


def test_fold_lines_takes_lines_only() -> None:
    compiled = native()
    with pytest.raises(TypeError):
        compiled.fold_lines(MERGE_MINUTE0, [b"{}\n"], [])
    with pytest.raises(TypeError):
        compiled.scan_file("text")


@settings(max_examples=examples(5))
@given(
    value=st.one_of(st.floats(1, 1e15), st.floats(1.6e9, 1.8e9), st.integers(0, 52).map(lambda k: 2.0**k)),
    step=st.integers(-3, 3),
    field=st.sampled_from(["time", "receiver"]),
)
def test_seventeen_digit_floats(value: float, step: int, field: str) -> None:
    """The scanner decides a 17-digit decimal (most receive times) in integers, without repr: a
    double's 17 significant digits, and their neighbours (one, two, three steps off), judged as
    repr judges them (ties, binade edges and 16-digit neighbours included)."""
    mantissa, exponent = f"{value:.16e}".split("e")  # 17 significant digits
    point = int(exponent) + 1  # digits before the point: 1 to 15
    text = str(int(mantissa.replace(".", "")) + step)
    if len(text) != 17:
        return
    values = {"time": b"1700000000.5", "receiver": b"1700000001.25"}
    values[field] = f"{text[:point]}.{text[point:]}".encode()
    line = (
        b'{"command":"JOIN","host":null,"params":["#c"],"receivers":{"h1":'
        + values["receiver"]
        + b'},"sender":"a","tags":null,"time":'
        + values["time"]
        + b',"time_range":0,"user":"a"}'
    )
    same(line)
