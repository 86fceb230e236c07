"""What a transcript shows of a record's fields: who sent it, its tags, a `/me` action, and text
made printable. Every export format (text, irc, ass, html) reads a record through these, so a
sender or an action looks the same in each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: object) -> str:
    """Printable text for a transcript: controls escaped, tabs kept, anything not a string shown."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else " ", text)


def tag_of(record: Mapping[str, Any], key: str) -> str | None:
    """A tag's value when it is a non-empty string, else None."""
    tags = record.get("tags")
    if not isinstance(tags, dict):
        return None
    value = tags.get(key)
    return value if isinstance(value, str) and value != "" else None


def me_action(text: str) -> str | None:
    """The action of a `/me` message (CTCP `\\x01ACTION text\\x01`), None for other text."""
    if text.startswith("\x01ACTION ") or text == "\x01ACTION":
        return text[len("\x01ACTION") :].strip().rstrip("\x01").strip()
    return None


def display_name(record: Mapping[str, Any]) -> str:
    """Who sent it, as chat shows it: the display name, with the login when they differ beyond case
    (localised names); else the nick; else the server."""
    # USERNOTICE comes from the server (sender tmi.twitch.tv); the user it is about is `login`
    login = record.get("user") or tag_of(record, "login")
    shown = tag_of(record, "display-name")
    if login is None:  # a server line (USERSTATE): its display name, else the server's name
        return printable(shown or record.get("sender") or "?")
    if shown is None:
        return printable(login)
    if shown.lower() == str(login).lower():
        return printable(shown)
    return f"{printable(shown)} ({printable(login)})"
