"""The archive's names, on disk and on the wire: which channel, hour and batch names it holds.

A name from outside (an IRC line's target, a URL's path segment, a peer's listing) is used only if
it has the exact shape the archive writes (ARCHIVE_FORMAT.md): a channel folder as
`formats.canonical.check_channel_dirname` allows it, an hour `YYYY-MM-DDTHH` that is a real hour,
a batch name `MM:00-HASH.json`. The server checks request paths with these, the sync client checks
a peer's listings with them, and the replay names a channel's folder with them, so no name any of
them uses can leave the archive's root.

The grammar is ASCII only, matched whole: a digit of another script, a bidi control or a trailing
newline is no part of any name. A peer's channel name must also not be one the archive reserves
(`reserved_channel`): the quarantine folder's name, or a name Windows reads as a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from formats.canonical import BATCH_INTERVAL, check_channel_dirname, is_hour_folder, parse_batch_name
from formats.errors import UsageError
from formats.store import QUARANTINE

# Names Windows gives to devices, with any extension (`con.json` too): an archive copied there
# must not hold a folder it cannot open.
WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)


def channel_folder_name(param: str) -> str | None:
    """`#Chan` -> `chan`; None if the parameter is not a channel: only `#` and at least one more
    character names one (ARCHIVE_FORMAT.md section 3; upstream archives no `&` channel)."""
    if len(param) < 2 or param[0] != "#":
        return None
    return param[1:].lower()


def channel_ok(name: str) -> bool:
    """A channel folder name the archive can hold (and that cannot leave ROOT)."""
    try:
        check_channel_dirname(name)
    except UsageError:
        return False
    return True


def reserved_channel(name: str) -> bool:
    """A name the archive keeps for itself or a filesystem reserves: `quarantine`, anything
    starting with a dot, a Windows device name."""
    return name == QUARANTINE or name.startswith(".") or name.split(".", 1)[0].upper() in WINDOWS_DEVICES


def peer_channel_ok(name: str) -> bool:
    """A channel name from a peer that the archive may hold: a channel folder name, not reserved."""
    return channel_ok(name) and not reserved_channel(name)


def can_be_channel(name: str) -> bool:
    """Whether a name that passed `peer_channel_ok` at a peer's top level (`/files`) may be a channel
    worth listing: one without a dot. A wubloader node lists every name in its base folder, and a
    stray file there (`desertbus_source_myvideo_0.mkv`) answers 500 when listed as a channel;
    channels in wubloader's deployments are Twitch names, which hold no dot (name one with
    `--channel` to sync it anyway)."""
    return peer_channel_ok(name) and "." not in name


def hour_ok(name: str) -> bool:
    """An hour folder's name (`YYYY-MM-DDTHH`) that is a real hour."""
    if not is_hour_folder(name):
        return False
    try:
        datetime.strptime(name, "%Y-%m-%dT%H")
    except ValueError:
        return False
    return True


def batch_name_ok(hour: str, name: str) -> bool:
    """A batch file's name (`MM:00-HASH.json`) in that hour folder, as the archive writes it."""
    parsed = parse_batch_name(hour, name)
    return parsed is not None and parsed[0] % BATCH_INTERVAL == 0


def hour_start(hour: str) -> int:
    """Unix seconds of an hour folder's name (`YYYY-MM-DDTHH`, checked by `hour_ok`)."""
    return int(datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Segment:
    """One batch file by its names: the server's `/segments/CH/chat/HOUR/NAME` route, and what a
    sync fetches from a peer."""

    channel: str
    hour: str
    name: str

    @property
    def digest(self) -> str:
        return self.name[6:-5]  # MM:SS-HASH.json

    @property
    def relpath(self) -> str:
        return f"{self.channel}/chat/{self.hour}/{self.name}"
