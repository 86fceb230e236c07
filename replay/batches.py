"""Theory of operation: one-minute batches, held open, then closed for good.

Records are grouped by `batch_time_of(time)` into one-minute batches, per connection and channel
(upstream ran one archiver per connection and channel, and each wrote its own files). A batch is
held open while later lines may still change it, and closed (handed out to be written) once
`now >= batch_time + 60 + max_server_lag`: by then no line that belongs to it can still
arrive, as long as the server is never more than `max_server_lag` behind.

While a batch is open, an exact server time narrows its estimated records: a line received before
an exact one was sent before it, so a range that reaches past that exact time is cut there
(`0 < t - m.time < m.time_range` gives `m.time_range = t - m.time`). Only this batch and the one
before are searched, as upstream does. Upstream scans every record of both batches for every exact
line, which is quadratic in a busy minute; here only ranged records are kept aside, sorted by the
end of their range, so an exact time finds its candidates (ranges ending after it) by bisection.
Server times mostly increase, so that suffix is nearly always empty or a handful of records. The
cut itself applies upstream's exact test, so the numbers are the same to the last bit.

A record that lands in a batch already closed opens a new batch for the same minute, which becomes
a second file for that minute; the merge folds them later. Closing is a pure function of the
receive times, so a replay closes exactly where the live archiver did.
"""

from __future__ import annotations

import bisect
from typing import Any, NamedTuple

from formats.canonical import BATCH_INTERVAL, Record
from replay.compact import full_record
from replay.timestamps import Timing


class ClosedBatch(NamedTuple):
    channel: str
    batch_time: int
    records: list[Record]


# Slack for the candidate search: `time + time_range` is rounded, the cut test is exact.
_END_SLACK = 1e-3


class _Batch:
    __slots__ = ("deadline", "ends", "ranged", "records")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.records: list[Record] = []
        self.ranged: list[Record] = []  # ranged records, in the order of `ends`
        self.ends: list[float] = []  # time + time_range of each, ascending

    def add_ranged(self, record: Record) -> None:
        end = record["time"] + record["time_range"]
        i = bisect.bisect_right(self.ends, end)
        self.ends.insert(i, end)
        self.ranged.insert(i, record)

    def cut(self, server_time: float) -> None:
        ends = self.ends
        start = bisect.bisect_right(ends, server_time - _END_SLACK)
        if start == len(ends):
            return
        ranged = self.ranged
        cut: list[Record] = []
        kept_r: list[Record] = []
        kept_e: list[float] = []
        for i in range(start, len(ends)):
            m = ranged[i]
            between = server_time - m["time"]
            if 0 < between < m["time_range"]:
                m["time_range"] = between
                cut.append(m)
            else:
                kept_r.append(m)
                kept_e.append(ends[i])
        if not cut:
            return
        # Re-sort the suffix: the cut ones now end at server_time, before every kept one that ends
        # after it; kept ones that end at or before it (within the slack) are merged back in order.
        suffix = sorted(
            [(m["time"] + m["time_range"], j, m) for j, m in enumerate(cut)]
            + [(e, len(cut) + j, m) for j, (e, m) in enumerate(zip(kept_e, kept_r, strict=True))],
            key=lambda x: (x[0], x[1]),
        )
        self.ends[start:] = [x[0] for x in suffix]
        self.ranged[start:] = [x[2] for x in suffix]


class OpenBatches:
    """The open batches of one connection, for all its channels."""

    __slots__ = ("_by_channel", "_lag", "next_deadline")

    def __init__(self, timing: Timing) -> None:
        self._lag = timing.max_server_lag
        self._by_channel: dict[str, dict[int, _Batch]] = {}
        self.next_deadline = float("inf")

    def add(self, channel: str, record: Record) -> None:
        time = record["time"]
        batch_time = int(time / BATCH_INTERVAL) * BATCH_INTERVAL
        batches = self._by_channel.get(channel)
        if batches is None:
            batches = self._by_channel[channel] = {}
        batch = batches.get(batch_time)
        if batch is None:
            deadline = batch_time + BATCH_INTERVAL + self._lag
            batch = batches[batch_time] = _Batch(deadline)
            self.next_deadline = min(self.next_deadline, deadline)
        batch.records.append(record)
        if record["time_range"] > 0:
            batch.add_ranged(record)

    def shrink(self, channel: str, server_time: float) -> None:
        """Cut the ranges of open records of `channel` that reach past an exact `server_time`."""
        batches = self._by_channel.get(channel)
        if not batches:
            return
        batch_time = int(server_time / BATCH_INTERVAL) * BATCH_INTERVAL
        reach = server_time - _END_SLACK
        for key in (batch_time, batch_time - BATCH_INTERVAL):
            batch = batches.get(key)
            # cut() finds nothing when every range ends by `reach`: asked here, it costs no call
            if batch is not None and batch.ends and batch.ends[-1] > reach:
                batch.cut(server_time)

    def close_due(self, now: float) -> list[ClosedBatch]:
        """Close every batch whose deadline has passed at `now`."""
        if now < self.next_deadline:
            return []
        closed = []
        next_deadline = float("inf")
        for channel, batches in self._by_channel.items():
            for batch_time in sorted(batches):
                batch = batches[batch_time]
                if now >= batch.deadline:
                    closed.append(ClosedBatch(channel, batch_time, batch.records))
                    del batches[batch_time]
                elif batch.deadline < next_deadline:
                    next_deadline = batch.deadline
        self.next_deadline = next_deadline
        return closed

    def close_all(self) -> list[ClosedBatch]:
        closed = [
            ClosedBatch(channel, batch_time, batches[batch_time].records)
            for channel, batches in self._by_channel.items()
            for batch_time in sorted(batches)
        ]
        self._by_channel.clear()
        self.next_deadline = float("inf")
        return closed

    def __len__(self) -> int:
        return sum(len(b) for b in self._by_channel.values())

    def state(self) -> list[list[Any]]:
        """The open batches as plain data, `[channel, [[batch_time, records], ...]]` in insertion
        order, channels whose batches all closed included (their order decides the order in which
        later batches close). The records are full ones (a compact record is read again from its
        line, replay/compact.py), some of them live: serialise them before feeding more."""
        return [
            [channel, [[batch_time, [full_record(r) for r in batch.records]] for batch_time, batch in batches.items()]]
            for channel, batches in self._by_channel.items()
        ]

    @classmethod
    def from_state(cls, timing: Timing, state: list[list[Any]]) -> OpenBatches:
        """The open batches `state()` described. The ranged index is rebuilt from the records: which
        records a later exact time cuts depends only on each record's own range, not on the order of
        records whose ranges end at the same time, so the rebuilt batch behaves as the saved one."""
        self = cls(timing)
        for channel, saved in state:
            batches = self._by_channel[channel] = {}
            for batch_time, records in saved:
                deadline = batch_time + BATCH_INTERVAL + self._lag
                batch = batches[batch_time] = _Batch(deadline)
                self.next_deadline = min(self.next_deadline, deadline)
                for record in records:
                    batch.records.append(record)
                    if record["time_range"] > 0:
                        batch.add_ranged(record)
        return self
