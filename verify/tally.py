"""Counters that verify keeps while it streams an archive, and how they add up.

Memory must not grow with the size of the archive beyond per-minute counters, so everything here
is a count, a minimum or maximum, or a histogram with bounded bins. A `ChannelTally` is built per
batch file (possibly in a worker process), shipped back, and added into the channel's running
total: addition is associative and commutative, so the order in which workers finish does not
matter.

Receive delay (receive time minus server time, on exact records) goes into a histogram of 10 ms
bins within +-10 s and 1 s bins beyond (clamped to a day): precise where real delays live, bounded
when a clock is wildly off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# time_range classes, in the order reports show them
RANGE_CLASSES = ("exact", "narrowed", "estimated", "estimated-no-server-time", "delayed", "conflict", "odd")

FINE_PER_SECOND = 100  # bins per second near zero (10 ms wide)
FINE_LIMIT = 10.0  # s, beyond this bins are 1 s wide
_FINE = 1 / FINE_PER_SECOND
_FINE_LIMIT = FINE_LIMIT
_CLAMP = 86_400.0


def recorder_of(receiver: str) -> str:
    """The recorder (host) part of a receiver name `HOST.SLUG.INDEX`; the host may itself hold dots."""
    parts = receiver.rsplit(".", 2)
    return parts[0] if len(parts) == 3 else receiver


def range_class(time_range: float) -> str:
    """Name the kind of a record's time_range (ARCHIVE_FORMAT.md section 4).

    0 exact; 10 estimated from the last server time; 15 estimated without one; 55 and 60 delayed
    JOIN/PART; anything else between 0 and 60 is a range some later exact message narrowed.
    """
    if time_range == 0:
        return "exact"
    if time_range < 0:
        return "conflict"
    if time_range == 10:
        return "estimated"
    if time_range == 15:
        return "estimated-no-server-time"
    if time_range in (55, 60):
        return "delayed"
    if time_range < 60:
        return "narrowed"
    return "odd"  # over 60, or NaN


def delay_bin(delta: float) -> int:
    """Histogram bin of a receive delay in seconds (see the module docstring)."""
    if not math.isfinite(delta):
        delta = _CLAMP if delta > 0 else -_CLAMP
    if -_FINE_LIMIT < delta < _FINE_LIMIT:
        return math.floor(delta * FINE_PER_SECOND)
    clamped = max(-_CLAMP, min(_CLAMP, delta))
    step = int(_FINE_LIMIT / _FINE)
    whole = math.floor(clamped)
    if clamped >= 0:
        return step + whole - int(_FINE_LIMIT)
    return -step - 1 + whole + int(_FINE_LIMIT)


def bin_value(index: int) -> float:
    """The lower edge of a delay bin, in seconds (inverse of `delay_bin` up to the bin width)."""
    step = int(_FINE_LIMIT / _FINE)
    if -step <= index < step:
        return index * _FINE
    if index >= step:
        return float(index - step + int(_FINE_LIMIT))
    return float(index + step + 1 - int(_FINE_LIMIT))


@dataclass
class ReceiverTally:
    """What one receiver (one connection) saw in one channel."""

    observations: int = 0  # records listing this receiver
    seen: int = 0  # messages with an id it saw
    sole: int = 0  # messages with an id only it saw
    first: float = math.inf  # earliest receive time
    last: float = -math.inf  # latest receive time
    delays: dict[int, int] = field(default_factory=dict)  # delay bin -> count, exact records only
    delay_count: int = 0
    delay_sum: float = 0.0
    delay_min: float = math.inf
    delay_max: float = -math.inf

    def add(self, other: ReceiverTally) -> None:
        self.observations += other.observations
        self.seen += other.seen
        self.sole += other.sole
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        for k, v in other.delays.items():
            self.delays[k] = self.delays.get(k, 0) + v
        self.delay_count += other.delay_count
        self.delay_sum += other.delay_sum
        self.delay_min = min(self.delay_min, other.delay_min)
        self.delay_max = max(self.delay_max, other.delay_max)

    def add_delay(self, delta: float) -> None:
        b = delay_bin(delta)
        self.delays[b] = self.delays.get(b, 0) + 1
        self.delay_count += 1
        if math.isfinite(delta):
            self.delay_sum += delta
        self.delay_min = min(self.delay_min, delta)
        self.delay_max = max(self.delay_max, delta)

    def delay_quantile(self, q: float) -> float | None:
        """Approximate quantile of the receive delay (lower edge of the bin holding it)."""
        if not self.delay_count:
            return None
        target = q * (self.delay_count - 1)
        seen = 0
        for index in sorted(self.delays):
            seen += self.delays[index]
            if seen > target:
                return max(self.delay_min, min(self.delay_max, bin_value(index)))
        return self.delay_max


@dataclass
class ChannelTally:
    """Counters of one channel (or of one file of it, before they are added up).

    `minutes` maps a batch time to [records, messages with an id, messages only one receiver saw].
    """

    files: int = 0
    bytes: int = 0
    records: int = 0
    minutes: dict[int, list[int]] = field(default_factory=dict)
    ranges: dict[str, int] = field(default_factory=dict)
    receivers: dict[str, ReceiverTally] = field(default_factory=dict)
    recorders: dict[str, int] = field(default_factory=dict)  # recorder -> messages with an id it saw
    recv_first: float = math.inf
    recv_last: float = -math.inf
    stale: int = 0  # records a replay of the raw today would write differently (with --raw only)
    # files holding a combined record with numbers from before ARCHIVE_FORMAT.md 5.1, and the first
    # such file by path (an example for the finding)
    old_merge: int = 0
    old_merge_example: str | None = None
    lossy: int = 0  # id-less records that look like upstream's lossy merges (verify.batch.lossy_merge)

    def add(self, other: ChannelTally) -> None:
        self.files += other.files
        self.stale += other.stale
        self.old_merge += other.old_merge
        self.lossy += other.lossy
        if other.old_merge_example is not None and (
            self.old_merge_example is None or other.old_merge_example < self.old_merge_example
        ):
            self.old_merge_example = other.old_merge_example
        self.bytes += other.bytes
        self.records += other.records
        for minute, counts in other.minutes.items():
            mine = self.minutes.get(minute)
            if mine is None:
                self.minutes[minute] = list(counts)
            else:
                for i, c in enumerate(counts):
                    mine[i] += c
        for name, n in other.ranges.items():
            self.ranges[name] = self.ranges.get(name, 0) + n
        for name, rt in other.receivers.items():
            mine_r = self.receivers.get(name)
            if mine_r is None:
                self.receivers[name] = mine_r = ReceiverTally()
            mine_r.add(rt)
        for name, n in other.recorders.items():
            self.recorders[name] = self.recorders.get(name, 0) + n
        self.recv_first = min(self.recv_first, other.recv_first)
        self.recv_last = max(self.recv_last, other.recv_last)

    @property
    def messages(self) -> int:
        return sum(c[1] for c in self.minutes.values())

    @property
    def single(self) -> int:
        return sum(c[2] for c in self.minutes.values())
