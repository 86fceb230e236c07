"""The fuzz invariant for the whole replay (h11's afl-server idea): any raw file content and any
received line is either replayed or reported, never an exception, and never a file outside the root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from formats.canonical import parse_batch
from formats.rawcodec import Event, Header, encode_event, encode_header
from tests.pipeline import replay

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

T0 = 1_700_000_000_000_000
irc_chars = st.sampled_from(list("@:!;= \\#abcPRIVMSGJOINROOMSTATE0123456789-\x01é🎉\x00\r"))
irc_line = st.one_of(
    st.text(irc_chars, max_size=60),
    st.builds(
        lambda ts, text: f"@id=x;tmi-sent-ts={ts} :a!a@a PRIVMSG #c :{text}", st.text(max_size=5), st.text(max_size=20)
    ),
    st.just("@room-id=1 :tmi.twitch.tv ROOMSTATE #c"),
    st.builds(lambda ch: f":tmi.twitch.tv ROOMSTATE #{ch}", st.text(irc_chars, max_size=8)),
)
raw_line = st.one_of(
    st.builds(
        lambda line, dt, conn: encode_event(Event("recv", 0, T0 + dt, conn, line)),
        irc_line,
        st.integers(-(10**9), 10**9),
        st.integers(0, 2),
    ),
    st.builds(
        lambda dt, conn, d: encode_event(Event("open", 0, T0 + dt, conn, "ws://x", d)),
        st.integers(-(10**9), 10**9),
        st.integers(0, 2),
        st.sampled_from(["twitch", "ircv3"]),
    ),
    st.builds(
        lambda dt, conn: encode_event(Event("close", 0, T0 + dt, conn, "bye")),
        st.integers(-(10**9), 10**9),
        st.integers(0, 2),
    ),
    st.binary(max_size=40),
)


@settings(max_examples=examples(0.4))
@given(st.lists(raw_line, max_size=25), st.booleans())
def test_any_recording_replays_or_reports(tmp_path_factory: Any, lines: list[bytes], merge: bool) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    data = encode_header(Header("h", "Fuzz1", "h", "t", 0, T0))
    # most worlds start with a connection whose channel is initialised, so records get made
    lines = [
        encode_event(Event("open", 0, T0, 0, "ws://x", "twitch")),
        encode_event(Event("recv", 0, T0, 0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c")),
        *lines,
    ]
    for seq, line in enumerate(lines, 1):
        # give decodable events increasing sequence numbers, as a recorder would
        data += line.replace(b'"seq":0', f'"seq":{seq}'.encode(), 1)
    (tmp / "raw.jsonl").write_bytes(data)
    out = tmp / "archive"
    replay([str(tmp / "raw.jsonl")], str(out), merge=merge)
    for folder, _dirs, names in os.walk(out):
        assert Path(folder).resolve().is_relative_to(out.resolve())
        for name in names:
            if name.endswith(".json"):
                parse_batch((Path(folder) / name).read_bytes())  # what was written is a valid batch
