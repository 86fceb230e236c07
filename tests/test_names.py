"""The archive's names (formats.names): ASCII only, matched whole, reserved names refused from peers.

The grammar is checked against what it must refuse, drawn over the Unicode categories: any
character outside printable ASCII (a digit of another script, a letter, a bidi control, a space
of another kind) in a channel, hour or batch name is refused, and so is a trailing newline.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from formats.canonical import content_hash
from formats.dialect import ircv3_server_time
from formats.errors import InputError
from formats.names import batch_name_ok, channel_ok, hour_ok, peer_channel_ok, reserved_channel
from formats.rawcodec import check_recorder_name

HASH = content_hash(b"x")
GOOD = ("chan", "2023-11-14T22", f"14:00-{HASH}.json")

not_ascii = st.characters(min_codepoint=0x80)
# every general category, a control or a separator, so a digit, letter, bidi control or odd space is drawn
any_char = st.characters(codec=None, categories=("Nd", "No", "L", "Cf", "Cc", "Zs", "Zl", "Zp", "P", "S", "M"))


def spliced(good: str, data: st.DataObject, chars: st.SearchStrategy[str]) -> str:
    at = data.draw(st.integers(0, len(good)))
    width = data.draw(st.integers(0, len(good) - at))
    return good[:at] + data.draw(st.text(chars, min_size=1, max_size=3)) + good[at + width :]


def test_the_good_names_are_names() -> None:
    channel, hour, batch = GOOD
    assert channel_ok(channel) and peer_channel_ok(channel) and hour_ok(hour) and batch_name_ok(hour, batch)


@given(st.data())
def test_a_non_ascii_character_anywhere_is_no_name(data: st.DataObject) -> None:
    channel, hour, batch = GOOD
    assert not channel_ok(spliced(channel, data, not_ascii))
    assert not hour_ok(spliced(hour, data, not_ascii))
    assert not batch_name_ok(hour, spliced(batch, data, not_ascii))


@given(st.data(), any_char)
def test_a_character_of_any_category_is_in_a_name_only_if_printable_ascii(data: st.DataObject, c: str) -> None:
    channel = GOOD[0]
    at = data.draw(st.integers(0, len(channel)))
    name = channel[:at] + c + channel[at:]
    printable = "\x21" <= c <= "\x7e" and c not in '/\\,:*?"<>|'
    assert channel_ok(name) == (printable and not name.startswith(".")), ascii(name)


@pytest.mark.parametrize(
    "digit", ["\u0663", "\u06f3", "\u0969", "\uff13", "\U0001d7d1", "\u00b3", "\u2083"]
)  # Arabic-Indic, extended Arabic-Indic, Devanagari, fullwidth, mathematical, superscript, subscript
def test_a_digit_of_another_script_is_no_digit(digit: str) -> None:
    assert not hour_ok(f"2023-11-14T2{digit}")
    assert not batch_name_ok("2023-11-14T22", f"1{digit}:00-{HASH}.json")
    assert ircv3_server_time({"time": f"2023-11-14T22:1{digit}:00.000Z"}) is None


@pytest.mark.parametrize(
    "name",
    ["trail\n", "\u202eevil", "evil\u200f", "a\u00a0b", "caf\u00e9", "\u0441hat", "x\r", "\x00", "a b", "\ufeffchan"],
)
def test_names_that_look_like_channels_are_not(name: str) -> None:
    assert not channel_ok(name) and not peer_channel_ok(name)


def test_a_trailing_newline_ends_no_name() -> None:
    channel, hour, batch = GOOD
    assert not hour_ok(hour + "\n") and not batch_name_ok(hour, batch + "\n") and not channel_ok(channel + "\n")
    assert ircv3_server_time({"time": "2023-11-14T22:14:00.000Z\n"}) is None
    with pytest.raises(InputError):
        check_recorder_name("host\n")


@pytest.mark.parametrize(
    "name", ["quarantine", ".hidden", "..", "con", "CON", "nul", "aux", "prn", "com1", "lpt9", "con.json", "Com3.x"]
)
def test_reserved_names_are_refused_from_peers(name: str) -> None:
    assert reserved_channel(name) and not peer_channel_ok(name)


@pytest.mark.parametrize("name", ["console", "com10", "lpt", "quarantined", "nulls", "c.on"])
def test_names_close_to_reserved_ones_are_not_reserved(name: str) -> None:
    assert not reserved_channel(name) and peer_channel_ok(name)
