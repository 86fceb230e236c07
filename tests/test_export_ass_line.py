"""What the ASS box shows of a stored line: `message_view_line` (native/export.c) against its
reference `message_view_py` through the `core` fixture, and the reference against the renderer's
own functions (`_spans`, `render_lines`) of the decoded record."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from profiles import examples

from export import ass
from export.fields import tag_of
from formats.canonical import canonical_bytes
from tests.compiled import Core, compiled_only, same_as_reference
from tests.test_export_html_line import page_records
from tests.test_merge_scan import _mutations

_NAMES = st.one_of(st.none(), st.sampled_from(["", "alice", "Alice", "ALICE", "b{o}b", "Zoë", "x y", "tmi.twitch.tv"]))
_COLORS = st.one_of(st.none(), st.sampled_from(["", "#1a2B3c", "#FFFFFF", "#12345", "#1234567", "red", "#GGGGGG"]))
# words of every length around the wrap width, spaces where a cut falls, what escape() escapes, and
# what _plain turns into spaces
_WORDS = st.sampled_from(["a", "hello", "x" * 55, "y" * 56, "z" * 57, "{", "}", "\\", "\\N", "é", "\U0001f389"])
_WORDS |= st.sampled_from(["\n", "\x00", "\x7f", "\x85", "\u2028", '"', " ", "  ", "\x01ACTION", "\u2060"])
chat_text = st.lists(_WORDS, max_size=12).map(" ".join)


@st.composite
def chat_records(draw: Any) -> dict[str, Any]:
    """PRIVMSG records of the kinds the box shows: any names, colours and text."""
    tags: dict[str, Any] = {}
    for name, values in (("display-name", _NAMES), ("login", _NAMES), ("color", _COLORS), ("id", _NAMES)):
        value = draw(st.one_of(values, st.just(True)))
        if value is not None:
            tags[name] = value
    return {
        "command": "PRIVMSG",
        "host": None,
        "params": ["#c", draw(chat_text)] if draw(st.integers(0, 9)) else ["#c"],
        "receivers": {"h": 1700000000.5},
        "sender": draw(_NAMES),
        "tags": tags if draw(st.integers(0, 9)) else None,
        "time": 1700000000.25,
        "time_range": 0,
        "user": draw(_NAMES),
    }


def _same(core: Core, line: bytes) -> object:
    return same_as_reference(core, ass.message_view_py, "export_ass_message", line)


@settings(max_examples=examples(3))
@given(record=chat_records())
@example(record={"command": "PRIVMSG", "params": ["#c", "{x} \\N " + "w" * 60], "user": "b{o}b", "tags": None})
def test_message_view_line_is_the_reference(core: Core, record: dict[str, Any]) -> None:
    record = {"host": None, "receivers": {"h": 1.5}, "sender": None, "time": 1.5, "time_range": 0, **record}
    view = _same(core, canonical_bytes(record))
    spans = ass._spans(record) or []
    login = str(record.get("user") or tag_of(record, "login") or "").lower()
    assert view == (len(ass.wrap(ass._plain(spans))), ass.render_lines(spans, False), tag_of(record, "id"), login)


@compiled_only
@settings(max_examples=examples(1))
@given(record=page_records())
def test_message_view_line_of_other_records(core: Core, record: dict[str, Any]) -> None:
    _same(core, canonical_bytes(record))


@compiled_only
@settings(max_examples=examples(2))
@given(data=st.data(), record=chat_records())
def test_message_view_line_of_damaged_lines(core: Core, data: st.DataObject, record: dict[str, Any]) -> None:
    _same(core, data.draw(_mutations(canonical_bytes(record))))


def test_a_usual_message() -> None:
    """Checked by hand: the name in its colour (ASS order BGR) and bold, the text in white."""
    line = canonical_bytes(
        {
            "command": "PRIVMSG",
            "host": None,
            "params": ["#c", "caf\u00e9 {hi}"],
            "receivers": {"h": 1.5},
            "sender": "zoe",
            "tags": {"color": "#1a2b3c", "display-name": "Zoe", "id": "m1"},
            "time": 1.5,
            "time_range": 0,
            "user": "zoe",
        }
    )
    assert ass.message_view_line(line) == (
        1,
        ["{\\c&H3C2B1A&\\b1\\i0\\s0}Zoe{\\c&HFFFFFF&\\b0\\i0\\s0}: caf\u00e9 \\{hi\\}"],
        "m1",
        "zoe",
    )
