"""Third-party emote sets (BetterTTV, FrankerFaceZ, 7TV) as data: the public APIs' JSON turned into
emotes, and "which image did the word W stand for at time T in channel C" as a pure function of
the snapshots taken.

Theory of operation
-------------------
A *snapshot* is what one source said at one moment about one scope: the global set, or one
channel's set. It holds emotes (provider, id, word, animated) and, once the images are fetched,
each image's name in the content-addressed store (its SHA-256 and format). Snapshots are never
edited; a later one supersedes an earlier one of the same (scope, provider) from its own time on.

`EmoteTimeline.at(channel, t)` is the table a chat client would have used at `t`: for each of the
six (scope, provider) pairs, the latest snapshot taken at or before `t` (none: that pair adds
nothing), merged by precedence. The precedence is Chatterino's documented emote order
(TwitchMessageBuilder "Emote order"): FrankerFaceZ channel, BetterTTV channel, 7TV channel, then
FrankerFaceZ global, BetterTTV global, 7TV global. So a channel's emote shadows a global one of the
same word, as every popular client does (a streamer adds a channel emote named like a global one
precisely to replace it); between providers of one scope Chatterino's order is the most used one we
could find documented. A Twitch emote (named by the message's `emotes` tag) covers its word before
any of these: Twitch said so for that very message.

Parsing the APIs' answers never raises: any JSON value goes in, the valid emotes come out with a
list of findings (one line per thing skipped, naming where in the document). Ids are checked
against a conservative pattern and words must be one non-space token, because both end up in URLs
and in the page; image URLs are *built* from the id and the configured CDN base, never taken from
the answer, so a hostile API cannot point us at an arbitrary host.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from media.layout import image_name_ok

PROVIDERS = ("ffz", "bttv", "7tv")  # precedence within a scope (Chatterino's emote order)
GLOBAL = ""  # the scope of the global sets; a channel's scope is its login
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_WORD_MAX = 100
MAX_EMOTES = 20_000  # per answer: far above any real set (7TV's largest hold 1,000), bounds the work


@dataclass(frozen=True)
class Emote:
    """One third-party emote: `word` is what chat types, `image` its image's name in the
    content-addressed store (`<sha256 hex>.<ext>`) once fetched (None: not fetched, or it failed)."""

    provider: str
    id: str
    word: str
    animated: bool = False
    image: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """What one provider said about one scope (GLOBAL or a channel login) at `time` (Unix seconds)."""

    provider: str
    scope: str
    time: float
    emotes: tuple[Emote, ...]
    channel_id: str = ""
    findings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "provider": self.provider,
            "scope": self.scope,
            "channel_id": self.channel_id,
            "time": self.time,
            "emotes": [{"id": e.id, "word": e.word, "animated": e.animated, "image": e.image} for e in self.emotes],
            "findings": list(self.findings),
        }

    @classmethod
    def from_json(cls, doc: object, where: str = "snapshot") -> Snapshot:
        """A snapshot from its file's JSON; raises ValueError (naming `where`) on a document that is
        not one. Emotes that are not valid are dropped into `findings`."""
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise ValueError(f"{where}: not a version 1 snapshot")
        provider, scope, time = doc.get("provider"), doc.get("scope"), doc.get("time")
        if provider not in PROVIDERS or not isinstance(scope, str) or not _number(time):
            raise ValueError(f"{where}: provider, scope or time missing or wrong")
        findings = [f for f in _list(doc.get("findings")) if isinstance(f, str)]
        emotes = []
        for i, item in enumerate(_list(doc.get("emotes"))[:MAX_EMOTES]):
            image = item.get("image") if isinstance(item, dict) else None
            emote = _emote(provider, item, "word", f"{where}: emotes[{i}]", findings)
            if emote is not None:
                ok = isinstance(image, str) and image_name_ok(image)
                emotes.append(Emote(provider, emote.id, emote.word, emote.animated, image if ok else None))
        channel_id = doc.get("channel_id")
        return cls(
            provider,
            scope,
            float(time),  # type: ignore[arg-type]  # _number checked it
            tuple(emotes),
            channel_id if isinstance(channel_id, str) else "",
            tuple(findings),
        )


def _number(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e12
    )  # NaN fails the comparison


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _emote(provider: str, item: object, word_key: str, where: str, findings: list[str]) -> Emote | None:
    """One emote from an object with `id`, a word under `word_key` and an optional `animated`."""
    if not isinstance(item, dict):
        findings.append(f"{where}: not an object")
        return None
    raw_id, word = item.get("id"), item.get(word_key)
    numeric = isinstance(raw_id, int) and not isinstance(raw_id, bool) and 0 <= raw_id < 10**18
    emote_id = str(raw_id) if numeric else raw_id
    if not isinstance(emote_id, str) or not _ID.match(emote_id):
        findings.append(f"{where}: id missing or not a plain id")
        return None
    if not isinstance(word, str) or not word or len(word) > _WORD_MAX or any(c.isspace() for c in word):
        findings.append(f"{where}: word missing or not one token")
        return None
    animated = item.get("animated") is True or item.get("imageType") == "gif"
    return Emote(provider, emote_id, word, animated)


# -- the providers' answers ---------------------------------------------------------------------
# BetterTTV: GET {api}/3/cached/emotes/global -> [{id, code, imageType, animated, userId}, ...]
#            GET {api}/3/cached/users/twitch/<channel id> -> {channelEmotes: [...], sharedEmotes: [...]}
# FrankerFaceZ: GET {api}/v1/set/global -> {default_sets: [3, ...], sets: {"3": {emoticons: [...]}}}
#               GET {api}/v1/room/id/<channel id> -> {room: {set: N}, sets: {"N": {emoticons: [...]}}}
#               an emoticon is {id: int, name, urls: {"1", "2", "4"}, animated: {...} when animated}
# 7TV: GET {api}/v3/emote-sets/global -> {id, name, emotes: [{id, name, data: {animated, ...}}]}
#      GET {api}/v3/users/twitch/<channel id> -> {emote_set: {emotes: [...same...]}, ...}


def parse_bttv(doc: object, scope: str) -> tuple[list[Emote], list[str]]:
    findings: list[str] = []
    if scope == GLOBAL:
        groups = [("", doc)]
    elif isinstance(doc, dict):
        groups = [("channelEmotes", doc.get("channelEmotes")), ("sharedEmotes", doc.get("sharedEmotes"))]
    else:
        return [], ["bttv: the answer is not an object"]
    emotes = []
    for key, items in groups:
        if not isinstance(items, list):
            findings.append(f"bttv: {key or 'the answer'} is not a list")
            continue
        for i, item in enumerate(items[:MAX_EMOTES]):
            emote = _emote("bttv", item, "code", f"bttv: {key}[{i}]", findings)
            if emote is not None:
                emotes.append(emote)
    return emotes, findings


def parse_ffz(doc: object, scope: str) -> tuple[list[Emote], list[str]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("sets"), dict):
        return [], ["ffz: the answer has no `sets` object"]
    sets: dict[str, Any] = doc["sets"]
    if scope == GLOBAL:
        wanted = [str(s) for s in _list(doc.get("default_sets")) if isinstance(s, int | str)]
        if not wanted:  # an answer without default_sets: every set it holds is global
            wanted = list(sets)
    else:
        room = doc.get("room")
        one = room.get("set") if isinstance(room, dict) else None
        wanted = [str(one)] if isinstance(one, int | str) else list(sets)
    findings: list[str] = []
    emotes = []
    for name in wanted[:100]:
        body = sets.get(name)
        items = body.get("emoticons") if isinstance(body, dict) else None
        if not isinstance(items, list):
            findings.append(f"ffz: sets[{name!r}] has no emoticons list")
            continue
        for i, item in enumerate(items[:MAX_EMOTES]):
            emote = _emote("ffz", item, "name", f"ffz: sets[{name!r}].emoticons[{i}]", findings)
            if emote is not None:
                animated = isinstance(item.get("animated"), dict) and bool(item["animated"])
                emotes.append(Emote("ffz", emote.id, emote.word, animated))
    return emotes, findings


def parse_7tv(doc: object, scope: str) -> tuple[list[Emote], list[str]]:
    body = doc if scope == GLOBAL else (doc.get("emote_set") if isinstance(doc, dict) else None)
    if not isinstance(body, dict) or not isinstance(body.get("emotes"), list):
        return [], ["7tv: the answer has no emote set with an `emotes` list"]
    findings: list[str] = []
    emotes = []
    for i, item in enumerate(body["emotes"][:MAX_EMOTES]):
        emote = _emote("7tv", item, "name", f"7tv: emotes[{i}]", findings)
        if emote is not None:
            data = item.get("data")
            animated = isinstance(data, dict) and data.get("animated") is True
            emotes.append(Emote("7tv", emote.id, emote.word, animated))
    return emotes, findings


PARSERS = {"bttv": parse_bttv, "ffz": parse_ffz, "7tv": parse_7tv}


@dataclass(frozen=True)
class Source:
    """Where one provider lives: its API and its CDN (both pointable at a mirror)."""

    provider: str
    api: str
    cdn: str

    def api_url(self, channel_id: str | None) -> str:
        """The set's address: the global set, or the channel's (by Twitch user id)."""
        base = self.api.rstrip("/")
        if channel_id is not None and not channel_id.isdigit():
            raise ValueError(f"a Twitch channel id is digits, not {channel_id!r}")
        if self.provider == "bttv":
            return f"{base}/3/cached/users/twitch/{channel_id}" if channel_id else f"{base}/3/cached/emotes/global"
        if self.provider == "ffz":
            return f"{base}/v1/room/id/{channel_id}" if channel_id else f"{base}/v1/set/global"
        return f"{base}/v3/users/twitch/{channel_id}" if channel_id else f"{base}/v3/emote-sets/global"

    def image_url(self, emote: Emote) -> str:
        """The 2x image (what a HiDPI chat line shows at 28 px; TwitchDownloader's default scale):
        GIF or PNG from BetterTTV, animated WebP or PNG from FrankerFaceZ, WebP from 7TV."""
        base = self.cdn.rstrip("/")
        if self.provider == "bttv":
            return f"{base}/emote/{emote.id}/2x"
        if self.provider == "ffz":
            return f"{base}/emote/{emote.id}/animated/2" if emote.animated else f"{base}/emote/{emote.id}/2"
        return f"{base}/emote/{emote.id}/2x.webp"


DEFAULT_SOURCES = {
    "bttv": Source("bttv", "https://api.betterttv.net", "https://cdn.betterttv.net"),
    "ffz": Source("ffz", "https://api.frankerfacez.com", "https://cdn.frankerfacez.com"),
    "7tv": Source("7tv", "https://7tv.io", "https://cdn.7tv.app"),
}


def sources(mirrors: Mapping[str, str | None] | None = None) -> dict[str, Source]:
    """The sources, each provider given a mirror base URL (serving both its API and its CDN paths)
    where `mirrors` names one."""
    out = dict(DEFAULT_SOURCES)
    for provider, base in (mirrors or {}).items():
        if base:
            out[provider] = Source(provider, base, base)
    return out


# -- resolution ---------------------------------------------------------------------------------


@dataclass
class EmoteTimeline:
    """Every snapshot of the scopes one export needs, ordered by time per (scope, provider)."""

    _times: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _snaps: dict[tuple[str, str], list[Snapshot]] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshots: Iterable[Snapshot]) -> EmoteTimeline:
        timeline = cls()
        for snap in sorted(snapshots, key=lambda s: s.time):
            key = (snap.scope, snap.provider)
            timeline._times.setdefault(key, []).append(snap.time)
            timeline._snaps.setdefault(key, []).append(snap)
        return timeline

    def in_force(self, scope: str, provider: str, t: float) -> Snapshot | None:
        """The latest snapshot of (scope, provider) taken at or before `t` (of equal times, the
        last one given)."""
        times = self._times.get((scope, provider))
        if not times:
            return None
        i = bisect.bisect_right(times, t)
        return self._snaps[(scope, provider)][i - 1] if i else None

    def steady(self, channel: str, t: float) -> tuple[float, float]:
        """[since, until): around `t`, the times over which `snapshots_at(channel, ...)` stays the
        same (no snapshot of the channel or the globals is taken in between)."""
        since, until = float("-inf"), float("inf")
        for scope in (channel, GLOBAL):
            for provider in PROVIDERS:
                times = self._times.get((scope, provider))
                if times:
                    i = bisect.bisect_right(times, t)
                    if i:
                        since = max(since, times[i - 1])
                    if i < len(times):
                        until = min(until, times[i])
        return since, until

    def snapshots_at(self, channel: str, t: float) -> list[Snapshot]:
        """The snapshots in force for `channel` at `t`, highest precedence first."""
        found = []
        for scope in (channel, GLOBAL):
            for provider in PROVIDERS:
                snap = self.in_force(scope, provider, t)
                if snap is not None:
                    found.append(snap)
        return found

    def at(self, channel: str, t: float) -> dict[str, Emote]:
        """word -> emote for `channel` at `t` (see the module docstring for the precedence)."""
        table: dict[str, Emote] = {}
        for snap in reversed(self.snapshots_at(channel, t)):
            for emote in snap.emotes:
                table[emote.word] = emote  # higher precedence comes later and wins
        return table

    def lookup(self, channel: str, t: float, word: str) -> Emote | None:
        for snap in self.snapshots_at(channel, t):
            for emote in snap.emotes:  # a set naming a word twice: its first emote, as clients keep
                if emote.word == word:
                    return emote
        return None


def twitch_emote_spans(tag: object, text: str) -> list[tuple[int, int, str]]:
    """(start, end exclusive, emote id) of each Twitch emote the `emotes` tag names in `text`, in
    order, positions in code points (as Twitch counts them). Ranges that are malformed, outside
    the text, holding a space (an emote never does) or overlapping an earlier one are left out:
    the text stays words there."""
    if not isinstance(tag, str) or not tag:
        return []
    spans = []
    for part in tag.split("/")[:1000]:
        emote_id, sep, ranges = part.partition(":")
        if not sep or not _ID.match(emote_id):
            continue
        for r in ranges.split(",")[:1000]:
            a, dash, b = r.partition("-")
            if not (dash and a.isdigit() and b.isdigit() and len(a) < 7 and len(b) < 7):
                continue
            start, end = int(a), int(b) + 1
            if start < end <= len(text) and _one_word(text, start, end):
                spans.append((start, end, emote_id))
    spans.sort()
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def _one_word(text: str, start: int, end: int) -> bool:
    """No space inside: Twitch marks an emote's own letters (it may touch punctuation or an emoji)."""
    return not any(c.isspace() for c in text[start:end])


def action_text(text: str) -> str | None:
    """The action of a `/me` line (`\x01ACTION text\x01`), as export.fields.me_action shows it."""
    if text.startswith("\x01ACTION ") or text == "\x01ACTION":
        return text[len("\x01ACTION") :].strip().rstrip("\x01").strip()
    return None


def shown_spans(tag: object, text: str) -> tuple[str, list[tuple[int, int, str]]]:
    """The text a reader sees (the action of a `/me`) and the Twitch emote spans in it.

    For a `/me`, Twitch counts from the action text (Chatterino reads it so); one corpus line (a
    USERNOTICE) counts from after the leading \x01 instead. Both readings are tried and the one
    that lands more emotes is kept, so either way the emotes show."""
    action = action_text(text)
    if action is None:
        return text, twitch_emote_spans(tag, text)
    best: list[tuple[int, int, str]] = []
    for counted in (text[len("\x01ACTION ") :].rstrip("\x01"), text[1:].rstrip("\x01")):
        at = counted.find(action)
        if at < 0:
            continue
        spans = [
            (a - at, b - at, i) for a, b, i in twitch_emote_spans(tag, counted) if at <= a and b - at <= len(action)
        ]
        if len(spans) > len(best):
            best = spans
    return action, best


Piece = tuple[str, str | Emote | None]  # (text, None) | (text, twitch emote id) | (text, Emote)


def split_message(text: str, spans: Sequence[tuple[int, int, str]], table: Mapping[str, Emote]) -> list[Piece]:
    """The message cut into plain text, Twitch emotes (by the tag's spans) and third-party emotes
    (whole space-separated words found in `table`), in order; joining the texts gives `text` back."""
    pieces: list[Piece] = []
    at = 0
    for start, end, emote_id in [*spans, (len(text), len(text), "")]:
        gap = text[at:start]
        if gap:
            for token in re.split(r"( )", gap):
                if token in table:
                    pieces.append((token, table[token]))
                elif token:
                    if pieces and pieces[-1][1] is None:
                        pieces[-1] = (pieces[-1][0] + token, None)
                    else:
                        pieces.append((token, None))
        if emote_id:
            pieces.append((text[start:end], emote_id))
        at = end
    return pieces
