"""Third-party emote sets as data (media.thirdparty): the providers' answers parsed (hand-checked
examples in their documented shapes; any JSON parses without raising and keeps what is valid), the
snapshot in force at a time, the precedence of channel over global, and the `emotes` tag's
positions counted in code points (checked on the corpus)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from media.thirdparty import (
    GLOBAL,
    PARSERS,
    PROVIDERS,
    Emote,
    EmoteTimeline,
    Snapshot,
    Source,
    shown_spans,
    sources,
    split_message,
    twitch_emote_spans,
)
from tests.strategies import any_json, emote_snapshots, emote_word

CORPUS = Path("/work/shared/corpus/twitch-lines.txt")
HERE_CORPUS = Path(__file__).parent.parent / "fixtures" / "twitch-lines.txt"

# The providers' answers, cut down from the shapes the popular clients read.
BTTV_CHANNEL = {
    "id": "5a5e0f7f3d3c2b1a00000001",
    "bots": [],
    "avatar": "https://example/avatar.png",
    "channelEmotes": [
        {"id": "5f1b0186cf6d2144653d2970", "code": "catJAM", "imageType": "gif", "animated": True, "userId": "x"}
    ],
    "sharedEmotes": [
        {"id": "55b6f480e66682f576dd94f5", "code": "Clap", "imageType": "gif", "animated": True, "user": {}},
        {"id": "5e76d338d6581c3724c0f0b2", "code": "KEKW", "imageType": "png", "animated": False, "user": {}},
    ],
}
BTTV_GLOBAL = [{"id": "54fa8f1401e468494b85b537", "code": ":tf:", "imageType": "png", "animated": False, "userId": "y"}]
FFZ_ROOM = {
    "room": {"_id": 1, "twitch_id": 22484632, "id": "forsen", "set": 75},
    "sets": {
        "75": {
            "id": 75,
            "_type": 1,
            "title": "Channel: forsen",
            "emoticons": [
                {"id": 28136, "name": "OMEGALUL", "urls": {"1": "https://cdn.frankerfacez.com/emote/28136/1"}},
                {
                    "id": 720507,
                    "name": "pepeD",
                    "animated": {"1": "https://cdn.frankerfacez.com/emote/720507/animated/1"},
                },
            ],
        }
    },
}
FFZ_GLOBAL = {
    "default_sets": [3],
    "sets": {
        "3": {"id": 3, "emoticons": [{"id": 9, "name": "ZreknarF", "urls": {"1": "//cdn.frankerfacez.com/emote/9/1"}}]},
        "4330": {"id": 4330, "emoticons": [{"id": 10, "name": "NotGlobal", "urls": {}}]},
    },
    "users": {"4330": ["someone"]},
}
SEVENTV_USER = {
    "id": "60ae3e98b2ecb0150535c6b7",
    "platform": "TWITCH",
    "username": "forsen",
    "emote_set": {
        "id": "61d3e5b1a8d2ce69d7bc8b4e",
        "name": "forsen's Emotes",
        "emotes": [
            {
                "id": "60ae7316f7c927fad14e6ca2",
                "name": "catJAM",
                "flags": 0,
                "data": {"animated": True, "host": {"url": "//cdn.7tv.app/emote/60ae7316f7c927fad14e6ca2"}},
            }
        ],
    },
}
SEVENTV_GLOBAL = {
    "id": "global",
    "name": "Global Emotes",
    "emotes": [{"id": "01GB4CK01800090V9B3D8CGEEX", "name": "EZ", "data": {"animated": False}}],
}


def words(emotes: list[Emote]) -> list[tuple[str, str, bool]]:
    return [(e.id, e.word, e.animated) for e in emotes]


def test_bttv_channel_keeps_channel_and_shared_emotes() -> None:
    emotes, findings = PARSERS["bttv"](BTTV_CHANNEL, "forsen")
    assert words(emotes) == [
        ("5f1b0186cf6d2144653d2970", "catJAM", True),
        ("55b6f480e66682f576dd94f5", "Clap", True),
        ("5e76d338d6581c3724c0f0b2", "KEKW", False),
    ]
    assert findings == []
    assert words(PARSERS["bttv"](BTTV_GLOBAL, GLOBAL)[0]) == [("54fa8f1401e468494b85b537", ":tf:", False)]


def test_ffz_room_takes_its_set_and_global_only_the_default_sets() -> None:
    emotes, findings = PARSERS["ffz"](FFZ_ROOM, "forsen")
    assert words(emotes) == [("28136", "OMEGALUL", False), ("720507", "pepeD", True)] and findings == []
    assert words(PARSERS["ffz"](FFZ_GLOBAL, GLOBAL)[0]) == [("9", "ZreknarF", False)]  # 4330 is a user's set


def test_7tv_user_and_global_sets() -> None:
    assert words(PARSERS["7tv"](SEVENTV_USER, "forsen")[0]) == [("60ae7316f7c927fad14e6ca2", "catJAM", True)]
    assert words(PARSERS["7tv"](SEVENTV_GLOBAL, GLOBAL)[0]) == [("01GB4CK01800090V9B3D8CGEEX", "EZ", False)]


def test_urls_are_the_clients_forms_and_built_from_the_id() -> None:
    real = sources()
    assert real["bttv"].api_url("22484632") == "https://api.betterttv.net/3/cached/users/twitch/22484632"
    assert real["bttv"].api_url(None) == "https://api.betterttv.net/3/cached/emotes/global"
    assert real["ffz"].api_url("22484632") == "https://api.frankerfacez.com/v1/room/id/22484632"
    assert real["ffz"].api_url(None) == "https://api.frankerfacez.com/v1/set/global"
    assert real["7tv"].api_url("22484632") == "https://7tv.io/v3/users/twitch/22484632"
    assert real["7tv"].api_url(None) == "https://7tv.io/v3/emote-sets/global"
    assert real["bttv"].image_url(Emote("bttv", "abc", "x")) == "https://cdn.betterttv.net/emote/abc/2x"
    assert real["ffz"].image_url(Emote("ffz", "9", "x")) == "https://cdn.frankerfacez.com/emote/9/2"
    assert real["ffz"].image_url(Emote("ffz", "9", "x", True)) == "https://cdn.frankerfacez.com/emote/9/animated/2"
    assert real["7tv"].image_url(Emote("7tv", "z", "x")) == "https://cdn.7tv.app/emote/z/2x.webp"
    mirror = sources({"bttv": "http://127.0.0.1:9/", "ffz": None})
    assert mirror["bttv"] == Source("bttv", "http://127.0.0.1:9/", "http://127.0.0.1:9/")
    assert mirror["bttv"].api_url(None) == "http://127.0.0.1:9/3/cached/emotes/global"
    assert mirror["ffz"] == real["ffz"]


def test_hostile_ids_and_words_are_findings_not_urls() -> None:
    doc = {
        "channelEmotes": [
            {"id": "../../etc/passwd", "code": "evil"},
            {"id": "ok1", "code": "two words"},
            {"id": "ok2", "code": ""},
            {"id": True, "code": "bool"},
            {"id": "ok3", "code": "fine"},
        ],
        "sharedEmotes": "not a list",
    }
    emotes, findings = PARSERS["bttv"](doc, "chan")
    assert words(emotes) == [("ok3", "fine", False)]
    assert len(findings) == 5 and "channelEmotes[0]" in findings[0] and "sharedEmotes" in findings[4]


VALID = {
    "bttv": {"id": "good", "code": "GOOD"},
    "ffz": {"id": 7, "name": "GOOD"},
    "7tv": {"id": "good", "name": "GOOD"},
}


def _with_valid(provider: str, scope: str, junk: Any) -> Any:
    """`junk` with one valid emote placed where `provider`'s answer for `scope` holds its emotes."""
    item = VALID[provider]
    if provider == "bttv":
        return [junk, item] if scope == GLOBAL else {"channelEmotes": [junk, item], "sharedEmotes": junk}
    if provider == "ffz":
        sets = {"1": {"emoticons": [junk, item]}, "2": junk}
        return {"default_sets": [1], "sets": sets} if scope == GLOBAL else {"room": {"set": 1}, "sets": sets}
    body = {"emotes": [junk, item], "name": junk}
    return body if scope == GLOBAL else {"emote_set": body, "username": junk}


@given(st.sampled_from(PROVIDERS), st.sampled_from([GLOBAL, "chan"]), any_json)
@example("ffz", "chan", {"room": {"set": [1]}, "sets": {}})
def test_any_json_parses_and_keeps_the_valid_emote(provider: str, scope: str, junk: Any) -> None:
    emotes, findings = PARSERS[provider](junk, scope)  # never raises
    assert all(isinstance(f, str) for f in findings)
    emotes, _ = PARSERS[provider](_with_valid(provider, scope, junk), scope)
    assert "GOOD" in [e.word for e in emotes], emotes


@given(any_json)
def test_a_snapshot_file_is_read_or_refused_never_a_crash(junk: Any) -> None:
    try:
        Snapshot.from_json(junk, "f.json")
    except ValueError as e:
        assert str(e).startswith("f.json")


@given(st.lists(emote_snapshots(), max_size=8))
def test_snapshot_round_trips_through_its_json(snaps: list[Snapshot]) -> None:
    for snap in snaps:
        assert Snapshot.from_json(snap.to_json()) == snap


# --- which image a word stood for, when ----------------------------------------------------------


def naive_lookup(snaps: list[Snapshot], channel: str, t: float, word: str) -> Emote | None:
    """The model: per (scope, provider) the latest snapshot at or before t (the last given of equal
    times); channel scopes before global, providers in Chatterino's order; the first emote of the word."""
    for scope in (channel, GLOBAL):
        for provider in ("ffz", "bttv", "7tv"):
            candidates = [s for s in snaps if s.scope == scope and s.provider == provider and s.time <= t]
            if candidates:
                best = max(candidates, key=lambda s: s.time)
                best = [s for s in candidates if s.time == best.time][-1]
                for emote in best.emotes:
                    if emote.word == word:
                        return emote
    return None


@given(st.lists(emote_snapshots(), max_size=10), st.integers(-5, 105), emote_word)
def test_the_snapshot_in_force_is_the_latest_at_or_before_t(snaps: list[Snapshot], t: int, word: str) -> None:
    timeline = EmoteTimeline.of(snaps)
    expected = naive_lookup(snaps, "chan", t, word)
    assert timeline.lookup("chan", t, word) == expected, (timeline.lookup("chan", t, word), expected)
    table = timeline.at("chan", t)
    assert table.get(word) == expected or (expected is not None and table.get(word).word == word)  # type: ignore[union-attr]


def test_channel_shadows_global_and_ffz_comes_before_bttv_before_7tv() -> None:
    def snap(provider: str, scope: str, t: float, emote_id: str) -> Snapshot:
        return Snapshot(provider, scope, t, (Emote(provider, emote_id, "catJAM"),))

    timeline = EmoteTimeline.of(
        [snap("ffz", GLOBAL, 0, "g-ffz"), snap("7tv", "chan", 10, "c-7tv"), snap("bttv", "chan", 20, "c-bttv")]
    )
    assert timeline.lookup("chan", 5, "catJAM").id == "g-ffz"  # type: ignore[union-attr]
    assert timeline.lookup("chan", 10, "catJAM").id == "c-7tv"  # type: ignore[union-attr]  # channel over global
    assert timeline.lookup("chan", 25, "catJAM").id == "c-bttv"  # type: ignore[union-attr]  # bttv over 7tv
    assert timeline.lookup("other", 25, "catJAM").id == "g-ffz"  # type: ignore[union-attr]
    assert timeline.lookup("chan", -1, "catJAM") is None


# --- the emotes tag -------------------------------------------------------------------------------


def corpus_lines() -> list[str]:
    path = CORPUS if CORPUS.exists() else HERE_CORPUS
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_emote_positions_count_code_points_on_the_corpus() -> None:
    """On every corpus line with an astral character (an emoji: one code point, two UTF-16 units)
    before an emote of a known name, code point positions land on the name and UTF-16 ones do not.
    (Most other corpus lines with ranges that land nowhere are parser libraries' tests of broken
    tags: outside the text, reversed, across a space; those ranges are left out.)"""
    names = {"25": "Kappa", "483": "<3", "1902": "Keepo", "41": "Kreygasm"}
    checked = 0
    for line in corpus_lines():
        m = re.search(r"(?:^@|;)emotes=([^; ]+)", line)
        body = re.search(r" (?:PRIVMSG|USERNOTICE) #\S+ :(.*)$", line)
        if not m or not body or not any(ord(c) > 0xFFFF for c in body.group(1)):
            continue
        text, spans = shown_spans(m.group(1), body.group(1))
        utf16 = text.encode("utf-16-le")
        for a, b, emote_id in spans:
            if emote_id in names and any(ord(c) > 0xFFFF for c in text[:a]):
                assert text[a:b] == names[emote_id], (line, text[a:b])
                assert utf16[2 * a : 2 * b].decode("utf-16-le", "replace") != names[emote_id]
                checked += 1
        for a, b, _ in spans:
            assert 0 <= a < b <= len(text) and " " not in text[a:b]
    if corpus_lines():
        assert checked >= 3, checked


def test_emote_tag_hand_examples() -> None:
    text = "\U0001f449 <3 hi Kappa"  # an emoji (one code point, two UTF-16 units) before the emotes
    assert twitch_emote_spans("483:2-3/25:8-12", text) == [(2, 4, "483"), (8, 13, "25")]
    assert twitch_emote_spans("25:8-99,0-0/x:1-2/:3-4/25:a-b", text) == [(0, 1, "25")]  # outside, bad: left out
    assert twitch_emote_spans("25:0-4/26:2-3", "Kappa") == [(0, 5, "25")]  # overlap: the earlier kept
    assert twitch_emote_spans("25:0-5", "Kappa a") == []  # holds a space
    assert twitch_emote_spans("25:1-5", "\U0001f602Kappa\U0001f602") == [(1, 6, "25")]  # touching emoji
    assert shown_spans("25:0-4", "\x01ACTION Kappa hi\x01") == ("Kappa hi", [(0, 5, "25")])  # from the action
    assert shown_spans("25:7-11", "\x01ACTION Kappa hi\x01") == ("Kappa hi", [(0, 5, "25")])  # the corpus's reading
    assert twitch_emote_spans(True, "x") == [] and twitch_emote_spans("", "x") == []


@given(
    st.lists(st.sampled_from(["a", " ", "catJAM", "LUL", "\U0001f449", "Kappa"]), max_size=12).map("".join), st.data()
)
def test_split_message_gives_the_text_back(text: str, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, len(text)))
    spans = [(a, b, "25")] if b > a else []
    table = {"catJAM": Emote("7tv", "x", "catJAM"), "LUL": Emote("bttv", "y", "LUL")}
    pieces = split_message(text, spans, table)
    assert "".join(p for p, _ in pieces) == text
    for piece, what in pieces:
        if isinstance(what, Emote):
            assert piece == what.word
    assert [p for p, w in pieces if w == "25"] == ([text[a:b]] if spans else [])


def test_split_message_hand_example() -> None:
    table = {"catJAM": Emote("7tv", "x", "catJAM")}
    assert split_message("catJAM Kappa catJAMs catJAM", [(7, 12, "25")], table) == [
        ("catJAM", table["catJAM"]),
        (" ", None),
        ("Kappa", "25"),
        (" catJAMs ", None),
        ("catJAM", table["catJAM"]),
    ]


@given(st.lists(emote_snapshots(), max_size=10), st.integers(-5, 105), st.integers(-5, 105))
def test_the_table_is_steady_between_snapshots(snaps: list[Snapshot], t: int, u: int) -> None:
    """What the exports cache on: within `steady(t)` the snapshots in force do not change."""
    timeline = EmoteTimeline.of(snaps)
    since, until = timeline.steady("chan", t)
    assert since <= t < until
    if since <= u < until:
        assert timeline.snapshots_at("chan", u) == timeline.snapshots_at("chan", t)
    else:
        assert timeline.snapshots_at("chan", u) != timeline.snapshots_at("chan", t)


@given(any_json)
def test_any_badge_answer_parses_and_any_badge_file_is_read_or_refused(junk: Any) -> None:
    from media.badges import BadgeSnapshot, parse_badges

    badges, findings = parse_badges(junk)
    assert all(isinstance(f, str) for f in findings)
    url = "https://static-cdn.jtvnw.net/badges/v1/5527c58c-fb7d-422d-b71b-f309dcb85cc1/2"
    good = {"set_id": "vip", "versions": [junk, {"id": "1", "title": "VIP", "image_url_2x": url}]}
    badges, _ = parse_badges({"data": [junk, good]})
    assert ("vip", "1", "5527c58c-fb7d-422d-b71b-f309dcb85cc1") in [(b.set_id, b.version, b.uuid) for b in badges]
    try:
        BadgeSnapshot.from_json(junk, "b.json")
    except ValueError as e:
        assert str(e).startswith("b.json")


def test_a_huge_numeric_id_is_a_finding() -> None:
    doc = {"room": {"set": 1}, "sets": {"1": {"emoticons": [{"id": 10**5000, "name": "x"}, {"id": -1, "name": "y"}]}}}
    emotes, findings = PARSERS["ffz"](doc, "chan")
    assert emotes == [] and len(findings) == 2
