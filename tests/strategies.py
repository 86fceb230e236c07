"""Hypothesis strategies shared by the whole suite (one file, as attrs does). Extend, don't copy."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Text that exercises the canonical encoder: ASCII, Latin-1, BMP, astral (emoji), controls, DEL.
any_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
nick = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
receiver = st.from_regex(r"host[1-4]\.[A-Za-z0-9]{5}\.[0-3]", fullmatch=True)

# Times as upstream produces them: server ms / 1000, or receive times in microseconds.
server_time = st.integers(1_700_000_000_000, 1_700_000_600_000).map(lambda ms: ms / 1000)
receive_time = st.integers(1_700_000_000_000_000, 1_700_000_600_000_000).map(lambda us: us / 1_000_000)
any_number = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), st.just(0), st.just(0.0)
)

tag_value = st.one_of(any_text, st.just(True))
tags = st.one_of(st.none(), st.dictionaries(st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True), tag_value))


@st.composite
def archive_records(draw: Any, numbers: Any = None) -> dict[str, Any]:
    """Any record with the archive schema (ARCHIVE_FORMAT.md section 3)."""
    number = numbers if numbers is not None else st.one_of(server_time, st.integers(0, 60), any_number)
    return {
        "command": draw(st.sampled_from(["PRIVMSG", "JOIN", "PART", "NOTICE", "CLEARCHAT", "USERNOTICE"])),
        "params": draw(st.lists(any_text, max_size=3)),
        "sender": draw(st.one_of(st.none(), nick)),
        "user": draw(st.one_of(st.none(), nick)),
        "host": draw(st.one_of(st.none(), any_text)),
        "tags": draw(tags),
        "receivers": draw(st.dictionaries(receiver, st.one_of(receive_time, number), min_size=1, max_size=3)),
        "time": draw(number),
        "time_range": draw(number),
    }
