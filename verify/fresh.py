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

# (receiver name, receive time in seconds as the archive writes it) -> digest of the content
FreshIndex = dict[tuple[str, float], bytes]


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
                index[(receiver_name(recorder, slug, event.conn), event.at / 1_000_000)] = fields_digest(fields)
        yield event


def stale_records(records: Iterable[Mapping[str, Any]], index: Mapping[tuple[str, float], bytes]) -> list[int]:
    """Indexes (0-based) of the records that differ from today's reading of a raw line they were
    received as. Receivers the raw recordings do not cover are not judged."""
    stale = []
    for i, record in enumerate(records):
        digest = None
        for receiver, received in record["receivers"].items():
            fresh = index.get((receiver, received))
            if fresh is None:
                continue
            if digest is None:
                digest = record_digest(record)
            if digest != fresh:
                stale.append(i)
                break
    return stale
