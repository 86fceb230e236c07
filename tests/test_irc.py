"""IRC parsing: the IRCv3 reading and upstream's girc reading (ARCHIVE_FORMAT.md section 3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from formats.errors import IRCParseError
from formats.irc import Message, parse, parse_compat

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

# -- the fuzz invariant: any text parses or raises our own error, never anything else --


@given(st.text())
def test_parse_any_text_gives_message_or_our_error(line: str) -> None:
    try:
        msg = parse(line)
    except IRCParseError:
        return
    assert isinstance(msg, Message)


@given(st.text())
def test_parse_compat_any_text_gives_fields_or_our_error(line: str) -> None:
    try:
        fields = parse_compat(line)
    except IRCParseError:
        return
    assert len(fields) == 6


# -- round trip: a message written as a line parses back equal --

middle = st.from_regex(r"[^\s:\x00][^\s\x00]{0,8}", fullmatch=True).filter(lambda s: "\r" not in s and "\n" not in s)
trailing = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]), max_size=20)
tag_key = st.from_regex(r"\+?[A-Za-z0-9][A-Za-z0-9./-]{0,10}", fullmatch=True)
tag_val = st.one_of(
    st.none(), st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=12)
)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    params = draw(st.lists(middle, max_size=3))
    if draw(st.booleans()):
        params.append(draw(trailing))
    return Message(
        tags=draw(st.one_of(st.none(), st.dictionaries(tag_key, tag_val, min_size=1, max_size=4))),
        source=draw(
            st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9]{0,5}(![a-z]{1,5})?(@[a-z.]{1,8})?", fullmatch=True))
        ),
        command=draw(
            st.one_of(st.from_regex(r"[A-Z]{1,10}", fullmatch=True), st.from_regex(r"[0-9]{3}", fullmatch=True))
        ),
        params=params,
    )


@given(messages())
def test_message_written_as_line_parses_back_equal(msg: Message) -> None:
    assert parse(msg.to_line()) == msg


# -- the IRCv3 reading, case by case --


def test_ircv3_examples() -> None:
    m = parse("@a=b\\sc\\:d\\\\e\\r\\n;flag;empty=;x=\\q\\ :nick!user@host PRIVMSG #chan :hello  world :) \r\n")
    assert m.tags == {"a": "b c;d\\e\r\n", "flag": None, "empty": "", "x": "q"}
    assert m.source == "nick!user@host"
    assert m.command == "PRIVMSG"
    assert m.params == ["#chan", "hello  world :) "]
    assert parse("PRIVMSG #c :").params == ["#c", ""]
    assert parse(":srv   001   me   :Welcome").params == ["me", "Welcome"]
    assert parse("ping x").command == "PING"


@pytest.mark.parametrize("line", ["", "   ", "@a=b", ":src", "@a :src", "PRIV MSG\x00", "a\rb", "1234 x", "!!"])
def test_ircv3_rejects(line: str) -> None:
    with pytest.raises(IRCParseError):
        parse(line)


# -- upstream's (girc) reading: the conventions that decide the archive's bytes --


def test_compat_tag_conventions() -> None:
    _c, _p, _s, _u, _h, tags = parse_compat("@flag;empty=;known=a\\sb\\:c\\\\d;unknown=x\\ay;lone=z\\ CMD")
    assert tags == {"flag": True, "empty": "", "known": "a b;c\\d", "unknown": "x\\ay", "lone": "z\\"}


def test_compat_spaces_and_prefix() -> None:
    command, params, sender, user, host, tags = parse_compat(":a!b!c@d@e  privmsg   #chan   :hi   there  ")
    assert (command, sender, user, host, tags) == ("PRIVMSG", "a", "b!c@d", "e", None)
    # the trailing parameter is verbatim; only the line's own ends are stripped (ARCHIVE_FORMAT.md 3)
    assert params == ["#chan", "hi   there"]
    assert parse_compat(":tmi.twitch.tv ROOMSTATE #c")[2:5] == ("tmi.twitch.tv", None, None)
    assert parse_compat("PRIVMSG #c :")[1] == ["#c", ""]
    assert parse_compat("PRIVMSG #c : x")[1] == ["#c", " x"]
    assert parse_compat("PRIVMSG #c :  hi")[1] == ["#c", "  hi"]
    assert parse_compat("PRIVMSG #c :a  b")[1] == ["#c", "a  b"]
    assert parse_compat("\t PRIVMSG #c :a\tb \u3000\r\n")[1] == ["#c", "a\tb"]  # str.strip() removes tab, U+3000
    assert parse_compat("CMD  a   b :")[1] == ["a", "b", ""]


@pytest.mark.parametrize(
    "line", ["", "   ", "\t\u3000\r\n", "@a=b", "@a=b :nick", "@a  :nick ", "x\x00y", "a\rb c", "PRIVMSG #c :a\nb"]
)
def test_compat_rejects(line: str) -> None:
    with pytest.raises(IRCParseError):
        parse_compat(line)


irc_ish = st.text(st.sampled_from(list("@:!; =\\ab#sPRIVMSG\r\n\x00é\t\u3000")), max_size=40)
irc_word = st.text(st.sampled_from(list("@:!;=\\ab#")), min_size=1, max_size=6)
irc_words = st.lists(irc_word, min_size=1, max_size=7).map(" ".join)


@settings(max_examples=examples(2))
@given(st.one_of(irc_ish, irc_words, st.text(max_size=40)))
def test_compat_fast_path_equals_girc_word_by_word(line: str) -> None:
    from formats.irc import parse_compat_words

    def run(f: object) -> object:
        try:
            return f(line)  # type: ignore[operator]
        except IRCParseError:
            return "error"

    assert run(parse_compat) == run(parse_compat_words)
