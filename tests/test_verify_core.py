"""verify's compiled twin (native/verify.c) equals its pure-Python reference,
clean_tally_py (tests/reference/verify_tally.py):
on every file it accepts, the same counters with the same number types (an int stays an int, so the
report's bytes are the same); anything else (any finding, any odd shape) it leaves to the reference.
Held by hypothesis over healthy, random and damaged batch files, over canonical and non-canonical
numbers, and over every batch file of the fixtures; and verify's report of the fixtures is the same
bytes both ways, as a user runs it."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from dataclasses import fields, is_dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from formats.canonical import content_hash, format_batch, parse_batch_name
from tests.compiled import NATIVE, needs_native
from tests.reference.verify_tally import clean_tally_py
from tests.strategies import MERGE_MINUTE0, archive_records, records_in_minute
from verify import batch
from verify.tally import ChannelTally

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_core = NATIVE


def _exact(value: Any) -> Any:
    """A value with the type of every number spelled out (1 == 1.0, but the report prints them apart)."""
    if is_dataclass(value):
        return [(f.name, _exact(getattr(value, f.name))) for f in fields(value)]
    if isinstance(value, dict):
        return sorted((repr(k), _exact(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return (type(value).__name__, repr(value))


def _compiled(data: bytes, batch_time: int) -> ChannelTally | None:
    assert _core is not None, "CI builds the compiled core: gcc is on the CI machine"
    saved = batch._core
    batch._core = _core  # also under CHAT_ARCHIVER_PURE=1, where verify.batch never loads it
    try:
        return batch._compiled_tally(data, batch_time)
    finally:
        batch._core = saved


def _assert_twin(data: bytes, batch_time: int, *, accepted: bool = False) -> None:
    """The law: the twin says nothing (None) or exactly what the reference says."""
    fast = _compiled(data, batch_time)
    ref = clean_tally_py(data, batch_time)
    if accepted:
        assert fast is not None, data[:300]
    if fast is not None:
        assert ref is not None, data[:300]
        assert _exact(fast) == _exact(ref)


def _scan_both(data: bytes, batch_time: int) -> None:
    """check_batch gives the same FileScan (findings and counters) with and without the twin."""
    digest = content_hash(data)
    saved = batch._core
    try:
        batch._core = None
        pure = batch.check_batch(data, "f.json", "chan", batch_time, digest)
        batch._core = _core
        fast = batch.check_batch(data, "f.json", "chan", batch_time, digest)
    finally:
        batch._core = saved
    assert fast.findings == pure.findings
    assert _exact(fast.tally) == _exact(pure.tally)


@needs_native
@settings(max_examples=examples(1), deadline=None)
@given(records_in_minute())
def test_healthy_files_are_read_by_the_twin_exactly(records: list[dict[str, Any]]) -> None:
    _assert_twin(format_batch(records), MERGE_MINUTE0, accepted=True)


# canonical and not: repr, too many or too few digits, exponents, a leading zero, -0, huge ints
_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(1_700_000_000_000_000, 1_700_000_060_000_000).map(lambda us: repr(us / 1e6)),
    st.floats(1e-6, 1e17).flatmap(
        lambda x: st.sampled_from(
            [repr(x), f"{x:.17g}", f"{x:.16g}", f"{x:.15g}", f"{x:.3f}", f"{x:e}", repr(-x), f"{x:.1f}0"]
        )
    ),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "00",
            "1.",
            ".5",
            "1e5",
            "1E+05",
            "1e-05",
            "0.0001",
            "0.00001",
            "1700000040.0",
            "1700000040",
            "1700000040.50",
            "60",
            "60.0",
            "-1",
            "NaN",
            "Infinity",
            "9" * 16,
        ]
    ),
)


@st.composite
def damaged_files(draw: Any) -> bytes:
    """A healthy file with a few faults planted: bytes changed, numbers respelled, lines moved."""
    records = draw(records_in_minute())
    if draw(st.booleans()):
        records += draw(st.lists(archive_records(), max_size=2))
    data = format_batch(records)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["number", "number", "byte", "insert", "delete", "swap", "repeat", "cut"]))
        lines = data.split(b"\n")
        if op == "number":
            # respell the first number after one of the record's numeric keys
            key = draw(st.sampled_from([b'"time":', b'"time_range":', b'.0":', b'.1":', b'.2":', b'.3":']))
            at = data.find(key)
            if at >= 0:
                start = at + len(key)
                end = start
                while end < len(data) and data[end : end + 1] in b"0123456789.-+eE":
                    end += 1
                data = data[:start] + draw(_numbers).encode() + data[end:]
        elif op == "byte" and data:
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + bytes([draw(st.sampled_from(b' "\\{}[],:0-.etrun\x7f\x01\n'))]) + data[i + 1 :]
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            planted = draw(st.sampled_from([b" ", b"\\u00e9", b"\\u0041", b"\\/", b"\xc3\xa9", b"\n"]))
            data = data[:i] + planted + data[i:]
        elif op == "delete" and data:
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + data[i + 1 :]
        elif op == "swap" and len(lines) > 2:
            i = draw(st.integers(0, len(lines) - 3))
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
            data = b"\n".join(lines)
        elif op == "repeat" and len(lines) > 1:
            i = draw(st.integers(0, len(lines) - 2))
            lines.insert(i, lines[i])
            data = b"\n".join(lines)
        elif op == "cut":
            data = data[: draw(st.integers(0, len(data)))]
    return data


@needs_native
@settings(max_examples=examples(2), deadline=None)
@given(damaged_files(), st.sampled_from([MERGE_MINUTE0, MERGE_MINUTE0 + 60]))
def test_damaged_files_the_twin_leaves_to_the_reference_or_reads_exactly(data: bytes, minute: int) -> None:
    _assert_twin(data, minute)
    _scan_both(data, minute)


@needs_native
@settings(max_examples=examples(1), deadline=None)
@given(st.lists(archive_records(), min_size=1, max_size=4))
def test_any_records_the_twin_reads_exactly_or_not_at_all(records: list[dict[str, Any]]) -> None:
    data = format_batch(records)
    minute = (
        int(records[0]["time"] // 60 * 60)
        if isinstance(records[0]["time"], float) and abs(records[0]["time"]) < 1e15
        else MERGE_MINUTE0
    )
    _assert_twin(data, minute)


def _line(number: str, where: str) -> bytes:
    """One record line with `number` spelled as given, as a receive time or as the time."""
    received = number if where == "receiver" else "1700000041.5"
    time = number if where == "time" else "1700000040.25"
    return (
        '{"command":"JOIN","host":null,"params":["#c"],"receivers":{"host1.Ab3dE.0":' + received + "},"
        '"sender":"a","tags":null,"time":' + time + ',"time_range":0,"user":"a"}\n'
    ).encode()


@needs_native
@settings(max_examples=examples(3.5), deadline=None)
@given(_numbers, st.sampled_from(["receiver", "time"]))
def test_a_number_is_accepted_only_as_the_stdlib_spells_it(number: str, where: str) -> None:
    data = _line(number, where)
    fast = _compiled(data, MERGE_MINUTE0)
    try:
        canonical = json.dumps(json.loads(number)) == number
    except ValueError:
        canonical = False
    if fast is not None:
        assert canonical, number
    _assert_twin(data, MERGE_MINUTE0)


@needs_native
@pytest.mark.parametrize(
    "number",
    [
        "1700000041.5",
        "1700000041.260513",
        "0.30000000000000004",
        "1e-05",
        "1.5e+16",
        "1700000041.0",
        "1700000041",
        "1700000040.0001",
        "1700000059.999999",
    ],
)
def test_the_usual_spellings_of_a_time_are_read_by_the_twin(number: str) -> None:
    assert json.dumps(json.loads(number)) == number  # canonical: the stdlib writes it so
    _assert_twin(_line(number, "receiver"), MERGE_MINUTE0, accepted=True)


@needs_native
@pytest.mark.parametrize("received", ["1e+308", "-1.7976931348623157e+308", "1e+300", "123456789012345.6"])
def test_extreme_receive_times_get_the_reference_counters(received: str) -> None:
    # a delay that overflows to infinity is left out of the reference's sum: the twin leaves it to it
    data = _line(received, "receiver").replace(b'"time":1700000040.25', b'"time":-1.7976931348623157e+308')
    _assert_twin(data, MERGE_MINUTE0)
    _assert_twin(_line(received, "receiver"), MERGE_MINUTE0)
    _assert_twin(_line(received, "time"), MERGE_MINUTE0)


@needs_native
def test_spellings_of_the_same_double_that_json_dumps_would_not_write_are_refused() -> None:
    for number in [
        "1700000041.50",
        "1700000041.2605130",
        "1.70000004126051e9",
        "01700000041.5",
        "1700000041.26051300000001",
    ]:
        assert _compiled(_line(number, "receiver"), MERGE_MINUTE0) is None, number


def _fixture_batches() -> list[tuple[str, int]]:
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "fixtures", "**", "chat", "*", "*.json"), recursive=True)):
        parsed = parse_batch_name(os.path.basename(os.path.dirname(path)), os.path.basename(path))
        if parsed is not None:
            out.append((path, parsed[0]))
    return out


@needs_native
def test_every_fixture_batch_file_is_read_by_the_twin_exactly() -> None:
    files = _fixture_batches()
    assert files
    for path, minute in files:
        with open(path, "rb") as f:
            data = f.read()
        if clean_tally_py(data, minute) is not None:
            _assert_twin(data, minute, accepted=True)
        _scan_both(data, minute)


@needs_native
@pytest.mark.integration
def test_verify_prints_the_same_report_pure_and_compiled(tmp_path: Any) -> None:
    archive = os.path.join(ROOT, "fixtures", "export", "archive")
    outputs = []
    for pure in ("1", "0"):
        env = {**os.environ, "CHAT_ARCHIVER_PURE": pure}
        code = "import sys; from chat_archiver.cli import main; sys.argv[0] = 'chat-archiver'; main()"
        got = subprocess.run(
            [sys.executable, "-c", code, "verify", archive, "--json"],
            capture_output=True,
            env=env,
            cwd=ROOT,
            check=False,
        )
        outputs.append((got.returncode, got.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0][1].startswith(b"{")


def _split_inside_a_string() -> bytes:
    """Three lines that are not three records: a record cut inside a string at `},{` (so the
    newline, read as a comma, joins the two halves), and a line holding two records."""
    from formats.canonical import canonical_bytes

    def rec(text: str, s: int) -> bytes:
        return canonical_bytes(
            {
                "command": "PRIVMSG",
                "host": None,
                "params": ["#c", text],
                "receivers": {"h.A.0": MERGE_MINUTE0 + s + 0.5},
                "sender": "a",
                "tags": None,
                "time": MERGE_MINUTE0 + s,
                "time_range": 0,
                "user": "a",
            }
        )

    first = rec("x},{y", 1)
    cut = first.index(b"},{") + 1
    return first[:cut] + b"\n" + first[cut + 1 :] + b"\n" + rec("b", 2) + b"," + rec("c", 3) + b"\n"


def test_a_record_cut_across_lines_is_reported_line_by_line_both_ways() -> None:
    # the one-call decode of the whole file read these lines as three records once: no finding
    data = _split_inside_a_string()
    for core in (None, _core):
        saved = batch._core
        batch._core = core
        try:
            scan = batch.check_batch(data, "f.json", "chan", MERGE_MINUTE0, content_hash(data))
        finally:
            batch._core = saved
        assert [(f.kind, f.line) for f in scan.findings] == [("bad-json", 1), ("bad-json", 2), ("bad-json", 3)]
        assert scan.tally.records == 0
