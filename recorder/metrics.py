"""Prometheus metrics, computed when scraped rather than counted through prometheus-client.

A prometheus-client `Counter.labels(...).inc()` takes a lock and a few dictionary lookups per
call, which at tens of thousands of lines per second is real CPU (upstream's archiver said the
same). So each connection thread counts into its own plain dict (no sharing, no lock), and this
collector sums them at scrape time. Copying a dict is atomic under the GIL, so a scrape never sees
a dict mid-resize.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

PREFIX = "chat_archiver_recorder"


@dataclass
class RecorderStats:
    """Everything the metrics report. Connection threads own `lines` dicts; the rest is the supervisor's."""

    lines_closed: dict[tuple[str, str], int] = field(default_factory=dict)  # of connections that ended
    live_lines: list[dict[tuple[str, str], int]] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    connections_opened: int = 0
    connections_open: int = 0
    connect_failures: int = 0
    reconnects: dict[str, int] = field(default_factory=dict)
    last_line_monotonic: float | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_live(self, counts: dict[tuple[str, str], int]) -> None:
        with self.lock:
            self.live_lines.append(counts)

    def retire(self, counts: dict[tuple[str, str], int]) -> None:
        """Fold a finished connection's counts into the totals, so memory stays flat over weeks."""
        with self.lock:
            for key, n in counts.copy().items():
                self.lines_closed[key] = self.lines_closed.get(key, 0) + n
            self.live_lines = [c for c in self.live_lines if c is not counts]

    def count_reconnect(self, reason: str) -> None:
        with self.lock:
            self.reconnects[reason] = self.reconnects.get(reason, 0) + 1

    def lines_total(self) -> dict[tuple[str, str], int]:
        with self.lock:
            total = self.lines_closed.copy()
            live = list(self.live_lines)
        for counts in live:
            for key, n in counts.copy().items():
                total[key] = total.get(key, 0) + n
        return total


class RecorderCollector(Collector):
    """Turns `RecorderStats` and the writer's counters into Prometheus metric families at scrape time."""

    def __init__(
        self,
        stats: RecorderStats,
        bytes_written: Callable[[], int],
        fsyncs: Callable[[], tuple[int, float]],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats = stats
        self.bytes_written = bytes_written
        self.fsyncs = fsyncs
        self.monotonic = monotonic

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        lines = CounterMetricFamily(
            f"{PREFIX}_lines_received",
            "IRC lines received and recorded, by channel and command.",
            labels=["channel", "command"],
        )
        for (channel, command), n in sorted(s.lines_total().items()):
            lines.add_metric([channel, command], n)
        yield lines
        sent = CounterMetricFamily(f"{PREFIX}_lines_sent", "IRC lines sent, by command.", labels=["command"])
        for command, n in sorted(s.sent.copy().items()):
            sent.add_metric([command], n)
        yield sent
        yield CounterMetricFamily(
            f"{PREFIX}_connections_opened",
            "WebSocket connections opened.",
            value=s.connections_opened,
        )
        yield GaugeMetricFamily(f"{PREFIX}_connections_open", "Connections open now.", value=s.connections_open)
        yield CounterMetricFamily(
            f"{PREFIX}_connect_failures",
            "Connection attempts that failed.",
            value=s.connect_failures,
        )
        reconnects = CounterMetricFamily(
            f"{PREFIX}_reconnects",
            "New connections made because the server asked (reconnect) or the last one ended (drop).",
            labels=["reason"],
        )
        for reason, n in sorted(s.reconnects.copy().items()):
            reconnects.add_metric([reason], n)
        yield reconnects
        yield CounterMetricFamily(
            f"{PREFIX}_bytes_written",
            "Bytes appended to the raw recording.",
            value=self.bytes_written(),
        )
        last = s.last_line_monotonic if s.last_line_monotonic is not None else s.started_monotonic
        yield GaugeMetricFamily(
            f"{PREFIX}_seconds_since_last_line",
            "Seconds since the last line arrived on any connection (since start if none yet).",
            value=max(0.0, self.monotonic() - last),
        )
        count, seconds = self.fsyncs()
        yield SummaryMetricFamily(
            f"{PREFIX}_fsync_seconds",
            "Time spent in fsync of the raw recording.",
            count_value=count,
            sum_value=seconds,
        )


def serve(
    collector: Collector,
    port: int,
    addr: str = "127.0.0.1",
) -> tuple[WSGIServer, threading.Thread]:
    """Serve /metrics on addr:port in a thread; the caller shuts the server down."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return start_http_server(port, addr=addr, registry=registry)
