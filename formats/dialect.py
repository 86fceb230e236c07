"""What differs between Twitch chat and a generic IRCv3 server: the replay reads lines by these
rules, and verify applies the same rules when it replays raw lines to check an archive.

A dialect answers four questions: which commands are archived, which of those arrive late, which
message marks a channel as initialised on a connection, and where a line's exact server time is.

- Twitch (ARCHIVE_FORMAT.md section 4): the `tmi-sent-ts` tag (milliseconds) is the server time;
  the first ROOMSTATE of a channel ends the per-connection noise; JOIN and PART are delayed.
- IRCv3: the `time` tag (server-time, ISO 8601 UTC) is the server time; the end of the
  NAMES list (366) ends the noise; nothing is delayed. (A message's id, `id` or `msgid`, is read by
  `formats.identity.message_id`, the same for both.)
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass

from formats.errors import UsageError
from formats.irc import CompatTags
from formats.rawcodec import DIALECT_IRCV3, DIALECT_TWITCH

_ISO_UTC = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z\Z", re.ASCII
)


def twitch_server_time(tags: CompatTags | None) -> float | None:
    """`tmi-sent-ts` in seconds, computed as upstream does: int(milliseconds) / 1000."""
    if tags is None:
        return None
    value = tags.get("tmi-sent-ts")
    if not isinstance(value, str) or not (value.isascii() and value.isdigit() and len(value) <= 16):
        return None  # absent or garbled: the time is estimated instead
    return int(value) / 1000


def ircv3_server_time(tags: CompatTags | None) -> float | None:
    """The server-time `time` tag in seconds. Integer arithmetic, one final division, so the float
    is the correctly rounded value of the written decimal (and never depends on TZ or locale)."""
    if tags is None:
        return None
    value = tags.get("time")
    if not isinstance(value, str):
        return None
    m = _ISO_UTC.match(value)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    try:
        whole = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    fraction = m.group(7) or ""
    scale: int = 10 ** len(fraction)
    return (whole * scale + int(fraction or "0")) / scale


@dataclass(frozen=True)
class Dialect:
    name: str
    kept: frozenset[str]
    delayed: frozenset[str]
    init_command: str
    init_channel_param: int
    server_time: Callable[[CompatTags | None], float | None]


TWITCH = Dialect(
    name=DIALECT_TWITCH,
    kept=frozenset(
        (
            "JOIN",
            "PART",
            "PRIVMSG",
            "CLEARCHAT",
            "CLEARMSG",
            "HOSTTARGET",
            "NOTICE",
            "ROOMSTATE",
            "USERNOTICE",
            "USERSTATE",
        )
    ),
    delayed=frozenset(("JOIN", "PART")),
    init_command="ROOMSTATE",
    init_channel_param=0,
    server_time=twitch_server_time,
)

IRCV3 = Dialect(
    name=DIALECT_IRCV3,
    kept=frozenset(("PRIVMSG", "NOTICE", "JOIN", "PART", "KICK", "TOPIC", "MODE")),
    delayed=frozenset(),
    init_command="366",
    init_channel_param=1,
    server_time=ircv3_server_time,
)

DIALECTS = {d.name: d for d in (TWITCH, IRCV3)}


def get_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise UsageError(f"unknown dialect {name!r} (known: {', '.join(sorted(DIALECTS))})") from None
