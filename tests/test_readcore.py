"""The compiled schema check (native/record.c) gives the pure-Python reference's verdict,
formats.canonical.is_record_py, on every record: random ones, records with faults planted, odd
types (str and dict subclasses, bools for numbers), and every line of the fixtures' batch files.
And the one-call decode of a batch file (decode_batch_fast) reads exactly what the line parser
(parse_batch) reads, over healthy and damaged files."""

from __future__ import annotations

import glob
import os
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from formats import canonical
from formats.errors import InputError
from tests.compiled import native, needs_native
from tests.strategies import archive_records, maybe_faulty_records
from tests.test_verify_core import damaged_files

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _assert_same(record: Any) -> None:
    assert native().is_record(record) is canonical.is_record_py(record), record


class _Str(str):
    pass


class _Dict(dict):  # type: ignore[type-arg]
    pass


@needs_native
@settings(max_examples=examples(2), deadline=None)
@given(st.one_of(archive_records(), maybe_faulty_records()))
def test_the_twin_gives_the_reference_verdict(record: dict[str, Any]) -> None:
    _assert_same(record)


@needs_native
@settings(max_examples=examples(1), deadline=None)
@given(
    archive_records(),
    st.sampled_from(["command", "params", "sender", "user", "host", "tags", "receivers", "time", "time_range"]),
    st.sampled_from(
        [
            True,
            False,
            None,
            1,
            1.5,
            "x",
            _Str("x"),
            [],
            ["a", 1],
            [_Str("a")],
            {},
            {"a": False},
            {"a": True},
            {"a": _Str("b")},
            {"a": 1},
            _Dict(a="b"),
            _Dict(h=1.0),
            2**80,
        ]
    ),
)
def test_odd_types_in_any_field_get_the_reference_verdict(record: dict[str, Any], key: str, value: Any) -> None:
    record[key] = value
    _assert_same(record)
    _assert_same(_Dict(record))  # not a plain dict: the reference decides


@needs_native
def test_every_fixture_line_gets_the_reference_verdict() -> None:
    paths = glob.glob(os.path.join(ROOT, "fixtures", "**", "chat", "*", "*.json"), recursive=True)
    assert paths
    for path in paths:
        with open(path, "rb") as f:
            for line in f.read().splitlines():
                record = orjson.loads(line)
                assert canonical.is_record_py(record)
                _assert_same(record)


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


@settings(max_examples=examples(1.5), deadline=None)
@given(st.data())
def test_the_one_call_decode_reads_what_the_line_parser_reads(data: Any) -> None:
    raw = data.draw(damaged_files())
    fast = canonical.decode_batch_fast(raw)
    if fast is None:
        return
    try:
        slow = canonical.parse_batch(raw)
    except InputError as e:
        raise AssertionError(f"the one-call decode read a file the line parser refuses: {e}") from None
    assert _typed(fast) == _typed(slow)
