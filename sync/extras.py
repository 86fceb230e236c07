"""Fetching a peer's media folders (`/extras/<dir>`), trusting nothing it says.

wubloader's backfiller (`--extras emotes,media`) lists a peer's extras and copies every path it
lacks, unchecked. Ours checks every name and every body before a byte lands in ROOT:

- a listed name must be one the media layout would write (`media.layout.relpath_ok`: ASCII, exact
  shape and depth, no `..`, no hidden names); anything else is refused and never requested;
- an emote variant must be a real PNG/GIF/WebP/AVIF/JPEG (magic bytes) under the image cap;
- an image store file's SHA-256 must equal its name, and its kind its extension;
- a media content file's SHA-256 (base64url) must equal its name, under the 128 MiB cap (and be a
  real image when its extension says image);
- a media metadata file must be a small JSON object whose `url` hashes to its folder's name and
  whose `filename` is its sibling content file;
- a third-party emote set or badge snapshot (`thirdparty/`, `badges/`) must be a small JSON file
  that reads as a snapshot (media.thirdparty, media.badges) of the provider and scope its path
  names, taken at the time its name says;
- files are written atomically under ROOT (`media.store`), never over an existing name.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import orjson

from formats.errors import InputError
from media import layout
from media.fetch import MAX_BYTES
from media.sniff import MAX_IMAGE, image_kind, image_problem
from media.store import MediaStore
from sync.client import Peer, PeerError, new_pool
from sync.plan import names_list

MAX_LISTING = 64 << 20  # bytes: a listing of a few hundred thousand names
MAX_METADATA = 64 << 10


SHOWN_PER_PEER = 50  # refusal lines kept and printed per peer; the rest are counted in one line
GIVE_UP_AFTER = 100  # refusals in a row after which the rest of a peer's folder waits for the next pass
PEER_DEADLINE = 300.0  # s: the longest one peer's extras may take in one pass


@dataclass
class ExtrasStats:
    """What one extras pass did. `refused` holds the refusal lines shown (at most SHOWN_PER_PEER
    a peer, then one summary line); `refusals` counts every refusal."""

    listed: int = 0
    fetched: int = 0
    bytes: int = 0
    gone: int = 0
    refusals: int = 0
    refused: list[str] = field(default_factory=list)


def check(folder: str, relpath: str, body: bytes) -> str | None:
    """Why `body` may not be kept as `folder/relpath`, or None if it may (pure)."""
    name = relpath.rsplit("/", 1)[-1]
    if folder == layout.EMOTES:
        return image_problem(body, MAX_IMAGE)
    if folder == layout.IMAGES:
        digest, _, ext = name.partition(".")
        if hashlib.sha256(body).hexdigest() != digest:
            return "hash does not match the name"
        return image_problem(body, MAX_IMAGE) or (None if image_kind(body) == ext else "kind does not match the name")
    if folder == layout.MEDIA:
        url_hash, _, _ = relpath.partition("/")
        stem, _, ext = name.partition(".")
        if ext == "metadata.json":
            return _metadata_problem(url_hash, stem, body)
        if len(body) > MAX_BYTES:
            return "too large"
        if layout.b64_hash(body) != stem:
            return "hash does not match the name"
        if ext in ("png", "gif", "webp", "avif", "jpeg", "jpg") and image_kind(body) is None:
            return "not an image"
        return None
    if folder in (layout.THIRDPARTY, layout.BADGES):
        return _snapshot_problem(folder, relpath, body)
    return "not a media folder"


MAX_SNAPSHOT = 16 << 20  # bytes: media.snapshots.API_CAP
LAST_STAMP = 253402300799  # 9999-12-31T23:59:59Z: the last second a snapshot's name can spell


def _snapshot_problem(folder: str, relpath: str, body: bytes) -> str | None:
    """Why a peer's snapshot file may not be kept: it must read as the snapshot its path names."""
    from media.badges import BadgeSnapshot  # noqa: PLC0415 (only for these two folders)
    from media.snapshots import stamp  # noqa: PLC0415
    from media.thirdparty import GLOBAL, Snapshot  # noqa: PLC0415

    if len(body) > MAX_SNAPSHOT:
        return "too large"
    parts = relpath.split("/")
    try:
        doc = orjson.loads(body)
        snap: Snapshot | BadgeSnapshot
        if folder == layout.THIRDPARTY:
            snap = Snapshot.from_json(doc, relpath)
            if snap.provider != parts[0]:
                return "a snapshot of another provider"
        else:
            snap = BadgeSnapshot.from_json(doc, relpath)
    except (orjson.JSONDecodeError, ValueError):
        return "not a snapshot"
    if ("_global" if snap.scope == GLOBAL else snap.scope) != parts[-2]:
        return "a snapshot of another scope"
    if not 0 <= snap.time <= LAST_STAMP:  # also NaN; outside it the name could not be spelled
        return "taken at an impossible time"
    if not parts[-1].startswith(stamp(snap.time)):
        return "taken at another time than its name says"
    return None


def _metadata_problem(url_hash: str, stem: str, body: bytes) -> str | None:
    if len(body) > MAX_METADATA:
        return "metadata too large"
    try:
        meta = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "metadata is not JSON"
    if not isinstance(meta, dict) or not isinstance(meta.get("url"), str) or not isinstance(meta.get("filename"), str):
        return "metadata lacks url or filename"
    if layout.b64_hash(meta["url"].encode("utf-8")) != url_hash:
        return "metadata url does not hash to its folder"
    if meta["filename"].partition(".")[0] != stem:
        return "metadata names another file"
    return None


def sync_extras(
    root: str,
    peers: Iterable[Peer],
    folders: Iterable[str] = layout.EXTRAS,
    on_refusal: Callable[[str], None] = lambda line: None,
    *,
    peer_deadline: float = PEER_DEADLINE,
) -> ExtrasStats:
    """Fetch every listed file of `folders` this ROOT lacks from each peer, checked.

    A peer's refusals past the first SHOWN_PER_PEER are counted, not kept, and told in one line;
    a folder is left for the next pass after GIVE_UP_AFTER refusals in a row, and a peer after
    `peer_deadline` seconds, each with one line, so a hostile or slow peer costs bounded time
    and output."""
    store = MediaStore(root)
    stats = ExtrasStats()
    folders = list(folders)

    for peer in peers:
        shown = 0
        hidden = 0

        def refuse(line: str) -> None:
            nonlocal shown, hidden
            stats.refusals += 1
            if shown < SHOWN_PER_PEER:
                shown += 1
                stats.refused.append(line)
                on_refusal(line)
            else:
                hidden += 1

        def say(line: str) -> None:  # a summary line: always shown, counted as no refusal
            stats.refused.append(line)
            on_refusal(line)

        ends = time.monotonic() + peer_deadline
        late = _sync_peer(store, peer, folders=folders, stats=stats, refuse=refuse, say=say, ends=ends)
        if hidden:
            say(f"{peer.base}: {hidden:,} more refusals not shown")
        if late:
            say(f"{peer.base}: the extras took over {peer_deadline:g} s; the rest waits for the next pass")
    return stats


def _sync_peer(
    store: MediaStore,
    peer: Peer,
    *,
    folders: list[str],
    stats: ExtrasStats,
    refuse: Callable[[str], None],
    say: Callable[[str], None],
    ends: float,
) -> bool:
    """One peer's folders into `store`; True if its time ran out before they were done."""
    for folder in folders:
        if time.monotonic() > ends:
            return True
        try:
            body = peer.get(f"/extras/{quote(folder)}", MAX_LISTING)
            names = names_list(body, peer.url(f"/extras/{folder}")) if body is not None else []
        except PeerError as e:
            refuse(str(e))
            if e.unreachable:  # its other folders would each wait out the same retries
                say(f"{peer.base}: its other extras folders wait for the next pass")
                return False
            continue
        except InputError as e:
            refuse(str(e))
            continue
        stats.listed += len(names)
        cap = MAX_IMAGE if folder != layout.MEDIA else MAX_BYTES
        in_a_row = 0
        for relpath in names:
            if in_a_row >= GIVE_UP_AFTER:
                say(
                    f"{peer.base}: /extras/{folder}: {GIVE_UP_AFTER} refusals in a row; the rest waits for another pass"
                )
                break
            if time.monotonic() > ends:
                return True
            in_a_row += 1  # back to 0 below unless refused
            if not layout.relpath_ok(folder, relpath):
                refuse(f"{peer.base}: /extras/{folder}: {relpath[:80]!r}: not a name we keep")
                continue
            try:
                if not store.missing(f"{folder}/{relpath}"):
                    in_a_row = 0
                    continue
                data = peer.get(f"/segments/{quote(folder)}/{quote(relpath)}", cap)
            except PeerError as e:
                refuse(str(e))
                continue
            except ValueError as e:  # a local symlink out of ROOT
                refuse(f"{folder}/{relpath}: {e}")
                continue
            if data is None:
                stats.gone += 1
                in_a_row = 0
                continue
            problem = check(folder, relpath, data)
            if problem is not None:
                refuse(f"{peer.base}: /segments/{folder}/{relpath}: {problem}")
                continue
            in_a_row = 0
            if store.write(f"{folder}/{relpath}", data):
                stats.fetched += 1
                stats.bytes += len(data)
    return False


def parse_folders(text: str) -> list[str]:
    """`--extras emotes,media` as a list; `none` or empty for none. ValueError for an unknown name."""
    names = [n.strip() for n in text.split(",") if n.strip() and n.strip() != "none"]
    unknown = [n for n in names if n not in layout.EXTRAS]
    if unknown:
        raise ValueError(f"unknown extras folder {unknown[0]!r} (known: {', '.join(layout.EXTRAS)})")
    return names


def sync_extras_from(
    root: str,
    urls: Iterable[str],
    folders: Iterable[str],
    *,
    timeout: float = 20.0,
    peer_deadline: float = PEER_DEADLINE,
    on_refusal: Callable[[str], None] = lambda line: None,
) -> ExtrasStats:
    """`sync_extras` from peers given by their base URLs."""
    pool = new_pool(4)
    peers = [Peer(url, pool, timeout=timeout, total=max(timeout * 6, 30.0)) for url in urls]
    return sync_extras(root, peers, list(folders), on_refusal, peer_deadline=peer_deadline)
