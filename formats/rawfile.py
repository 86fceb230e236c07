"""Raw recordings on disk: finding, grouping and reading them (the writer is recorder.rawwriter).

Reading is forgiving and loud: a torn last line (the recorder died mid-write) or a corrupt line in
the middle is reported as a `RawProblem` naming the file and line, skipped, and everything else is
still returned.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from formats.errors import InputError
from formats.rawcodec import MAX_LINE, Decoder, Event, Header, decode_line

RAW_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class RawProblem:
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


def _open_raw(path: str) -> io.BufferedReader | gzip.GzipFile:
    if path.endswith(".gz"):
        return gzip.GzipFile(path, "rb")
    return open(path, "rb")


def read_header(path: str) -> Header:
    try:
        with _open_raw(path) as f:
            first = f.readline(MAX_LINE + 1)  # never a whole over-long line
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(f"cannot read: {e}", path) from None
    if len(first) > MAX_LINE:
        raise InputError(f"header line longer than {MAX_LINE:,} bytes", path, 1)
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


# Bytes read at a time, at most: big enough that the per-read cost vanishes. `read1` reads from
# the file once per call, so a damaged gzip loses only the block it is damaged in.
READ_SIZE = 1 << 20


class RawFileReader:
    """One raw file's lines after its header (checked by read_header), read in blocks through
    `formats.rawcodec.Decoder`, with the problems of the file reported as they are met."""

    def __init__(self, path: str, problems: list[RawProblem]) -> None:
        self.path = path
        self.problems = problems
        self.damaged = 0
        # A caller that counts a block's lines as it walks them sets this to their number before it
        # takes the next block (replay.shell does: its lane counts them anyway), sparing the reader a
        # pass over the block; None: the reader counts them.
        self.lines_passed: int | None = None

    def report(self, line: int, message: str) -> None:
        self.damaged += 1
        if self.damaged <= PROBLEMS_PER_FILE:
            self.problems.append(RawProblem(self.path, line, message))

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """(number of the first line, the raw lines as read, each ending with b"\n") for every block
        of lines read, in file order; `lines` splits one, `event` decodes each line."""
        decoder = Decoder()
        try:
            with _open_raw(self.path) as f:
                while True:
                    data = f.read1(READ_SIZE)
                    decoder.receive_data(data)
                    try:
                        first = decoder.line_number + 1
                        block = decoder.next_block(count=False)
                    except InputError:
                        self.report(decoder.line_number, "torn last line (recorder stopped mid-write); skipped")
                    else:
                        if block:
                            self.lines_passed = None
                            yield first, block
                            passed = self.lines_passed
                            decoder.pass_lines(block.count(b"\n") if passed is None else passed)
                    if not data:
                        break
        except (OSError, EOFError, zlib.error) as e:
            self.report(decoder.line_number + 1, f"file ends early or is damaged ({e}); rest skipped")
        if self.damaged > PROBLEMS_PER_FILE:
            more = self.damaged - PROBLEMS_PER_FILE
            self.problems.append(RawProblem(self.path, None, f"{more} more damaged lines skipped"))

    @staticmethod
    def lines(block: bytes) -> list[bytes]:
        """The lines of a block, without their newlines."""
        lines = block.split(b"\n")
        lines.pop()  # after the block's last newline
        return lines

    def event(self, raw: bytes, number: int) -> Event | None:
        """The event of raw line `number`, or None: the file's header (line 1), or a damaged line
        (reported)."""
        try:
            event = decode_line(raw)
        except InputError as e:
            self.report(number, f"{e.message}; line skipped")
            return None
        if isinstance(event, Header):
            if number > 1:
                self.report(number, "unexpected second header; line skipped")
            return None
        return event


@dataclass
class Stream:
    """All files written by one recorder process, in sequence order."""

    header: Header
    files: list[tuple[int, str]] = field(default_factory=list)  # (first seq, path)


def group_streams(paths: Iterable[str], problems: list[RawProblem]) -> list[Stream]:
    """Group raw files by the process that wrote them (recorder name and slug)."""
    streams: dict[tuple[str, str], Stream] = {}
    for path in paths:
        try:
            header = read_header(path)
        except InputError as e:
            problems.append(RawProblem(path, e.line, f"{e.message}; file skipped"))
            continue
        stream = streams.setdefault((header.recorder, header.slug), Stream(header))
        stream.files.append((header.seq, path))
    for stream in streams.values():
        stream.files.sort()
        stream.header = read_header(stream.files[0][1])
    return [streams[k] for k in sorted(streams)]


def iter_stream_blocks(
    stream: Stream,
    problems: list[RawProblem],
    on_file_done: Callable[[str], None] | None = None,
) -> Iterator[tuple[RawFileReader, int, bytes]]:
    """A process's raw lines in blocks, file by file in sequence order: (the file's reader, number
    of the first line, the block as `RawFileReader.blocks` gives it). `on_file_done` is called once
    a file's last block is taken back."""
    for _first, path in stream.files:
        reader = RawFileReader(path, problems)
        for first, block in reader.blocks():
            yield reader, first, block
        if on_file_done is not None:
            on_file_done(path)


def iter_stream_events(
    stream: Stream,
    problems: list[RawProblem],
    on_file_done: Callable[[str], None] | None = None,
) -> Iterator[Event]:
    """A process's events in sequence order. Repeated sequence numbers (the same hour given both
    plain and gzipped, or a file given twice) are read once."""
    last_seq = -1
    for reader, first, block in iter_stream_blocks(stream, problems, on_file_done):
        lines = reader.lines(block)
        reader.lines_passed = len(lines)
        for number, raw in enumerate(lines, first):
            event = reader.event(raw, number)
            if event is None or event.seq <= last_seq:
                continue
            last_seq = event.seq
            yield event
