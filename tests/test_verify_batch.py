"""verify's per-file checks (verify.batch): each fault is named with its line, and
well-formed bytes are clean whether they take the fast path or the slow one."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from formats.canonical import canonical_json, content_hash, format_batch
from tests.strategies import MERGE_MINUTE0, archive_records, records_in_minute
from verify.batch import check_batch
from verify.findings import PROBLEM

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

MINUTE = MERGE_MINUTE0


def rec(
    t: float,
    text: str = "hi",
    *,
    mid: str | None = None,
    time_range: float = 0,
    receivers: dict[str, float] | None = None,
) -> dict[str, Any]:
    return {
        "command": "PRIVMSG",
        "params": ["#chan", text],
        "sender": "a",
        "user": "a",
        "host": "a.tmi.twitch.tv",
        "tags": {"id": mid or f"id-{t}-{text}", "tmi-sent-ts": str(round(t * 1000))},
        "receivers": receivers or {"host1.Ab3dE.0": t + 0.2},
        "time": t,
        "time_range": time_range,
    }


def check(data: bytes, minute: int = MINUTE, digest: str | None = None) -> list[tuple[str, int | None]]:
    scan = check_batch(data, "f.json", "chan", minute, digest or content_hash(data))
    return [(f.kind, f.line) for f in scan.findings]


def test_healthy_file_has_no_findings_and_is_counted() -> None:
    records = [rec(MINUTE + 1), rec(MINUTE + 2, "\u00e9\U0001f389"), rec(MINUTE + 2, "b")]
    scan = check_batch(format_batch(records), "f.json", "chan", MINUTE, content_hash(format_batch(records)))
    assert scan.findings == []
    assert scan.tally.records == 3
    assert scan.tally.minutes == {MINUTE: [3, 3, 3]}
    assert scan.tally.ranges == {"exact": 3}
    assert scan.tally.receivers["host1.Ab3dE.0"].delay_count == 3


def test_flipped_byte_breaks_the_hash_and_names_the_line() -> None:
    data = format_batch([rec(MINUTE + 1), rec(MINUTE + 2)])
    name_hash = content_hash(data)
    flipped = bytearray(data)
    flipped[data.index(b'"command"', 10) + 3] ^= 0x20  # second line: "command" -> "coMmand"
    found = check(bytes(flipped), digest=name_hash)
    assert ("hash-mismatch", None) in found
    assert ("bad-record", 2) in found


def test_non_canonical_line() -> None:
    line = canonical_json(rec(MINUTE + 1)).replace(',"time":', ', "time":')
    data = (canonical_json(rec(MINUTE)) + "\n" + line + "\n").encode()
    assert check(data) == [("not-canonical", 2)]


def test_unsorted_lines() -> None:
    a, b = canonical_json(rec(MINUTE + 5)), canonical_json(rec(MINUTE + 1))
    assert check(f"{a}\n{b}\n".encode()) == [("unsorted", 2)]


def test_equal_keys_sort_by_line_text() -> None:
    a, b = canonical_json(rec(MINUTE + 5, "a")), canonical_json(rec(MINUTE + 5, "b"))
    assert check(f"{a}\n{b}\n".encode()) == []
    assert check(f"{b}\n{a}\n".encode()) == [("unsorted", 2)]


def test_record_in_the_wrong_minute() -> None:
    data = format_batch([rec(MINUTE + 1), rec(MINUTE + 61)])
    assert check(data) == [("wrong-minute", 2)]


def test_duplicate_id_and_conflict_and_odd_range() -> None:
    data = format_batch(
        [
            rec(MINUTE + 1, mid="x"),
            rec(MINUTE + 2, "other", mid="x"),
            rec(MINUTE + 3, time_range=-0.5),
            rec(MINUTE + 4, time_range=90),
        ]
    )
    assert sorted(check(data)) == [("conflict", 3), ("duplicate-id", 2), ("odd-range", 4)]


def test_torn_file_and_bad_json() -> None:
    data = format_batch([rec(MINUTE + 1), rec(MINUTE + 2)])
    found = check(data[:-20])
    assert ("torn-file", None) in found
    assert ("bad-json", 2) in found
    assert ("bad-json", 1) in check(b"{nope\n")


def test_findings_per_kind_are_capped_with_a_summary() -> None:
    lines = [canonical_json(rec(MINUTE + i)).replace(":", ": ", 1) for i in range(20)]
    scan = check_batch(("\n".join(lines) + "\n").encode(), "f.json", "chan", MINUTE, "x" * 43)
    kinds = [f.kind for f in scan.findings if f.kind == "not-canonical"]
    assert len(kinds) == 6  # 5 named lines and one "15 more lines like this"
    assert any("15 more" in f.message for f in scan.findings)


def test_empty_file_is_a_notice() -> None:
    scan = check_batch(b"", "f.json", "chan", MINUTE, content_hash(b""))
    assert [(f.kind, f.severity) for f in scan.findings] == [("empty-file", "notice")]


@given(records_in_minute())
def test_well_formed_files_are_clean(records: list[dict[str, Any]]) -> None:
    data = format_batch(records)
    scan = check_batch(data, "f.json", "chan", MINUTE, content_hash(data))
    assert scan.findings == [], scan.findings
    assert scan.tally.records == len(records)


@given(st.lists(archive_records(), max_size=6))
def test_fast_and_slow_paths_agree_on_canonical_files(records: list[dict[str, Any]]) -> None:
    """Any schema-valid records formatted canonically: no line-level findings other than minute,
    order-insensitive kinds (the bytes are canonical and sorted by construction)."""
    data = format_batch(records)
    scan = check_batch(data, "f.json", "chan", MINUTE, content_hash(data))
    kinds = {f.kind for f in scan.findings}
    assert not kinds & {"bad-json", "bad-record", "not-canonical", "unsorted", "hash-mismatch", "torn-file"}, (
        scan.findings
    )


@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_give_findings_never_an_exception(data: bytes, add_line: bool) -> None:
    if add_line:
        data = format_batch([rec(MINUTE + 1)]) + data
    scan = check_batch(data, "f.json", "chan", MINUTE, content_hash(data))
    assert all(f.severity in (PROBLEM, "notice") for f in scan.findings)


def test_tiny_floats_take_the_slow_path_and_are_judged_right() -> None:
    from verify.batch import _has_tiny_float

    assert _has_tiny_float(b'{"a":0.00001}') and _has_tiny_float(b"[-0.00005]")
    assert not _has_tiny_float(b'{"a":1700000400.00001}') and not _has_tiny_float(b"")
    canonical = format_batch([rec(MINUTE + 1, time_range=5e-05)])  # prints 5e-05, as json.dumps does
    assert check(canonical) == []
    orjson_style = canonical.replace(b"5e-05", b"0.00005")
    assert check(orjson_style) == [("not-canonical", 1)]
