"""Prometheus metrics of the media stage, computed at scrape time.

Counters come from the keeper's `MediaStats` (plain dicts under a lock, cheaper per fetch than
prometheus-client's labelled counters), either in this process (`MediaCollector`) or from the
status file a `media --follow` child writes for `archive` (`StatusCollector`). The store's size is
a walk of its folders, cached for a minute so a scrape every few seconds does not list a large
store each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from media import layout
from media.store import MediaStore
from media.workers import MediaStats

PREFIX = "chat_archiver_media"
SIZE_TTL = 60.0

# name in MediaStats.snapshot(), metric name, help, label names
_COUNTERS = (
    ("fetches", "fetches", "Fetches, by kind (emote, link) and outcome (ok, refused, failed).", ("kind", "outcome")),
    ("bytes_fetched", "fetched_bytes", "Bytes of bodies fetched, by kind.", ("kind",)),
    (
        "refusals",
        "refusals",
        "Fetches that gave nothing to keep, by kind and reason (private-address, too-large, timeout, http-4xx ...).",
        ("kind", "reason"),
    ),
    (
        "offers",
        "offers",
        "Emote ids and links offered to the background workers, by what happened "
        "(queued, coalesced, done, backoff, dropped: the queue was full).",
        ("kind", "answer"),
    ),
    ("files_written", "files_written", "Files written to the store, by kind.", ("kind",)),
)


def families(snapshot: dict[str, Any], sizes: dict[str, Any]) -> Iterator[Metric]:
    """The metric families of a `MediaStats.snapshot()` and the store's `{folder: [files, bytes]}`."""
    for key, name, text, labels in _COUNTERS:
        family = CounterMetricFamily(f"{PREFIX}_{name}", text, labels=list(labels))
        for joined, n in sorted((snapshot.get(key) or {}).items()):
            values = str(joined).split("/", len(labels) - 1)
            if len(values) == len(labels) and isinstance(n, int):
                family.add_metric(values, n)
        yield family
    files = GaugeMetricFamily(f"{PREFIX}_store_files", "Files in the store, by folder.", labels=["folder"])
    size = GaugeMetricFamily(f"{PREFIX}_store_bytes", "Bytes in the store, by folder.", labels=["folder"])
    for folder, (n, b) in sorted(sizes.items()):
        files.add_metric([folder], n)
        size.add_metric([folder], b)
    yield files
    yield size


class StoreSize:
    """The store's size by folder, walked at most once a minute."""

    def __init__(self, store: MediaStore) -> None:
        self.store = store
        self._size: dict[str, tuple[int, int]] = {}
        self._at = -SIZE_TTL
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            if time.monotonic() - self._at >= SIZE_TTL:
                self._size = {folder: self.store.usage(folder) for folder in layout.EXTRAS}
                self._at = time.monotonic()
            return dict(self._size)


class MediaCollector(Collector):
    """This process's media metrics."""

    def __init__(self, stats: MediaStats, store: MediaStore | None = None) -> None:
        self.stats = stats
        self.size = StoreSize(store) if store is not None else None

    def collect(self) -> Iterator[Metric]:
        yield from families(self.stats.snapshot(), self.size() if self.size is not None else {})


class StatusCollector(Collector):
    """The media metrics a `media --follow` child wrote to its status file (archive's metrics)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterator[Metric]:
        try:
            with open(self.path, "rb") as f:
                status = orjson.loads(f.read())
        except (OSError, orjson.JSONDecodeError):
            status = {}
        if not isinstance(status, dict):
            status = {}
        sizes = status.get("store")
        sizes = sizes if isinstance(sizes, dict) else {}
        yield from families(status, {k: v for k, v in sizes.items() if isinstance(v, list) and len(v) == 2})


def status_bytes(stats: MediaStats, size: StoreSize) -> bytes:
    """What a `media --follow` child writes to its status file."""
    return orjson.dumps({**stats.snapshot(), "store": size(), "time": time.time()})
