"""native/export.c against its reference, export.scan.scan_batch_py: the same answer (the same lone
candidates and rest, or the same refusal) for random records, damaged lines and real ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from bench.bench_verify import minute_records
from export import scan
from formats.canonical import canonical_bytes, format_batch
from merge.core import merge_records
from replay.shell import replay
from tests.compiled import native, needs_native
from tests.pipeline import replay_events
from tests.strategies import archive_records, merge_observations
from tests.test_exact_text import corpus_events
from tests.test_merge_scan import NUMBERS, _mutations

REPO = Path(__file__).resolve().parent.parent
pytestmark = needs_native


def same_batch(data: bytes) -> object:
    # repr: 1 and 1.0 are different answers
    got = native().export_scan_batch(data)
    assert repr(got) == repr(scan.scan_batch_py(data)), data
    return got


def same(line: bytes) -> object:
    return same_batch(line + b"\n")


@settings(max_examples=examples(1.5))
@given(record=archive_records())
def test_random_records(record: dict[str, object]) -> None:
    same(canonical_bytes(record))


@settings(max_examples=examples(0.7))
@given(records=merge_observations())
def test_merge_shaped_records_and_their_files(records: list[dict[str, object]]) -> None:
    for record in records:
        same(canonical_bytes(record))
    same_batch(format_batch(records))


@settings(max_examples=examples(2))
@given(data=st.data(), record=archive_records())
def test_damaged_lines(data: st.DataObject, record: dict[str, object]) -> None:
    same(data.draw(_mutations(canonical_bytes(record))))


def _line(
    time: bytes = b"1700000000.5",
    time_range: bytes = b"0",
    receiver: bytes = b"1700000001.25",
    tags: bytes = b'{"id":"x"}',
    receivers: bytes | None = None,
) -> bytes:
    receivers = receivers if receivers is not None else b'{"h1":' + receiver + b"}"
    return (
        b'{"command":"PRIVMSG","host":null,"params":["#c","hi"],"receivers":'
        + receivers
        + b',"sender":"a","tags":'
        + tags
        + b',"time":'
        + time
        + b',"time_range":'
        + time_range
        + b',"user":"a"}'
    )


@pytest.mark.parametrize("number", [*NUMBERS, b"9007199254740992", b"1e16", b"-1.5", b"-1700000000"])
@pytest.mark.parametrize("field", ["time", "time_range", "receiver"])
def test_numbers_in_every_numeric_field(number: bytes, field: str) -> None:
    same(_line(**{field: number}))


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
        b'{"id":""}',
        b'{"id":"","msgid":"y"}',
        b'{"id":false}',
        b'{"a":"1","a":"2"}',
        b'{"\\u00e9":"1"}',
        b'{"id":"\\u00e9"}',
        b'{"id":"\\ud83c"}',
        b'{"a":"\\ud83c","id":"x"}',
        b'{"id":"a\\"b"}',
        b'{"id":"\\u0041"}',
        b'{"id":"x\\/"}',
        b'{"x":1}',
        b"[]",
        b'{"id":" ~"}',
    ],
)
def test_tags(tags: bytes) -> None:
    same(_line(tags=tags))


def test_many_receivers() -> None:
    for n in (15, 16, 17, 40):
        names = b",".join(b'"h%02d":1700000001.25' % i for i in range(n))
        scanned = same(_line(receivers=b"{" + names + b"}", time_range=b"0.0"))  # combined: 0.0
        assert isinstance(scanned, tuple)
        assert len(scanned[0]) == (1 if n <= 16 else 0)


@pytest.mark.parametrize(
    ("time", "time_range", "receivers", "lone"),
    [
        (b"1700000000.5", b"0", b'{"h1":1.5}', True),  # one receiver, as written
        (b"1700000000.5", b"0.0", b'{"h1":1.5}', False),  # the merge writes it 0
        (b"1700000000.5", b"0", b'{"h1":1.5,"h2":1.5}', False),  # the merge writes it 0.0 (combined)
        (b"1700000000.5", b"0.0", b'{"h1":1.5,"h2":1.5}', True),  # combined, as the merge writes it
        (b"1700000000", b"0.0", b'{"h1":1.5,"h2":1.5}', False),  # the merge writes the time 1700000000.0
    ],
)
def test_lone_candidates_are_what_the_merge_gives_back(
    time: bytes, time_range: bytes, receivers: bytes, lone: bool
) -> None:
    scanned = same(_line(time=time, time_range=time_range, receivers=receivers))
    assert isinstance(scanned, tuple) and len(scanned[0]) == (1 if lone else 0)


def test_the_usual_lines_are_lone_candidates_and_the_rest_is_a_batch_file() -> None:
    records = merge_records(minute_records(1_700_006_400)[:400])  # as the merge writes them
    data = format_batch(records)
    got = same_batch(data)
    assert isinstance(got, tuple)
    lone, rest = got
    assert len(lone) == sum(1 for r in records if r["command"] == "PRIVMSG")
    assert sorted(rest.splitlines() + [c[2] for c in lone]) == sorted(data.splitlines())
    assert all(line.startswith((b'{"command":"JOIN"', b'{"command":"PART"')) for line in rest.splitlines())


def test_a_rest_larger_than_the_buffer_first_set_aside_for_it() -> None:
    """The rest is gathered in a buffer of 64 kB that grows as lines come: a whole busy minute (its
    JOIN and PART lines, well over 64 kB) and a file of such lines only, whose rest is the file."""
    data = format_batch(merge_records(minute_records(1_700_006_400)))
    got = same_batch(data)
    assert isinstance(got, tuple) and len(got[1]) > 1 << 16
    rest_only = got[1]
    assert same_batch(rest_only) == ([], rest_only)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n",
        b"x\n",
        b'{"a":1}',
        b"\n\n",
        _line(),
        _line() + b"\r\n",
        _line() + b"\n" + _line(time_range=b"5") + b"\n\n",
    ],
)
def test_batches_refused_or_not(data: bytes) -> None:
    same_batch(data)


def test_real_lines_from_the_fixtures_and_the_corpus_replayed(tmp_path: Path) -> None:
    """Every batch file of the fixtures and of the fixture recordings replayed (real Twitch lines),
    and the real corpus (581 lines Twitch sent) replayed as one recorder would."""
    replay([str(p) for p in sorted((REPO / "fixtures" / "cases").rglob("*.jsonl"))], str(tmp_path))
    seen = 0
    for path in [*(REPO / "fixtures").rglob("*.json"), *tmp_path.rglob("*.json")]:
        if path.parent.name[:2].isdigit():  # an hour folder of an archive
            same_batch(path.read_bytes())
            for line in path.read_bytes().splitlines():
                same(line)
                seen += 1
    assert seen > 40
    records = [r for batch in replay_events("host1", "Ab3dE", corpus_events()) for r in batch.records]
    assert len(records) > 200
    got = same_batch(format_batch(records))
    assert isinstance(got, tuple) and len(got[0]) > 100
    for record in records:
        same(canonical_bytes(record))


@settings(max_examples=examples(1))
@given(data=st.binary(max_size=300), record=archive_records())
def test_any_bytes(data: bytes, record: dict[str, object]) -> None:
    """Hostile bytes alone and cut into a real line: the same refusal (or answer) as the reference."""
    same_batch(data)
    line = canonical_bytes(record)
    same(line[: len(data) % (len(line) + 1)] + data)
