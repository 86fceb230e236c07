"""The media folders over HTTP, as wubloader's restreamer shares them (WUBLOADER_HTTP.md).

- `GET /extras/<dir>`: a JSON array of every file under `ROOT/<dir>`, recursively, relative to it.
  A folder that does not exist, or one that is not a media folder, lists as `200 []` (never 404:
  wubloader's backfiller reads every listing as JSON without looking at the status).
- `GET /segments/<dir>/<path>`: the file's bytes.

Only names of the media layout are listed and served (`media.layout.relpath_ok`: ASCII, the exact
depth and shape, no hidden or temporary names), and a path that resolves outside ROOT (a symlink)
is not found. Files are served with `X-Content-Type-Options: nosniff` and a sandboxing CSP: a
linked SVG or HTML-ish file fetched from chat must not run script as this server's origin.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from media import layout
from media.sniff import image_kind
from media.store import MediaStore


@dataclass(frozen=True)
class ExtrasListing:
    folder: str  # "" for a folder that is not ours: lists as []


@dataclass(frozen=True)
class ExtrasFile:
    folder: str
    relpath: str


def route(head: str, rest: list[str]) -> ExtrasListing | ExtrasFile | None:
    """The extras route `/<head>/<rest...>` names, or None when it is not an extras route."""
    if head == "extras" and len(rest) == 1:
        return ExtrasListing(rest[0] if rest[0] in layout.EXTRAS else "")
    if head == "segments" and len(rest) >= 2 and rest[0] in layout.EXTRAS:
        relpath = "/".join(rest[1:])
        if layout.relpath_ok(rest[0], relpath):
            return ExtrasFile(rest[0], relpath)
    return None


FOLDERS = layout.EXTRAS

SECURITY = [
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; sandbox"),
]

Answer = tuple[int, list[tuple[str, str]], Iterable[bytes]]


def listing(root: str, req: ExtrasListing) -> Answer:
    names = [n for n in MediaStore(root).listing(req.folder) if layout.relpath_ok(req.folder, n)] if req.folder else []
    return 200, [("Content-Type", "application/json")], [json.dumps(names).encode("ascii")]


def content_type(folder: str, relpath: str, head: bytes) -> str:
    if relpath.endswith(".metadata.json"):
        return "application/json"
    kind = image_kind(head)
    if kind is not None:
        return f"image/{'jpeg' if kind == 'jpg' else kind}"
    guessed, _ = mimetypes.guess_type("x." + relpath.rsplit(".", 1)[-1]) if folder == layout.MEDIA else (None, None)
    return guessed or "application/octet-stream"


def file(root: str, req: ExtrasFile) -> Answer:
    """The file's bytes, streamed; 404 if it is missing or resolves outside ROOT."""
    try:
        path = MediaStore(root).path(f"{req.folder}/{req.relpath}")
        f = open(path, "rb")  # noqa: SIM115 (closed by the body's iterator)
    except (ValueError, OSError):
        return 404, [("Content-Type", "text/plain; charset=utf-8")], [b"Not found\n"]
    try:
        size = os.fstat(f.fileno()).st_size
        head = f.read(32)
        f.seek(0)
    except OSError:
        f.close()
        return 404, [("Content-Type", "text/plain; charset=utf-8")], [b"Not found\n"]
    headers = [("Content-Type", content_type(req.folder, req.relpath, head)), ("Content-Length", str(size))]
    return 200, headers + SECURITY, _chunks(f)


def _chunks(f: object) -> Iterator[bytes]:
    assert hasattr(f, "read") and hasattr(f, "close")
    try:
        while True:
            chunk = f.read(1 << 16)
            if not chunk:
                return
            yield chunk
    finally:
        f.close()
