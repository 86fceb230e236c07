"""Exact text: every line is read as ARCHIVE_FORMAT.md section 3 says, on real Twitch lines
and on generated ones, and the replay archives the text verbatim (runs of spaces kept).

The expected text is worked out here from the spec's rule (a regular expression over the stripped
line), not by calling the parser.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from formats.dialect import TWITCH
from formats.errors import IRCParseError
from formats.irc import parse_compat, parse_compat_words
from formats.rawcodec import OPEN, RECV, Event
from tests.pipeline import replay_events
from tests.strategies import irc_lines

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

# 581 lines Twitch's server sent, from the tests of nine public chat libraries (fixtures/corpus/SOURCES.md).
CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus" / "twitch-lines.txt"


def corpus_lines() -> list[str]:
    with open(CORPUS, encoding="utf-8", newline="") as f:
        text = f.read()
    assert text.endswith("\n")
    return text[:-1].split("\n")


def corpus_events() -> list[Event]:
    """The corpus as one recorder connection received it: each line at its own server time (its
    `tmi-sent-ts`; a line without one when the line before it came), since the lines come from
    many years and a server time a day from the receive time is not archived."""
    at = 1_700_000_001_000_000
    events = [Event(OPEN, 1, at - 1_000_000, 0, "irc.example")]
    for i, line in enumerate(corpus_lines()):
        sent = re.search(r"[@;]tmi-sent-ts=([0-9]+)[; ]", line)
        at = int(sent.group(1)) * 1000 if sent else at + 1000
        events.append(Event(RECV, i + 2, at, 0, line))
    return events


# The spec's rule, as a regular expression over the stripped line: optional tags word, optional
# prefix word, the command word, middle words (not starting with ':'), all separated by runs of
# spaces; then optionally a run of spaces, ':' and the trailing parameter, verbatim to the end.
_SPEC_LINE = re.compile(
    r"(?:@[^ ]* +)?(?::[^ ]* +)?(?P<command>[^ ]+)(?P<middle>(?: +[^: ][^ ]*)*)(?: +:(?P<trailing>.*))?",
    re.DOTALL,
)


def spec_reading(line: str) -> tuple[str, list[str]] | None:
    """(COMMAND, params) by the spec's rule, or None when the line is not archived at all."""
    line = line.strip()
    if not line or any(c in line for c in "\r\n\0"):
        return None
    m = _SPEC_LINE.fullmatch(line)
    assert m is not None, line
    params = m["middle"].split()
    if m["trailing"] is not None:
        params.append(m["trailing"])
    return m["command"].upper(), params


def archivable(reading: tuple[str, list[str]] | None) -> bool:
    if reading is None:
        return False
    command, params = reading
    return command in TWITCH.kept and bool(params) and params[0].startswith("#") and len(params[0]) > 1


def replay_one(line: str, channel: str) -> list[dict[str, Any]]:
    """Replay `line` on a connection whose channel is already initialised; the records archived.
    It is received when it was sent (its `tmi-sent-ts`, if it has one), as it was recorded: a
    server time a day from the receive time is not archived."""
    sent = re.search(r"[@;]tmi-sent-ts=([0-9]+)[; ]", line)
    t0 = int(sent.group(1)) * 1000 - 2_000_000 if sent else 1_700_000_000_000_000
    events = [
        Event(OPEN, 1, t0, 0, "irc.example"),
        Event(RECV, 2, t0 + 1_000_000, 0, f"@room-id=1 :tmi.twitch.tv ROOMSTATE #{channel}"),
        Event(RECV, 3, t0 + 2_000_000, 0, line),
    ]
    return [r for batch in replay_events("host1", "Ab3dE", events) for r in batch.records]


LINES = corpus_lines()


def test_corpus_is_the_real_one() -> None:
    assert len(LINES) == 581
    assert sum(archivable(spec_reading(line)) for line in LINES) > 300


def test_corpus_every_line_parses_as_the_spec_says_or_is_refused_with_our_error() -> None:
    wrong = []
    for number, line in enumerate(LINES, 1):
        reading = spec_reading(line)
        try:
            fields = parse_compat(line)
        except IRCParseError:
            fields = None
        try:
            words = parse_compat_words(line)
        except IRCParseError:
            words = None
        got = None if fields is None else (fields[0], fields[1])
        if got != reading or fields != words:
            wrong.append(f"line {number}: {line!r}: spec {reading}, fast {fields}, words {words}")
    assert not wrong, "\n".join(wrong[:20])


def test_corpus_every_archivable_line_replays_into_its_exact_text() -> None:
    checked = 0
    for line in LINES:
        reading = spec_reading(line)
        if not archivable(reading):
            continue
        assert reading is not None
        command, params = reading
        records = replay_one(line, params[0][1:].lower())
        assert len(records) == 1, line
        assert (records[0]["command"], records[0]["params"]) == (command, params), line
        checked += 1
    assert checked > 300


@pytest.mark.parametrize(
    "ending, text",
    [
        ("PRIVMSG #pajlada :@xgspidermonkey  b", "@xgspidermonkey  b"),
        (" &Kappa a  b", "\U0001f602Kappa\U0001f602 &Kappa a  b"),
    ],
)
def test_corpus_runs_of_spaces_are_kept(ending: str, text: str) -> None:
    (line,) = [line for line in LINES if line.endswith(ending)]
    (record,) = replay_one(line, "pajlada")
    assert record["params"] == ["#pajlada", text]


# -- generated lines: runs of spaces, leading spaces in the text, surrounding whitespace --


@given(irc_lines())
@example(("PRIVMSG #c :  hi", ("PRIVMSG", ["#c", "  hi"], None, None, None, None)))
@example(("\t:n!u@h  PRIVMSG   #c  :a  b \u3000\r\n", ("PRIVMSG", ["#c", "a  b"], "n", "u", "h", None)))
def test_generated_line_reads_as_the_spec_says(case: tuple[str, tuple[Any, ...]]) -> None:
    line, expected = case
    assert parse_compat(line) == expected, line
    assert parse_compat_words(line) == expected, line


@given(irc_lines(command=st.sampled_from(["PRIVMSG", "privmsg", "USERNOTICE", "NOTICE"]), first=st.just("#chan")))
def test_generated_message_replays_with_its_exact_text(case: tuple[str, tuple[Any, ...]]) -> None:
    line, (command, params, sender, user, host, tag_map) = case
    (record,) = replay_one(line, "chan")
    assert (record["command"], record["params"], record["sender"], record["user"], record["host"], record["tags"]) == (
        command,
        params,
        sender,
        user,
        host,
        tag_map,
    )


_strippable = st.text(st.sampled_from([" ", "\t", "\u3000", "\r", "\n", "\x0b", "\u2028"]), max_size=6)


@given(_strippable)
def test_blank_lines_are_refused(line: str) -> None:
    with pytest.raises(IRCParseError):
        parse_compat(line)


@given(_strippable, st.sampled_from(["\r", "\n", "\0"]), _strippable)
def test_lines_holding_cr_lf_or_nul_are_refused(before: str, bad: str, after: str) -> None:
    with pytest.raises(IRCParseError):
        parse_compat(f"{before}PRIVMSG #c :x{bad}y{after}")


@pytest.mark.parametrize("target", ["#", "&chan", "*", "chan", "someone"])
def test_only_hash_channels_are_archived(target: str) -> None:
    line = f"@id=x;tmi-sent-ts=1700000001500 :v!v@v.tmi.twitch.tv PRIVMSG {target} :hi"
    assert not archivable(spec_reading(line))
    assert replay_one(line, "chan") == []
