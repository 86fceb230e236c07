"""The images a window of chat showed: Twitch emotes by the `emotes` tag's positions, third-party
emotes by word from the snapshot in force at each message's time, badges by set and version.
Shared by the html page and the TwitchDownloader JSON, which both embed each image once.

Where the images come from (all under the archive root, all optional: what is missing stays a
word):
- Twitch emotes: wubloader's layout, `emotes/<id>/<theme>-<scale>`; the dark 2.0 variant is used
  (the page is dark, and 2.0 is sharp on a HiDPI screen at a line's height), else another one.
- third-party emotes and badges: the snapshots (media.snapshots, media.badges) name each image by
  its name in the content-addressed store (`<sha256 hex>.<ext>`); `read_image(name)` gives its
  bytes (media.store's `get_image`, which checks them against the name: a damaged file is no image).

Positions: the `emotes` tag counts code points, as Twitch does (checked on the corpus's lines
with emoji before an emote); a `/me` message's positions count from its action text
(media.thirdparty.shown_spans). Spans here are in code points of the text the reader sees.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from media.badges import BadgeTimeline, read_badges
from media.snapshots import read_snapshots
from media.sniff import image_kind
from media.store import MediaStore
from media.thirdparty import GLOBAL, Emote, EmoteTimeline, Snapshot, shown_spans, split_message

TWITCH_VARIANTS = ("dark-2.0", "dark-1.0", "light-2.0", "light-1.0", "dark-3.0", "light-3.0")
IMAGE_CAP = 8 * 1024 * 1024  # bytes: an image bigger than this is not embedded (stays a word)
_MIME = {"png": "image/png", "gif": "image/gif", "webp": "image/webp", "avif": "image/avif", "jpg": "image/jpeg"}

Span = tuple[int, int, str]  # start, end (code points, end exclusive), image key
ReadImage = Callable[[str], bytes | None]


def data_uri(data: bytes) -> str | None:
    """`data:image/...;base64,...` for an image, None for bytes that are not one."""
    kind = image_kind(data)
    return f"data:{_MIME[kind]};base64,{base64.b64encode(data).decode()}" if kind else None


def read_twitch_emote(root: str, emote_id: str) -> bytes | None:
    """The bytes of a Twitch emote in wubloader's layout (`emote_id` already checked as a plain id)."""
    for variant in TWITCH_VARIANTS:
        try:
            with open(os.path.join(root, "emotes", emote_id, variant), "rb") as f:
                data = f.read(IMAGE_CAP + 1)
        except OSError:
            continue
        if len(data) <= IMAGE_CAP and image_kind(data):
            return data
    return None


@dataclass
class ChatImages:
    """Resolves a window's messages to image spans and badges to images, fetching each image's
    bytes once (`image(key)`). Keys: `t:<id>` a Twitch emote, `s:<name>` a stored image."""

    channel: str
    timeline: EmoteTimeline = field(default_factory=EmoteTimeline)
    badges: BadgeTimeline = field(default_factory=BadgeTimeline)
    twitch: Callable[[str], bytes | None] = lambda _id: None
    read_image: ReadImage = lambda _name: None
    problems: list[str] = field(default_factory=list)
    _table_at: tuple[float, float, dict[str, Emote]] = (0.0, -1.0, {})  # since, until, the table
    _bytes: dict[str, bytes | None] = field(default_factory=dict)

    @classmethod
    def load(cls, root: str, channel: str, since: float | None = None, until: float | None = None) -> ChatImages:
        """What is on disk for `channel` (a login) over [since, until): the snapshots in force then."""
        read_image = MediaStore(root).get_image
        login = channel.lstrip("#").lower()
        loaded = read_snapshots(root, [login, GLOBAL], since=since, until=until)
        badge_snaps, badge_problems = read_badges(root, [login, GLOBAL])
        return cls(
            login,
            EmoteTimeline.of(loaded.snapshots),
            BadgeTimeline.of(badge_snaps),
            lambda emote_id: read_twitch_emote(root, emote_id),
            read_image,
            loaded.problems + badge_problems,
        )

    @classmethod
    def of(cls, channel: str, snapshots: list[Snapshot], **kw: Any) -> ChatImages:
        return cls(channel.lstrip("#").lower(), EmoteTimeline.of(snapshots), **kw)

    def _table(self, t: float) -> dict[str, Emote]:
        """The word table at `t`, built again only when a snapshot boundary is crossed (records
        come in time order, so that is rare)."""
        since, until, table = self._table_at
        if not since <= t < until:
            since, until = self.timeline.steady(self.channel, t)
            table = self.timeline.at(self.channel, t)
            self._table_at = (since, until, table)
        return table

    def pieces(self, record: Mapping[str, Any]) -> tuple[str, list[Span]]:
        """The shown text of a chat line (PRIVMSG or USERNOTICE; the action of a `/me`) and every
        emote in it: all the Twitch ones the tag names (`t:<id>`), the third-party ones whose
        image was stored (`s:<name>`), whether or not the image is on hand here."""
        params = record.get("params") or []
        text = params[1] if len(params) > 1 and isinstance(params[1], str) else ""
        tags = record.get("tags")
        shown, twitch = shown_spans(tags.get("emotes") if isinstance(tags, dict) else None, text)
        try:
            t = float(record["time"])
        except (KeyError, TypeError, ValueError):
            return shown, []
        table = self._table(t)
        if not twitch and (not table or not any(word in table for word in shown.split(" "))):
            return shown, []  # most lines: no emote at all
        out: list[Span] = []
        at = 0
        for piece, what in split_message(shown, twitch, table) if shown else ():
            if isinstance(what, str):
                out.append((at, at + len(piece), f"t:{what}"))
            elif isinstance(what, Emote) and what.image:
                out.append((at, at + len(piece), f"s:{what.image}"))
            at += len(piece)
        return shown, out

    def spans(self, record: Mapping[str, Any]) -> list[Span]:
        """The emotes of a chat line whose image is on hand (the rest stay words)."""
        return [span for span in self.pieces(record)[1] if self.image(span[2]) is not None]

    def badge_key(self, set_id: str, version: str, t: float) -> str:
        """The image key of a badge at `t`, "" when none is snapshotted (it stays text)."""
        badge = self.badges.at(self.channel, t).get((set_id, version))
        key = f"s:{badge.image}" if badge and badge.image else ""
        return key if key and self.image(key) is not None else ""

    def image(self, key: str) -> bytes | None:
        if key not in self._bytes:
            kind, _, name = key.partition(":")
            data = self.twitch(name) if kind == "t" else self.read_image(name) if kind == "s" else None
            if data is not None and (len(data) > IMAGE_CAP or image_kind(data) is None):
                self.problems.append(f"image {key} is not an image under {IMAGE_CAP} bytes; shown as its word")
                data = None
            self._bytes[key] = data
        return self._bytes[key]
