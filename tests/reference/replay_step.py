"""The replay step's reference: the compact parts of a received Twitch line, by the pure parser and
encoder. The compiled `twitch_line` (native/replay.c, and the lane that runs it on raw lines) is held
to it by tests/test_replay_core.py; without the compiled core the engine keeps full records and
never makes compact ones, so production never runs this."""

from __future__ import annotations

from formats.canonical import canonical_bytes_py
from formats.dialect import twitch_server_time
from formats.irc import parse_compat_py
from replay.compact import TwitchLine


def twitch_line_py(line: str, receiver: str, now: float) -> TwitchLine:
    """The reference: (command, first parameter, server time, head, tail) of a received Twitch line,
    read by `parse_compat_py`, the times by `twitch_server_time`, the bytes by `canonical_bytes_py`.
    Raises IRCParseError for a line that cannot be read."""
    command, params, sender, user, host, tags = parse_compat_py(line)
    first = canonical_bytes_py(
        {
            "command": command,
            "host": host,
            "params": params,
            "receivers": {receiver: now},
            "sender": sender,
            "tags": tags,
        }
    )
    last = canonical_bytes_py({"user": user})
    head = first[:-1] + b',"time":'
    tail = b"," + last[1:]
    return command, params[0] if params else None, twitch_server_time(tags), head, tail
