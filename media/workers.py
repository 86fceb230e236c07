"""Background fetching that never holds up the caller: a bounded queue, coalescing, drop-and-count.

`offer(key)` returns at once, whatever the network does. A key already done, already waiting or
being fetched, or that failed a moment ago is not queued again (coalesced: concurrent requests for
the same file become one fetch). When the queue is full the key is dropped and counted, never
waited for: the archive still names it, so the next pass over the archive (`media ROOT`, or the
follower's next scan) fetches it. Workers are daemon threads; `close` lets them finish the fetch
in hand and stops them.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from formats.errors import ArchiverError
from media.fetch import FetchError

Log = Callable[[str], None]
MAX_BACKOFF = 86_400.0  # s: a key that keeps failing is still tried once a day


@dataclass
class MediaStats:
    """Counters of one process's media work (thread-safe; read by the Prometheus collector)."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    fetches: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, outcome) -> n
    bytes_fetched: dict[str, int] = field(default_factory=dict)  # kind -> bytes
    refusals: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, reason) -> n
    offers: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, answer) -> n
    files_written: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, key: tuple[str, str] | str, n: int = 1) -> None:
        with self.lock:
            counts = getattr(self, table)
            counts[key] = counts.get(key, 0) + n

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Every counter, keys joined with `/` (for --json and the status file)."""
        with self.lock:
            return {
                name: {k if isinstance(k, str) else "/".join(k): v for k, v in sorted(getattr(self, name).items())}
                for name in ("fetches", "bytes_fetched", "refusals", "offers", "files_written")
            }


class Background:
    """Runs `handle(key)` on worker threads for keys offered. `handle` returns normally when the
    key is done for good; a FetchError, an ArchiverError or an OSError marks it failed, and it may
    be offered again after `retry_after` seconds."""

    def __init__(
        self,
        kind: str,
        handle: Callable[[str], None],
        stats: MediaStats,
        *,
        workers: int = 4,
        queue_size: int = 10_000,
        retry_after: float = 300.0,
        remember: int = 200_000,
        log: Log = lambda line: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.handle = handle
        self.stats = stats
        self.retry_after = retry_after
        self.log = log
        self.clock = clock
        self._queue: queue.Queue[str | None] = queue.Queue(queue_size)
        self._lock = threading.Lock()
        # keys done, most recent last; bounded (a long-running host sees endless distinct links):
        # a key forgotten here is only looked up on disk again by `handle`, never fetched twice
        self._done: OrderedDict[str, None] = OrderedDict()
        self.remember = remember
        self._pending: set[str] = set()  # queued or being fetched
        # key -> (when it last failed, failures in a row, whether to try again by itself)
        self._failed: dict[str, tuple[float, int, bool]] = {}
        self._threads = [
            threading.Thread(target=self._work, name=f"media-{kind}-{i}", daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def offer(self, key: str, *, wait: bool = False) -> str:
        """Queue `key` unless it is done, pending or failed recently. Returns what happened:
        `done`, `coalesced`, `backoff`, `queued` or `dropped` (the queue was full). Never blocks
        unless `wait` (a whole pass over an archive waits for room rather than drop)."""
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                answer = "done"
            elif key in self._pending:
                answer = "coalesced"
            elif key in self._failed and not self._due(key):
                answer = "backoff"
            else:
                self._pending.add(key)
                answer = "queued"
        if answer == "queued":
            try:
                self._queue.put(key, block=wait)
            except queue.Full:
                with self._lock:
                    self._pending.discard(key)
                answer = "dropped"
        self.stats.add("offers", (self.kind, answer))
        return answer

    def _due(self, key: str) -> bool:
        """Whether a failed key's wait is over: `retry_after`, doubled for each failure in a row,
        at most a day."""
        when, failures, _auto = self._failed[key]
        wait: float = min(self.retry_after * 2.0 ** (failures - 1), MAX_BACKOFF)
        return self.clock() - when >= wait

    def retry_due(self) -> int:
        """Offer again every key that failed for a reason that may pass (a timeout, a 5xx, no
        connection: not a 4xx or a refusal of ours) and whose wait is over; the live host calls
        this on each poll, so an outage of the CDN heals by itself. Returns how many were queued."""
        with self._lock:
            due = [k for k, (_w, _n, auto) in self._failed.items() if auto and k not in self._pending and self._due(k)]
        return sum(self.offer(key) == "queued" for key in due)

    def idle(self) -> bool:
        with self._lock:
            return not self._pending

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or being fetched (True), or `timeout` passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.idle():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        for t in self._threads:
            t.join(timeout=0.05)

    def _work(self) -> None:
        while True:
            key = self._queue.get()
            if key is None:
                return
            ok = False
            auto = True  # a disk error, a bug: worth another try later
            try:
                self.handle(key)
                ok = True
            except FetchError as e:
                auto = e.retryable
                self.log(f"{self.kind} {key}: {e}")
            except (ArchiverError, OSError, ValueError) as e:
                self.stats.add("fetches", (self.kind, "error"))
                self.log(f"{self.kind} {key}: {e}")
            except Exception as e:  # a bug must not kill the worker (the queue would stall)
                self.stats.add("fetches", (self.kind, "error"))
                # a bug: its traceback belongs in the log
                self.log(f"{self.kind} {key}: unexpected {type(e).__name__}: {e}\n{traceback.format_exc().rstrip()}")
            with self._lock:
                self._pending.discard(key)
                if ok:
                    self._done[key] = None
                    if len(self._done) > self.remember:
                        self._done.popitem(last=False)
                    self._failed.pop(key, None)
                else:
                    failures = self._failed[key][1] + 1 if key in self._failed else 1
                    self._failed[key] = (self.clock(), failures, auto)
