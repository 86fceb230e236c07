"""A small archive of real-shaped Twitch lines for the justlog API tests, every line written out.

Channels: `pajlada` (room-id 11148817), `forsen` (22484632), and `irconly` (plain IRC, no tags,
so no ids: answered by login). Users of pajlada:

* `gempir` (77829817): 2023-12-31 23:59:59 (a year's last second), 2024-05-10, 2024-06-05 (a
  one-digit day), 2024-06-15 twice, one of them a `/me`; a sub gift to gempir from `gifter`
  (777) on 2024-06-15 counts in gempir's log (justlog's recipient rule).
* `oldname`/`newname` (555): renamed between May and June 2024.
* `subber` (666): a resub with a message; `spammer` (888): a message removed by CLEARMSG, then a
  600 s timeout; `spammer2` (889): banned; one "chat cleared".
* `hidden` (999): chats on 2024-06-15, and is on the opt-out list of the opt-out tests.

Channel `ties` (room-id 3) has ten messages, seven in the same millisecond, for paging.

Times are exact (`tmi-sent-ts`), so each record's `time` is its server time.
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from formats.irc import parse_compat_py
from tests.archives import write_batch

RECEIVER = "host1.Ab3dE.0"
PAJ, FORSEN, TIES = "11148817", "22484632", "3"
GEMPIR, RENAMED, SUBBER, GIFTER, SPAMMER, SPAMMER2, HIDDEN = "77829817", "555", "666", "777", "888", "889", "999"


def ms(text: str) -> int:
    """`2024-06-15 12:00:00.250` (UTC) in milliseconds."""
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def privmsg(when: str, channel: str, room: str, login: str, uid: str, text: str, mid: str, **tags: str) -> str:  # noqa: PLR0917 (one per line below, in a fixed order)
    base = {
        "badge-info": "",
        "badges": "",
        "color": "#FF0000",
        "display-name": login.capitalize(),
        "emotes": "",
        "id": mid,
        "mod": "0",
        "room-id": room,
        "tmi-sent-ts": str(ms(when)),
        "user-id": uid,
        **tags,
    }
    return f"@{_tags(base)} :{login}!{login}@{login}.tmi.twitch.tv PRIVMSG #{channel} :{text}"


RESUB = {
    "msg-param-cumulative-months": "5",
    "system-msg": "Subber subscribed at Tier 1. They've subscribed for 5 months!",
}
GIFT = {
    "msg-param-recipient-id": GEMPIR,
    "msg-param-recipient-user-name": "gempir",
    "system-msg": "Gifter gifted a Tier 1 sub to gempir!",
}


def usernotice(when: str, uid: str, login: str, kind: str, extra: dict[str, str], text: str | None = None) -> str:  # noqa: PLR0917 (as privmsg)
    tags = {
        "display-name": login.capitalize(),
        "id": f"u-{kind}",
        "login": login,
        "msg-id": kind,
        "room-id": PAJ,
        "tmi-sent-ts": str(ms(when)),
        "user-id": uid,
        **extra,
    }
    tail = f" :{text}" if text is not None else ""
    return f"@{_tags(tags)} :tmi.twitch.tv USERNOTICE #pajlada{tail}"


def _tags(tags: dict[str, str]) -> str:
    escape = str.maketrans({";": r"\:", " ": r"\s", "\\": "\\\\"})
    return ";".join(f"{k}={v.translate(escape)}" for k, v in tags.items())


LINES: dict[str, list[str]] = {
    "pajlada": [
        privmsg("2023-12-31 23:59:59", "pajlada", PAJ, "gempir", GEMPIR, "last of the year", "g-dec"),
        privmsg("2024-05-10 10:00:00", "pajlada", PAJ, "gempir", GEMPIR, "hello in may", "g-may"),
        privmsg("2024-05-11 10:00:00", "pajlada", PAJ, "oldname", RENAMED, "my old name", "r-may"),
        privmsg("2024-06-05 08:00:00", "pajlada", PAJ, "gempir", GEMPIR, "a one-digit day", "g-jun5"),
        privmsg(
            "2024-06-15 12:00:00.250",
            "pajlada",
            PAJ,
            "gempir",
            GEMPIR,
            "héllo Kappa 🎉",
            "g-jun15a",
            emotes="25:6-10",
        ),
        privmsg("2024-06-15 12:00:01", "pajlada", PAJ, "gempir", GEMPIR, "\x01ACTION waves\x01", "g-me"),
        privmsg("2024-06-15 12:00:02", "pajlada", PAJ, "newname", RENAMED, "my new name", "r-jun"),
        privmsg("2024-06-15 12:00:03", "pajlada", PAJ, "hidden", HIDDEN, "please forget me", "h-1"),
        privmsg("2024-06-15 12:00:04", "pajlada", PAJ, "spammer", SPAMMER, "buy followers", "s-1"),
        f"@login=mod1;room-id={PAJ};target-msg-id=s-1;tmi-sent-ts={ms('2024-06-15 12:00:05')} "
        ":tmi.twitch.tv CLEARMSG #pajlada :buy followers",
        f"@ban-duration=600;room-id={PAJ};target-user-id={SPAMMER};tmi-sent-ts={ms('2024-06-15 12:00:06')} "
        ":tmi.twitch.tv CLEARCHAT #pajlada :spammer",
        f"@room-id={PAJ};target-user-id={SPAMMER2};tmi-sent-ts={ms('2024-06-15 12:00:07')} "
        ":tmi.twitch.tv CLEARCHAT #pajlada :spammer2",
        usernotice("2024-06-15 12:00:08", SUBBER, "subber", "resub", RESUB, "five months Kappa"),
        usernotice("2024-06-15 12:00:09", GIFTER, "gifter", "subgift", GIFT),
        f"@room-id={PAJ};tmi-sent-ts={ms('2024-06-15 12:00:10')} :tmi.twitch.tv CLEARCHAT #pajlada",
        privmsg("2024-06-16 09:00:00", "pajlada", PAJ, "gempir", GEMPIR, "the next day", "g-jun16"),
    ],
    "forsen": [
        privmsg("2024-06-16 10:00:00", "forsen", FORSEN, "gempir", GEMPIR, "forsen1", "f-1"),
        privmsg("2024-06-16 10:00:01", "forsen", FORSEN, "hidden", HIDDEN, "forsen hidden", "f-2"),
    ],
    # ten messages, seven of them in one millisecond: paging through ties
    "ties": [
        privmsg(f"2024-06-17 12:00:0{i // 7}", "ties", TIES, f"tie{i}", str(1000 + i), f"tie {i}", f"t-{i}")
        for i in range(10)
    ],
}
# plain IRC: no tags at all; the time is the receive time
IRC_LINES = [
    (ms("2024-06-16 11:00:00") / 1000, ":alice!alice@irc.example PRIVMSG #irconly :hi from plain irc"),
    (ms("2024-06-16 11:00:05") / 1000, ":bob!bob@irc.example PRIVMSG #irconly :hello alice"),
]


def record(line: str, received: float | None = None) -> dict[str, Any]:
    command, params, sender, user, host, tags = parse_compat_py(line)
    sent = tags.get("tmi-sent-ts") if tags else None
    time = int(sent) / 1000 if isinstance(sent, str) else (received or 0) - 5
    return {
        "command": command,
        "params": params,
        "sender": sender,
        "user": user,
        "host": host,
        "tags": tags,
        "receivers": {RECEIVER: (received or time + 0.1)},
        "time": time,
        "time_range": 0 if isinstance(sent, str) else 10,
    }


def write(root: str, extra: dict[str, list[str]] | None = None) -> str:
    """Write the archive (plus `extra` lines per channel) under `root`; returns `root`."""
    by_minute: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for channel, lines in {**LINES, **(extra or {})}.items():
        for line in lines:
            rec = record(line)
            by_minute[channel, int(rec["time"] // 60) * 60].append(rec)
    for received, line in IRC_LINES:
        rec = record(line, received)
        by_minute["irconly", int(rec["time"] // 60) * 60].append(rec)
    for (channel, minute), records in by_minute.items():
        write_batch(root, channel, minute, records)
    os.makedirs(root, exist_ok=True)
    return root
