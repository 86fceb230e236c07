"""A model of how TwitchDownloader reads a chat JSON file, to test our `twitchdownloader` export
against the real reader's rules rather than against our own writer.

TwitchDownloaderCore's `ChatJson.DeserializeAsync` parses the file into a JsonDocument, takes the
root properties `FileInfo`, `streamer`, `video`, `comments` and `embeddedData` by exact name
(`TryGetProperty`), and hands each to System.Text.Json's `Deserialize<T>` with
`NumberHandling = AllowReadingFromString` and otherwise default options. The classes are
TwitchDownloaderCore/TwitchObjects/ChatRoot.cs, ChatRootInfo.cs and ChatBadge.cs (ChatBadgeData).
System.Text.Json's default rules, as modelled here:

- property names match exactly (case-sensitive); unknown properties are ignored; a missing one
  keeps its default;
- `string`: a JSON string or null (a number or a bool is an error);
- `int` / `uint` / `double`: a JSON number (or, with AllowReadingFromString, a string holding
  one) that fits the type: an int takes no fraction and stays in 32 bits; null is an error;
- `bool`: true or false only; `DateTime`: a string in ISO 8601 (`YYYY-MM-DDThh:mm:ss[.f...][Z|+hh:mm]`);
  null is an error for both (they are value types);
- `byte[]`: base64 in a string, or null; `List<T>`: an array or null; `Dictionary<K, V>`: an object
  (K = int: every key must parse as one) or null; a class: an object or null.

`embeddedData` is read as `EmbeddedData` (badge versions as `ChatBadgeData` objects) when
`FileInfo.Version` is above 1.2.2, else as the legacy shape (badge versions as bare base64).
`read_chat_root` raises `ReaderError` where the real reader would throw, and returns plain data.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any


class ReaderError(Exception):
    pass


DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,16})?)?)?(Z|[+-]\d{2}:\d{2})?\Z")
NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?\Z")

# type grammar: "string", "int", "uint", "double", "bool", "DateTime", "bytes",
# ("list", T), ("dict", K, V), or a class name in CLASSES
CLASSES: dict[str, dict[str, Any]] = {
    "ChatRootInfo": {"Version": "ChatRootVersion", "CreatedAt": "DateTime", "UpdatedAt": "DateTime"},
    "ChatRootVersion": {"Major": "uint", "Minor": "uint", "Patch": "uint"},
    "Streamer": {"name": "string", "login": "string", "id": "int"},
    "Commenter": {
        "display_name": "string",
        "_id": "string",
        "name": "string",
        "bio": "string",
        "created_at": "DateTime",
        "updated_at": "DateTime",
        "logo": "string",
        "pronouns": "string",
    },
    "Emoticon": {"emoticon_id": "string"},
    "Fragment": {"text": "string", "emoticon": "Emoticon"},
    "UserBadge": {"_id": "string", "version": "string"},
    "Emoticon2": {"_id": "string", "begin": "int", "end": "int"},
    "UserNoticeParams": {"msg_id": "string"},
    "Message": {
        "body": "string",
        "bits_spent": "int",
        "fragments": ("list", "Fragment"),
        "user_badges": ("list", "UserBadge"),
        "user_color": "string",
        "user_notice_params": "UserNoticeParams",
        "emoticons": ("list", "Emoticon2"),
    },
    "Comment": {
        "_id": "string",
        "created_at": "DateTime",
        "channel_id": "string",
        "content_type": "string",
        "content_id": "string",
        "content_offset_seconds": "double",
        "commenter": "Commenter",
        "message": "Message",
    },
    "VideoChapter": {
        "id": "string",
        "startMilliseconds": "int",
        "lengthMilliseconds": "int",
        "type": "string",
        "description": "string",
        "subDescription": "string",
        "thumbnailUrl": "string",
        "gameId": "string",
        "gameDisplayName": "string",
        "gameBoxArtUrl": "string",
    },
    "Video": {
        "title": "string",
        "description": "string",
        "id": "string",
        "created_at": "DateTime",
        "start": "double",
        "end": "double",
        "length": "double",
        "viewCount": "int",
        "game": "string",
        "chapters": ("list", "VideoChapter"),
        "duration": "string",
        "user_id": "string",
        "user_name": "string",
    },
    "EmbedEmoteData": {
        "id": "string",
        "imageScale": "int",
        "data": "bytes",
        "name": "string",
        "url": "string",
        "width": "int",
        "height": "int",
        "isZeroWidth": "bool?",
    },
    "ChatBadgeData": {"title": "string", "description": "string", "bytes": "bytes", "url": "string"},
    "EmbedChatBadge": {"name": "string", "versions": ("dict", "string", "ChatBadgeData")},
    "LegacyEmbedChatBadge": {"name": "string", "versions": ("dict", "string", "bytes")},
    "EmbedCheerEmote": {"prefix": "string", "tierList": ("dict", "int", "EmbedEmoteData")},
    "EmbeddedData": {
        "thirdParty": ("list", "EmbedEmoteData"),
        "firstParty": ("list", "EmbedEmoteData"),
        "twitchBadges": ("list", "EmbedChatBadge"),
        "twitchBits": ("list", "EmbedCheerEmote"),
    },
    "LegacyEmbeddedData": {
        "thirdParty": ("list", "EmbedEmoteData"),
        "firstParty": ("list", "EmbedEmoteData"),
        "twitchBadges": ("list", "LegacyEmbedChatBadge"),
        "twitchBits": ("list", "EmbedCheerEmote"),
    },
}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ReaderError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and NUMBER.match(value):  # AllowReadingFromString
        return float(value) if any(c in value for c in ".eE") else int(value)
    raise ReaderError(f"{where}: expected a number, got {value!r}")


def read(value: Any, kind: Any, where: str) -> Any:
    if kind == "string":
        if value is None or isinstance(value, str):
            return value
        raise ReaderError(f"{where}: expected a string, got {value!r}")
    if kind in ("int", "uint"):
        n = _number(value, where)
        low = 0 if kind == "uint" else -(2**31)
        high = 2**32 - 1 if kind == "uint" else 2**31 - 1
        if isinstance(n, float) or not low <= n <= high:
            raise ReaderError(f"{where}: not an {kind}: {value!r}")
        return n
    if kind == "double":
        return float(_number(value, where))
    if kind in ("bool", "bool?"):
        if isinstance(value, bool) or (kind == "bool?" and value is None):
            return value
        raise ReaderError(f"{where}: expected true or false, got {value!r}")
    if kind == "DateTime":
        if isinstance(value, str) and DATE.match(value):
            return value
        raise ReaderError(f"{where}: not a DateTime: {value!r}")
    if kind == "bytes":
        if value is None:
            return None
        if not isinstance(value, str):
            raise ReaderError(f"{where}: byte[] must be a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ReaderError(f"{where}: not base64") from None
    if isinstance(kind, tuple) and kind[0] == "list":
        if value is None:
            return None
        if not isinstance(value, list):
            raise ReaderError(f"{where}: expected an array")
        return [read(v, kind[1], f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(kind, tuple) and kind[0] == "dict":
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ReaderError(f"{where}: expected an object")
        if kind[1] == "int" and not all(re.fullmatch(r"-?\d+", k) for k in value):
            raise ReaderError(f"{where}: a key is not an int")
        return {k: read(v, kind[2], f"{where}.{k}") for k, v in value.items()}
    if kind in CLASSES:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ReaderError(f"{where}: expected an object for {kind}")
        fields = CLASSES[kind]
        return {name: read(value[name], t, f"{where}.{name}") for name, t in fields.items() if name in value}
    raise AssertionError(f"unknown type {kind!r}")


def read_chat_root(doc: Any) -> dict[str, Any]:
    """The file as TwitchDownloader reads it (see the module docstring); ReaderError where it throws."""
    if not isinstance(doc, dict):
        raise ReaderError("not a chat format (the root is not an object)")
    out: dict[str, Any] = {}
    info = read(doc.get("FileInfo"), "ChatRootInfo", "FileInfo") if "FileInfo" in doc else None
    out["FileInfo"] = info
    for name, kind in (("streamer", "Streamer"), ("video", "Video"), ("comments", ("list", "Comment"))):
        if name in doc:
            out[name] = read(doc[name], kind, name)
    if "embeddedData" in doc:
        version = (info or {}).get("Version") or {"Major": 1, "Minor": 0, "Patch": 0}
        v = (version.get("Major", 1), version.get("Minor", 0), version.get("Patch", 0))
        out["embeddedData"] = read(
            doc["embeddedData"], "EmbeddedData" if v > (1, 2, 2) else "LegacyEmbeddedData", "embeddedData"
        )
    return out
