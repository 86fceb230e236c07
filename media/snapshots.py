"""Third-party emote snapshots on disk, and taking them (the I/O shell around media.thirdparty).

Layout, under the archive root beside the channels and wubloader's `emotes/` and `media/`:

    thirdparty/<provider>/<scope>/<YYYYMMDDTHHMMSSZ>.json

`provider` is `bttv`, `ffz` or `7tv`; `scope` is `_global` or a channel login (Twitch logins never
start with `_`). Each file is one `Snapshot` (media.thirdparty), small JSON naming every emote by id
and word and its image by its name in the content-addressed image store (`<sha256 hex>.<ext>`, media.store), where
each lives once. Files are written atomically and never rewritten, so a folder is the scope's history,
and two hosts' folders merge by union.

Taking a snapshot fetches the set's JSON, parses what is valid (findings for the rest), fetches the
image of every emote not already known by (provider, id) from an earlier snapshot, checks it is an
image and stores it, then writes the file. An answer that cannot be had (network, 5xx, not JSON)
writes nothing: the previous snapshot stays in force. A 404 for a channel is an answer: that
channel has no set there (now), which is what an empty snapshot says.
"""

from __future__ import annotations

import json
import os
import re
import time as _time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

import orjson
import urllib3

from formats.errors import InputError
from formats.store import hour_batch_files, list_hours, makedirs_durable, write_bytes_atomic
from media.shell import read_batch_file
from media.thirdparty import GLOBAL, PARSERS, PROVIDERS, Emote, Snapshot, Source, sources

FOLDER = "thirdparty"
GLOBAL_DIR = "_global"
API_CAP = 16 * 1024 * 1024  # bytes of one set's JSON (the largest real ones are a few hundred KiB)
IMAGE_CAP = 4 * 1024 * 1024  # bytes of one emote image (7TV caps uploads at 7 MiB, but a 2x is far smaller)
_NAME = re.compile(r"(\d{8}T\d{6}Z)(?:-(\d+))?\.json\Z")
_SCOPE = re.compile(r"[a-z0-9_]{1,64}\Z")


class ImageStore(Protocol):
    """Content-addressed images (media.store.MediaStore): `put_image` keeps real images and returns
    their name `<sha256 hex>.<ext>`, raising InputError for bytes that are not one."""

    def put_image(self, data: bytes) -> str: ...


class FetchError(Exception):
    """A fetch that gave no usable answer; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Fetch(Protocol):
    """GET `url` (with extra `headers`), at most `cap` bytes: (body, content type); FetchError."""

    def __call__(self, url: str, cap: int, headers: Mapping[str, str] | None = None) -> tuple[bytes, str]: ...


def scope_dir(root: str, provider: str, scope: str) -> str:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}")
    if scope != GLOBAL and not _SCOPE.match(scope):
        raise ValueError(f"not a channel login: {scope!r}")
    return os.path.join(root, FOLDER, provider, GLOBAL_DIR if scope == GLOBAL else scope)


def stamp(t: float) -> str:
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y%m%dT%H%M%SZ")


def write_snapshot(root: str, snap: Snapshot) -> str:
    """Write `snap` under its scope's folder (a new name if one for that second exists); the path."""
    folder = scope_dir(root, snap.provider, snap.scope)
    makedirs_durable(folder)
    data = json.dumps(snap.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
    base = stamp(snap.time)
    for n in range(1000):
        path = os.path.join(folder, f"{base}.json" if n == 0 else f"{base}-{n}.json")
        if not os.path.exists(path):
            write_bytes_atomic(path, data)
            return path
    raise FileExistsError(f"{folder}: a thousand snapshots in one second")


@dataclass
class Loaded:
    snapshots: list[Snapshot] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_snapshots(root: str, scopes: Iterable[str], since: float | None = None, until: float | None = None) -> Loaded:
    """Every snapshot of the given scopes (GLOBAL and channel logins) in force over [since, until)
    (the last one at or before `since`, and all after it taken before `until`): the work follows
    the window, not the years of history. A file that is not a snapshot is a problem, named by
    path; the others are still read."""
    out = Loaded()
    for scope in scopes:
        for provider in PROVIDERS:
            try:
                folder = scope_dir(root, provider, scope)
                names = sorted(n for n in os.listdir(folder) if _NAME.match(n))
            except (OSError, ValueError):
                continue
            if since is not None:
                first = 0
                for i, name in enumerate(names):
                    if _name_time(name) <= since:
                        first = i
                names = names[first:]
            if until is not None:
                names = [n for n in names if _name_time(n) < until]
            for name in names:
                path = os.path.join(folder, name)
                try:
                    with open(path, "rb") as f:
                        snap = Snapshot.from_json(orjson.loads(f.read(API_CAP + 1)), path)
                except (OSError, ValueError) as e:
                    out.problems.append(f"{path}: {e}" if not str(e).startswith(path) else str(e))
                    continue
                if snap.provider != provider or snap.scope != scope:
                    out.problems.append(
                        f"{path}: a {snap.provider} snapshot of {snap.scope or 'the globals'} filed here"
                    )
                    continue
                out.snapshots.append(snap)
    return out


def _name_time(name: str) -> float:
    m = _NAME.match(name)
    assert m is not None
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def latest(root: str, provider: str, scope: str) -> Snapshot | None:
    loaded = read_snapshots(root, [scope], since=float("inf"))
    found = [s for s in loaded.snapshots if s.provider == provider]
    return max(found, key=lambda s: s.time) if found else None


def take_snapshot(
    root: str,
    source: Source,
    scope: str,
    channel_id: str | None,
    *,
    store: ImageStore,
    fetch: Fetch,
    now: float,
) -> tuple[Snapshot | None, list[str]]:
    """Fetch, parse and store one snapshot of `source`'s `scope` (GLOBAL, or a channel login with
    its Twitch `channel_id`). Returns it (None when the set could not be had) and the findings."""
    url = source.api_url(channel_id if scope != GLOBAL else None)
    findings: list[str] = []
    try:
        body, _ = fetch(url, API_CAP)
        doc = orjson.loads(body)
    except FetchError as e:
        if e.status == 404 and scope != GLOBAL:
            doc = None  # no set for this channel there
        else:
            return None, [f"{source.provider}: {url}: {e}"]
    except ValueError as e:  # not JSON (json.JSONDecodeError, UnicodeDecodeError)
        return None, [f"{source.provider}: {url}: the answer is not JSON ({type(e).__name__})"]
    emotes: list[Emote] = []
    if doc is not None:
        emotes, parse_findings = PARSERS[source.provider](doc, scope)
        findings += [f"{url}: {f}" for f in parse_findings]
    known = _known_images(root, source.provider, scope)
    done: list[Emote] = []
    seen: set[str] = set()
    for emote in emotes:
        if emote.id in seen:  # one image per id, however many words or sets name it
            image = next((e.image for e in done if e.id == emote.id), None)
            done.append(replace(emote, image=image))
            continue
        seen.add(emote.id)
        image = known.get(emote.id)
        if image is None:
            image_url = source.image_url(emote)
            try:
                data, _ = fetch(image_url, IMAGE_CAP)
                image = store.put_image(data)
            except (FetchError, InputError) as e:
                findings.append(f"{source.provider}: {image_url}: {e}")
        done.append(replace(emote, image=image))
    snap = Snapshot(source.provider, scope, now, tuple(done), channel_id or "", tuple(findings[:1000]))
    write_snapshot(root, snap)
    return snap, findings


def _known_images(root: str, provider: str, scope: str) -> dict[str, str]:
    """id -> image of the emotes the latest snapshots of this scope and the globals already hold:
    an emote id's image never changes, so it is fetched once."""
    known: dict[str, str] = {}
    for s in {scope, GLOBAL}:
        snap = latest(root, provider, s)
        for emote in snap.emotes if snap else ():
            if emote.image:
                known[emote.id] = emote.image
    return known


def snapshot_channels(
    root: str,
    channels: dict[str, str],
    *,
    store: ImageStore,
    fetch: Fetch,
    mirrors: dict[str, str | None] | None = None,
    now: Callable[[], float] = _time.time,
) -> list[str]:
    """One round: the global sets and each channel's (login -> Twitch id), every provider. The
    findings of all of them (a failure of one source never stops the others)."""
    findings: list[str] = []
    for source in sources(mirrors).values():
        for scope, channel_id in [(GLOBAL, None), *channels.items()]:
            _, found = take_snapshot(root, source, scope, channel_id, store=store, fetch=fetch, now=now())
            findings += found
    return findings


def http_fetch(headers: dict[str, str] | None = None, timeout: float = 30.0) -> Fetch:
    """A `Fetch` over urllib3: one overall timeout per request, the byte cap enforced while
    reading (a declared length over it is refused before), redirects followed at most 3 times.
    The URLs it is given are built from configured bases and checked ids, never taken from chat or
    from an answer, so it needs no defence against where they point."""
    pool = urllib3.PoolManager(headers={"User-Agent": "chat-archiver", **(headers or {})})

    def fetch(url: str, cap: int, headers: Mapping[str, str] | None = None) -> tuple[bytes, str]:
        try:
            response = pool.request(
                "GET",
                url,
                headers={**pool.headers, **(headers or {})},
                preload_content=False,
                redirect=3,
                retries=urllib3.Retry(total=2, redirect=3, status=0, backoff_factor=0.5),
                timeout=urllib3.Timeout(total=timeout),
            )
        except urllib3.exceptions.HTTPError as e:
            raise FetchError(f"no answer ({type(e).__name__})") from None
        try:
            if response.status != 200:
                raise FetchError(f"HTTP {response.status}", response.status)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap:
                raise FetchError(f"declares {declared} bytes, over the cap of {cap}")
            chunks, size = [], 0
            for chunk in response.stream(65536):
                size += len(chunk)
                if size > cap:
                    raise FetchError(f"longer than the cap of {cap} bytes")
                chunks.append(chunk)
            return b"".join(chunks), response.headers.get("Content-Type", "")
        except urllib3.exceptions.HTTPError as e:
            raise FetchError(f"answer cut short ({type(e).__name__})") from None
        finally:
            response.release_conn()

    return fetch


def channel_id_in_archive(root: str, channel: str, max_files: int = 200) -> str | None:
    """The channel's Twitch id, read from the `room-id` tag of its newest records (the newest
    `max_files` batch files are looked at, newest first); None when none says."""
    looked = 0
    for hour in reversed(list_hours(root, channel)):
        for batch in reversed(hour_batch_files(root, channel, hour)):
            looked += 1
            if looked > max_files:
                return None
            try:
                records = read_batch_file(batch.path)
            except InputError:
                continue
            for record in records:
                tags = record.get("tags")
                room = tags.get("room-id") if isinstance(tags, dict) else None
                if isinstance(room, str) and room.isdigit():
                    return room
    return None


def safe_fetch(allow_private: bool = False, timeout: float = 60.0) -> Fetch:
    """A `Fetch` through media.fetch's defended fetcher (global addresses only unless
    `allow_private`, the connection pinned to the checked address, redirects re-checked, the cap
    and one deadline): what the third-party APIs and CDNs are fetched with, as every other image.
    Extra headers are not sent (the third-party APIs need none)."""
    from media import fetch as defended  # noqa: PLC0415 (a heavier module, only for the shell)

    fetchers: dict[int, defended.Fetcher] = {}

    def fetch(url: str, cap: int, headers: Mapping[str, str] | None = None) -> tuple[bytes, str]:
        fetcher = fetchers.get(cap)
        if fetcher is None:
            policy = defended.Policy(allow_private=allow_private, timeout=timeout, max_bytes=cap)
            fetcher = fetchers[cap] = defended.Fetcher(policy)
        try:
            got = fetcher.fetch(url)
        except defended.FetchError as e:
            raise FetchError(str(e), getattr(e, "status", None)) from None
        return got.body, got.content_type

    return fetch
