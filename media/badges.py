"""Twitch chat badges (Helix), snapshotted like the third-party emote sets.

With a token (the one `record` uses: CHAT_ARCHIVER_TOKEN or --token-file), the global badge sets
(`GET /helix/chat/badges/global`) and each channel's (`GET /helix/chat/badges?broadcaster_id=ID`)
are fetched, every badge image stored once by SHA-256, and one small JSON file written per scope
and time under `badges/<scope>/<YYYYMMDDTHHMMSSZ>.json` (`_global` or the channel login). Helix
wants the token's client id beside it; `GET /oauth2/validate` tells it, so only the token is
needed. The token goes in headers only: never in a URL, a finding, a log line or a file.

Without a token nothing is fetched and badges stay text (`moderator`, `subscriber 12`).

`BadgeTimeline.at(channel, t)` is the table in force at `t`: the latest snapshot at or before `t` of
the channel and of the globals, the channel's versions shadowing the global ones of the same set
(as Twitch does: a channel's own subscriber and bits badges replace the default ones).

Image URLs are not fetched as the answer gives them: only Twitch's badge CDN form
(`https://static-cdn.jtvnw.net/badges/v1/<uuid>/<scale>`) is accepted, its uuid taken and the URL
rebuilt on the configured CDN base, so a hostile answer cannot send us elsewhere.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from formats.errors import InputError
from formats.store import makedirs_durable, write_bytes_atomic
from media.layout import image_name_ok
from media.snapshots import Fetch, FetchError, ImageStore, stamp
from media.thirdparty import GLOBAL

FOLDER = "badges"
API_CAP = 4 * 1024 * 1024
IMAGE_CAP = 1024 * 1024
_UUID_URL = re.compile(r"https://static-cdn\.jtvnw\.net/badges/v1/([0-9a-fA-F-]{36})/[0-9]+\Z")
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_SCOPE = re.compile(r"[a-z0-9_]{1,64}\Z")
_NAME = re.compile(r"\d{8}T\d{6}Z(?:-\d+)?\.json\Z")


@dataclass(frozen=True)
class Badge:
    set_id: str
    version: str
    title: str = ""
    uuid: str = ""
    image: str | None = None


@dataclass(frozen=True)
class BadgeSnapshot:
    scope: str
    time: float
    badges: tuple[Badge, ...]
    findings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "scope": self.scope,
            "time": self.time,
            "badges": [
                {"set_id": b.set_id, "version": b.version, "title": b.title, "uuid": b.uuid, "image": b.image}
                for b in self.badges
            ],
            "findings": list(self.findings),
        }

    @classmethod
    def from_json(cls, doc: object, where: str) -> BadgeSnapshot:
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise ValueError(f"{where}: not a version 1 badge snapshot")
        scope, t = doc.get("scope"), doc.get("time")
        if not isinstance(scope, str) or not isinstance(t, int | float) or isinstance(t, bool) or not abs(t) < 1e12:
            raise ValueError(f"{where}: scope or time missing or wrong")
        badges = []
        items = doc.get("badges")
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            s, v, title, uuid, image = (item.get(k) for k in ("set_id", "version", "title", "uuid", "image"))
            if isinstance(s, str) and isinstance(v, str) and _KEY.match(s) and _KEY.match(v):
                ok = isinstance(image, str) and image_name_ok(image)
                badges.append(
                    Badge(
                        s,
                        v,
                        title if isinstance(title, str) else "",
                        uuid if isinstance(uuid, str) else "",
                        image if ok else None,
                    )
                )
        return cls(scope, float(t), tuple(badges))


def parse_badges(doc: object) -> tuple[list[Badge], list[str]]:
    """Helix's `{"data": [{"set_id", "versions": [{"id", "title", "image_url_2x", ...}]}]}` to
    badges (never raises; findings for what is skipped)."""
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        return [], ["badges: the answer has no `data` list"]
    out, findings = [], []
    for i, group in enumerate(data[:1000]):
        set_id = group.get("set_id") if isinstance(group, dict) else None
        versions = group.get("versions") if isinstance(group, dict) else None
        if not isinstance(set_id, str) or not _KEY.match(set_id) or not isinstance(versions, list):
            findings.append(f"badges: data[{i}]: no valid set_id and versions")
            continue
        for j, v in enumerate(versions[:10_000]):
            vid = v.get("id") if isinstance(v, dict) else None
            if not isinstance(vid, str) or not _KEY.match(vid):
                findings.append(f"badges: data[{i}].versions[{j}]: no valid id")
                continue
            url = v.get("image_url_2x") or v.get("image_url_1x")
            m = _UUID_URL.match(url) if isinstance(url, str) else None
            if m is None:
                findings.append(f"badges: data[{i}].versions[{j}]: image URL not on Twitch's badge CDN")
            title = v.get("title")
            out.append(
                Badge(set_id, vid, title[:200] if isinstance(title, str) else "", m.group(1).lower() if m else "")
            )
    return out, findings


@dataclass(frozen=True)
class Helix:
    """Where Helix, the token check and the badge CDN live (one mirror base for all three)."""

    api: str = "https://api.twitch.tv"
    auth: str = "https://id.twitch.tv"
    cdn: str = "https://static-cdn.jtvnw.net"

    @classmethod
    def mirror(cls, base: str | None) -> Helix:
        return cls(base, base, base) if base else cls()


def client_id(helix: Helix, token: str, fetch: Fetch) -> str:
    """The client id the token was issued to (GET /oauth2/validate). Raises FetchError."""
    token = token.removeprefix("oauth:")
    body, _ = fetch(f"{helix.auth.rstrip('/')}/oauth2/validate", API_CAP, {"Authorization": f"OAuth {token}"})
    try:
        found = orjson.loads(body).get("client_id")
    except (ValueError, AttributeError):
        found = None
    if not isinstance(found, str) or not _KEY.match(found):
        raise FetchError("the token check answered without a client id")
    return found


def take_badges(
    root: str,
    helix: Helix,
    token: str,
    scope: str,
    channel_id: str | None,
    *,
    store: ImageStore,
    fetch: Fetch,
    now: float,
    client: str | None = None,
) -> tuple[BadgeSnapshot | None, list[str]]:
    """One badge snapshot of the globals (scope GLOBAL) or a channel (its login and Twitch id)."""
    if scope != GLOBAL and (channel_id is None or not channel_id.isdigit() or not _SCOPE.match(scope)):
        raise ValueError(f"a channel needs its login and numeric Twitch id, not {scope!r} {channel_id!r}")
    token = token.removeprefix("oauth:")
    api = helix.api.rstrip("/")
    url = (
        f"{api}/helix/chat/badges/global" if scope == GLOBAL else f"{api}/helix/chat/badges?broadcaster_id={channel_id}"
    )
    try:
        cid = client or client_id(helix, token, fetch)
        body, _ = fetch(url, API_CAP, {"Authorization": f"Bearer {token}", "Client-Id": cid})
        doc = orjson.loads(body)
    except FetchError as e:
        return None, [f"badges: {url}: {e}"]
    except ValueError as e:
        return None, [f"badges: {url}: the answer is not JSON ({type(e).__name__})"]
    badges, findings = parse_badges(doc)
    done = []
    images: dict[str, str | None] = {}
    for b in badges:
        if b.uuid and b.uuid not in images:
            image_url = f"{helix.cdn.rstrip('/')}/badges/v1/{b.uuid}/2"
            try:
                data, _ = fetch(image_url, IMAGE_CAP)
                images[b.uuid] = store.put_image(data)
            except (FetchError, InputError) as e:
                images[b.uuid] = None
                findings.append(f"badges: {image_url}: {e}")
        done.append(Badge(b.set_id, b.version, b.title, b.uuid, images.get(b.uuid)))
    snap = BadgeSnapshot(scope, now, tuple(done), tuple(findings[:1000]))
    write_badges(root, snap)
    return snap, findings


def scope_dir(root: str, scope: str) -> str:
    if scope != GLOBAL and not _SCOPE.match(scope):
        raise ValueError(f"not a channel login: {scope!r}")
    return os.path.join(root, FOLDER, "_global" if scope == GLOBAL else scope)


def write_badges(root: str, snap: BadgeSnapshot) -> str:
    folder = scope_dir(root, snap.scope)
    makedirs_durable(folder)
    data = json.dumps(snap.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
    for n in range(1000):
        path = os.path.join(folder, f"{stamp(snap.time)}{'' if n == 0 else f'-{n}'}.json")
        if not os.path.exists(path):
            write_bytes_atomic(path, data)
            return path
    raise FileExistsError(f"{folder}: a thousand snapshots in one second")


def read_badges(root: str, scopes: Iterable[str]) -> tuple[list[BadgeSnapshot], list[str]]:
    snaps, problems = [], []
    for scope in scopes:
        try:
            folder = scope_dir(root, scope)
            names = sorted(n for n in os.listdir(folder) if _NAME.match(n))
        except (OSError, ValueError):
            continue
        for name in names:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as f:
                    snap = BadgeSnapshot.from_json(orjson.loads(f.read(API_CAP + 1)), path)
            except (OSError, ValueError) as e:
                problems.append(f"{path}: {e}" if not str(e).startswith(path) else str(e))
                continue
            if snap.scope == scope:
                snaps.append(snap)
    return snaps, problems


@dataclass
class BadgeTimeline:
    _times: dict[str, list[float]] = field(default_factory=dict)
    _snaps: dict[str, list[BadgeSnapshot]] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshots: Iterable[BadgeSnapshot]) -> BadgeTimeline:
        timeline = cls()
        for snap in sorted(snapshots, key=lambda s: s.time):
            timeline._times.setdefault(snap.scope, []).append(snap.time)
            timeline._snaps.setdefault(snap.scope, []).append(snap)
        return timeline

    def at(self, channel: str, t: float) -> dict[tuple[str, str], Badge]:
        """(set_id, version) -> badge in force for `channel` at `t` (channel over global)."""
        table: dict[tuple[str, str], Badge] = {}
        for scope in (GLOBAL, channel):
            times = self._times.get(scope, [])
            i = bisect.bisect_right(times, t)
            if i:
                for b in self._snaps[scope][i - 1].badges:
                    table[(b.set_id, b.version)] = b
        return table
