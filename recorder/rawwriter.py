"""The recorder's file writer: appends events to hourly raw recordings (formats.rawcodec).

Writing is append-only, flushed per line, fsynced at least once per `fsync_interval` and on
rotation and close, and rotated hourly (by the event's own time). Finished hours can be gzipped.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import BinaryIO

from formats.rawcodec import (
    CLOSE,
    DIALECT_TWITCH,
    OPEN,
    RECV,
    SEND,
    TICK,
    Event,
    Header,
    check_recorder_name,
    check_slug,
    encode_event,
    encode_header,
)

_HOUR_US = 3600 * 1_000_000


def raw_file_path(out_dir: str, recorder: str, slug: str, at_us: int) -> str:
    hour = datetime.fromtimestamp(at_us / 1_000_000, UTC).strftime("%Y-%m-%dT%H")
    return os.path.join(out_dir, recorder, f"{hour}.{slug}.jsonl")


def gzip_file(path: str) -> str:
    """Compress a finished raw file to PATH.gz durably, then remove the original."""
    target = path + ".gz"
    temp = target + ".temp"
    with open(path, "rb") as src, gzip.open(temp, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with open(temp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temp, target)
    os.unlink(path)
    return target


class RawWriter:
    """Appends events of one recorder process to hourly raw files. Thread-safe.

    `write_*` methods take the event time in microseconds; the file hour follows that time.
    OSError (a full or read-only disk) propagates: the caller decides whether it can go on.
    """

    def __init__(
        self,
        out_dir: str,
        recorder: str,
        slug: str,
        host: str,
        software: str,
        *,
        fsync_interval: float = 1.0,
        gzip_finished: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        on_rotate: Callable[[str], None] | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.recorder = check_recorder_name(recorder)
        self.slug = check_slug(slug)
        self.host = host
        self.software = software
        self.fsync_interval = fsync_interval
        self.gzip_finished = gzip_finished
        self._monotonic = monotonic
        self._on_rotate = on_rotate
        self._lock = threading.Lock()
        self._seq = 0
        self._file: BinaryIO | None = None
        self._path: str | None = None
        self._last_fsync = monotonic()
        self._dirty = False
        self._hour_end_us = -1  # the current file takes events until this time (exclusive)
        self._closed = False
        self.bytes_written = 0
        self.fsync_seconds_total = 0.0
        self.fsync_count = 0
        self.paths: list[str] = []

    def _rotate_to(self, path: str, at_us: int) -> None:
        old = self._path
        self._close_file()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 (held open across calls; closed in _close_file)
        self._path = path
        self.paths.append(path)
        header = Header(self.recorder, self.slug, self.host, self.software, self._seq, at_us)
        self._seq += 1
        self._append(encode_header(header))
        if old is not None and self._on_rotate is not None:
            self._on_rotate(old)
        if old is not None and self.gzip_finished:
            threading.Thread(target=_gzip_quietly, args=(old,), daemon=True).start()

    def _append(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._file.flush()
        self.bytes_written += len(data)
        self._dirty = True

    def _write(self, kind: str, conn: int, text: str, at_us: int, dialect: str = DIALECT_TWITCH) -> int:
        with self._lock:
            if self._closed:
                raise ValueError("write to a closed RawWriter")
            # Rotation only moves forward: an event stamped before the current hour (the wall clock
            # stepped back) stays in the current file. Going back to an older hour's file would put
            # a second header in the middle of it. This also spares a strftime per event.
            if at_us >= self._hour_end_us or self._file is None:
                self._hour_end_us = -1  # until the new file is open: a failed rotation is retried
                self._rotate_to(raw_file_path(self.out_dir, self.recorder, self.slug, at_us), at_us)
                self._hour_end_us = (at_us // _HOUR_US + 1) * _HOUR_US
            seq = self._seq
            self._seq += 1
            self._append(encode_event(Event(kind, seq, at_us, conn, text, dialect)))
            if self._monotonic() - self._last_fsync >= self.fsync_interval:
                self._fsync()
            return seq

    def write_open(self, conn: int, server: str, at_us: int, dialect: str = DIALECT_TWITCH) -> int:
        return self._write(OPEN, conn, server, at_us, dialect)

    def write_recv(self, conn: int, line: str, at_us: int) -> int:
        return self._write(RECV, conn, line, at_us)

    def write_send(self, conn: int, line: str, at_us: int) -> int:
        return self._write(SEND, conn, line, at_us)  # encode_event redacts credentials

    def write_close(self, conn: int, reason: str, at_us: int) -> int:
        return self._write(CLOSE, conn, reason, at_us)

    def write_tick(self, conn: int, at_us: int) -> int:
        return self._write(TICK, conn, "", at_us)

    def _fsync(self) -> None:
        if self._file is not None and self._dirty:
            start = self._monotonic()
            os.fsync(self._file.fileno())
            self.fsync_seconds_total += self._monotonic() - start
            self.fsync_count += 1
            self._dirty = False
        self._last_fsync = self._monotonic()

    def sync(self) -> None:
        """fsync now (the recorder calls this from a timer so quiet periods are durable too)."""
        with self._lock:
            self._fsync()

    def _close_file(self) -> None:
        if self._file is not None:
            self._fsync()
            self._file.close()
            self._file = None

    def close(self) -> None:
        """fsync and close; later writes raise ValueError (they would otherwise start a new file)."""
        with self._lock:
            self._closed = True
            self._close_file()
            if self._path is not None and self.gzip_finished:
                _gzip_quietly(self._path)


def _gzip_quietly(path: str) -> None:
    with contextlib.suppress(OSError):  # the plain file stays; the reader takes either
        gzip_file(path)
