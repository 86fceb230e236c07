"""Prometheus metrics of the media stage, computed at scrape time from `Stats` and the store.

Counters are read from the keeper's `Stats` (plain dicts under a lock, cheaper per fetch than
prometheus-client's labelled counters); the store's size is a walk of its folders, cached for a
minute so a scrape every few seconds does not list a large store each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from media import layout
from media.store import MediaStore
from media.workers import Stats

PREFIX = "chat_archiver_media"
SIZE_TTL = 60.0


class MediaCollector(Collector):
    def __init__(self, stats: Stats, store: MediaStore | None = None) -> None:
        self.stats = stats
        self.store = store
        self._size: dict[str, tuple[int, int]] = {}
        self._size_at = -SIZE_TTL
        self._lock = threading.Lock()

    def sizes(self) -> dict[str, tuple[int, int]]:
        if self.store is None:
            return {}
        with self._lock:
            if time.monotonic() - self._size_at >= SIZE_TTL:
                self._size = {folder: self.store.usage(folder) for folder in layout.EXTRAS}
                self._size_at = time.monotonic()
            return dict(self._size)

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        with s.lock:
            fetches, sent = dict(s.fetches), dict(s.bytes_fetched)
            refusals, offers, written = dict(s.refusals), dict(s.offers), dict(s.files_written)
        family = CounterMetricFamily(
            f"{PREFIX}_fetches",
            "Fetches, by kind (emote, link) and outcome (ok, refused, failed).",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), n in sorted(fetches.items()):
            family.add_metric([kind, outcome], n)
        yield family
        family = CounterMetricFamily(f"{PREFIX}_fetched_bytes", "Bytes of bodies fetched, by kind.", labels=["kind"])
        for kind, n in sorted(sent.items()):
            family.add_metric([kind], n)
        yield family
        family = CounterMetricFamily(
            f"{PREFIX}_refusals",
            "Fetches that gave nothing to keep, by kind and reason (private-address, too-large, timeout ...).",
            labels=["kind", "reason"],
        )
        for (kind, reason), n in sorted(refusals.items()):
            family.add_metric([kind, reason], n)
        yield family
        family = CounterMetricFamily(
            f"{PREFIX}_offers",
            "Emote ids and links offered to the background workers, by what happened "
            "(queued, coalesced, done, backoff, dropped: the queue was full).",
            labels=["kind", "answer"],
        )
        for (kind, answer), n in sorted(offers.items()):
            family.add_metric([kind, answer], n)
        yield family
        family = CounterMetricFamily(f"{PREFIX}_files_written", "Files written to the store, by kind.", labels=["kind"])
        for kind, n in sorted(written.items()):
            family.add_metric([kind], n)
        yield family
        sizes = self.sizes()
        if sizes:
            files = GaugeMetricFamily(f"{PREFIX}_store_files", "Files in the store, by folder.", labels=["folder"])
            size = GaugeMetricFamily(f"{PREFIX}_store_bytes", "Bytes in the store, by folder.", labels=["folder"])
            for folder, (n, b) in sorted(sizes.items()):
                files.add_metric([folder], n)
                size.add_metric([folder], b)
            yield files
            yield size
