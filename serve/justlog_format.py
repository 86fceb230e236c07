"""Index rows as justlog/rustlog answer them: JSON (justlog's message), rustlog's basic JSON and
NDJSON, raw IRC lines and text (shared/spec/JUSTLOG_API.md sections 5 and 6). Pure.

Both frontend copies read one answer shape: `json` keeps justlog's semantics (`text` is the user's
part only, `systemText` beside it), `jsonBasic`/`ndjson` rustlog's (`text` is the "user-friendly"
text, a USERNOTICE's system message and the user's part together), and `tags` always holds every
IRC tag with `system-msg` for a USERNOTICE, so a resub shows right in both. Text lines are
rustlog's (zero-padded UTC dates, `login: ` before every message that has a login) ending in `\\n`.

One field of ours: a message a moderator removed (CLEARMSG, or a timeout or ban of its author
after it) carries `"removed": true` in the JSON forms; justlog has no way to say so, and a client
that does not know the field ignores it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from export.render import irc_line
from index.api import Message

# IRC command codes of justlog's `type` (go-twitch-irc's MessageType)
TYPE_CODES = {"PRIVMSG": 1, "CLEARCHAT": 2, "USERNOTICE": 4}
ACTION_PREFIX = "\x01ACTION "


SENT_TS_SLACK = 86400.0  # a `tmi-sent-ts` further than this from the archive's time is not believed
LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z, the last second a date can be written for


def message_time(message: Message) -> float:
    """The server's time of the message: `tmi-sent-ts` (milliseconds) when it has one within a day
    of the archive's `time`, else the start of its time range (the archive's `time`): a tag is
    whatever the sender wrote, and a wild one must not move the message (or break its page)."""
    sent = message.tags.get("tmi-sent-ts")
    if isinstance(sent, str) and sent.isascii() and sent.isdigit() and len(sent) <= 15:
        seconds = int(sent) / 1000
        if abs(seconds - message.time) <= SENT_TS_SLACK:
            return seconds
    return message.time


def _whole_second(seconds: float) -> int:
    """`seconds` as a whole second a date can be written for: clamped to 1970..9999, 0 when it is
    not a number (any stored time renders; the answer is already under way when it is formatted)."""
    if math.isnan(seconds):
        return 0
    return int(min(max(seconds, 0.0), float(LAST_SECOND)) // 1)


def rfc3339(seconds: float, *, millis: bool) -> str:
    """`2024-06-15T12:00:00Z`, with `.123` when `millis` and the milliseconds are not zero. Never
    raises: a time outside 1970..9999 is clamped to it."""
    whole = _whole_second(seconds)
    moment = datetime.fromtimestamp(whole, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    ms = round((seconds - whole) * 1000) if 0 <= seconds - whole < 1 else 0
    if millis and 0 < ms < 1000:
        text += f".{ms:03d}"
    return text + "Z"


def tags_of(message: Message) -> dict[str, str]:
    """Every tag as a string: values already unescaped in the archive; a bare key (`true`) is ""
    as go-twitch-irc reads it."""
    return {k: ("" if v is True else str(v)) for k, v in message.tags.items()}


def user_text(message: Message) -> str:
    """justlog's `text`: the user's words (a `/me` without its ACTION wrapper); a USERNOTICE's
    attached message or ""; "" for a CLEARCHAT."""
    if message.command == "CLEARCHAT":
        return ""
    text = message.text  # the trailing parameter, "" when there is none
    if text.startswith(ACTION_PREFIX):
        text = text[len(ACTION_PREFIX) :].removesuffix("\x01")
    return text


def _target(message: Message) -> str:
    """A CLEARCHAT's target login ("" for a clear of the whole chat)."""
    return message.text.lower() if message.command == "CLEARCHAT" else ""


def system_text(message: Message) -> str:
    """justlog's `systemText`: "" for a PRIVMSG, the `system-msg` tag of a USERNOTICE, and what a
    CLEARCHAT did."""
    if message.command == "USERNOTICE":
        value = message.tags.get("system-msg", "")
        return "" if value is True else str(value)
    if message.command == "CLEARCHAT":
        target = _target(message)
        if not target:
            return "Chat has been cleared"
        duration = message.tags.get("ban-duration")
        if duration is None or duration is True:
            return f"{target} has been banned"
        return f"{target} has been timed out for {duration} seconds"
    return ""


def friendly_text(message: Message) -> str:
    """rustlog's `text`: a USERNOTICE's system message and the user's part, joined by a space (or
    the one that is there); what a CLEARCHAT did; a PRIVMSG's words."""
    if message.command == "CLEARCHAT":
        return system_text(message)
    if message.command == "USERNOTICE":
        return " ".join(part for part in (system_text(message), user_text(message)) if part)
    return user_text(message)


def login_of(message: Message) -> str:
    """justlog's `username`: the author's login (a USERNOTICE's `login` tag), or for a CLEARCHAT
    its target's; "" when there is none."""
    if message.command == "CLEARCHAT":
        return _target(message)
    if message.command == "USERNOTICE":
        login = message.tags.get("login")
        if isinstance(login, str) and login:
            return login.lower()
    return (message.login or "").lower()


def display_name(message: Message) -> str:
    """The `display-name` tag; a CLEARCHAT's target login; else the login (rustlog's fallback,
    which both frontend copies are happy with)."""
    if message.command == "CLEARCHAT":
        return _target(message)
    value = message.tags.get("display-name")
    if isinstance(value, str) and value:
        return value
    return login_of(message)


def channel_of(message: Message) -> str:
    """The channel's login: the archive's channel folder, which is the IRC channel without `#`."""
    return message.channel


def justlog_json(message: Message) -> dict[str, Any]:
    """justlog's message object (`?json`)."""
    out: dict[str, Any] = {
        "text": user_text(message),
        "systemText": system_text(message),
        "username": login_of(message),
        "displayName": display_name(message),
        "channel": channel_of(message),
        "timestamp": rfc3339(message_time(message), millis=False),
        "id": message.msg_id,
        "type": TYPE_CODES.get(message.command, -1),
        "raw": irc_line(message.record),
        "tags": tags_of(message),
    }
    if message.removed:
        out["removed"] = True
    return out


def basic_json(message: Message) -> dict[str, Any]:
    """rustlog's basic message (`?jsonBasic`, `?ndjson`)."""
    out: dict[str, Any] = {
        "text": friendly_text(message),
        "displayName": display_name(message),
        "timestamp": rfc3339(message_time(message), millis=True),
        "id": message.msg_id,
        "tags": tags_of(message),
    }
    if message.removed:
        out["removed"] = True
    return out


def text_line(message: Message) -> str:
    """`[2024-06-15 12:00:00] #channel login: text`, or `#channel text` without a login."""
    when = datetime.fromtimestamp(_whole_second(message_time(message)), UTC).strftime("%Y-%m-%d %H:%M:%S")
    login = login_of(message)
    text = friendly_text(message)
    who = f"{login}: " if login else ""
    return f"[{when}] #{channel_of(message)} {who}{text}\n"


def raw_line(message: Message) -> str:
    """The IRC line the archive's record stands for (tags in sorted order), with `\\n`."""
    return irc_line(message.record) + "\n"


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8 (not `\\u` escapes: the answer says `charset=utf-8`); a lone surrogate
    that an archive can hold in text becomes `?` rather than bytes that are not UTF-8 (orjson
    refuses such a string; the stdlib then writes it)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


FORMATS: Mapping[str, str] = {
    "json": "application/json; charset=utf-8",
    "jsonBasic": "application/json; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "raw": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
}


def framing(fmt: str) -> tuple[bytes, bytes, bytes]:
    """(begin, separator, end) around the messages of an answer in `fmt`."""
    if fmt in ("json", "jsonBasic"):
        return b'{"messages":[', b",", b"]}"
    return b"", b"", b""


def render(fmt: str, message: Message) -> bytes:
    """One message of an answer in `fmt`, without framing."""
    if fmt == "json":
        return dumps(justlog_json(message))
    if fmt == "jsonBasic":
        return dumps(basic_json(message))
    if fmt == "ndjson":
        return dumps(basic_json(message)) + b"\r\n"
    if fmt == "raw":
        return raw_line(message).encode("utf-8", "replace")
    return text_line(message).encode("utf-8", "replace")
