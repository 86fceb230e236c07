"""The media folders under ROOT: paths, atomic writes, the content-addressed image store (I/O).

Names come from `media.layout`; this module only touches disk. A file is written under a hidden
temporary name in its own folder (`.<name>.<random>.temp`: listings skip names with a leading
period, so a peer never sees a half-written file), fsynced and renamed into place: a reader sees
either no file or the whole file. A name that exists is never written again, so two writers of
the same name (two workers, two hosts syncing) cannot tear each other's file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator

from formats.errors import InputError
from media import layout
from media.sniff import MAX_IMAGE, image_kind, image_problem


def write_atomic(path: str, data: bytes) -> bool:
    """Write `data` to `path` atomically unless `path` exists. True if this call wrote it."""
    if os.path.exists(path):
        return False
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.temp")
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):  # another writer finished first: keep its (identical-named) file
            os.unlink(temp)
            return False
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return True


class MediaStore:
    """The media folders of one archive ROOT (`emotes/`, `media/`, `images/`)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    # -- paths ----------------------------------------------------------------------------------
    def path(self, relpath: str) -> str:
        """The absolute path of a layout name (`emotes/25/dark-1.0`). ValueError if it would leave
        ROOT (a symlinked folder pointing out of it counts as leaving)."""
        path = os.path.realpath(os.path.join(self.root, relpath))
        if not path.startswith(self.root + os.sep):
            raise ValueError(f"outside the archive: {relpath!r}")
        return path

    def emote_path(self, emote_id: str, variant: str) -> str:
        """`ROOT/emotes/<id>/<theme>-<scale>`."""
        return self.path(layout.emote_relpath(emote_id, variant))

    def missing_variants(self, emote_id: str) -> list[str]:
        """The variants of an emote not yet on disk (all six for a new emote)."""
        return [v for v in layout.VARIANTS if not os.path.exists(self.emote_path(emote_id, v))]

    def media_paths(self, url: str, content: bytes, content_type: str) -> tuple[str, str]:
        """(content file, metadata file) of one fetched link under `ROOT/media/<url hash>/`."""
        folder, name, meta = layout.media_names(url, content, content_type)
        return self.path(f"{folder}/{name}"), self.path(f"{folder}/{meta}")

    def missing(self, relpath: str) -> bool:
        """Whether a layout name is not on disk yet. ValueError if it would leave ROOT."""
        return not os.path.exists(self.path(relpath))

    # -- writes ---------------------------------------------------------------------------------
    def write(self, relpath: str, data: bytes) -> bool:
        """Write a layout name atomically unless it exists. True if this call wrote it."""
        return write_atomic(self.path(relpath), data)

    # -- the content-addressed image store -----------------------------------------------------
    def put_image(self, data: bytes) -> str:
        """Keep an image; return its name `<sha256 hex>.<ext>` (the same bytes give the same name,
        stored once). InputError if `data` is not a PNG/GIF/WebP/AVIF/JPEG under the size cap."""
        problem = image_problem(data, MAX_IMAGE)
        if problem is not None:
            raise InputError(f"not kept as an image: {problem}")
        name = f"{hashlib.sha256(data).hexdigest()}.{image_kind(data)}"
        self.write(layout.image_relpath(name), data)
        return name

    def image_path(self, name: str) -> str:
        """`ROOT/images/<hh>/<name>`. ValueError if `name` is not an image store name."""
        return self.path(layout.image_relpath(name))

    def get_image(self, name: str) -> bytes | None:
        """The bytes of a stored image, or None if absent or if its bytes no longer match its name
        (a damaged file is never handed out as the image it claims to be)."""
        try:
            with open(self.image_path(name), "rb") as f:
                data = f.read(MAX_IMAGE + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if hashlib.sha256(data).hexdigest() != name.partition(".")[0]:
            return None
        return data

    # -- listings -------------------------------------------------------------------------------
    def listing(self, folder: str) -> list[str]:
        """Every file under `ROOT/<folder>`, recursively, relative to it, sorted; hidden names
        (temporary files) skipped; [] for a folder that does not exist (wubloader's /extras)."""
        base = os.path.join(self.root, folder)
        return sorted(self._walk(base, ""))

    def _walk(self, base: str, prefix: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(os.path.join(base, prefix) if prefix else base))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(base, rel)
            elif entry.is_file(follow_symlinks=False):
                yield rel

    def usage(self, folder: str) -> tuple[int, int]:
        """(files, bytes) under `ROOT/<folder>` (the store size metric)."""
        files = total = 0
        for rel in self._walk(os.path.join(self.root, folder), ""):
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(self.root, folder, rel)).st_size
                files += 1
        return files, total
