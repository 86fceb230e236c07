"""Is the archive what a replay of the raw gives today? (pure; scan.py feeds it)

Raw recordings hold every line as it was received, so the archive is a function of the raw and of
the rules that read it. When a rule is fixed (issue 8: runs of spaces in a message's text were
collapsed), archives written before the fix differ from a fresh replay, and replaying again is the
upgrade. This module finds such records without replaying: every archive record names, for each
receiver, the moment it was received, and the raw recording of that receiver holds the line it
received at that moment. A record is stale when its content (command, params, sender, user, host,
tags) is not today's reading of that line.

Memory: one small entry (a key and an 8-byte digest) per received line that reads as a message, so
checking freshness costs more memory than the rest of verify; it runs only with `--raw`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from formats.canonical import content_key, record_content_key
from formats.errors import IRCParseError
from formats.irc import CompatFields, parse_compat
from formats.rawcodec import RECV, Event, receiver_name

# (receiver name, receive time in seconds as the archive writes it) -> digest of the content of the
# line received then, or of each line: the lines of one WebSocket frame share their receive time.
FreshIndex = dict[tuple[str, float], bytes | tuple[bytes, ...]]


def fields_digest(fields: CompatFields) -> bytes:
    command, params, sender, user, host, tags = fields
    key = content_key((command, host, params, sender, tags, user))  # in CONTENT_KEYS order
    return hashlib.blake2b(key, digest_size=8).digest()


def record_digest(record: Mapping[str, Any]) -> bytes:
    return hashlib.blake2b(record_content_key(record), digest_size=8).digest()


def index_events(recorder: str, slug: str, events: Iterable[Event], index: FreshIndex) -> Iterator[Event]:
    """Pass `events` through unchanged, adding today's reading of every received line to `index`."""
    for event in events:
        if event.kind == RECV:
            try:
                fields = parse_compat(event.text)
            except IRCParseError:
                pass  # never archived, so no record can point at it
            else:
                key = (receiver_name(recorder, slug, event.conn), event.at / 1_000_000)
                digest = fields_digest(fields)
                known = index.get(key)
                if known is None:
                    index[key] = digest
                elif isinstance(known, bytes):
                    if known != digest:
                        index[key] = (known, digest)
                elif digest not in known:
                    index[key] = (*known, digest)
        yield event


def stale_records(records: Iterable[Mapping[str, Any]], index: FreshIndex) -> list[int]:
    """Indexes (0-based) of the records that differ from today's reading of every raw line received
    at a moment they name. Moments the raw recordings do not hold are not judged."""
    stale = []
    for i, record in enumerate(records):
        digest = None
        for receiver, received in record["receivers"].items():
            fresh = index.get((receiver, received))
            if fresh is None:
                continue
            if digest is None:
                digest = record_digest(record)
            if digest != fresh and (isinstance(fresh, bytes) or digest not in fresh):
                stale.append(i)
                break
    return stale
