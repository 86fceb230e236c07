"""The html page read from stored lines: `page_line` and `page_rows` (native/export.c) against their
references (`page_line_py`, `page_rows_py`) through the `core` fixture, and the references against
what the page makes of the decoded record (`page_fields`, `Slimmer.rows`)."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from profiles import examples

from export import html
from formats.canonical import canonical_bytes
from tests.compiled import Core, compiled_only, same_as_reference
from tests.strategies import archive_records, tag_value
from tests.test_merge_scan import _mutations

# text that takes every path of the page JSON: `<`, controls and their short escapes, quotes and
# backslashes, U+007F, non-ASCII and astral characters, and the line and paragraph separators
_PAGE_CHARS = st.sampled_from(["<", "\x00", "\x01", "\b", "\t", "\n", "\f", "\r", '"', "\\", "\x7f", "é", "\u2028"])
page_text = st.lists(st.one_of(st.text(max_size=4), _PAGE_CHARS, st.just("\U0001f389")), max_size=6).map("".join)
_PAGE_TAGS = ("login", "display-name", "color", "badges", "reply-parent-display-name", "reply-parent-msg-body")
_PAGE_TAGS += ("system-msg", "msg-id", "id", "target-msg-id")
_ids = st.sampled_from(["a1", "b2", "c3", "", "q\\x", 'q"x'])


_page_commands = st.sampled_from(["PRIVMSG", "USERNOTICE", "CLEARMSG", "CLEARCHAT", "JOIN", "PRIVMSG"])
_page_users = st.one_of(st.none(), st.just(""), st.sampled_from(["alice", "bob", "Zoë"]))
_page_tag_names = st.lists(st.sampled_from(_PAGE_TAGS), max_size=8, unique=True)
_page_tag_values = st.one_of(page_text, tag_value, _ids, st.just(""))
_more_params = st.lists(page_text, max_size=1)


@st.composite
def page_records(draw: Any) -> dict[str, Any]:
    """Records of the archive schema, most of them of a command the page shows, with its tags."""
    record = draw(archive_records())
    record["command"] = draw(_page_commands)
    if draw(st.booleans()):
        record["params"] = ["#c", draw(page_text), *draw(_more_params)]
    record["user"] = draw(_page_users)
    if record["tags"] is not None or draw(st.booleans()):
        names = draw(_page_tag_names)
        record["tags"] = {**(record["tags"] or {}), **{n: draw(_page_tag_values) for n in names}}
    return record


def _same_line(core: Core, line: bytes) -> object:
    return same_as_reference(core, html.page_line_py, "export_page_line", line)


@settings(max_examples=examples(2))
@given(record=page_records())
@example(
    record={
        "command": "PRIVMSG",
        "host": None,
        "params": ["#c", "a<b\U0001f389\x7f"],
        "receivers": {"h": 1.5},
        "sender": "a",
        "tags": {"display-name": "Ünï", "color": True},
        "time": 1.5,
        "time_range": 0,
        "user": "a",
    }
)
def test_page_line_is_the_reference(core: Core, record: dict[str, Any]) -> None:
    line = canonical_bytes(record)
    assert _same_line(core, line) == html.page_fields(record)


@compiled_only
@settings(max_examples=examples(2))
@given(data=st.data(), record=page_records())
def test_page_line_of_damaged_lines(core: Core, data: st.DataObject, record: dict[str, Any]) -> None:
    _same_line(core, data.draw(_mutations(canonical_bytes(record))))


@compiled_only
@pytest.mark.parametrize(
    "line",
    [
        b'{"command":"PRIVMSG","host":null,"params":["#c","\\ud83c"],"receivers":{"h":1},"sender":null,"tags":null,'
        b'"time":1,"time_range":0,"user":null}',  # a lone surrogate: orjson refuses it
        b'{"command":"PRIVMSG","host":null,"params":[],"receivers":{"h":1},"sender":null,"tags":{"id":"a","id":"b"},'
        b'"time":1,"time_range":0,"user":null}',  # a tag twice: the last one counts
        b'{"command":"PRIV\\u004dSG","host":null,"params":[],"receivers":{"h":1},"sender":null,"tags":null,'
        b'"time":1,"time_range":0,"user":null}',
        b'{"command":"CLEARMSG","host":null,"params":[],"receivers":{"h":1e999},"sender":null,"tags":null,'
        b'"time":1,"time_range":0,"user":null}',
        b'{"command":"CLEARMSG","host":null,"params":["#c",1],"receivers":{"h":1},"sender":null,"tags":null,'
        b'"time":1,"time_range":0,"user":null}',
    ],
)
def test_page_line_of_odd_lines(core: Core, line: bytes) -> None:
    _same_line(core, line)


def test_page_fields_are_the_rows_of_the_page() -> None:
    """`Slimmer.text` (page JSON from the fields) writes what `Slimmer.rows` (arrays) gives."""
    record = {
        "command": "PRIVMSG",
        "params": ["#c", "<b> \U0001f389"],
        "user": "zoe",
        "tags": {"display-name": "Zoë", "color": "#FF0000", "id": "m1", "reply-parent-display-name": ""},
        "time": 10.25,
    }
    fields = html.page_fields(record)
    assert fields == ("P", '["zoe","Zoë","#FF0000"]', "m1", "", '"\\u003cb> \U0001f389"')
    out: list[str] = []
    html.Slimmer(10).text(fields, 250, out)
    assert [json.loads(t) for t in out] == html.Slimmer(10).rows(record)


_row_times = st.one_of(st.integers(0, 10**6), st.floats(0, 1e6))
_odd_times = st.sampled_from([float("inf"), 10**400, "12.5", None])


_page_record_lists = st.lists(page_records(), max_size=12)


@st.composite
def export_rows(draw: Any) -> list[tuple[Any, ...]]:
    """export's rows: stored lines (time, 0, line, place) and records the view built (five)."""
    rows: list[tuple[Any, ...]] = []
    for i, record in enumerate(draw(_page_record_lists)):
        record["time"] = draw(_row_times)
        if draw(st.booleans()):
            # a time no number of milliseconds holds (a float beyond range, as the parts' line_time
            # reads a huge int), or no number: the page leaves the row out
            odd = draw(_odd_times)
            rows.append((odd, 0, canonical_bytes({**record, "time": 1}), i))
        if draw(st.booleans()):
            try:
                line = canonical_bytes(record)
                orjson.loads(line)
            except orjson.JSONDecodeError:  # a line export never stores as a candidate
                continue
            rows.append((record["time"], 0, line, i))
        else:
            rows.append((record["time"], 0, b"", i, record))
    return rows


@compiled_only
@settings(max_examples=examples(1))
@given(batches=st.lists(export_rows(), max_size=3), start=st.floats(0, 1e6), limits=st.sampled_from([(1, 1), (2, 3)]))
def test_page_rows_is_the_reference(
    core: Core, batches: list[list[tuple[Any, ...]]], start: float, limits: tuple[int, int]
) -> None:
    twin = core.twin(html.page_rows_py, "export_page_rows")
    states = []
    for fn in (html.page_rows_py, twin):
        users: OrderedDict[str, int] = OrderedDict()
        ids: OrderedDict[str, int] = OrderedDict()
        counts = [0, 0]
        slimmer = html.Slimmer(start)
        slimmer.users, slimmer.ids, slimmer.counts = users, ids, counts

        def texts(record: Any, out: list[str], slimmer: html.Slimmer = slimmer) -> None:
            fields = html.page_fields(record)
            ms = slimmer.ms(record.get("time"))
            if fields is not None and ms is not None:
                slimmer.text(fields, ms, out)

        outs = [fn(rows, start * 1000, users, ids, counts, texts, limits) for rows in batches]
        states.append((outs, list(users.items()), list(ids.items()), counts))
    assert states[0] == states[1]


def test_stored_rows_render_as_records() -> None:
    """The renderer gives the same page whether a record comes as its stored line or decoded."""
    records = [
        {"command": "PRIVMSG", "params": ["#c", "hi <3"], "user": "a", "tags": {"id": "x", "color": "#00FF00"}},
        {"command": "JOIN", "params": ["#c"], "user": "b", "tags": None},
        {"command": "CLEARMSG", "params": ["#c", "hi <3"], "user": None, "tags": {"target-msg-id": "x"}},
        {"command": "USERNOTICE", "params": ["#c"], "user": None, "tags": {"login": "c", "msg-id": "sub", "id": "y"}},
        {"command": "CLEARCHAT", "params": ["#c", "a"], "user": None, "tags": None},
    ]
    full = []
    for i, r in enumerate(records):
        full.append({"host": None, "sender": None, "receivers": {"h": 1.5}, "time": 100 + i, "time_range": 0, **r})
    by_record = html.HtmlRenderer(100, 200)
    by_line = html.HtmlRenderer(100, 200)
    a = by_record.begin() + "".join(by_record.add(r) for r in full) + by_record.end()
    stored = [(r["time"], 0, canonical_bytes(r), i) for i, r in enumerate(full)]
    b = by_line.begin() + by_line.add_rows(stored[:2]) + by_line.add_rows(stored[2:]) + by_line.end()
    assert a == b
    assert '[0,"P",0,"hi \\u003c3"]' in a and '[2000,"M",1,"hi \\u003c3",0]' in a
