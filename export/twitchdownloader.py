"""`--format twitchdownloader`: TwitchDownloader's chat JSON, so its renderer (chat to video) and
its HTML export read our archive, with the archive's emotes and badges embedded.

The shape is TwitchDownloaderCore's `ChatRoot` as its `ChatJson.DeserializeAsync` reads it
(System.Text.Json, property names matched exactly, a null or a wrong JSON type for a number, a
bool or a date is an error there, so every such field is always written with its type):

    {"FileInfo": {"Version": {"Major": 1, "Minor": 3, "Patch": 1}, "CreatedAt", "UpdatedAt"},
     "video": {"title", "id", "created_at", "start", "end", "length", ...},
     "comments": [{"_id", "created_at", "channel_id", "content_type", "content_id",
                   "content_offset_seconds", "commenter": {...}, "message": {...}}, ...],
     "streamer": {"name", "login", "id" (an int)},
     "embeddedData": {"thirdParty": [...], "firstParty": [...], "twitchBadges": [...], "twitchBits": []}}

- `video` is the window: `created_at` its start, `start` 0 and `end`/`length` its length in
  seconds; `content_offset_seconds` counts from the window start. `content_id` is empty: an
  archive is not a VOD.
- A comment is a PRIVMSG or a USERNOTICE (a sub message: `user_notice_params.msg_id`). Removed
  messages stay, as they stay in the archive (TwitchDownloader has no removal).
- `message.body` is the text a reader sees (a `/me`'s action); `fragments` cut it into text and
  Twitch emotes (`emoticon.emoticon_id`), which is how the renderer finds first-party emotes (only
  those whose image is embedded: for another, the renderer would go online, so it stays text);
  `emoticons` repeats their positions (`begin`/`end`, code points, end inclusive, as the tag).
  Third-party emotes are found by the renderer by word, in `embeddedData.thirdParty`.
- `embeddedData` holds each image once, base64 (System.Text.Json's `byte[]`): `firstParty` the
  Twitch emotes by id, `thirdParty` the third-party emotes by word (a word that stood for two
  images in the window keeps the first: TwitchDownloader has one image per word), `twitchBadges`
  each badge set with its versions (`title`, `bytes`). `imageScale` is 2: the 2x images.
- The file's `CreatedAt`/`UpdatedAt` are the window's start, so the same window exports the same
  bytes. `streamer.id` is the channel's Twitch id from the records' `room-id` (0 if none says).
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from export.emotes import ChatImages
from media.sniff import image_kind

VERSION = {"Major": 1, "Minor": 3, "Patch": 1}  # embedded badges as ChatBadgeData (after 1.2.2)
_INT32 = 2**31 - 1
NO_DATE = "0001-01-01T00:00:00"  # DateTime.MinValue: an account's dates are not in chat


def iso(t: float) -> str:
    """A time as System.Text.Json reads a DateTime: ISO 8601, milliseconds, UTC."""
    try:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    except (OverflowError, OSError, ValueError):
        return NO_DATE


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG, GIF or WebP header (0, 0 when not read)."""
    kind = image_kind(data)
    try:
        if kind == "png":
            return struct.unpack(">II", data[16:24])
        if kind == "gif":
            return struct.unpack("<HH", data[6:10])
        if kind == "webp":
            chunk = data[12:16]
            if chunk == b"VP8X":
                w, h = int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
                return w, h
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
    except struct.error:
        pass
    return 0, 0


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object, default: int = 0) -> int:
    return int(value) if isinstance(value, str) and value.isdigit() and int(value) <= _INT32 else default


def _badges(tag: str) -> list[dict[str, str]]:
    out = []
    for badge in tag.split(",")[:50] if tag else ():
        set_id, _, version = badge.partition("/")
        if set_id:
            out.append({"_id": set_id, "version": version})
    return out


def _emote_data(emote_id: str, word: str, found: tuple[str, int, int]) -> dict[str, Any]:
    """An `EmbedEmoteData`: the emote's id and word, its image (base64, width, height) at scale 2."""
    data, width, height = found
    return {"id": emote_id, "imageScale": 2, "data": data, "name": word, "width": width, "height": height}


class TwitchDownloaderRenderer:
    """The file, streamed: `begin()`, `add(record)` per record (time order), `end()`."""

    def __init__(self, start: float, end: float, title: str, channel: str, images: ChatImages | None = None) -> None:
        self.start = start
        self.end_time = end
        self.title = title
        self.channel = channel.lstrip("#").lower()
        self.images = images
        self.room_id = ""
        self._first = True
        self._first_party: dict[str, dict[str, Any]] = {}
        self._third_party: dict[str, dict[str, Any]] = {}
        self._badges: dict[str, dict[str, dict[str, Any]]] = {}

    def begin(self) -> str:
        length = max(0.0, self.end_time - self.start)
        head = {
            "FileInfo": {"Version": VERSION, "CreatedAt": iso(self.start), "UpdatedAt": iso(self.start)},
            "video": {
                "title": self.title,
                "description": None,
                "id": None,
                "created_at": iso(self.start),
                "start": 0.0,
                "end": length,
                "length": length,
                "viewCount": 0,
                "game": None,
                "chapters": [],
            },
        }
        return orjson.dumps(head).decode()[:-1] + ',"comments":['

    def add(self, record: Mapping[str, Any]) -> str:
        command = record.get("command")
        if command not in ("PRIVMSG", "USERNOTICE"):
            return ""
        try:
            t = float(record["time"])
        except (KeyError, TypeError, ValueError):
            return ""
        if not math.isfinite(t):
            return ""
        comment = self.comment(record, t)
        sep = "\n" if self._first else ",\n"
        self._first = False
        try:
            return sep + orjson.dumps(comment).decode()
        except TypeError:  # a lone surrogate in chat: the standard library escapes it
            import json  # noqa: PLC0415

            return sep + json.dumps(comment, separators=(",", ":"))

    def comment(self, record: Mapping[str, Any], t: float) -> dict[str, Any]:
        raw_tags = record.get("tags")
        tags: Mapping[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}
        login = _str(record.get("user")) or _str(tags.get("login"))
        room = _str(tags.get("room-id"))
        if room.isdigit() and not self.room_id:
            self.room_id = room
        if self.images is not None:
            shown, spans = self.images.pieces(record)
        else:
            params = record.get("params") or []
            shown, spans = (_str(params[1]) if len(params) > 1 else ""), []
        fragments: list[dict[str, Any]] = []
        emoticons = []
        at = 0
        for start, end, key in spans:
            if self.images is None or self.images.image(key) is None:
                continue  # not on hand: the word stays text (the renderer would go online for it)
            kind, _, name = key.partition(":")
            if kind == "s":
                self._embed_third_party(shown[start:end], name)
                continue  # found by word by the renderer: stays in the text fragment
            if start > at:
                fragments.append({"text": shown[at:start], "emoticon": None})
            fragments.append({"text": shown[start:end], "emoticon": {"emoticon_id": name}})
            emoticons.append({"_id": name, "begin": start, "end": end - 1})
            self._embed_first_party(name, shown[start:end])
            at = end
        if at < len(shown) or not fragments:
            fragments.append({"text": shown[at:], "emoticon": None})
        badges = _badges(_str(tags.get("badges")))
        for badge in badges:
            self._embed_badge(badge["_id"], badge["version"], t)
        message: dict[str, Any] = {
            "body": shown,
            "bits_spent": _int(tags.get("bits")),
            "fragments": fragments,
            "user_badges": badges,
            "user_color": _str(tags.get("color")) or None,
            "emoticons": emoticons,
        }
        if record.get("command") == "USERNOTICE":
            message["user_notice_params"] = {"msg_id": _str(tags.get("msg-id")) or None}
        msg_id = _str(tags.get("id")) or f"{self.channel}-{t:.3f}-{login}"
        return {
            "_id": msg_id,
            "created_at": iso(t),
            "channel_id": room,
            "content_type": "video",
            "content_id": "",
            "content_offset_seconds": round(max(0.0, t - self.start), 3),
            "commenter": {
                "display_name": _str(tags.get("display-name")) or login,
                "_id": _str(tags.get("user-id")),  # "" rather than null: a renderer may read it
                "name": login,
                "bio": None,
                "created_at": NO_DATE,
                "updated_at": NO_DATE,
                "logo": None,
            },
            "message": message,
        }

    def _embed(self, key: str) -> tuple[str, int, int] | None:
        data = self.images.image(key) if self.images is not None else None
        if data is None:
            return None
        width, height = image_size(data)
        return base64.b64encode(data).decode(), width, height

    def _embed_first_party(self, emote_id: str, word: str) -> None:
        if emote_id in self._first_party:
            return
        found = self._embed(f"t:{emote_id}")
        if found is not None:
            self._first_party[emote_id] = _emote_data(emote_id, word, found)

    def _embed_third_party(self, word: str, name: str) -> None:
        if word in self._third_party:
            return
        found = self._embed(f"s:{name}")
        if found is not None:
            self._third_party[word] = _emote_data(name.partition(".")[0], word, found)

    def _embed_badge(self, set_id: str, version: str, t: float) -> None:
        versions = self._badges.setdefault(set_id, {})
        if version in versions or self.images is None or len(self._badges) > 1000:
            return
        key = self.images.badge_key(set_id, version, t)
        found = self._embed(key) if key else None
        if found is not None:
            badge = self.images.badges.at(self.images.channel, t).get((set_id, version))
            versions[version] = {"title": badge.title if badge else "", "description": "", "bytes": found[0]}

    def end(self) -> str:
        streamer = {"name": self.channel, "login": self.channel, "id": _int(self.room_id)}
        embedded = {
            "thirdParty": list(self._third_party.values()),
            "firstParty": list(self._first_party.values()),
            "twitchBadges": [{"name": s, "versions": v} for s, v in self._badges.items() if v],
            "twitchBits": [],
        }
        tail = {"streamer": streamer, "embeddedData": embedded}
        return ("]," if self._first else "\n],") + orjson.dumps(tail).decode()[1:]
