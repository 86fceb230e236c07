"""Raw recordings on disk: finding, grouping and reading them (the writer is recorder.rawwriter).

Reading is forgiving and loud: a torn last line (the recorder died mid-write) or a corrupt line in
the middle is reported as a `Problem` naming the file and line, skipped, and everything else is
still returned.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from formats.errors import InputError
from formats.rawcodec import (
    Event,
    Header,
    decode_line,
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
