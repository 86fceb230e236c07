"""The merge's I/O shell: batch files on disk (layout in ARCHIVE_FORMAT.md section 1).

What a window merge writes and deletes is decided by `merge.plan` (pure); this module lists and
reads the files, carries the plan out and keeps the I/O safe.

Safety rules, each there for a reason:

* A file is deleted only after every output that incorporates it has been written and fsynced
  (file and folder), and only if this process read it, incorporated it and did not just write it
  again. So two merges at once can at worst both write a superset, never lose a record, and a
  kill at any point leaves a set of files whose union still holds every observation.
* Batch files are named by their hash, so a file's content never changes: a file read once can be
  cached, and an output whose name exists is already there (its bytes are checked; a mismatch is
  damage, quarantined, and the output written).
* Minutes are merged one at a time with the minutes before and after as context, so a record near a
  boundary meets its copies (as upstream does). A neighbour minute is rewritten only when a record
  really moves between minutes or joins observations of two minutes; otherwise it is left alone.
  That keeps a rerun after a crash from touching minutes an uninterrupted run would not touch, so
  both end with the same tree.
* A corrupt input (unreadable, bad JSON or schema, a name that is not the hash of the bytes) is
  reported with its path and line, moved to `ROOT/quarantine/CHANNEL/chat/HOUR/NAME` (or left in
  place with `quarantine=False`) and skipped; it never stops the rest and is never deleted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time as _time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from formats.canonical import (
    BATCH_INTERVAL,
    batch_relpath,
    check_channel_dirname,
    content_hash,
    is_record,
    parse_batch,
)
from formats.errors import ArchiverError, InputError, UsageError
from formats.memory import gc_paused
from formats.store import (
    QUARANTINE,
    fsync_dir,
    iter_batch_files,
    list_channels,
    list_hours,
    minute_batch_files,
    remove_debris,
    write_bytes_atomic,
)
from merge.core import check_parsed
from merge.fastplan import plan_window_lines
from merge.plan import (
    InputFile,
    LinesFile,
    WindowPlan,
    dirty_minutes,
    plan_window,
    window,
    worth_visiting,
)
from merge.scan import scan_file

HASH_MISMATCH = "file name does not match its content's hash (damaged or altered)"


@dataclass(frozen=True)
class MergeProblem:
    """A corrupt input: where, what, and where it was moved (None: left in place)."""

    path: str
    message: str
    line: int | None = None
    quarantined_to: str | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        moved = f" (moved to {self.quarantined_to})" if self.quarantined_to else ""
        return f"{where}: {self.message}{moved}"


@dataclass
class MergeStats:
    """What a directory merge did, for the summary (`--json` prints `as_dict()`).

    `records_in` counts the records of the files a merge replaced, `records_out` those it wrote.
    The conflict and duplicate counts come from whole windows, so a record near a minute boundary
    that two windows read is counted in each: they say "look here", not "exactly this many".
    """

    channels: int = 0
    minutes_merged: int = 0
    files_read: int = 0
    files_written: int = 0
    files_deleted: int = 0
    files_copied: int = 0
    records_in: int = 0
    records_out: int = 0
    duplicate_deliveries: int = 0
    id_conflicts: int = 0
    range_conflicts: int = 0
    problems: list[MergeProblem] = field(default_factory=list)

    def add(self, other: MergeStats) -> None:
        for name, value in asdict(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        self.problems.extend(other.problems)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["problems"] = [asdict(p) for p in self.problems]
        return out


ProblemHook = Callable[[MergeProblem], None]


# Which file a path named when it was read: a name can be deleted and reused (by a concurrent merge,
# or by damage), and only the file that was read may be deleted.
Identity = tuple[int, int, int, int]


def _identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read(path: str) -> tuple[bytes, Identity]:
    """The file's bytes and identity. OSError (FileNotFoundError: it went away) propagates."""
    with open(path, "rb") as f:
        return f.read(), _identity(os.fstat(f.fileno()))


def _cannot_read(e: OSError) -> str:
    return f"cannot read: {e.strerror or e}"


def read_verified(path: str, digest: str | None) -> list[dict[str, Any]]:
    """Read a batch file, check its name's hash (if given) and its records. InputError says where
    (FileNotFoundError propagates: the file went away)."""
    try:
        data = _read(path)[0]
    except FileNotFoundError:
        raise
    except OSError as e:
        raise InputError(_cannot_read(e), path) from None
    return _verify(data, path, digest)


def check_bytes(data: bytes, path: str, digest: str | None) -> None:
    """Whether the merge takes `data` as the batch file `path` (named by `digest`): InputError says
    why not, as `read_verified` would. A file the compiled scanner vouches for is checked by the
    scan alone (`_read_entry`), without a Python object per record."""
    _read_entry(data, path, digest)


def _verify(data: bytes, path: str, digest: str | None) -> list[dict[str, Any]]:
    if digest is not None and content_hash(data) != digest:
        raise InputError(HASH_MISMATCH, path)
    try:
        with gc_paused():  # parsing allocates a dict per line and nothing cyclic
            records = parse_batch(data, path)
    except ArchiverError as e:
        raise InputError(getattr(e, "message", str(e)), path, getattr(e, "line", None)) from None
    check_parsed(records, path)
    return records


class _Entry:
    """A verified batch file: its bytes and, computed when first needed, its records (decoded) and
    its lines (`formats._native.Lines`, when the compiled scanner is built). Never changes: files are
    named by their content."""

    __slots__ = ("data", "ids", "lines", "records")

    def __init__(
        self, data: bytes | None, records: list[dict[str, Any]] | None = None, lines: Any = None, ids: Any = None
    ) -> None:
        # the bytes serve the scanner only: without it (the pure path) a file is its records
        self.data = data if scan_file is not None or records is None else None
        self.records = records
        self.lines: Any = lines  # False: the scanner does not vouch for it
        self.ids = ids  # an output of the byte path: its summary as a neighbour (formats._native.Ids)

    def neighbour(self) -> Any:
        """What `fold_lines` needs of the file as a neighbour: its Ids, else its Lines (or None)."""
        return self.ids if self.ids is not None else self.scanned()

    def decoded(self) -> list[dict[str, Any]]:
        if self.records is None:
            assert self.data is not None  # an entry has its bytes, its records, or both
            with gc_paused():
                self.records = parse_batch(self.data)  # verified already: it cannot fail
        return self.records

    def scanned(self) -> Any:
        """The file's Lines, or None if the scanner does not vouch for it (or is not built)."""
        if self.lines is None:
            lines = scan_file(self.data) if scan_file is not None and self.data is not None else 0
            self.lines = False if isinstance(lines, int) else lines
        return self.lines if self.lines is not False else None


def _read_entry(data: bytes, path: str, digest: str | None) -> _Entry:
    """Verify a batch file's bytes as `_verify` does; with the compiled scanner, a file it vouches
    for is verified by the scan (the scanner vouches only for what the checks accept), else by the
    reference. InputError says where."""
    if scan_file is not None:
        if digest is not None and content_hash(data) != digest:
            raise InputError(HASH_MISMATCH, path)
        lines = scan_file(data)
        if not isinstance(lines, int):
            return _Entry(data, lines=lines)
    return _Entry(data, records=_verify(data, path, digest))


class _Channel:
    """One channel's merge state for one run: file cache, known-bad files, stats."""

    def __init__(self, root: str, channel: str, stats: MergeStats, quarantine: bool, on_problem: ProblemHook | None):
        self.root = root
        self.channel = check_channel_dirname(channel)
        self.chat = os.path.join(root, channel, "chat")
        self.stats = stats
        self.quarantine = quarantine
        self.on_problem = on_problem
        self.bad: set[str] = set()  # files left in place (unreadable, or corrupt): not counted, not read again
        self.stuck: set[int] = set()  # minutes whose output could not be written: not retried this run
        # path -> (minute, file, identity); names are content hashes, so a cached file never goes stale
        self.cache: dict[str, tuple[int, _Entry, Identity]] = {}

    # -- listing -----------------------------------------------------------------------------
    def scan(self) -> dict[int, list[tuple[str, str]]]:
        by_minute: dict[int, list[tuple[str, str]]] = {}
        for bf in iter_batch_files(self.root, self.channel):
            if bf.path not in self.bad:
                by_minute.setdefault(bf.batch_time, []).append((bf.path, bf.digest))
        return by_minute

    def files_at(self, minute: int) -> list[tuple[str, str]]:
        return [
            (bf.path, bf.digest)
            for bf in minute_batch_files(self.root, self.channel, minute)
            if bf.path not in self.bad
        ]

    # -- reading, with damage handling ---------------------------------------------------------
    def read(self, path: str, digest: str, minute: int) -> _Entry | None:
        """The file, verified; None if it vanished (a concurrent merge took it) or is corrupt."""
        cached = self.cache.get(path)
        if cached is not None:
            try:
                if _identity(os.stat(path)) == cached[2]:
                    return cached[1]
            except FileNotFoundError:
                return None
            # The name was rewritten (another merge wrote the same output): read it again.
        try:
            data, identity = _read(path)
        except FileNotFoundError:
            return None
        except OSError as e:
            # Unreadable (permissions, a folder or a symlink loop under a batch file's name) is not
            # damaged: nothing says its bytes are bad, so it is reported and left where it is.
            self.bad.add(path)
            self.problem(MergeProblem(path, f"{_cannot_read(e)}; left in place"))
            return None
        try:
            entry = _read_entry(data, path, digest)
        except InputError as e:
            self.report(path, e.message, e.line)
            return None
        self.cache[path] = (minute, entry, identity)
        self.stats.files_read += 1
        return entry

    def remember(self, path: str, minute: int, records: Sequence[Mapping[str, Any]], data: bytes | None) -> bool:
        """Cache a batch file the caller has just written from `records` (`data`, if given, is
        `format_batch(records)`, its content), so that merging it does not read it back. It must
        pass what reading the file would check (schema, numbers, layout); if not, nothing is cached
        and the merge reads the file as any other (and reports it). True if cached."""
        try:
            identity = _identity(os.stat(path))
        except OSError:
            return False
        if data is not None and scan_file is not None:
            lines = scan_file(data)
            if not isinstance(lines, int):  # vouched for: what reading it would accept
                self.cache[path] = (minute, _Entry(data, lines=lines), identity)
                return True
        checked: list[dict[str, Any]] = []
        for record in records:
            if not (isinstance(record, dict) and type(record) is dict and is_record(record)):
                return False
            checked.append(record)
        try:
            check_parsed(checked, path)
        except InputError:
            return False
        self.cache[path] = (minute, _Entry(data, records=checked), identity)
        return True

    def report(self, path: str, message: str, line: int | None) -> None:
        moved = self.move_to_quarantine(path) if self.quarantine else None
        if moved is None:
            self.bad.add(path)
            if self.quarantine and not os.path.exists(path):
                return  # someone else moved or merged it away meanwhile: not ours to report
        self.problem(MergeProblem(path, message, line, moved))

    def problem(self, problem: MergeProblem) -> None:
        self.stats.problems.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)

    def move_to_quarantine(self, path: str) -> str | None:
        rel = os.path.relpath(path, os.path.join(self.root, self.channel))
        dest = os.path.join(self.root, QUARANTINE, self.channel, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.exists(dest):
            dest = f"{dest}.{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            return None
        except OSError:
            return None  # cannot move (permissions): left in place, still reported
        fsync_dir(os.path.dirname(dest))
        fsync_dir(os.path.dirname(path))
        return dest

    # -- writing -------------------------------------------------------------------------------
    def store(self, batch_time: int, data: bytes, digest: str | None = None) -> str | None:
        """Make sure a batch file with exactly `data` exists and is durable; return its path.

        A damaged file already holding the name is moved to the quarantine first, whatever the
        `quarantine` setting, since writing would destroy it. If it cannot be moved, nothing is
        written and None is returned: the caller must then keep its inputs.
        """
        hour, name = batch_relpath(batch_time, content_hash(data) if digest is None else digest)
        path = os.path.join(self.chat, hour, name)
        try:
            with open(path, "rb") as f:
                existing = f.read()
                if existing == data:
                    os.fsync(f.fileno())  # it may have been copied in by a tool that did not sync
                    return path
        except FileNotFoundError:
            existing = None
        if existing is not None:
            moved = self.move_to_quarantine(path)
            if moved is None and os.path.exists(path):
                self.problem(MergeProblem(path, "file name does not match its content's hash, and it cannot be moved"))
                return None
            self.bad.discard(path)
            for i, earlier in enumerate(self.stats.problems):
                if earlier.path == path and earlier.quarantined_to is None:  # found as an input before
                    self.stats.problems[i] = dataclasses.replace(earlier, quarantined_to=moved)
                    break
            else:
                self.problem(MergeProblem(path, HASH_MISMATCH, None, moved))
        write_bytes_atomic(path, data)
        self.stats.files_written += 1
        return path

    # -- one window ---------------------------------------------------------------------------
    def merge_minute(self, minute: int, *, full: bool = False) -> bool:
        """Merge the files of `minute` (with its neighbours as context): list and read them, have
        merge.plan decide, carry the plan out. False if there was nothing to do."""
        with gc_paused():  # scans and plans allocate many small acyclic objects
            return self._merge_minute(minute, full)

    def _merge_minute(self, minute: int, full: bool) -> bool:
        listed = {m: self.files_at(m) for m in window(minute)}
        if not worth_visiting(len(listed[minute]), full=full):
            return False
        entries: dict[int, list[tuple[str, str, _Entry]]] = {}
        for m, found in listed.items():
            entries[m] = []
            for path, digest in found:
                entry = self.read(path, digest, m)
                if entry is not None:
                    entries[m].append((path, digest, entry))
        plan = self.plan(minute, entries, full)
        if plan is None:
            return False
        for output in plan.outputs:
            out_path = self.store(output.minute, output.data, output.digest)
            if out_path is None:
                self.stuck.add(minute)  # an output cannot be written: keep every input; a later run retries
                return True
            # The next window reads this file as a neighbour: it is these bytes (and records), verified.
            with contextlib.suppress(FileNotFoundError):
                ids = output.summary if scan_file is not None else None  # Ids: output of plan_window_lines
                entry = _Entry(output.data, records=output.records, ids=ids)
                self.cache[out_path] = (output.minute, entry, _identity(os.stat(out_path)))
        for f in plan.deletes:
            self.delete_if_same(f.path)
        stats = self.stats
        stats.records_out += plan.records_out
        stats.records_in += plan.records_in
        stats.minutes_merged += 1
        stats.duplicate_deliveries += plan.counts.duplicate_deliveries
        stats.id_conflicts += plan.counts.id_conflicts
        stats.range_conflicts += plan.counts.range_conflicts
        self.prune(minute)
        return True

    @staticmethod
    def plan(minute: int, entries: dict[int, list[tuple[str, str, _Entry]]], full: bool) -> WindowPlan | None:
        """The window's plan: on the scanned lines when every file scans and the window is one the
        byte path handles (merge/fastplan.py), else the reference on the decoded records."""
        if scan_file is not None:
            scanned = [
                (m, path, digest, entry.scanned() if m == minute else entry.neighbour())
                for m, found in entries.items()
                for path, digest, entry in found
            ]
            if all(lines is not None for _m, _path, _digest, lines in scanned):  # every file scans
                own = [LinesFile(m, digest, path, lines) for m, path, digest, lines in scanned if m == minute]
                neighbours = [lines for m, _path, _digest, lines in scanned if m != minute]
                fast = plan_window_lines(minute, own, neighbours, full=full)
                if fast is not False:
                    assert fast is None or isinstance(fast, WindowPlan)
                    return fast
        files = {
            m: [InputFile(m, digest, path, entry.decoded()) for path, digest, entry in found]
            for m, found in entries.items()
        }
        return plan_window(minute, files, full=full)

    def prune(self, minute: int) -> None:
        """Forget cached files two minutes or more behind: each pass goes forward in time."""
        for path in [p for p, (m, _, _) in self.cache.items() if m < minute - BATCH_INTERVAL]:
            del self.cache[path]

    def delete_if_same(self, path: str) -> None:
        """Delete an input, unless the name now holds another file than the one that was read."""
        cached = self.cache.get(path)
        try:
            if cached is None or _identity(os.stat(path)) != cached[2]:
                return  # replaced since it was read: not ours to delete
            os.unlink(path)
        except FileNotFoundError:
            return
        self.stats.files_deleted += 1

    def run(self, max_passes: int, full: bool) -> None:
        for hour in list_hours(self.root, self.channel):  # a killed writer's temporary files
            remove_debris(os.path.join(self.chat, hour))
        if full:
            for minute in sorted(self.scan()):
                if minute not in self.stuck:
                    self.merge_minute(minute, full=True)
        self.passes(self.scan, max_passes)

    def passes(self, listing: Callable[[], dict[int, list[tuple[str, str]]]], max_passes: int) -> None:
        """Merge the minutes of `listing()` holding several files, pass after pass, until none does."""
        for _ in range(max_passes):
            dirty = dirty_minutes(listing(), self.stuck)
            if not dirty:
                return
            progress = False
            for minute in dirty:
                progress = self.merge_minute(minute) or progress
            if not progress:
                break
        left = dirty_minutes(listing(), self.stuck)
        if left:
            raise UsageError(
                f"{self.chat}: {len(left)} minute{' still holds' if len(left) == 1 else 's still hold'} "
                f"several files after {max_passes} passes "
                "(files that cannot be deleted, or another process writing as fast as this one merges)"
            )


def select_channels(root: str, channels: Iterable[str] | None) -> list[str]:
    """The channels to merge: those asked for (checked as folder names), or every channel of `root`."""
    if channels is None:
        return list_channels(root)
    wanted = sorted({c.lower().lstrip("#") for c in channels})
    for channel in wanted:
        try:
            check_channel_dirname(channel)
        except ArchiverError as e:
            raise UsageError(str(e)) from None
    return wanted


def merge_tree(
    root: str,
    *,
    channels: Iterable[str] | None = None,
    on_problem: ProblemHook | None = None,
    quarantine: bool = True,
    full: bool = False,
    max_passes: int = 100,
) -> MergeStats:
    """Merge every minute of every channel under `root` that has several batch files, until each
    minute has one. Safe to run concurrently with itself and with writers, and to kill at any point.

    Corrupt inputs are reported (`on_problem`, and `stats.problems`) and quarantined, never deleted.
    With `full`, every minute is visited once first, single files included, so a message whose
    copies sit in two adjacent single-file minutes is folded too, and every file ends exactly as a
    merge writes it: the tree becomes the merge of everything, split by minute. It reads the whole
    archive, so it is for an occasional pass, not every interval.
    """
    if not os.path.isdir(root):
        raise UsageError(f"archive root not found: {root}")
    stats = MergeStats()
    for channel in select_channels(root, channels):
        if channel == QUARANTINE and not os.path.isdir(os.path.join(root, channel, "chat")):
            continue
        stats.channels += 1
        state = _Channel(root, channel, stats, quarantine, on_problem)
        state.run(max_passes, full)
    return stats


class ChannelMerger:
    """The directory merge of chosen minutes of one channel, for a caller that knows which minutes
    it wrote (the live follower): `merge_minutes` lists only those minutes (and their neighbours, the
    windows' context) instead of the channel's whole folder, and the verified files are kept between
    calls, so a merge reads only the files that are new to it; the files the caller wrote itself
    (`written`) are not even read back. Its result is `merge_tree`'s: each window is the same plan,
    and every minute it is given ends with one file (tests/test_merge_minutes.py holds it to
    `merge_tree` over any order and grouping of the minutes).

    The cache holds the files of the minutes merged last (those two minutes or more before a merged
    minute are forgotten), so memory follows the minutes merged, not the archive. Files that cannot
    be read and cannot be moved are reported once, not at every call.
    """

    def __init__(
        self, root: str, channel: str, *, on_problem: ProblemHook | None = None, quarantine: bool = True
    ) -> None:
        self._state = _Channel(root, channel, MergeStats(), quarantine, on_problem)

    @property
    def channel(self) -> str:
        return self._state.channel

    def written(self, path: str, minute: int, records: Sequence[Mapping[str, Any]], data: bytes | None = None) -> bool:
        """Say that the caller has just written the batch file `path` of `minute`, holding
        `format_batch(records)` (`data`, if the caller has it): merging it will use these rather than
        read it back, after the checks reading would make. The records must not be changed
        afterwards. True if taken."""
        return self._state.remember(path, minute, records, data)

    def merge_minutes(self, minutes: Iterable[int], *, max_passes: int = 100) -> MergeStats:
        """Merge each of `minutes` (batch times) that holds several files, until each holds one (as
        `merge_tree` does for every minute of the channel). Corrupt inputs are reported and
        quarantined as by `merge_tree`; UsageError if a minute still holds several files after
        `max_passes`."""
        wanted = sorted(set(minutes))
        state = self._state
        state.stats = stats = MergeStats(channels=1)
        state.stuck = set()

        def listing() -> dict[int, list[tuple[str, str]]]:
            return {m: state.files_at(m) for m in wanted}

        state.passes(listing, max_passes)
        if wanted:
            state.prune(wanted[-1])  # also when no minute needed merging (a single recorder)
        return stats


def watch(
    root: str,
    interval: float,
    *,
    channels: Iterable[str] | None = None,
    quarantine: bool = True,
    on_problem: ProblemHook | None = None,
    on_pass: Callable[[MergeStats], None] | None = None,
    passes: int | None = None,
) -> MergeStats:
    """Run `merge_tree` every `interval` seconds (forever, or `passes` times); return the totals.

    For an archive that recorders keep writing to: each pass merges what arrived since the last.
    """
    total = MergeStats()
    done = 0
    while passes is None or done < passes:
        started = _time.monotonic()
        stats = merge_tree(root, channels=channels, on_problem=on_problem, quarantine=quarantine)
        channels_seen = max(total.channels, stats.channels)
        total.add(stats)
        total.channels = channels_seen
        if on_pass is not None:
            on_pass(stats)
        done += 1
        if passes is not None and done >= passes:
            break
        _time.sleep(max(0.0, interval - (_time.monotonic() - started)))
    return total


def report_damaged(
    root: str, channel: str, path: str, message: str, *, stats: MergeStats, on_problem: ProblemHook | None
) -> None:
    """Quarantine a damaged batch file of `root` and report it, as a merge of `root` would."""
    _Channel(root, channel, stats, True, on_problem).report(path, message, None)
