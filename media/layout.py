"""Where the media stage keeps each file under ROOT, and the names it will accept (pure).

ROOT is the archive's base folder (beside `<channel>/chat/...`). Three folders, the first two in
wubloader's layout byte for byte (WUBLOADER_MEDIA.md) so nodes share them:

- `emotes/<emote id>/<theme>-<scale>`: one Twitch emote variant; six per emote (light and dark,
  1.0, 2.0 and 3.0), fetched from `<cdn>/emoticons/v2/<id>/default/<theme>/<scale>`.
- `media/<url hash>/<content hash>.<ext>` and `media/<url hash>/<content hash>.metadata.json`: a
  file linked in chat and what is known of its fetch. Hashes are SHA-256, base64url, no padding.
- `images/<hh>/<sha256 hex>.<ext>`: our own content-addressed image store (third-party emotes,
  badges): the name is the SHA-256 of the bytes in hex, `hh` its first two digits, `ext` the kind
  the magic bytes say (`media.sniff`). Not a wubloader folder; shared the same way.

Every name a peer may send is checked against a grammar of plain ASCII (`relpath_ok`) before it is
joined to ROOT: no `..`, no separators inside a part, no hidden or temporary names, nothing that
could leave ROOT or collide with a file we would write.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

EMOTES = "emotes"
MEDIA = "media"
IMAGES = "images"
THIRDPARTY = "thirdparty"  # third-party emote set snapshots (media.snapshots)
BADGES = "badges"  # Twitch badge snapshots (media.badges)
EXTRAS = (EMOTES, MEDIA, IMAGES, THIRDPARTY, BADGES)  # the folders `serve` lists under /extras and `sync` fetches
_SNAPSHOT_PROVIDERS = ("bttv", "ffz", "7tv")
_SNAPSHOT_SCOPE = re.compile(r"_global|[a-z0-9][a-z0-9_]{0,63}")
_SNAPSHOT_NAME = re.compile(r"\d{8}T\d{6}Z(?:-\d{1,3})?\.json")

THEMES = ("light", "dark")
SCALES = ("1.0", "2.0", "3.0")
VARIANTS = tuple(f"{theme}-{scale}" for theme in THEMES for scale in SCALES)

TWITCH_CDN = "https://static-cdn.jtvnw.net"

# Twitch emote ids: digits (`25`) or `emotesv2_` and 32 hex digits; anything word-like up to 64
# characters is accepted so a new id shape still works, and nothing else reaches a path.
_EMOTE_ID = re.compile(r"[A-Za-z0-9_]{1,64}")
_B64_HASH = re.compile(r"[A-Za-z0-9_-]{43}")
_MEDIA_EXT = re.compile(r"[a-z0-9.-]{0,32}")
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
IMAGE_EXTS = ("png", "gif", "webp", "avif", "jpg")


def b64_hash(data: bytes) -> str:
    """SHA-256 of `data`, base64url without padding (wubloader's batch and media hashes)."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode("ascii").rstrip("=")


def emote_id_ok(emote_id: str) -> bool:
    return _EMOTE_ID.fullmatch(emote_id) is not None


def emote_relpath(emote_id: str, variant: str) -> str:
    """`emotes/<id>/<theme>-<scale>`. ValueError for an id or variant outside the grammar."""
    if not emote_id_ok(emote_id) or variant not in VARIANTS:
        raise ValueError(f"not an emote variant: {emote_id!r} {variant!r}")
    return f"{EMOTES}/{emote_id}/{variant}"


def emote_url(emote_id: str, variant: str, cdn: str = TWITCH_CDN) -> str:
    """The CDN URL of one variant: `<cdn>/emoticons/v2/<id>/default/<theme>/<scale>`."""
    theme, scale = variant.split("-", 1)
    return f"{cdn.rstrip('/')}/emoticons/v2/{emote_id}/default/{theme}/{scale}"


def emote_ids(tag: str) -> list[str]:
    """The emote ids an `emotes` tag names (`id:0-4,6-10/id2:12-15`), in order, once each.
    Parts that do not parse, or ids outside the grammar, are skipped: a tag is untrusted text."""
    out: dict[str, None] = {}
    for part in tag.split("/"):
        emote_id, sep, _ranges = part.partition(":")
        if sep and emote_id_ok(emote_id):
            out[emote_id] = None
    return list(out)


def record_emote_ids(record: dict[str, Any]) -> list[str]:
    """The emote ids of one archive record (its `tags.emotes`), [] when it names none."""
    tags = record.get("tags")
    if not isinstance(tags, dict):
        return []
    tag = tags.get("emotes")
    return emote_ids(tag) if isinstance(tag, str) and tag else []


def media_ext(content_type: str) -> str:
    """The extension wubloader derives from a content type: the part after `/`, cut at the first
    character outside `[a-z0-9.-]` (`image/svg+xml` -> `svg`; a hostile type -> harmless)."""
    _, _, sub = content_type.partition("/")
    m = re.match(r"[a-z0-9.-]*", sub)
    ext = m.group(0) if m else ""
    # `..` or a leading `.` would make a hidden or odd name; keep the grammar of `relpath_ok`
    return ext.strip(".")[:32]


def media_names(url: str, content: bytes, content_type: str) -> tuple[str, str, str]:
    """(folder, content file, metadata file) of one fetched link, relative to ROOT:
    `media/<url hash>`, `<content hash>.<ext>`, `<content hash>.metadata.json`."""
    content_name = b64_hash(content)
    return (
        f"{MEDIA}/{b64_hash(url.encode('utf-8'))}",
        f"{content_name}.{media_ext(content_type)}",
        f"{content_name}.metadata.json",
    )


def media_metadata(
    url: str, filename: str, redirects: Iterable[str], content_type: str, *, fetched_by: str, fetch_time: float
) -> bytes:
    """The metadata json of one fetched link, with wubloader's keys in its order."""
    meta = {
        "url": url,
        "filename": filename,
        "redirects": list(redirects),
        "content_type": content_type,
        "fetched_by": fetched_by,
        "fetch_time": fetch_time,
    }
    return json.dumps(meta).encode("utf-8")


def image_relpath(name: str) -> str:
    """`images/<hh>/<hex>.<ext>` of an image store name `<hex>.<ext>`. ValueError if malformed."""
    if not image_name_ok(name):
        raise ValueError(f"not an image store name: {name!r}")
    return f"{IMAGES}/{name[:2]}/{name}"


def image_name_ok(name: str) -> bool:
    digest, dot, ext = name.partition(".")
    return bool(dot) and _HEX_HASH.fullmatch(digest) is not None and ext in IMAGE_EXTS


def relpath_ok(folder: str, relpath: str) -> bool:
    """Whether `relpath` (a peer's listing entry under `folder`) is a name we would write there.
    ASCII only, no hidden or temporary names, exactly the depth and shape of the layout."""
    if not relpath.isascii() or "\\" in relpath or "\x00" in relpath:
        return False
    parts = relpath.split("/")
    if folder == EMOTES:
        return len(parts) == 2 and emote_id_ok(parts[0]) and parts[1] in VARIANTS
    if folder == MEDIA:
        if len(parts) != 2 or _B64_HASH.fullmatch(parts[0]) is None:
            return False
        stem, dot, rest = parts[1].partition(".")
        if not dot or _B64_HASH.fullmatch(stem) is None:
            return False
        return rest == "metadata.json" or (
            _MEDIA_EXT.fullmatch(rest) is not None and not rest.startswith(".") and ".." not in rest
        )
    if folder == IMAGES:
        return len(parts) == 2 and image_name_ok(parts[1]) and parts[0] == parts[1][:2]
    if folder == THIRDPARTY:  # <provider>/<scope>/<stamp>.json
        return (
            len(parts) == 3
            and parts[0] in _SNAPSHOT_PROVIDERS
            and _SNAPSHOT_SCOPE.fullmatch(parts[1]) is not None
            and _SNAPSHOT_NAME.fullmatch(parts[2]) is not None
        )
    if folder == BADGES:  # <scope>/<stamp>.json
        return (
            len(parts) == 2
            and _SNAPSHOT_SCOPE.fullmatch(parts[0]) is not None
            and _SNAPSHOT_NAME.fullmatch(parts[1]) is not None
        )
    return False
