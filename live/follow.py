"""Theory of operation: the offline replay, run while the recordings grow.

The follower runs the replay engine (replay/engine.py) on each raw stream, feeding it the same
events in the same order as `replay` would (sequence order, a repeated sequence number read once),
writes each batch when the engine closes it, and merges the minutes it wrote (merge/, one file per
minute). Batch files are named by their content and the merge is a CRDT, so when the recorders have
stopped and the follower has caught up, the archive is byte for byte the one `replay` writes from
the same recordings, whenever and however often the follower was killed and restarted.

Only *when* things happen differs from offline, and a growing file adds three facts:

- A line without its newline may still be completed by the recorder: it is left for a later pass.
- A stream's file is finished once a later file of the same stream exists (the recorder closes an
  hour before it opens the next); its torn last line, if any, is then final: reported, skipped. The
  `.gz` that replaces a finished hour holds the same bytes, so offsets carry over.
- The end of input. Offline, `finish()` closes the open batches of a stream that ended without
  `close` events (a recorder killed). Live, a stream whose files have not grown for `idle` seconds
  while it has open batches is taken as ended (a running recorder writes a tick at least every
  second while a connection is open), and its open batches are written exactly as `finish()` would.
  If the recorder was only stalled, following goes on (the engine keeps its clocks and channels)
  and nothing is lost; that minute's later records then come as a second file, merged in, and may
  differ in their time ranges from an offline replay (docs/live.md).

Progress is saved in a checkpoint (live/checkpoint.py) after the batches it covers are on disk.
A checkpoint that does not match the raw files (a file gone, or different bytes where the follower
stopped) is detected, said, and that stream is replayed from its start: rewriting is harmless.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from formats.canonical import BATCH_INTERVAL, format_batch
from formats.errors import ArchiverError, InputError
from formats.memory import gc_paused
from formats.rawcodec import MAX_LINE, OVERLONG_MESSAGE, Event, Header, decode_line
from formats.rawfile import PROBLEMS_PER_FILE, RawProblem, find_raw_files, read_header
from formats.store import write_batch_bytes
from live import checkpoint
from merge.directory import ChannelMerger, MergeProblem, merge_tree
from replay.batches import ClosedBatch
from replay.engine import PROBLEMS_KEPT, StreamReplayer
from replay.timestamps import DEFAULT_TIMING, Timing

Log = Callable[[str, str], None]  # (level "info" | "warn", message)
StreamKey = tuple[str, str]  # (recorder, slug)


def _quiet(level: str, message: str) -> None:
    pass


@dataclass(frozen=True)
class FollowOptions:
    raw_paths: tuple[str, ...]
    out_root: str
    checkpoint_path: str
    timing: Timing = DEFAULT_TIMING
    poll: float = 0.25  # seconds between passes when nothing new arrived
    idle: float = 30.0  # a stream with open batches silent this long has ended (see above)
    checkpoint_every: float = 30.0  # seconds between checkpoints while reading (and one when stopping)
    until_idle: bool = False  # stop once caught up and every stream's batches are written
    chunk: int = 1 << 20  # bytes read per file and step (bounds memory while catching up)
    status_path: str | None = None  # a JSON snapshot of `FollowStatus` after each pass (metrics)
    # called with (channel, minutes) after those minutes are written and merged: the search
    # index's update (the CLI passes it; live knows nothing of the index). Its failure is logged.
    after_merge: Callable[[str, set[int]], None] | None = None


@dataclass
class FollowStatus:
    """What the follower did and how far behind it is (the `archive` command's metrics)."""

    passes: int = 0
    events: int = 0
    lines_read: int = 0
    batches_written: int = 0
    batches_existing: int = 0
    records_written: int = 0
    merge_passes: int = 0
    checkpoints: int = 0
    checkpoint_bytes: int = 0
    streams: int = 0
    streams_ended: int = 0
    bytes_behind: int = 0
    lines_behind: int = 0
    seconds_behind: float = 0.0
    raw_problems: int = 0
    line_problems: int = 0
    restarted_streams: int = 0
    last_batch_time: dict[str, int] = field(default_factory=dict)
    channels: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = sorted(self.channels)
        return d


class _GzCursor:
    """Sequential reads of one .gz without decompressing it again from the start for every step.
    zlib directly rather than GzipFile: it hands out every byte it could decompress before damage,
    so a damaged .gz gives what comes before the damage, then an error when read at the damage."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._f = open(path, "rb")  # noqa: SIM115 (held across steps; closed by close())
        self._d = zlib.decompressobj(31)
        self._buf = b""
        self._start = 0  # uncompressed offset of _buf[0]

    def read(self, offset: int, size: int) -> bytes:
        if offset < self._start:
            raise EOFError("gz cursor moved backwards")  # not done by the follower; reopen instead
        try:
            while self._start + len(self._buf) < offset + size and not self._d.eof:
                chunk = self._f.read(1 << 16)
                if not chunk:
                    if self._start + len(self._buf) <= offset:
                        raise EOFError("compressed file ended before the end-of-stream marker was reached")
                    break
                self._buf += self._d.decompress(chunk)
                if offset > self._start:  # keep only what is still to be read
                    cut = min(offset - self._start, len(self._buf))
                    self._buf = self._buf[cut:]
                    self._start += cut
        except zlib.error:
            if self._start + len(self._buf) <= offset:
                raise
        return self._buf[offset - self._start : offset - self._start + size]

    def close(self) -> None:
        self._f.close()


def read_range(path: str, offset: int, size: int) -> bytes | None:
    """Up to `size` bytes of `path`'s content (uncompressed for .gz) from `offset`; None if gone.
    A damaged .gz gives what comes before the damage, then InputError when read at the damage."""
    try:
        if path.endswith(".gz"):
            cursor = _GzCursor(path)
            try:
                return cursor.read(offset, size)
            finally:
                cursor.close()
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)
    except FileNotFoundError:
        return None
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(f"file ends early or is damaged ({e})", path) from None


class _Tail:
    """One raw stream (one recorder process) being followed."""

    def __init__(self, key: StreamKey, timing: Timing) -> None:
        self.key = key
        self.timing = timing
        self.files: dict[int, str] = {}  # first seq -> path (the plain file while it exists)
        self.first_seq: int | None = None  # the file being read
        self.offset = 0  # bytes of it consumed (complete lines)
        self.line = 0  # lines of it consumed, header included
        self.last_seq = -1
        self.last_at = 0  # receive time (µs) of the last event fed
        self.engine: StreamReplayer | None = StreamReplayer(key[0], key[1], timing=timing)
        self.flushed = False  # its open batches were written at the end of input (see the essay)
        self.grew = time.monotonic()
        self.torn_reported: set[tuple[int, int]] = set()
        self.gz: _GzCursor | None = None  # the .gz being read, if any
        self.gz_done: tuple[str, int] | None = None  # a .gz read to its end, and where its lines end
        self.fp_cache: tuple[str, int, str | None] | None = None
        self.problems_seen = 0  # engine problems already logged

    def fingerprint(self, path: str) -> str | None:
        # cached: a stream that ended in a .gz would otherwise be decompressed at every checkpoint
        if self.fp_cache is None or self.fp_cache[:2] != (path, self.offset):
            self.fp_cache = (path, self.offset, checkpoint.fingerprint(read_range, path, self.offset))
        return self.fp_cache[2]

    def to_json(self) -> dict[str, Any]:
        path = self.files.get(self.first_seq) if self.first_seq is not None else None
        return {
            "recorder": self.key[0],
            "slug": self.key[1],
            "first_seq": self.first_seq,
            "path": path,
            "offset": self.offset,
            "line": self.line,
            "last_seq": self.last_seq,
            "last_at": self.last_at,
            "flushed": self.flushed,
            "fingerprint": self.fingerprint(path) if path else None,
            "engine": self.engine.state() if self.engine is not None else None,
        }


class Follower:
    """Follows raw recordings into an archive; `run()` until `stop` is set (or idle, see options)."""

    def __init__(self, opts: FollowOptions, log: Log = _quiet) -> None:
        self.opts = opts
        self.log = log
        self.status = FollowStatus()
        self.tails: dict[StreamKey, _Tail] = {}
        self._paths: dict[str, tuple[StreamKey, int]] = {}  # known raw file -> (stream, first seq)
        self._bad: set[str] = set()  # files whose header is unreadable (reported once)
        self._unverified: dict[StreamKey, dict[str, Any]] = {}  # checkpointed, not yet checked
        self._touched: dict[str, set[int]] = {}  # channel -> minutes written since the last merge
        self._mergers: dict[str, ChannelMerger] = {}  # one per channel, its verified files kept between passes
        self._last_checkpoint = time.monotonic()
        self._checkpoints = checkpoint.Writer(opts.checkpoint_path)
        self._last_gc = time.monotonic()
        self._dirty = False  # read something since the last checkpoint
        self._line_bytes = 200.0  # running mean, for `lines_behind`
        self.problems: list[str] = []  # the first PROBLEMS_KEPT, for the caller
        self._damaged: dict[str, int] = {}  # damaged lines reported, per raw file

    # -- checkpoint ---------------------------------------------------------------------------
    def _timing_json(self) -> dict[str, int]:
        t = self.opts.timing
        return {"estimated_padding": t.estimated_padding, "max_delay": t.max_delay, "max_server_lag": t.max_server_lag}

    def restore(self) -> None:
        path = self.opts.checkpoint_path
        try:
            saved = checkpoint.load(path)
        except InputError as e:
            self.log("warn", f"{e}; replaying every stream from its start")
            return
        if saved is None:
            return
        if saved.get("timing") != self._timing_json():
            self.log("warn", f"{path}: made with other timing settings; replaying every stream from its start")
            return
        if not os.path.isdir(self.opts.out_root):
            self.log("warn", f"{path}: the archive {self.opts.out_root} is gone; replaying every stream from its start")
            return
        try:
            entries = {(s["recorder"], s["slug"]): s for s in saved["streams"]}
        except (KeyError, TypeError) as e:
            self.log("warn", f"{path}: not readable ({type(e).__name__}: {e}); replaying every stream from its start")
            return
        self._unverified.update(entries)

    def save_checkpoint(self) -> None:
        streams = [self.tails[k].to_json() for k in sorted(self.tails)]
        # streams not seen yet this run (their files may be gone) keep their entry until checked
        streams += [s for k, s in sorted(self._unverified.items()) if k not in self.tails]
        data = checkpoint.encode(streams, self._timing_json())
        self._checkpoints.write(data)
        self.status.checkpoint_bytes = len(data)
        self.status.checkpoints += 1
        self._last_checkpoint = time.monotonic()
        self._dirty = False

    def _adopt(self, tail: _Tail, saved: dict[str, Any]) -> None:
        """Resume `tail` from its checkpoint entry, or from the start if it no longer matches."""
        name = f"{tail.key[0]}.{tail.key[1]}"
        try:
            first = saved["first_seq"]
            path = tail.files.get(first) if first is not None else None
            problem = None
            if first is not None and path is None:
                problem = f"the raw file it was reading ({saved.get('path')}) is gone"
            elif path is not None and checkpoint.fingerprint(read_range, path, saved["offset"]) != saved["fingerprint"]:
                problem = f"{path} differs from what was read before (edited, truncated or replaced)"
            state = saved["engine"]
            engine = (
                None
                if state is None
                else StreamReplayer.from_state(
                    tail.key[0],
                    tail.key[1],
                    state,
                    timing=self.opts.timing,
                )
            )
        except InputError as e:
            problem = str(e)
        except (KeyError, TypeError, ValueError, IndexError, ArchiverError) as e:
            problem = f"its entry is not readable ({type(e).__name__}: {e})"
        if problem is not None:
            self.status.restarted_streams += 1
            self.log("warn", f"checkpoint does not match stream {name}: {problem}; replaying it from its start")
            return
        tail.first_seq, tail.engine = first, engine
        tail.offset, tail.line, tail.last_seq = saved["offset"], saved["line"], saved["last_seq"]
        tail.last_at, tail.flushed = saved["last_at"], saved["flushed"]

    # -- discovery ----------------------------------------------------------------------------
    def discover(self) -> None:
        try:  # a path may not exist yet (a recorder about to create it), or vanish meanwhile
            listing = find_raw_files(p for p in self.opts.raw_paths if os.path.exists(p))
        except InputError:
            return
        present = set(listing)
        for path in listing:
            if path in self._paths or path in self._bad:
                continue
            try:
                header = read_header(path)
            except InputError as e:
                if e.message == "no complete header line" and not path.endswith(".gz"):
                    continue  # a recorder just created it: read it when its header is there
                if not os.path.lexists(path):
                    continue  # gone since the listing (its .gz replaced it): the next listing has that
                self._problem(RawProblem(path, e.line, f"{e.message}; file skipped"))
                self._bad.add(path)
                continue
            key = (header.recorder, header.slug)
            self._paths[path] = (key, header.seq)
        for path in [p for p in self._paths if p not in present]:
            del self._paths[path]
        by_stream: dict[StreamKey, dict[int, str]] = {}
        for path, (key, first) in sorted(self._paths.items()):
            files = by_stream.setdefault(key, {})
            # the plain file while it exists, else its .gz (same bytes once it is complete)
            if first not in files or not path.endswith(".gz"):
                files[first] = path
        for key, files in by_stream.items():
            tail = self.tails.get(key)
            if tail is None:
                tail = self.tails[key] = _Tail(key, self.opts.timing)
                tail.files = files
                saved = self._unverified.pop(key, None)
                if saved is not None:
                    self._adopt(tail, saved)
            tail.files = files
        self.status.streams = len(self.tails)

    # -- reading ------------------------------------------------------------------------------
    def _problem(self, problem: RawProblem | str) -> None:
        if isinstance(problem, RawProblem):
            self.status.raw_problems += 1
            # as offline: a file damaged throughout must not flood the log or the memory
            seen = self._damaged[problem.source] = self._damaged.get(problem.source, 0) + 1
            if seen > PROBLEMS_PER_FILE:
                if seen == PROBLEMS_PER_FILE + 1:
                    self.log("warn", f"{problem.source}: more damaged lines; counted, no longer listed")
                return
        else:
            self.status.line_problems += 1
        text = str(problem)
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(text)
        self.log("warn", text)

    def advance(self, tail: _Tail) -> bool:
        """Read and feed everything complete of `tail`; True if anything was read."""
        read_any = False
        while tail.files:
            order = sorted(tail.files)
            if tail.first_seq is None or tail.first_seq not in tail.files:
                later = [s for s in order if tail.first_seq is None or s > tail.first_seq]
                if not later:
                    return read_any
                tail.first_seq, tail.offset, tail.line = later[0], 0, 0
            path = tail.files[tail.first_seq]
            data: bytes | None
            try:
                data = self._read(tail, path)
            except InputError as e:  # a damaged .gz: what was read stays, the rest of the file is skipped
                if (tail.first_seq, -1) not in tail.torn_reported:
                    tail.torn_reported.add((tail.first_seq, -1))
                    self._problem(RawProblem(path, tail.line + 1, f"{e.message}; rest skipped"))
                data = b""
            if data is None:  # replaced by its .gz a moment ago: found on the next listing
                return read_any
            end = data.rfind(b"\n") + 1
            if end:
                self._feed_lines(tail, path, data[:end])
                tail.offset += end
                read_any = True
                tail.grew = time.monotonic()
            if len(data) == self.opts.chunk and end:
                continue  # more to read in this file
            if len(data) == self.opts.chunk and self._long_line(tail, path):
                read_any = True
                tail.grew = time.monotonic()
                continue  # a line longer than a read, taken or skipped whole: read on
            later = [s for s in order if s > tail.first_seq]
            if not later:
                return read_any
            if len(data) > end:  # a later file exists, so this one is finished: its torn tail is final
                try:
                    read_range(path, tail.offset + len(data) - end, 1)
                except InputError as e:  # not torn: a damaged .gz, cut where the data stopped
                    self._problem(RawProblem(path, tail.line + 1, f"{e.message}; rest skipped"))
                else:
                    self._torn(tail, tail.first_seq, path)
            tail.first_seq, tail.offset, tail.line = later[0], 0, 0
        return read_any

    def _long_line(self, tail: _Tail, path: str) -> bool:
        """The line at `tail.offset` is longer than a read. Find its newline, reading on without
        holding what was read; a line up to MAX_LINE is then fed as any other, a longer one is one
        problem (FILE:LINE) and skipped, as the bulk replay's reader does. False while its newline
        has not been written yet (the caller goes on as for any incomplete line)."""
        at = tail.offset + self.opts.chunk
        while True:
            try:
                data = self._read(tail, path, at)
            except InputError:
                return False  # a damaged .gz: the caller meets the damage at tail.offset
            if not data:
                return False
            newline = data.find(b"\n")
            if newline != -1:
                end = at + newline + 1
                break
            at += len(data)
        if end - tail.offset - 1 <= MAX_LINE:  # long, but not over-long: read it again whole
            self._close_gz(tail)  # a .gz cursor only moves forward: a later read opens a new one
            try:
                data = read_range(path, tail.offset, end - tail.offset)
            except InputError:
                return False
            if data is None or len(data) != end - tail.offset:
                return False
            self._feed_lines(tail, path, data)
            tail.offset = end
            return True
        tail.line += 1
        self._problem(RawProblem(path, tail.line, f"{OVERLONG_MESSAGE}; line skipped"))
        tail.offset = end
        return True

    def _read(self, tail: _Tail, path: str, offset: int | None = None, size: int | None = None) -> bytes | None:
        offset = tail.offset if offset is None else offset
        size = self.opts.chunk if size is None else size
        if not path.endswith(".gz"):
            return read_range(path, offset, size)
        if tail.gz_done == (path, offset):
            return b""  # read to its end before: a .gz never grows
        cursor = tail.gz
        if cursor is None or cursor.path != path:
            self._close_gz(tail)
            try:
                cursor = tail.gz = _GzCursor(path)
            except FileNotFoundError:
                return None
            except OSError as e:
                raise InputError(f"cannot read: {e.strerror}", path) from None
        try:
            data = cursor.read(offset, size)
        except (OSError, EOFError, zlib.error) as e:
            self._close_gz(tail)
            raise InputError(f"file ends early or is damaged ({e})", path) from None
        if len(data) < size:  # its end (or its damage): nothing more will come
            self._close_gz(tail)
            tail.gz_done = (path, offset + data.rfind(b"\n") + 1)
        return data

    @staticmethod
    def _close_gz(tail: _Tail) -> None:
        if tail.gz is not None:
            tail.gz.close()
            tail.gz = None

    def close(self) -> None:
        """Wait for the last checkpoint to be on disk; close the .gz files held open between steps."""
        for tail in self.tails.values():
            self._close_gz(tail)
        self._checkpoints.wait()

    def _torn(self, tail: _Tail, first: int, path: str) -> None:
        if (first, tail.line) not in tail.torn_reported:
            tail.torn_reported.add((first, tail.line))
            self._problem(RawProblem(path, tail.line + 1, "torn last line (recorder stopped mid-write); skipped"))

    def _feed_lines(self, tail: _Tail, path: str, data: bytes) -> None:
        lines = data.split(b"\n")
        lines.pop()
        self._line_bytes = 0.9 * self._line_bytes + 0.1 * (len(data) / max(1, len(lines)))
        status = self.status
        engine = tail.engine
        if engine is None:  # ended long ago and forgotten, yet written again: start afresh
            self.log("warn", f"stream {tail.key[0]}.{tail.key[1]} was written to again after it had ended")
            engine = tail.engine = StreamReplayer(tail.key[0], tail.key[1], timing=self.opts.timing)
        for raw in lines:
            tail.line += 1
            try:
                event = decode_line(raw)
            except InputError as e:
                self._problem(RawProblem(path, tail.line, f"{e.message}; line skipped"))
                continue
            if isinstance(event, Header):
                if tail.line != 1:
                    self._problem(RawProblem(path, tail.line, "unexpected second header; line skipped"))
                continue
            if event.seq <= tail.last_seq:
                continue
            self._feed(tail, engine, event)
        status.lines_read += len(lines)
        problems = engine.stats.problems
        if len(problems) > tail.problems_seen:
            for text in problems[tail.problems_seen :]:
                self._problem(text)
            tail.problems_seen = len(problems)

    def _feed(self, tail: _Tail, engine: StreamReplayer, event: Event) -> None:
        tail.last_seq = event.seq
        tail.last_at = event.at
        tail.flushed = False
        self.status.events += 1
        self._dirty = True
        for batch in engine.feed(event):
            self._write(batch)

    def _write(self, batch: ClosedBatch) -> None:
        if not batch.records:
            return
        data = format_batch(batch.records)
        path, written = write_batch_bytes(self.opts.out_root, batch.channel, batch.batch_time, data)
        status = self.status
        if written:
            status.batches_written += 1
            merger = self._mergers.get(batch.channel)
            if merger is not None:  # the merge takes these records rather than reading the file back
                merger.written(path, batch.batch_time, batch.records, data)
        else:
            status.batches_existing += 1
        status.records_written += len(batch.records)
        status.channels.add(batch.channel)
        if batch.batch_time > status.last_batch_time.get(batch.channel, 0):
            status.last_batch_time[batch.channel] = batch.batch_time
        self._touched.setdefault(batch.channel, set()).add(batch.batch_time)

    def _flush_ended(self, tail: _Tail) -> None:
        """Write the open batches of a stream that has ended, as `finish()` would. The engine keeps
        its connections' clocks and channels, not the batches: they are on disk, and a day of
        recorder restarts must not pile up in memory or in the checkpoint."""
        assert tail.engine is not None
        state = orjson.loads(orjson.dumps(tail.engine.state()))
        for batch in StreamReplayer.from_state(tail.key[0], tail.key[1], state, timing=self.opts.timing).finish():
            self._write(batch)
        for conn in state["conns"]:
            conn[4] = []  # the open batches, written above
        tail.engine = StreamReplayer.from_state(tail.key[0], tail.key[1], state, timing=self.opts.timing)
        tail.flushed = True
        self._dirty = True
        self.status.streams_ended += 1
        if tail.first_seq is not None and tail.first_seq in tail.files:
            path = tail.files[tail.first_seq]
            if read_range(path, tail.offset, self.opts.chunk):
                self._torn(tail, tail.first_seq, path)
        self.log(
            "info",
            f"stream {tail.key[0]}.{tail.key[1]} silent for {self.opts.idle:g} s: "
            "its open batches are written (it ended)",
        )

    # -- one pass -----------------------------------------------------------------------------
    def pass_once(self, final: bool = False) -> bool:
        """Discover, read every stream, write closed batches, merge, checkpoint. True if it read."""
        self.discover()
        read_any = False
        for key in sorted(self.tails):
            read_any = self.advance(self.tails[key]) or read_any
        now = time.monotonic()
        for key in sorted(self.tails):
            tail = self.tails[key]
            if (
                tail.engine is not None
                and not tail.flushed
                and tail.engine.open_batches
                and now - tail.grew >= self.opts.idle
            ):
                self._flush_ended(tail)
        if self._touched:
            self._merge()
        if self._dirty and (final or time.monotonic() - self._last_checkpoint >= self.opts.checkpoint_every):
            self.save_checkpoint()
        if final:
            self._checkpoints.wait()  # on disk before the caller goes on (or the process exits)
        self.status.passes += 1
        self._update_behind()
        if self.opts.status_path is not None:
            # replaced atomically (a scrape never reads half of it) but not fsynced: it is only news
            temp = f"{self.opts.status_path}.{os.getpid()}.temp"
            with open(temp, "wb") as f:
                f.write(orjson.dumps(self.status.as_dict()))
            os.replace(temp, self.opts.status_path)
        return read_any

    def _merge(self) -> None:
        """Merge the minutes written since the last merge. A channel's first merge in this run (or
        the first after a failed one) is a whole `merge_tree` of it, so a minute left with several
        files by an earlier run is merged too; later ones merge exactly the minutes written, with the
        channel's verified files kept between passes (merge.directory.ChannelMerger)."""
        touched = self._touched
        self._touched = {}
        for channel in sorted(touched):
            minutes = touched[channel]
            merger = self._mergers.get(channel)
            try:
                if merger is None:
                    merge_tree(self.opts.out_root, channels=[channel], on_problem=self._merge_problem)
                    self._mergers[channel] = ChannelMerger(self.opts.out_root, channel, on_problem=self._merge_problem)
                else:
                    merger.merge_minutes(minutes)
            except ArchiverError as e:  # files that cannot be merged now: said, retried next time
                self.log("warn", f"merge: {e}")
                self._touched.setdefault(channel, set()).update(minutes)
                self._mergers.pop(channel, None)
                continue
            if self.opts.after_merge is not None:
                try:
                    self.opts.after_merge(channel, minutes)
                except Exception as e:  # derived data (the index) must never stop the archive
                    self.log("warn", f"after merge of {channel}: {e}")
        self.status.merge_passes += 1

    def _merge_problem(self, problem: MergeProblem) -> None:
        self._problem(str(problem))

    def _update_behind(self) -> None:
        behind = 0
        wall = time.time()
        seconds = 0.0
        for tail in self.tails.values():
            for first, path in tail.files.items():
                if tail.first_seq is not None and first < tail.first_seq:
                    continue
                try:
                    size = os.path.getsize(path)
                except OSError:
                    continue
                behind += max(0, size - tail.offset) if first == tail.first_seq else size
            if tail.engine is not None and tail.engine.open_batches and not tail.flushed and tail.last_at:
                seconds = max(seconds, wall - tail.last_at / 1_000_000)
        self.status.bytes_behind = behind
        self.status.lines_behind = int(behind / self._line_bytes)
        self.status.seconds_behind = round(seconds, 3)

    def next_wait(self, wall: float) -> float:
        """Seconds to sleep before the next pass, when the last one read nothing: `poll`, but no later
        than the next batch deadline (`batch_time + 60 + max_server_lag` of a stream's receive
        clock, which on the recorders' host is this clock), and `FAST_POLL` for `FAST_WINDOW` seconds
        after one, while the line that closes the batch is on its way: so a batch is written and
        merged within a few hundredths of a second of the event that closes it reaching the disk,
        not up to `poll` later, while an idle follower still looks only `1 / poll` times a second."""
        lag = self.opts.timing.max_server_lag
        wait = self.opts.poll
        for tail in self.tails.values():
            if tail.engine is None or tail.flushed or not tail.engine.open_batches or not tail.last_at:
                continue
            seen = tail.last_at / 1_000_000
            # the deadlines are lag past each minute: the last one at or before `wall`, the next after it
            past = (wall - lag) // BATCH_INTERVAL * BATCH_INTERVAL + lag
            if seen < past <= wall < past + FAST_WINDOW:
                return min(wait, FAST_POLL)  # a deadline passed and this stream has not shown it yet
            wait = min(wait, past + BATCH_INTERVAL - wall)
        return max(wait, 0.0)

    def caught_up(self) -> bool:
        """Nothing left to write: every stream is read and its batches closed or written as ended."""
        return all(t.engine is None or t.flushed or not t.engine.open_batches for t in self.tails.values())

    # -- the loop -----------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> FollowStatus:
        """Follow until `stop` is set (then one last pass and a checkpoint) or, with `until_idle`,
        until caught up. The archive's lock and the checkpoint's are held throughout."""
        stop = stop or threading.Event()
        with (
            checkpoint.ArchiveLock(self.opts.out_root),
            checkpoint.Lock(self.opts.checkpoint_path),
            contextlib.closing(self),
            gc_paused(),
        ):
            self.restore()
            os.makedirs(self.opts.out_root, exist_ok=True)
            self.discover()
            for key in sorted(self._unverified):
                self.log(
                    "warn",
                    f"checkpoint names stream {key[0]}.{key[1]}, but no raw files of it are "
                    "found: its archive stays as it is; it is followed again if its files come back",
                )
            while True:
                stopping = stop.is_set()
                read_any = self.pass_once(final=stopping)
                if stopping:
                    break
                if self.opts.until_idle and not read_any and self.caught_up():
                    self.pass_once(final=True)
                    break
                if not read_any:
                    stop.wait(self.next_wait(time.time()))
                if time.monotonic() - self._last_gc >= GC_EVERY:
                    gc.collect()
                    self._last_gc = time.monotonic()
        return self.status


# How fast to look for the line that closes a batch once its deadline has passed, and for how long.
FAST_POLL = 0.02
FAST_WINDOW = 2.0

# The engine makes no reference cycles (records are dicts of strings and numbers; replay/shell.py),
# but the cyclic collector would scan the open batches (a few minutes of chat, hundreds of thousands
# of objects) again and again, pausing a pass for up to a second: it runs every few minutes instead,
# for the rare cycle made elsewhere (an exception's traceback).
GC_EVERY = 300.0


def follow(opts: FollowOptions, stop: threading.Event | None = None, log: Log = _quiet) -> FollowStatus:
    """Follow `opts.raw_paths` into `opts.out_root` (see the module's essay). ArchiverError on misuse."""
    return Follower(opts, log).run(stop)


def default_checkpoint_path(out_root: str) -> str:
    """The checkpoint sits next to the archive, not in it, so the archive stays exactly `replay`'s."""
    root = os.path.normpath(out_root)
    return os.path.join(os.path.dirname(root), f".{os.path.basename(root)}.follow-checkpoint.json")


__all__ = ["ArchiverError", "FollowOptions", "FollowStatus", "Follower", "default_checkpoint_path", "follow"]
