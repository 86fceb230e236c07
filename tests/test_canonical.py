"""The canonical line is exactly what upstream's json.dumps call prints (ARCHIVE_FORMAT.md section 2)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from formats import canonical
from formats.canonical import (
    batch_relpath,
    batch_time_of,
    canonical_json,
    content_hash,
    format_batch,
    parse_batch,
    parse_batch_name,
)
from formats.errors import InputError
from tests.strategies import archive_records, maybe_faulty_records

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core


def upstream(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


@given(archive_records())
@example(
    {
        "command": "PRIVMSG",
        "params": ["#c", "h\u00e9llo \U0001f389 \x7f \x00 \u2028"],
        "sender": None,
        "user": None,
        "host": None,
        "tags": {"a": True, "b": ""},
        "receivers": {"h.x.0": 1e-05},
        "time": 1700000012.345,
        "time_range": 0.0,
    }
)
@example(
    {
        "command": "JOIN",
        "params": [],
        "sender": None,
        "user": None,
        "host": None,
        "tags": None,
        "receivers": {"h.x.0": 2**70},
        "time": 1e16,
        "time_range": -0.0,
    }
)
def test_canonical_json_equals_json_dumps(record: dict) -> None:
    assert canonical_json(record) == upstream(record)


@given(st.lists(archive_records(), max_size=6))
def test_format_batch_is_sorted_lines_with_final_newline(records: list[dict]) -> None:
    data = format_batch(records)
    if not records:
        assert data == b""
        return
    assert data.endswith(b"\n")
    lines = [upstream(r) for r in records]
    expected = sorted(zip(records, lines, strict=True), key=lambda p: (p[0]["time"], p[0]["time_range"], p[1]))
    assert data.decode("ascii").split("\n")[:-1] == [line for _r, line in expected]


@given(st.lists(archive_records(), min_size=1, max_size=4))
def test_parse_batch_reads_back_what_format_batch_wrote(records: list[dict]) -> None:
    data = format_batch(records)
    assert format_batch(parse_batch(data)) == data


def test_spec_example_a_hash_and_name() -> None:
    # The file name from ARCHIVE_FORMAT.md example A, from the bytes given there.
    line_1 = (
        '{"command":"PRIVMSG","host":"someviewer.tmi.twitch.tv","params":["#desertbus","h\\u00e9llo Kappa '
        '\\ud83c\\udf89"],"receivers":{"host1.Ab3dE.0":1700000012.456789},"sender":"someviewer","tags":{"badge-info"'
        ':"","badges":"subscriber/12","color":"#1E90FF","display-name":"SomeViewer","emotes":"25:7-11","first-msg":"0"'
        ',"flags":"","id":"b34ccfc7-4977-403a-8a94-33c6bac34fb8","mod":"0","room-id":"22510310","subscriber":"1",'
        '"tmi-sent-ts":"1700000012345","turbo":"0","user-id":"12345678","user-type":""},"time":1700000012.345,'
        '"time_range":0,"user":"someviewer"}'
    )
    line_2 = (
        '{"command":"ROOMSTATE","host":null,"params":["#desertbus"],"receivers":{"host1.Ab3dE.0":1700000013.0},'
        '"sender":"tmi.twitch.tv","tags":{"emote-only":"0","room-id":"22510310","slow":"0"},"time":1700000012.345,'
        '"time_range":10,"user":null}'
    )
    data = (line_1 + "\n" + line_2 + "\n").encode()
    assert format_batch(parse_batch(data)) == data
    digest = content_hash(data)
    assert len(digest) == 43
    assert batch_relpath(batch_time_of(1700000012.345), digest) == (
        "2023-11-14T22",
        "13:00-CYRdVkiNzh1vbWPsXPLDqMXZDQS94hFMa-O8tUfX5As.json",
    )


def test_batch_time_and_names() -> None:
    assert batch_time_of(1699999975.25) == 1699999920
    assert parse_batch_name("2023-11-14T22", "12:00-" + "A" * 43 + ".json") == (1699999920, "A" * 43)
    assert parse_batch_name("2023-11-14T22", "12:00-" + "A" * 43 + ".json.abc.temp") is None
    assert parse_batch_name("2023-13-14T22", "12:00-" + "A" * 43 + ".json") is None
    # names are matched whole: a trailing newline (a name made by a careless script) is no batch file
    assert parse_batch_name("2023-11-14T22", "12:00-" + "A" * 43 + ".json\n") is None
    assert parse_batch_name("2023-11-14T22\n", "12:00-" + "A" * 43 + ".json") is None


def test_hour_folders_are_known_by_their_whole_name() -> None:
    from formats.canonical import is_hour_folder

    assert is_hour_folder("2023-11-14T22")
    for name in ("2023-11-14T22\n", "2023-11-14T2", "2023-11-14 22", "x2023-11-14T22", "quarantine"):
        assert not is_hour_folder(name), name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"command":"X"}\n', "f.json:1: record keys wrong"),
        (b"not json\n", "f.json:1: invalid JSON"),
        (b'{"command":"X"}', "f.json: batch file does not end with a newline"),
    ],
)
def test_parse_batch_names_the_bad_file_and_line(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as e:
        parse_batch(data, "f.json")
    assert str(e.value).startswith(message)


GOOD = {
    "command": "JOIN",
    "params": ["#c"],
    "sender": "a",
    "user": "a",
    "host": "a",
    "tags": {"x": True, "y": ""},
    "receivers": {"h.S.0": 1.5},
    "time": 1.0,
    "time_range": 0,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"params": ["#c", 1]}, "'params'"),
        ({"params": "#c"}, "'params'"),
        ({"host": 5}, "'host' is not a string"),
        ({"tags": {"x": False}}, "'tags'"),
        ({"tags": {"x": 0}}, "'tags'"),
        ({"tags": ["x"]}, "'tags'"),
        ({"receivers": {}}, "'receivers'"),
        ({"receivers": {"h": True}}, "'receivers'"),
        ({"receivers": {"h": "1"}}, "'receivers'"),
        ({"time": None}, "'time'"),
        ({"time_range": False}, "'time'"),
        ({"command": None}, "'command'"),
    ],
)
def test_validate_record_refuses_each_schema_fault(change: dict, message: str) -> None:
    from formats.canonical import validate_record

    assert validate_record(dict(GOOD)) == GOOD
    with pytest.raises(InputError, match=message):
        validate_record({**GOOD, **change})


def _schema_plainly(record: dict[str, Any]) -> bool:
    """ARCHIVE_FORMAT.md section 3's table, written out plainly (an oracle for the fast check)."""

    def text_or_null(v: object) -> bool:
        return v is None or isinstance(v, str)

    def number(v: object) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    tags = record.get("tags")
    return (
        set(record) == {"command", "params", "sender", "user", "host", "tags", "receivers", "time", "time_range"}
        and isinstance(record["command"], str)
        and isinstance(record["params"], list)
        and all(isinstance(p, str) for p in record["params"])
        and all(text_or_null(record[k]) for k in ("sender", "user", "host"))
        and (tags is None or (isinstance(tags, dict) and all(v is True or isinstance(v, str) for v in tags.values())))
        and isinstance(record["receivers"], dict)
        and len(record["receivers"]) > 0
        and all(number(v) for v in record["receivers"].values())
        and number(record["time"])
        and number(record["time_range"])
    )


@given(maybe_faulty_records())
def test_one_schema_check_the_fast_one_and_the_one_that_names_the_fault_agree(record: dict[str, Any]) -> None:
    from formats.canonical import is_record, validate_record

    expected = _schema_plainly(record)
    assert is_record(record) == expected
    try:
        validate_record(record)
    except InputError as e:
        assert not expected, e
        assert e.message  # says what is wrong
    else:
        assert expected


@given(st.lists(archive_records(), min_size=1, max_size=4), st.integers(10**18, 10**30), st.booleans())
def test_parse_batch_keeps_big_ints_beside_long_digit_runs(records: list[dict], big: int, negative: bool) -> None:
    # 19 digits in a row inside a string (a Twitch id) must not send the line to the slow decoder:
    # only a file with such a number, and then only a record whose numbers orjson read as a float
    # that large, is decoded again
    records[0] = dict(
        records[0], tags={"id": "1234567890123456789012", "x": ":1234567890123456789"}, time=-big if negative else big
    )
    records[-1] = dict(records[-1], receivers={"h.x.0": big, "h.y.0": float(big)})
    data = format_batch(records)
    again = parse_batch(data)
    assert format_batch(again) == data  # an int read back as a float would print differently


@pytest.mark.parametrize("spacing", ["", " ", "\t ", " -"])
def test_parse_batch_reads_a_big_int_as_an_int_in_any_spacing(spacing: str) -> None:
    line = (
        '{"command":"X","params":[],"sender":null,"user":null,"host":null,"tags":{"id":"12345678901234567890"},'
        f'"receivers":{{"r":{spacing}123456789012345678901234}},"time":1,"time_range":0}}\n'
    ).encode()
    (record,) = parse_batch(line)
    assert record["receivers"]["r"] == int(spacing.strip() + "123456789012345678901234")
    assert type(record["receivers"]["r"]) is int


@given(st.lists(st.sampled_from([b"1", b"9", b"0", b"a", b"\n", b"\xd9\xa3", b"12345678901234567"]), max_size=12))
@example([b"1234567890123456789"])
@example([b"123456789012345678", b"x1"])
def test_a_run_of_19_digits_is_found_as_the_regex_finds_it(parts: list[bytes]) -> None:
    data = b"".join(parts)
    expected = re.search(rb"[0-9]{19}", data) is not None
    assert canonical._has_long_digits(data) == expected, data
