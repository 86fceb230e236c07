"""Raw recordings on disk: the reader the replay uses and the writer the recorder uses.

Reading is forgiving and loud: a torn last line (the recorder died mid-write) or a corrupt line in
the middle is reported as a `Problem` naming the file and line, skipped, and everything else is
still returned. Writing is append-only, flushed per line, fsynced at least once per
`fsync_interval` and on rotation and close, and rotated hourly (by the event's own time).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from replay.errors import InputError
from replay.rawformat import (
    CLOSE,
    DIALECT_TWITCH,
    OPEN,
    RECV,
    SEND,
    Event,
    Header,
    check_recorder_name,
    check_slug,
    decode_line,
    encode_event,
    encode_header,
)

RAW_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class Problem:
    """Something wrong in a raw file that was skipped. `line` is 1-based, None for the whole file."""

    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.message}"


def find_raw_files(paths: Iterable[str]) -> list[str]:
    """The raw files named by `paths` (files, or folders searched recursively), sorted."""
    found: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            for folder, _dirs, names in os.walk(path):
                found.update(os.path.join(folder, n) for n in names if n.endswith(RAW_SUFFIXES))
        elif os.path.isfile(path):
            found.add(path)
        else:
            raise InputError("no such file or folder", path)
    return sorted(found)


def _open_raw(path: str) -> BinaryIO:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_header(path: str) -> Header:
    try:
        with _open_raw(path) as f:
            first = f.readline()
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(f"cannot read: {e}", path) from None
    if not first.endswith(b"\n"):
        raise InputError("no complete header line", path, 1)
    try:
        header = decode_line(first[:-1])
    except InputError as e:
        raise e.at(path, 1) from None
    if not isinstance(header, Header):
        raise InputError("first line is not a header", path, 1)
    return header


# Per file, damaged lines are reported one by one up to this many, then counted in one summary
# problem: a file mangled throughout must not flood the report or the memory.
PROBLEMS_PER_FILE = 100


def iter_file_events(path: str, problems: list[Problem]) -> Iterator[Event]:
    """Every readable event of one raw file after its header, in file order."""
    number = 1
    damaged = 0

    def report(line: int, message: str) -> None:
        nonlocal damaged
        damaged += 1
        if damaged <= PROBLEMS_PER_FILE:
            problems.append(Problem(path, line, message))

    try:
        with _open_raw(path) as f:
            f.readline()  # the header, checked by read_header
            for number, data in enumerate(f, 2):
                if not data.endswith(b"\n"):
                    report(number, "torn last line (recorder stopped mid-write); skipped")
                    break
                try:
                    event = decode_line(data[:-1])
                except InputError as e:
                    report(number, f"{e.message}; line skipped")
                    continue
                if isinstance(event, Header):
                    report(number, "unexpected second header; line skipped")
                    continue
                yield event
    except (OSError, EOFError, zlib.error) as e:
        report(number + 1, f"file ends early or is damaged ({e}); rest skipped")
    if damaged > PROBLEMS_PER_FILE:
        problems.append(Problem(path, None, f"{damaged - PROBLEMS_PER_FILE} more damaged lines skipped"))


@dataclass
class Stream:
    """All files written by one recorder process, in sequence order."""

    header: Header
    files: list[tuple[int, str]] = field(default_factory=list)  # (first seq, path)

    @property
    def key(self) -> tuple[str, str]:
        return (self.header.recorder, self.header.slug)


def group_streams(paths: Iterable[str], problems: list[Problem]) -> list[Stream]:
    """Group raw files by the process that wrote them (recorder name and slug)."""
    streams: dict[tuple[str, str], Stream] = {}
    for path in paths:
        try:
            header = read_header(path)
        except InputError as e:
            problems.append(Problem(path, e.line, f"{e.message}; file skipped"))
            continue
        stream = streams.setdefault((header.recorder, header.slug), Stream(header))
        stream.files.append((header.seq, path))
    for stream in streams.values():
        stream.files.sort()
        stream.header = read_header(stream.files[0][1])
    return [streams[k] for k in sorted(streams)]


def iter_stream_events(
    stream: Stream, problems: list[Problem], on_file_done: Callable[[str], None] | None = None,
) -> Iterator[Event]:
    """A process's events in sequence order. Repeated sequence numbers (the same hour given both
    plain and gzipped, or a file given twice) are read once."""
    last_seq = -1
    for _first, path in stream.files:
        for event in iter_file_events(path, problems):
            if event.seq <= last_seq:
                continue
            last_seq = event.seq
            yield event
        if on_file_done is not None:
            on_file_done(path)


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
        self, out_dir: str, recorder: str, slug: str, host: str, software: str, *,
        fsync_interval: float = 1.0, gzip_finished: bool = False,
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

    @property
    def path(self) -> str | None:
        return self._path

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
