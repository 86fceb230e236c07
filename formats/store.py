"""Batch files on disk: the archive's I/O shell (layout in ARCHIVE_FORMAT.md section 1).

Writes are atomic and durable: bytes go to a temporary name in the target folder, are fsynced,
renamed into place, and the folder is fsynced, so a crash leaves either no file or the whole file,
and a file that exists has reached the disk before anything downstream (a merge deleting its inputs)
relies on it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from formats.canonical import (
    batch_relpath,
    check_channel_dirname,
    content_hash,
    is_hour_folder,
    parse_batch_name,
)

TEMP_SUFFIX = ".temp"
# `write_bytes_atomic`'s temporary names: the target's name, a uuid4 in hex, `.temp`.
_OUR_TEMP = re.compile(r".+\.[0-9a-f]{32}\.temp\Z", re.ASCII)
# A write lasts seconds at most (one file, one fsync): a temporary file of ours older than this
# belongs to no live writer, and is the debris of a killed one.
DEBRIS_AGE = 600  # s
# Where a merge moves damaged batch files: ROOT/quarantine/CHANNEL/chat/HOUR/NAME (never deleted).
QUARANTINE = "quarantine"


def channel_chat_dir(root: str, channel: str) -> str:
    return os.path.join(root, check_channel_dirname(channel), "chat")


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from e
    finally:
        os.close(fd)


def makedirs_durable(path: str) -> None:
    """Create `path` and fsync each new folder's parent, so the new entries survive a crash."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        makedirs_durable(parent)
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    fsync_dir(parent or ".")


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically and durably (temp file, fsync, rename, fsync folder)."""
    folder = os.path.dirname(path) or "."  # a bare `ck.json` lives in the current folder
    makedirs_durable(folder)
    temp = f"{path}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if e.filename is None:  # a failed write or fsync names no file: say which one (a full disk)
            raise OSError(e.errno, e.strerror, path) from e
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(folder)


def is_debris_name(name: str) -> bool:
    """Whether `name` is a temporary name `write_bytes_atomic` makes (and so ours to remove)."""
    return _OUR_TEMP.match(name) is not None


def remove_debris(folder: str, age: float = DEBRIS_AGE, now: float | None = None) -> list[str]:
    """Remove our own temporary files in `folder` (`is_debris_name`) last changed more than `age`
    seconds before `now`: what a killed write left behind. Younger ones may belong to a writer at
    work right now and are left; other names are never touched. Returns the paths removed."""
    now = time.time() if now is None else now
    removed = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not is_debris_name(entry.name):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < now - age:
                        os.unlink(entry.path)
                        removed.append(entry.path)
                except FileNotFoundError:
                    continue  # renamed or removed meanwhile: no debris
    except (FileNotFoundError, NotADirectoryError):
        return []
    return removed


def write_batch_bytes(root: str, channel: str, batch_time: int, data: bytes) -> tuple[str, bool]:
    """Store one batch's bytes. Returns (path, written); an existing file of the same name is kept."""
    hour, name = batch_relpath(batch_time, content_hash(data))
    path = os.path.join(channel_chat_dir(root, channel), hour, name)
    if os.path.exists(path):
        return path, False
    write_bytes_atomic(path, data)
    return path, True


class BatchWriter:
    """Stores batches (`write_batch_bytes`) on a thread of its own, so that the disk's waits (the
    write, the two fsyncs, the rename) overlap the caller's work: they release the GIL. The same
    guarantees as `write_batch_bytes` one by one: a file is either absent or complete under its
    name, and every batch put is on disk when `close()` returns. At most `depth` batches wait, so
    memory stays flat. The first error (a full disk, an OSError naming the file) stops the writing:
    no later batch is written, and the error is raised as it was met by the next `put` or by
    `close`, so the caller reports it as it would have without the thread.

    Use as a context manager; leaving it on an exception waits for the batches already put.
    """

    def __init__(self, root: str, depth: int = 2) -> None:
        self.root = root
        self.written = 0
        self.existing = 0
        self._jobs: queue.Queue[tuple[str, int, bytes] | None] = queue.Queue(depth)
        self._cleaned: set[str] = set()  # hour folders whose debris was removed in this run
        self._error: BaseException | None = None
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._failed:
                continue  # stopped at the first error: drain without writing
            try:
                path, written = write_batch_bytes(self.root, *job)
                folder = os.path.dirname(path)
                if folder not in self._cleaned:  # a killed run's leftovers, once per folder and run
                    self._cleaned.add(folder)
                    remove_debris(folder)
            except BaseException as e:  # handed to the caller's thread, which raises it once
                self._failed = True
                self._error = e
                continue
            if written:
                self.written += 1
            else:
                self.existing += 1

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, channel: str, batch_time: int, data: bytes) -> None:
        self._raise()
        self._jobs.put((channel, batch_time, data))

    def close(self) -> None:
        """Wait until every batch put is on disk; raise the first error, if any."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        if value is None:
            self.close()
            return
        with contextlib.suppress(BaseException):  # the caller's own error wins
            self.close()


@dataclass(frozen=True, order=True)
class BatchFile:
    """A batch file found on disk."""

    channel: str
    batch_time: int
    digest: str
    path: str


# Listing. Every stage lists the archive through these: a missing folder is empty; any other
# OSError (a folder that may not be read) propagates with the folder's name, for the caller to
# report as it must (verify, which judges every name it finds, lists with os.scandir itself).


def list_channels(root: str) -> list[str]:
    """The channels under `root` (names with a `chat` folder), sorted."""
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.isdir(os.path.join(root, n, "chat"))]


def list_hours(root: str, channel: str) -> list[str]:
    """The hour folders of a channel (`YYYY-MM-DDTHH`), in time order."""
    try:
        names = os.listdir(os.path.join(root, channel, "chat"))
    except FileNotFoundError:
        return []
    return sorted(n for n in names if is_hour_folder(n))


def hour_batch_files(root: str, channel: str, hour: str, prefix: str = "") -> list[BatchFile]:
    """The batch files of one hour folder (whose names start with `prefix`), in time order.
    Temporary and foreign files are skipped, as upstream's reader skips them."""
    folder = os.path.join(root, channel, "chat", hour)
    try:
        names = sorted(name for name in os.listdir(folder) if name.startswith(prefix))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        parsed = parse_batch_name(hour, name)
        if parsed is not None:
            out.append(BatchFile(channel, parsed[0], parsed[1], os.path.join(folder, name)))
    return out


def minute_batch_files(root: str, channel: str, minute: int) -> list[BatchFile]:
    """The batch files named for `minute` (a batch time), in name order."""
    hour, name = batch_relpath(minute, "")  # name: "MM:SS-.json"; only those names are parsed
    return [bf for bf in hour_batch_files(root, channel, hour, name[:6]) if bf.batch_time == minute]


def iter_batch_files(root: str, channel: str) -> Iterator[BatchFile]:
    """Every batch file of a channel, in time order."""
    for hour in list_hours(root, channel):
        yield from hour_batch_files(root, channel, hour)
