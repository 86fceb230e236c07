"""Channel names: validated and normalised once, at start.

A channel name becomes a JOIN argument, a metrics label and (in the replay) a folder name, so only
plain names pass: letters, digits and `_` for Twitch (logins are at most 25 characters), plus `-`
and `.` (not first) for generic IRCv3 servers. A leading `#` is optional; names are lowercased
because both Twitch and IRC treat channel names case-insensitively, and the archive must not split
one channel into two folders by case. Anything else is refused with a message that says why,
before any connection is made.
"""

from __future__ import annotations

import re

from formats.rawcodec import DIALECT_TWITCH
from recorder.errors import UsageError

_TWITCH_RE = re.compile(r"[a-z0-9_]{1,25}")
_IRCV3_RE = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,49}")


def normalise_channel(name: str, dialect: str = DIALECT_TWITCH) -> str:
    """The bare lowercase channel name (no `#`), or UsageError if `name` is not a plain channel."""
    bare = name[1:] if name.startswith("#") else name
    # ASCII is checked before lowercasing: "\u212a".lower() is a plain "k", a confusable we refuse.
    lowered = bare.lower() if bare.isascii() else ""
    pattern = _TWITCH_RE if dialect == DIALECT_TWITCH else _IRCV3_RE
    if not pattern.fullmatch(lowered):
        allowed = (
            "1-25 letters, digits or '_'"
            if dialect == DIALECT_TWITCH
            else "1-50 letters, digits, '_', '-' or '.', not starting with '-' or '.'"
        )
        raise UsageError(f"{name!r} is not a plain channel name ({allowed}, optionally after '#')")
    return lowered


def normalise_channels(names: list[str], dialect: str = DIALECT_TWITCH) -> list[str]:
    """Every name normalised, duplicates dropped (first one wins), order kept. Refuses an empty list."""
    if not names:
        raise UsageError("no channel given")
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(normalise_channel(name, dialect), None)
    return list(seen)
