"""The rules of a directory merge, without I/O: which minutes, which bytes, which files to delete.

The shell (`merge/directory.py`) lists and reads an archive's batch files and hands their records
here; what comes back is a plan it carries out in order: write every output durably, then delete
the inputs listed. Everything here is a pure function of the files given, so the rules are tested
without a filesystem (tests/test_merge_plan.py), and the shell holds only the safety of the I/O
(identities, quarantine, fsync).

A window is a minute with the minutes before and after as context, so a record near a boundary
meets its copies (as upstream merges). A neighbour takes part only if one of its records can meet
this minute's: the same message id, a record that belongs to this minute, or a record of this
minute that belongs there. Otherwise merging it would change nothing here, and rewriting it would
be work, and a minute an uninterrupted run would not touch (a rerun after a crash must end where
an uninterrupted run ends).

A minute is *touched* when the merge rewrites it: the window's own minute, and every minute whose
records moved to another minute or joined observations of another (`Merged.entangled`). The inputs
of touched minutes are replaced by the outputs, so they are deleted, except an input that the plan
writes again byte for byte (its name is its hash: the output is the input).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import Any

from formats.canonical import BATCH_INTERVAL, batch_time_of, content_hash
from formats.identity import message_id
from merge.core import MergeCounts, Merger, items_to_bytes
from merge.scan import Scanned


@dataclass(frozen=True)
class InputFile:
    """A batch file as listed and read: the minute and hash its name says, and its records."""

    minute: int
    digest: str
    path: str  # opaque here: the shell's handle for it
    records: list[dict[str, Any]]


_NONE = frozenset([None])
Summary = tuple[frozenset[int], frozenset[bytes]]  # a file's records' minutes, and their message ids (scanned)


def summary_of(scans: Sequence[Scanned]) -> Summary:
    """What a window needs of a neighbour file: the minutes its records lie in, and their ids."""
    times = [s[5] for s in scans]
    if not times:
        return frozenset(), frozenset()
    # batch_time_of is monotonic (a division by 60 and a truncation): one minute at both ends is one
    # minute throughout
    first, last = batch_time_of(min(times)), batch_time_of(max(times))
    minutes = frozenset([first]) if first == last else frozenset(map(batch_time_of, times))
    return minutes, frozenset(map(itemgetter(3), scans)) - _NONE


@dataclass(frozen=True)
class ScannedFile:
    """A batch file as listed and scanned (merge.scan): every line vouched for. A neighbour's lines
    are not needed, only its summary: `scans` may then be None."""

    minute: int
    digest: str
    path: str
    scans: list[Scanned] | None
    summary: Summary


@dataclass(frozen=True)
class LinesFile:
    """A batch file as listed and scanned by the compiled scanner (`formats._native.scan_file`): its
    lines kept as `Lines` (offsets and numbers, every line vouched for)."""

    minute: int
    digest: str
    path: str
    lines: Any


@dataclass(frozen=True)
class OutputFile:
    """A batch file the plan writes: its minute, bytes and records (the bytes' hash names it).
    `records` is None when the plan was made from scanned lines (merge.fastplan): then only
    `count` says how many it holds."""

    minute: int
    data: bytes
    records: list[dict[str, Any]] | None
    count: int = -1
    # the byte path's summary of it as a neighbour: merge.plan.Summary, or formats._native.Ids (compiled)
    summary: Any = None

    @cached_property
    def digest(self) -> str:
        """The hash of `data`, computed once (the plan compares it, the shell names the file by it)."""
        return content_hash(self.data)

    @property
    def size(self) -> int:
        return len(self.records) if self.records is not None else self.count


@dataclass(frozen=True)
class WindowPlan:
    """What merging one window does. Carry it out in order: `outputs` first (each durable), then
    `deletes`; if an output cannot be written, delete nothing."""

    minute: int
    included: tuple[int, ...]  # the minutes whose files were merged (the minute, and neighbours that meet it)
    outputs: tuple[OutputFile, ...]  # in time order
    # inputs of touched minutes that no output rewrites under their name
    deletes: tuple[InputFile | ScannedFile | LinesFile, ...]
    records_in: int  # records of the inputs of touched minutes (the files the outputs replace)
    counts: MergeCounts

    @property
    def records_out(self) -> int:
        return sum(o.size for o in self.outputs)


def window(minute: int) -> tuple[int, int, int]:
    """The minutes a window over `minute` reads."""
    return (minute - BATCH_INTERVAL, minute, minute + BATCH_INTERVAL)


def worth_visiting(files_at_minute: int, *, full: bool) -> bool:
    """Whether a minute needs a window merge: several files, or (`full`) any file at all."""
    return files_at_minute >= (1 if full else 2)


def dirty_minutes(files_by_minute: Mapping[int, Sequence[object]], skip: Iterable[int] = ()) -> list[int]:
    """The minutes holding several files, in time order, less `skip` (minutes that failed this run)."""
    skipped = set(skip)
    return sorted(m for m, files in files_by_minute.items() if len(files) > 1 and m not in skipped)


def _meets(files: Sequence[InputFile], ids: set[str], minute: int) -> bool:
    for f in files:
        for r in f.records:
            if batch_time_of(r["time"]) == minute or message_id(r) in ids:
                return True
    return False


def plan_window(minute: int, files: Mapping[int, Sequence[InputFile]], *, full: bool = False) -> WindowPlan | None:
    """Plan the merge of the window over `minute`, given the readable files of its three minutes
    (`files[m]`, missing keys meaning none). None when there is nothing to do: with `full`, a
    minute whose single file is already exactly what the merge would write, and neighbours that
    need nothing.
    """
    own_files = files.get(minute, ())
    own = [r for f in own_files for r in f.records]
    ids = {mid for r in own if (mid := message_id(r)) is not None}
    moving_to = {batch_time_of(r["time"]) for r in own}
    before, _, after = window(minute)
    included = (minute, *(n for n in (before, after) if n in moving_to or _meets(files.get(n, ()), ids, minute)))
    merger = Merger()
    for m in included:
        for f in files.get(m, ()):
            merger.add(f.records, origin=m)
    merged = merger.finish()
    touched = {minute} | {t for t in merged.entangled() if isinstance(t, int)}
    by_batch = merged.by_batch()
    if (
        full
        and touched == {minute}
        and len(own_files) == 1
        and content_hash(items_to_bytes(by_batch.get(minute, []))) == own_files[0].digest
    ):
        return None  # already what a merge would write
    outputs = tuple(
        OutputFile(t, items_to_bytes(items), [item[3] for item in items])
        for t in sorted(touched)
        if (items := by_batch.get(t))
    )
    rewritten = {(o.minute, o.digest) for o in outputs}
    replaced = [f for m in included if m in touched for f in files.get(m, ())]
    return WindowPlan(
        minute=minute,
        included=included,
        outputs=outputs,
        deletes=tuple(f for f in replaced if (f.minute, f.digest) not in rewritten),
        records_in=sum(len(f.records) for f in replaced),
        counts=merged.counts,
    )
