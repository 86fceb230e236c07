"""The follower's checkpoint: where each raw stream was read to, and the engine state there.

One JSON file, replaced atomically and durably (formats.store.write_bytes_atomic) after the batch
files it covers are on disk, so a crash at any moment leaves either the old or the new checkpoint,
and the batches of everything the checkpoint says was read. A restart re-reads at most what came
after the last checkpoint: rewriting a batch file that is already there (or already merged) changes
nothing, because names are content hashes and the merge is idempotent.

Per stream it holds the file being read (its first sequence number and path), the byte offset of
the first unread line (in the uncompressed bytes, so the `.gz` that replaces a finished hour keeps
the same offsets), the line number, the last sequence number fed, a fingerprint of the bytes
before the offset, and the engine's state (replay/engine.py `state()`), open batches included. Its
size is that of the open batches (a few minutes of chat), whatever the length of the recordings,
so a restart costs the same after a day as after a minute.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any, Self

import orjson

from formats.errors import InputError, UsageError
from formats.store import write_bytes_atomic

FORMAT = "chat-archiver-follow-checkpoint"
# Bump when the entries or the engine's state change shape: an older checkpoint is then not used
# (every stream is replayed from its start, which is always safe), never misread.
VERSION = 1
# Bytes before the offset that the fingerprint covers: the last lines read, enough to notice a file
# that was replaced, truncated or edited where the follower stopped.
FINGERPRINT_SPAN = 4096

Reader = Callable[[str, int, int], bytes | None]  # (path, offset, size) -> bytes, None if gone


def fingerprint(read: Reader, path: str, offset: int) -> str | None:
    """sha256 of the `FINGERPRINT_SPAN` bytes before `offset` of `path`; None if they are not there."""
    start = max(0, offset - FINGERPRINT_SPAN)
    data = read(path, start, offset - start)
    if data is None or len(data) != offset - start:
        return None
    return hashlib.sha256(data).hexdigest()


def encode(streams: list[dict[str, Any]], timing: dict[str, int]) -> bytes:
    """The checkpoint's bytes (taken at once: the engine state in `streams` is live)."""
    return orjson.dumps({"format": FORMAT, "version": VERSION, "timing": timing, "streams": streams})


class Writer:
    """Writes checkpoints atomically and durably, off the caller's thread, one at a time and in
    order: the follower goes on reading while the disk syncs a few megabytes. An error (a full disk)
    is raised by the next `write()` or by `wait()`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _run(self, data: bytes) -> None:
        try:
            write_bytes_atomic(self.path, data)
        except BaseException as e:  # handed to the follower's thread by wait()
            self._error = e

    def write(self, data: bytes) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(data,), name="checkpoint", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def load(path: str) -> dict[str, Any] | None:
    """The checkpoint, or None if there is none. InputError (naming the file) if it is damaged."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"cannot read the checkpoint: {e.strerror}", path) from None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InputError(f"damaged checkpoint ({e.msg})", path) from None
    if type(obj) is not dict or obj.get("format") != FORMAT or type(obj.get("streams")) is not list:
        raise InputError("not a follower checkpoint", path)
    if obj.get("version") != VERSION:
        raise InputError(f"checkpoint version {obj.get('version')!r} is not supported", path)
    return obj


class Lock:
    """An exclusive lock next to the checkpoint: one follower per archive (a second one would race
    the first for the same checkpoint). The kernel drops it when the process dies, even by kill -9."""

    def __init__(self, checkpoint_path: str) -> None:
        self.path = checkpoint_path + ".lock"
        self._fd: int | None = None

    def _open(self) -> int:
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def _busy(self) -> str:
        return f"another follower is running on this archive (it holds {self.path})"

    def __enter__(self) -> Self:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(self._busy()) from None
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ArchiveLock(Lock):
    """An exclusive lock on the archive's folder itself: one follower per archive, whatever
    checkpoint each is given (two would race each other's batches and merges). Nothing is added to
    the archive; the kernel drops the lock when the process dies, even by kill -9."""

    def __init__(self, root: str) -> None:
        self.path = root
        self._fd = None

    def _open(self) -> int:
        os.makedirs(self.path, exist_ok=True)
        return os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)

    def _busy(self) -> str:
        return f"another follower is writing this archive ({self.path})"
