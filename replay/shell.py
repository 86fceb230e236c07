"""The replay's I/O shell: raw files in, batch files out (the CLI's `replay` calls this, then merges).

Streams (one per recorder process) are independent, so they can be replayed in any order or in
parallel worker processes; batch files are content-addressed, so the tree that results is the same
either way. Closed batches are written as they close, so memory holds only the open batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from formats.canonical import Record
from formats.memory import gc_paused
from formats.rawfile import RawFileReader, RawProblem, Stream, find_raw_files, group_streams, iter_stream_blocks
from formats.store import BatchWriter
from replay.batches import ClosedBatch
from replay.compact import batch_bytes
from replay.engine import ReplayStats, StreamReplayer
from replay.timestamps import DEFAULT_TIMING, Timing


@dataclass
class ReplayReport:
    """What a replay did, for the summary."""

    files: int = 0
    streams: int = 0
    bytes_read: int = 0
    batches_written: int = 0
    batches_existing: int = 0
    records_written: int = 0
    stats: ReplayStats = field(default_factory=ReplayStats)
    raw_problems: list[RawProblem] = field(default_factory=list)
    channels: set[str] = field(default_factory=set)

    def add(self, other: ReplayReport) -> None:
        self.batches_written += other.batches_written
        self.batches_existing += other.batches_existing
        self.records_written += other.records_written
        self.stats.add(other.stats)
        self.raw_problems.extend(other.raw_problems)
        self.channels |= other.channels


@dataclass(frozen=True)
class Options:
    out_root: str
    channels: frozenset[str] | None = None
    since: float | None = None
    until: float | None = None
    timing: Timing = DEFAULT_TIMING


def _in_window(record: Record, since: float | None, until: float | None) -> bool:
    # The reader's rule (ARCHIVE_FORMAT.md section 6): the record's range meets the window.
    if since is not None and record["time"] + record["time_range"] < since:
        return False
    return until is None or record["time"] < until


def _write(batch: ClosedBatch, opts: Options, report: ReplayReport, writer: BatchWriter) -> None:
    records = batch.records
    if opts.since is not None or opts.until is not None:
        records = [r for r in records if _in_window(r, opts.since, opts.until)]
    if not records:
        return
    writer.put(batch.channel, batch.batch_time, batch_bytes(records))
    report.channels.add(batch.channel)
    report.records_written += len(records)


def replay_stream(
    stream: Stream,
    opts: Options,
    on_file_done: Callable[[str], None] | None = None,
) -> ReplayReport:
    """Replay one recorder process's files into `opts.out_root`."""
    with gc_paused():  # the engine makes no reference cycles; the collector would rescan open batches
        return _replay_stream(stream, opts, on_file_done)


def _replay_stream(stream: Stream, opts: Options, on_file_done: Callable[[str], None] | None) -> ReplayReport:
    report = ReplayReport()
    # batches are written on a thread while the engine goes on (formats.store.BatchWriter)
    with BatchWriter(opts.out_root) as writer:
        _feed_stream(stream, opts, report, writer, on_file_done)
    report.batches_written, report.batches_existing = writer.written, writer.existing
    return report


def _feed_stream(
    stream: Stream,
    opts: Options,
    report: ReplayReport,
    writer: BatchWriter,
    on_file_done: Callable[[str], None] | None,
) -> None:
    engine = StreamReplayer(
        stream.header.recorder,
        stream.header.slug,
        timing=opts.timing,
        channels=opts.channels,
        compact=True,
    )
    # iter_stream_events, with the compiled lane taking the common lines (StreamReplayer.feed_raw)
    lane = engine.feed_raw if engine.has_lane else None
    last_seq = -1
    for reader, first, block in iter_stream_blocks(stream, report.raw_problems, on_file_done):
        if lane is None:
            lines = reader.lines(block)
            reader.lines_passed = len(lines)
            for number, raw in enumerate(lines, first):
                last_seq = _feed_line(engine, reader, raw, number, last_seq, opts=opts, report=report, writer=writer)
            continue
        number = first
        offset, size = 0, len(block)
        while offset < size:
            offset, last_seq, passed = lane(block, offset, last_seq)
            number += passed
            if offset == size:
                break
            end = block.index(b"\n", offset)
            last_seq = _feed_line(
                engine,
                reader,
                block[offset:end],
                number,
                last_seq,
                opts=opts,
                report=report,
                writer=writer,
            )
            offset, number = end + 1, number + 1
        reader.lines_passed = number - first  # the block's lines, counted on the way
    for batch in engine.finish():
        _write(batch, opts, report, writer)
    report.stats = engine.stats


def _feed_line(
    engine: StreamReplayer,
    reader: RawFileReader,
    raw: bytes,
    number: int,
    last_seq: int,
    *,
    opts: Options,
    report: ReplayReport,
    writer: BatchWriter,
) -> int:
    """One raw line the reference way (iter_stream_events: decoded, a repeated seq skipped), fed."""
    event = reader.event(raw, number)
    if event is None or event.seq <= last_seq:
        return last_seq
    for batch in engine.feed(event):
        _write(batch, opts, report, writer)
    return event.seq


def replay(
    raw_paths: Iterable[str],
    out_root: str,
    *,
    channels: Iterable[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    timing: Timing = DEFAULT_TIMING,
    jobs: int = 1,
    on_file_done: Callable[[str], None] | None = None,
) -> ReplayReport:
    """Replay raw recordings (files or folders) into the archive at `out_root`: one file per
    connection and minute, as upstream's archiver writes them (merging them is the merge stage's
    job; the CLI runs it next, on `report.channels`). Raises InputError when a path does not exist.
    """
    report = ReplayReport()
    paths = find_raw_files(raw_paths)
    report.files = len(paths)
    report.bytes_read = sum(os.path.getsize(p) for p in paths)
    streams = group_streams(paths, report.raw_problems)
    report.streams = len(streams)
    opts = Options(
        out_root, frozenset(c.lower().lstrip("#") for c in channels) if channels else None, since, until, timing
    )
    if jobs > 1 and len(streams) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for stream, part in zip(streams, pool.map(replay_stream, streams, [opts] * len(streams)), strict=True):
                report.add(part)
                if on_file_done is not None:
                    for _seq, path in stream.files:
                        on_file_done(path)
    else:
        for stream in streams:
            report.add(replay_stream(stream, opts, on_file_done))
    return report
