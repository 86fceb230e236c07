"""The I/O shell of verify: list the archive, read each file once, hand bytes to the pure checks.

Files are read one at a time (whole, since a batch file is one minute of chat: a few MB at most)
and reduced to counters at once, so memory follows the number of minutes, not of records. On an
archive big enough to pay for it, the files are spread over a process pool: checking is CPU-bound
(JSON decoding and encoding), so a second core nearly halves the time.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from formats.canonical import is_hour_folder
from formats.errors import InputError, UsageError
from formats.rawfile import RawProblem, find_raw_files, group_streams, iter_stream_events
from formats.store import QUARANTINE, list_channels
from verify.analysis import Report, analyse
from verify.batch import FileScan, check_batch
from verify.coverage import ChatCounts, Window, connection_windows, count_chat
from verify.findings import Finding
from verify.fresh import FreshIndex, index_events
from verify.listing import (
    BatchEntry,
    classify_hour_entry,
    implausible_time_findings,
    name_findings,
    quarantine_findings,
    unmerged_findings,
)
from verify.tally import ChannelTally

# Below this many files a pool costs more (starting workers) than it saves.
POOL_MIN_FILES = 64


class VerifyError(UsageError):
    """Verify could not even start: the root or a raw path is missing or unreadable."""


@dataclass
class Listing:
    """Everything found under the chat folders, before any file is read."""

    channels: list[str]
    entries: list[BatchEntry] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _scandir(path: str, findings: list[Finding], channel: str | None) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as e:
        findings.append(Finding("unreadable", f"cannot list folder: {e.strerror}", path, channel=channel))
        return []


def list_archive(root: str, channel: str | Sequence[str] | None = None) -> Listing:
    """List the archive (or some channels of it) and judge every name found under `chat/`."""
    if not os.path.isdir(root):
        raise VerifyError(f"{root}: not a folder")
    if channel is not None:
        channels = sorted({channel} if isinstance(channel, str) else set(channel))
        for name in channels:
            if not os.path.isdir(os.path.join(root, name, "chat")):
                raise VerifyError(f"{root}: no channel {name!r} (no {name}/chat folder)")
    else:
        try:
            channels = list_channels(root)
        except OSError as e:
            raise VerifyError(f"{root}: cannot list: {e.strerror}") from None
    listing = Listing(channels)
    if not channels:
        listing.findings.append(Finding("no-channels", "no CHANNEL/chat folder here", root))
    for name in channels:
        chat = os.path.join(root, name, "chat")
        for hour in _scandir(chat, listing.findings, name):
            is_dir = hour.is_dir(follow_symlinks=False)
            if not (is_dir and is_hour_folder(hour.name)):
                kind = "folder" if is_dir else "file"
                listing.findings.append(
                    Finding(
                        "foreign-file",
                        f"{kind} that is not an hour folder",
                        hour.path,
                        channel=name,
                    )
                )
                continue
            for item in _scandir(hour.path, listing.findings, name):
                got = classify_hour_entry(name, hour.name, item.name, item.path, item.is_dir(follow_symlinks=False))
                if isinstance(got, Finding):
                    listing.findings.append(got)
                else:
                    listing.entries.append(got)
                    listing.findings.extend(name_findings(got))
    listing.findings.extend(unmerged_findings(listing.entries))
    listing.findings.extend(_quarantine(root, None if channel is None else channels))
    return listing


def _quarantine(root: str, channels: list[str] | None) -> list[Finding]:
    """What the merge's quarantine holds (of the given channels only, with `channels`)."""
    folder = os.path.join(root, QUARANTINE)
    tops = [folder] if channels is None else [os.path.join(folder, c) for c in channels]
    files: list[str] = []
    problems: list[Finding] = []

    def unreadable(e: OSError) -> None:
        problems.append(Finding("unreadable", f"cannot list folder: {e.strerror}", e.filename))

    for top in tops:
        if os.path.isdir(top):  # else nothing was ever set aside there
            for here, _dirs, names in os.walk(top, onerror=unreadable):
                files.extend(os.path.relpath(os.path.join(here, n), folder) for n in names)
    return problems + quarantine_findings(folder, sorted(files))


# The raw recordings' index (verify.fresh) in a worker process: set once per worker by the pool's
# initializer, rather than shipped with every file.
_worker_fresh: FreshIndex | None = None


def _init_worker(fresh: FreshIndex | None) -> None:
    global _worker_fresh  # noqa: PLW0603 (one value per worker process, set once at its start)
    _worker_fresh = fresh


def _scan_in_worker(entry: BatchEntry) -> tuple[str, FileScan]:
    return scan_file(entry, _worker_fresh)


def scan_file(entry: BatchEntry, fresh: FreshIndex | None = None) -> tuple[str, FileScan]:
    """Read and check one batch file (runs in a worker process on big archives)."""
    try:
        with open(entry.path, "rb") as f:
            data = f.read()
    except OSError as e:
        scan = FileScan([Finding("unreadable", f"cannot read: {e.strerror}", entry.path, channel=entry.channel)])
        return entry.channel, scan
    return entry.channel, check_batch(data, entry.path, entry.channel, entry.batch_time, entry.digest, fresh=fresh)


def _scans(entries: list[BatchEntry], jobs: int, fresh: FreshIndex | None) -> Iterator[tuple[str, FileScan]]:
    if jobs <= 1 or len(entries) < POOL_MIN_FILES:
        for entry in entries:
            yield scan_file(entry, fresh)
        return
    # forkserver: safe when the parent runs threads (a progress bar does), and cheap to start.
    context = multiprocessing.get_context("forkserver")
    with context.Pool(jobs, initializer=_init_worker, initargs=(fresh,)) as pool:
        yield from pool.imap_unordered(_scan_in_worker, entries, chunksize=4)


def read_windows(
    raw_paths: list[str],
    findings: list[Finding],
    fresh: FreshIndex | None = None,
    chat: ChatCounts | None = None,
) -> list[Window]:
    """Connection windows of every recorder process in the raw recordings under `raw_paths`; with
    `fresh`, also today's reading of every line received (verify.fresh), and with `chat`, the chat
    lines received per channel and minute (verify.coverage.count_chat), in the same pass."""
    try:
        files = find_raw_files(raw_paths)
    except InputError as e:
        raise VerifyError(str(e)) from None
    problems: list[RawProblem] = []
    windows: list[Window] = []
    for stream in group_streams(files, problems):
        events = iter_stream_events(stream, problems)
        if fresh is not None:
            events = index_events(stream.header.recorder, stream.header.slug, events, fresh)
        if chat is not None:
            events = count_chat(events, chat)
        windows.extend(connection_windows(stream.header.recorder, stream.header.slug, events))
    for p in problems:
        findings.append(Finding("raw-problem", p.message, p.source, p.line))
    windows.sort(key=lambda w: (w.start, w.receiver))
    return windows


def default_jobs() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def verify_archive(
    root: str,
    *,
    channel: str | Sequence[str] | None = None,
    raw: list[str] | None = None,
    jobs: int | None = None,
    on_listed: Callable[[int], None] | None = None,
    on_file: Callable[[], None] | None = None,
    now: float | None = None,
) -> Report:
    """Check an archive and return the full report. Raises VerifyError if the root cannot be read.
    Batch files timed more than a day past `now` (the clock if not given) are reported.

    `on_listed(n)` is called once the n batch files are known, `on_file()` after each is checked:
    the CLI hangs its progress bar on them.
    """
    listing = list_archive(root, channel)
    findings = list(listing.findings)
    findings.extend(implausible_time_findings(listing.entries, time.time() if now is None else now))
    fresh = FreshIndex() if raw else None
    chat: ChatCounts = {}
    windows = read_windows(raw, findings, fresh, chat) if raw else None
    if fresh is not None:
        fresh.seal()
    if on_listed is not None:
        on_listed(len(listing.entries))
    tallies = {name: ChannelTally() for name in listing.channels}
    for name, scan in _scans(listing.entries, jobs if jobs is not None else default_jobs(), fresh):
        tallies[name].add(scan.tally)
        findings.extend(scan.findings)
        if on_file is not None:
            on_file()
    return analyse(root, tallies, findings, windows, chat)
