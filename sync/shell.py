"""The sync's I/O shell: list peers, fetch what is missing, keep what checks out, merge.

A fetched body goes to a scratch file under `ROOT/.sync/tmp/` (written and fsynced), is read back
by the merge's own reader (`read_verified`: hash = name, valid records), and only then renamed to
its place in the archive and the folder fsynced. So a sync killed at any moment leaves in the
archive only whole, verified files; its scratch leftovers are outside the archive's folders and
the next sync clears them. Names fetched and kept are remembered in `ROOT/.sync/known/CHANNEL/HOUR`
(see `sync.plan`), appended after the file is durable. The merge afterwards is the ordinary
directory merge of the channels that received files: it is a CRDT, so syncs in any order, from any
peers, converge.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import urllib3

from formats.canonical import parse_batch_name
from formats.errors import ArchiverError, InputError, UsageError
from formats.names import batch_name_ok, can_be_channel, channel_ok
from formats.store import channel_chat_dir, fsync_dir, makedirs_durable, write_bytes_atomic
from merge.directory import MergeProblem, check_bytes, merge_tree, read_verified
from merge.scan import scan_file
from sync.client import Peer, PeerError, new_pool
from sync.plan import Wanted, channel_names, hours_before, hours_in_window, implausible_time, names_list, plan_hour

STATE = ".sync"
MAX_LISTING = 16 << 20  # bytes: an hour lists at most a few hundred names
# bytes held per fetch at most: a minute of a 100 msg/s channel seen by 3 receivers is about 4 MB;
# a peer's larger body is refused at the limit (`max_file`, the CLI's --max-file, raises it)
MAX_FILE = 16 << 20
PLANNED = 256  # fetches planned ahead of the fetchers, per peer: what bounds a sync's memory
SCRATCH_AGE = 600  # s: scratch files older than this belong to no running sync
PLANNED_HOURS = 2  # hour listings fetched ahead of the planner, per peer
VERIFY_IN_PROCESSES = 8  # files to fetch from one peer before checking them in worker processes pays off


@dataclass(frozen=True)
class Refusal:
    """Something a peer sent that was not used, and why (one line each)."""

    peer: str
    what: str
    reason: str

    def __str__(self) -> str:
        return f"{self.peer}: {self.what}: {self.reason}"


@dataclass
class SyncStats:
    """What a sync did (`--json` prints `as_dict()`)."""

    peers: int = 0
    channels: int = 0
    hours_listed: int = 0
    files_listed: int = 0
    files_fetched: int = 0
    bytes_fetched: int = 0
    files_gone: int = 0  # listed, then 404: merged away on the peer meanwhile
    hours_older: int = 0  # hours a peer holds before the window (not fetched): said when the window is empty
    newest_older: str = ""  # the newest of those hours (HOUR folder name)
    minutes_merged: int = 0
    files_merged_away: int = 0
    seconds: float = 0.0
    refused: list[Refusal] = field(default_factory=list)
    # names at a peer's top level that cannot be channels (a stray file): notices, not refusals
    skipped: list[Refusal] = field(default_factory=list)
    merge_problems: list[MergeProblem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["refused"] = [str(r) for r in self.refused]
        out["skipped"] = [str(r) for r in self.skipped]
        out["merge_problems"] = [str(p) for p in self.merge_problems]
        return out


RefusalHook = Callable[[Refusal], None]


class _Known:
    """Names whose content is in the archive already, per channel and hour (`sync.plan`)."""

    def __init__(self, root: str) -> None:
        self.folder = os.path.join(root, STATE, "known")
        self.lock = threading.Lock()

    def _path(self, channel: str, hour: str) -> str:
        return os.path.join(self.folder, channel, hour)

    def names(self, channel: str, hour: str) -> set[str]:
        try:
            with open(self._path(channel, hour), encoding="ascii", errors="replace") as f:
                return {line.strip() for line in f if batch_name_ok(hour, line.strip())}  # a torn last line is dropped
        except FileNotFoundError:
            return set()

    def add(self, wanted: Wanted) -> None:
        path = self._path(wanted.channel, wanted.hour)
        with self.lock:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a", encoding="ascii") as f:
                f.write(wanted.name + "\n")


def verify_file(path: str, wanted: Wanted, now: float) -> str | None:
    """Why the file at `path` fetched as `wanted` is refused (the merge's reader refuses it, or its
    times are implausible at `now`: `sync.plan.implausible_time`), or None if it is taken."""
    try:
        records = read_verified(path, wanted.digest)
    except InputError as e:
        return e.message if e.line is None else f"line {e.line}: {e.message}"
    parsed = parse_batch_name(wanted.hour, wanted.name)
    if parsed is None:  # pragma: no cover - plan_hour takes only batch names
        return "not a batch file name"
    return implausible_time(parsed[0], (r["time"] for r in records), now)


def verify_bytes(data: bytes, path: str, wanted: Wanted, now: float) -> str | None:
    """`verify_file` of bytes not yet written (`merge.directory.check_bytes`, then the times)."""
    try:
        check_bytes(data, path, wanted.digest)
    except InputError as e:
        return e.message if e.line is None else f"line {e.line}: {e.message}"
    parsed = parse_batch_name(wanted.hour, wanted.name)
    if parsed is None:  # pragma: no cover - plan_hour takes only batch names
        return "not a batch file name"
    # the file is valid: each line is a JSON object with a numeric time
    times = (orjson.loads(line)["time"] for line in data.splitlines() if line)
    return implausible_time(parsed[0], times, now)


def _local_names(root: str, channel: str, hour: str) -> set[str]:
    try:
        return set(os.listdir(os.path.join(channel_chat_dir(root, channel), hour)))
    except (FileNotFoundError, NotADirectoryError):
        return set()


def _clear_scratch(scratch: str) -> None:
    try:
        names = os.listdir(scratch)
    except FileNotFoundError:
        return
    now = time.time()
    for name in names:
        path = os.path.join(scratch, name)
        with contextlib.suppress(OSError):
            if now - os.stat(path).st_mtime > SCRATCH_AGE:
                os.unlink(path)


class _Sync:
    def __init__(
        self,
        root: str,
        stats: SyncStats,
        jobs: int,
        *,
        on_refusal: RefusalHook | None,
        on_plan: Callable[[int], None] | None,
        on_file: Callable[[], None] | None,
        max_file: int,
        on_skip: RefusalHook | None = None,
        now: float,
    ) -> None:
        self.root = root
        self.now = now
        self.stats = stats
        self.jobs = jobs
        self.on_refusal = on_refusal
        self.on_skip = on_skip
        self.on_plan = on_plan
        self.on_file = on_file
        self.max_file = max_file
        self.known = _Known(root)
        self.scratch = os.path.join(root, STATE, "tmp")
        self.lock = threading.Lock()
        self.changed: set[str] = set()
        self.synced: set[str] = set()
        self.verifier: ProcessPoolExecutor | None = None
        self.fetches = 0
        self.in_flight: set[Wanted] = set()

    def refuse(self, peer: Peer, what: str, reason: str) -> None:
        refusal = Refusal(peer.base, what, reason)
        with self.lock:
            self.stats.refused.append(refusal)
        if self.on_refusal is not None:
            self.on_refusal(refusal)

    def skip(self, peer: Peer, what: str, reason: str) -> None:
        """A notice: something the peer lists that is not for us (it does not make the pass fail)."""
        notice = Refusal(peer.base, what, reason)
        with self.lock:
            self.stats.skipped.append(notice)
        if self.on_skip is not None:
            self.on_skip(notice)

    def refuse_error(self, peer: Peer, e: PeerError | InputError) -> None:
        what = e.source or "?"
        if what.startswith(peer.base):
            what = what[len(peer.base) :] or "/"
        self.refuse(peer, what, e.message if e.line is None else f"line {e.line}: {e.message}")

    # -- listing ------------------------------------------------------------------------------
    def listing(self, peer: Peer, path: str) -> list[str]:
        body = peer.get(path, MAX_LISTING)
        if body is None:
            return []
        return names_list(body, peer.url(path))

    def plan_peer(self, peer: Peer, channels: list[str] | None, start: float, end: float) -> Iterator[Wanted]:
        """The files to fetch from `peer`, an hour's listing at a time (a few hours listed ahead,
        by `PLANNED_HOURS` threads): memory holds a few listings, however many the peer has."""
        if channels is None:
            try:
                body = peer.get("/files", MAX_LISTING)
                chosen, bad = channel_names(body or b"[]", peer.url("/files"))
            except (PeerError, InputError) as e:
                self.refuse_error(peer, e)
                return
            for name in bad:
                self.refuse(peer, "/files", f"channel name {name!r} cannot be a folder: skipped")
            channels = []
            for name in chosen:
                if can_be_channel(name):
                    channels.append(name)
                else:  # a wubloader node's listing shows a stray file at the top of its folder too
                    self.skip(peer, "/files", f"{name!r} cannot be a channel (a file?): skipped")
        with ThreadPoolExecutor(PLANNED_HOURS, thread_name_prefix="sync-list") as pool:
            for channel in channels:
                try:
                    listed = self.listing(peer, f"/files/{quote(channel)}/chat")
                    hours = hours_in_window(listed, start, end)
                except (PeerError, InputError) as e:
                    self.refuse_error(peer, e)
                    continue
                older = hours_before(listed, start)
                with self.lock:
                    if older:
                        self.stats.hours_older += len(older)
                        self.stats.newest_older = max(self.stats.newest_older, older[-1])
                    self.stats.channels += 1
                    self.synced.add(channel)

                def hour_plan(hour: str, channel: str = channel) -> list[Wanted]:
                    try:
                        names = self.listing(peer, f"/files/{quote(channel)}/chat/{hour}?tombstones=true")
                    except (PeerError, InputError) as e:
                        self.refuse_error(peer, e)
                        return []
                    local = _local_names(self.root, channel, hour)
                    # names fetched before count only while the hour still holds files: an hour emptied
                    # by hand (to fetch it again) is fetched again
                    have = local | self.known.names(channel, hour) if local else local
                    plan = plan_hour(channel, hour, names, have)
                    with self.lock:
                        self.stats.hours_listed += 1
                        self.stats.files_listed += len(names)
                    for name, why in plan.refused:
                        self.refuse(peer, f"/files/{channel}/chat/{hour}", f"{name!r}: {why}")
                    return plan.wanted

                for wanted in _ahead(pool, hour_plan, hours, PLANNED_HOURS):
                    if self.on_plan is not None and wanted:
                        with self.lock:  # peers plan at once: one change of the total at a time
                            self.on_plan(len(wanted))
                    yield from wanted

    # -- fetching -----------------------------------------------------------------------------
    def fetch(self, peer: Peer, wanted: Wanted) -> None:
        try:
            self._fetch(peer, wanted)
        finally:
            if self.on_file is not None:
                self.on_file()

    def _fetch(self, peer: Peer, wanted: Wanted) -> None:
        """Fetch, check and store one file, unless another peer's fetch has it (in flight or done)."""
        final = os.path.join(channel_chat_dir(self.root, wanted.channel), wanted.hour, wanted.name)
        with self.lock:
            if wanted in self.in_flight or os.path.exists(final):
                return
            self.in_flight.add(wanted)
        try:
            self._fetch_new(peer, wanted, final)
        finally:
            with self.lock:
                self.in_flight.discard(wanted)

    def _fetch_new(self, peer: Peer, wanted: Wanted, final: str) -> None:
        path = f"/segments/{quote(wanted.channel)}/chat/{wanted.hour}/{quote(wanted.name, safe=':')}"
        try:
            data = peer.get(path, self.max_file)
        except PeerError as e:
            self.refuse_error(peer, e)
            return
        if data is None:
            with self.lock:
                self.stats.files_gone += 1  # merged away on the peer: its successor is listed next time
            return
        if scan_file is not None:  # compiled: checking the bytes here costs less than a process hop
            problem = verify_bytes(data, path, wanted, self.now)
            if problem is not None:
                self.refuse(peer, path, problem)
                return
        scratch = os.path.join(self.scratch, f"{uuid.uuid4().hex}.json")
        try:
            write_bytes_atomic(scratch, data)
            if scan_file is None:
                verifier = self._verifier()
                if verifier is not None:  # parsing is CPU-bound: worker processes, not these threads
                    problem = verifier.submit(verify_file, scratch, wanted, self.now).result()
                else:
                    problem = verify_file(scratch, wanted, self.now)
                if problem is not None:
                    self.refuse(peer, path, problem)
                    return
            folder = os.path.dirname(final)
            makedirs_durable(folder)  # a new channel's or hour's folders survive a crash too
            os.replace(scratch, final)
            fsync_dir(folder)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
        self.known.add(wanted)
        with self.lock:
            self.stats.files_fetched += 1
            self.stats.bytes_fetched += len(data)
            self.changed.add(wanted.channel)

    def _verifier(self) -> ProcessPoolExecutor | None:
        """Worker processes to check files in, started once `VERIFY_IN_PROCESSES` files have come
        (on a machine of one CPU, none: the threads check them)."""
        with self.lock:
            self.fetches += 1
            if self.verifier is None and self.fetches >= VERIFY_IN_PROCESSES and (os.cpu_count() or 1) > 1:
                self.verifier = ProcessPoolExecutor(
                    min(self.jobs, os.cpu_count() or 1), mp_context=multiprocessing.get_context("forkserver")
                )
            return self.verifier

    def sync_peer(self, peer: Peer, channels: list[str] | None, start: float, end: float) -> None:
        """Plan and fetch from one peer: `jobs` fetchers take planned files from a queue of at most
        `PLANNED`, so memory does not grow with what the peer lists, and a slow peer holds only its
        own fetchers."""
        todo: queue.Queue[Wanted | None] = queue.Queue(PLANNED)
        failed: list[BaseException] = []

        def fetcher() -> None:
            while (wanted := todo.get()) is not None:
                if failed:
                    continue  # drain, so the planner never blocks on a dead fetcher
                try:
                    self.fetch(peer, wanted)
                except BaseException as e:
                    failed.append(e)

        workers = [threading.Thread(target=fetcher, name="sync-fetch", daemon=True) for _ in range(self.jobs)]
        for worker in workers:
            worker.start()
        try:
            for wanted in self.plan_peer(peer, channels, start, end):
                if failed:
                    break
                todo.put(wanted)
        finally:
            for _ in workers:
                todo.put(None)
            for worker in workers:
                worker.join()
        if failed:
            raise failed[0]

    def run(self, peers: list[Peer], channels: list[str] | None, start: float, end: float) -> None:
        """Every peer at once, each in a thread of its own (`sync_peer`). A file two peers list is
        fetched once: the second finds it in flight or in place and skips it (if the first one's copy
        is refused, the next pass fetches it from the other)."""
        _clear_scratch(self.scratch)
        failed: list[BaseException] = []

        def one(peer: Peer) -> None:
            try:
                self.sync_peer(peer, channels, start, end)
            except BaseException as e:
                failed.append(e)

        threads = [threading.Thread(target=one, args=(peer,), name="sync-peer", daemon=True) for peer in peers]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            if self.verifier is not None:
                self.verifier.shutdown()
        if failed:
            raise failed[0]


def _ahead(
    pool: ThreadPoolExecutor, fn: Callable[[str], list[Wanted]], items: Iterable[str], n: int
) -> Iterator[list[Wanted]]:
    """`map(fn, items)` in order, with at most `n` calls running or done ahead of the consumer."""
    running: collections.deque[Future[list[Wanted]]] = collections.deque()
    for item in items:
        running.append(pool.submit(fn, item))
        if len(running) >= n:
            yield running.popleft().result()
    while running:
        yield running.popleft().result()


def sync_once(
    root: str,
    peers: Iterable[str],
    *,
    channels: Iterable[str] | None = None,
    start: float,
    end: float,
    jobs: int = 4,
    timeout: float = 20.0,
    answer_time: float | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    on_refusal: RefusalHook | None = None,
    on_skip: RefusalHook | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_file: Callable[[], None] | None = None,
    on_problem: Callable[[MergeProblem], None] | None = None,
    pool: urllib3.PoolManager | None = None,
    max_file: int = MAX_FILE,
    now: float | None = None,
) -> SyncStats:
    """One backfill pass from `peers` into `root` (made if missing) for hours meeting
    `[start, end]`, then a merge of the channels that received files. A file timed implausibly
    at `now` (the clock if not given) is refused (`sync.plan.implausible_time`)."""
    began = time.monotonic()
    wanted_channels = None
    if channels is not None:
        wanted_channels = sorted({c.lower().lstrip("#") for c in channels})
        for channel in wanted_channels:
            if not channel_ok(channel):
                raise UsageError(f"not a channel name: {channel!r}")
    if jobs < 1:
        raise UsageError("jobs must be at least 1")
    http = pool or new_pool(jobs)
    total = answer_time if answer_time is not None else timeout  # for one whole answer, retries included
    peer_list = [Peer(p, http, timeout=timeout, total=total, retries=retries, backoff=backoff) for p in peers]
    if not peer_list:
        raise UsageError("no peer to sync from (--from URL)")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{root}: cannot create the archive folder: {e.strerror}") from None
    stats = SyncStats(peers=len(peer_list))
    state = _Sync(
        root,
        stats,
        jobs,
        on_refusal=on_refusal,
        on_plan=on_plan,
        on_file=on_file,
        max_file=max_file,
        on_skip=on_skip,
        now=time.time() if now is None else now,
    )
    state.run(peer_list, wanted_channels, start, end)
    # every channel synced, not only those that received files: a sync killed in its merge left
    # minutes with several files, and the next sync, which fetches nothing, must finish them
    local = sorted(c for c in state.synced | state.changed if os.path.isdir(channel_chat_dir(root, c)))
    if local:
        try:
            merged = merge_tree(root, channels=local, on_problem=on_problem)
        except ArchiverError as e:  # several files left in a minute (another writer racing): next pass
            stats.merge_problems.append(MergeProblem(root, str(e)))
        else:
            stats.minutes_merged = merged.minutes_merged
            stats.files_merged_away = merged.files_deleted
            stats.merge_problems.extend(merged.problems)
    stats.seconds = round(time.monotonic() - began, 3)
    return stats
