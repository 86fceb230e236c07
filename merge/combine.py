"""Merging other archives and loose batch files (the directory merge of one archive is
merge/directory.py, which this builds on).

- `merge_into` (`merge SRC... --into DEST`): copy what DEST lacks from each source, verified,
  then merge DEST. A second run with the same sources reads but writes nothing.
- `merge_files` (`merge FILE... --stdout`): the canonical merge of some batch files, and a problem
  for each file that cannot be read or is damaged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from formats.canonical import batch_relpath, check_channel_dirname, content_hash, parse_batch_name
from formats.errors import ArchiverError, InputError, UsageError
from formats.store import iter_batch_files, minute_batch_files, write_bytes_atomic
from merge.core import Merged, Merger
from merge.directory import (
    HASH_MISMATCH,
    MergeProblem,
    MergeStats,
    ProblemHook,
    merge_tree,
    read_verified,
    report_damaged,
    select_channels,
)


def _dest_minute_records(dest_root: str, channel: str, minute: int) -> tuple[bytes, list[dict[str, Any]]] | None:
    """The bytes and records of the one file DEST holds at `minute`, or None if it holds 0 or several."""
    try:
        files = minute_batch_files(dest_root, channel, minute)
        if len(files) != 1:
            return None
        (only,) = files
        with open(only.path, "rb") as f:
            data = f.read()
        return data, read_verified(only.path, only.digest)
    except (OSError, InputError):
        return None  # let merge_tree find and report it


def _content_of(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def merge_into(
    src_roots: Iterable[str],
    dest_root: str,
    *,
    channels: Iterable[str] | None = None,
    on_problem: ProblemHook | None = None,
    full: bool = False,
) -> MergeStats:
    """Bring several archives together in `dest_root` (created if missing), then merge it.

    Each source file is verified (hash and records) and copied atomically, unless DEST already
    holds its content (DEST's single file of that minute, merged with it, gives the same bytes),
    so a second run with the same sources reads but writes nothing. Sources are never modified;
    a corrupt source file is reported and not copied.
    """
    sources = list(src_roots)
    for src in sources:
        if not os.path.isdir(src):
            raise UsageError(f"source archive not found: {src}")
    os.makedirs(dest_root, exist_ok=True)
    stats = MergeStats()
    seen: set[str] = set()
    for src in sources:
        for channel in select_channels(src, channels):
            try:
                check_channel_dirname(channel)
            except ArchiverError:
                continue
            for bf in iter_batch_files(src, channel):
                try:
                    records = read_verified(bf.path, bf.digest)
                except FileNotFoundError:
                    continue
                except InputError as e:
                    problem = MergeProblem(bf.path, e.message, e.line, None)
                    stats.problems.append(problem)
                    if on_problem is not None:
                        on_problem(problem)
                    continue
                stats.files_read += 1
                seen.add(channel)
                hour, name = batch_relpath(bf.batch_time, bf.digest)
                target = os.path.join(dest_root, channel, "chat", hour, name)
                try:
                    with open(target, "rb") as f:
                        if f.read() == _content_of(bf.path):
                            continue  # already there
                    # A damaged file holds the name: quarantine it (writing would destroy it), then copy.
                    report_damaged(dest_root, channel, target, HASH_MISMATCH, stats=stats, on_problem=on_problem)
                except FileNotFoundError:
                    pass
                current = _dest_minute_records(dest_root, channel, bf.batch_time)
                if current is not None:
                    merger = Merger()
                    merger.add(current[1])
                    merger.add(records)
                    if merger.finish().to_bytes() == current[0]:
                        continue  # DEST already holds all of it
                with open(bf.path, "rb") as f:
                    data = f.read()
                if content_hash(data) != bf.digest:
                    continue  # changed under us since it was verified: the next run will see it
                write_bytes_atomic(target, data)
                stats.files_copied += 1
    if seen:
        stats.add(merge_tree(dest_root, channels=sorted(seen), on_problem=on_problem, full=full))
    stats.channels = len(seen)
    return stats


def merge_files(paths: Iterable[str]) -> tuple[Merged, list[MergeProblem]]:
    """Merge batch files given by path (for `merge FILE... --stdout`): the merge of every file that
    can be read, and a problem for each that cannot (unreadable or damaged, with its line). A path
    that does not exist is the caller's mistake: UsageError, before anything is read.

    A file named like a batch file (`HOUR/MM:SS-HASH.json`) must match its hash; others are only
    parsed, so an archive's file can be merged with a hand-made one.
    """
    paths = list(paths)
    for path in paths:
        if not os.path.lexists(path):
            raise UsageError(f"{path}: no such file")
    merger = Merger()
    problems: list[MergeProblem] = []
    for path in paths:
        parsed = parse_batch_name(os.path.basename(os.path.dirname(os.path.abspath(path))), os.path.basename(path))
        try:
            records = read_verified(path, parsed[1] if parsed else None)
        except FileNotFoundError:
            problems.append(MergeProblem(path, "file went away while being read"))
            continue
        except InputError as e:
            problems.append(MergeProblem(path, e.message, e.line))
            continue
        merger.add(records)
    return merger.finish(), problems
