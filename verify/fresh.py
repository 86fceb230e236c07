"""Is the archive what a replay of the raw gives today? (pure; shell.py feeds it)

Raw recordings hold every line as it was received, so the archive is a function of the raw and of
the rules that read it. When a rule is fixed (say, runs of spaces in a message's text kept
instead of collapsed), archives written before the fix differ from a fresh replay, and replaying again is the
upgrade. This module finds such records without replaying: every archive record names, for each
receiver, the moment it was received, and the raw recording of that receiver holds the line it
received at that moment. A record is stale when its content (command, params, sender, user, host,
tags) is not today's reading of that line, or the line is one that today's replay does not archive
at all (a command the connection's dialect does not keep, or no `#channel` target). The lines of
one WebSocket frame share their receive time, so a moment may hold several lines: a record is stale
only if it is none of them. (What only the replay's state decides, such as the noise before a
channel's first ROOMSTATE, is not judged: such a line counts as archivable.)

Memory: 16 bytes per received line (its time and an 8-byte digest of today's reading, in two
arrays per receiver), so a day at 100 lines/s costs about 140 MB; it runs only with `--raw`.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from formats.canonical import content_key, record_content_key
from formats.dialect import TWITCH, Dialect, get_dialect
from formats.errors import ArchiverError, IRCParseError
from formats.irc import CompatFields, parse_compat
from formats.names import channel_folder_name
from formats.rawcodec import OPEN, RECV, Event, receiver_name

# The digest of a line today's replay does not archive: no record's content digests to it (a
# 64-bit digest is 0 once in 2**64 records).
NOT_ARCHIVED = 0


def _digest(key: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def fields_digest(fields: CompatFields) -> int:
    command, params, sender, user, host, tags = fields
    return _digest(content_key((command, host, params, sender, tags, user)))  # in CONTENT_KEYS order


def record_digest(record: Mapping[str, Any]) -> int:
    return _digest(record_content_key(record))


class FreshIndex:
    """Per receiver, the receive times (integer microseconds, as raw recordings hold them) of the
    lines it received and the digest of today's reading of each: two arrays sorted by time."""

    def __init__(self) -> None:
        self._times: dict[str, array[int]] = {}
        self._digests: dict[str, array[int]] = {}
        self._unsorted: set[str] = set()  # receivers whose clock stepped back: sorted by `seal`

    def add(self, receiver: str, at_us: int, digest: int) -> None:
        times = self._times.get(receiver)
        if times is None:
            times = self._times[receiver] = array("q")
            self._digests[receiver] = array("Q")
        elif times and at_us < times[-1]:
            self._unsorted.add(receiver)
        times.append(at_us)
        self._digests[receiver].append(digest)

    def seal(self) -> None:
        """Sort what `add` left out of order; call it once everything is added."""
        for receiver in self._unsorted:
            pairs = sorted(zip(self._times[receiver], self._digests[receiver], strict=True))
            self._times[receiver] = array("q", (p[0] for p in pairs))
            self._digests[receiver] = array("Q", (p[1] for p in pairs))
        self._unsorted.clear()

    def __len__(self) -> int:
        return sum(len(t) for t in self._times.values())

    def digests_at(self, receiver: str, received: float) -> list[int] | None:
        """The digests of the lines `receiver` received at `received` (seconds, as the archive
        writes receive times), or None if the raw recordings hold no line then."""
        times = self._times.get(receiver)
        if times is None:
            return None
        at = round(received * 1_000_000)
        if at / 1_000_000 != received:
            return None  # not a time a recording wrote
        i = bisect_left(times, at)
        digests = self._digests[receiver]
        out = []
        while i < len(times) and times[i] == at:
            out.append(digests[i])
            i += 1
        return out or None


def index_events(recorder: str, slug: str, events: Iterable[Event], index: FreshIndex) -> Iterator[Event]:
    """Pass `events` through unchanged, adding today's reading of every received line to `index`."""
    dialects: dict[int, Dialect] = {}
    for event in events:
        if event.kind == RECV:
            try:
                fields = parse_compat(event.text)
            except IRCParseError:
                digest = NOT_ARCHIVED
            else:
                command, params = fields[0], fields[1]
                dialect = dialects.get(event.conn, TWITCH)  # as the replay assumes when the open was lost
                archivable = command in dialect.kept and bool(params) and channel_folder_name(params[0]) is not None
                digest = fields_digest(fields) if archivable else NOT_ARCHIVED
            index.add(receiver_name(recorder, slug, event.conn), event.at, digest)
        elif event.kind == OPEN:
            try:
                dialects[event.conn] = get_dialect(event.dialect)
            except ArchiverError:
                dialects.pop(event.conn, None)
        yield event


def stale_records(records: Iterable[Mapping[str, Any]], index: FreshIndex) -> list[int]:
    """Indexes (0-based) of the records that differ from today's reading of every raw line received
    at a moment they name. Moments the raw recordings do not hold are not judged."""
    stale = []
    for i, record in enumerate(records):
        digest = None
        for receiver, received in record["receivers"].items():
            fresh = index.digests_at(receiver, received)
            if fresh is None:
                continue
            if digest is None:
                digest = record_digest(record)
            if digest not in fresh:
                stale.append(i)
                break
    return stale
