"""A message's identity in the index: the one place the index learns how the merge matches records.

The merge treats records with an id (`id` tag, else `msgid`) as one message, and id-less records
as one message when their content, exact time and exact time range agree (merge.core's theory of
operation; the id rule itself lives in formats/identity.py). The index keys its rows the same
way, so a merged, synced or duplicated batch file maps onto the rows that are already there.
The key is the first 8 bytes of a SHA-256 of that identity, as a signed 64-bit integer: a
database key in both backends. Two identities
sharing a key is a 1-in-10^7 chance at ten million messages; it would merge the two rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from formats.canonical import record_content_key
from formats.identity import (  # the one import of the merge's id rule (see the module's docstring)
    id_of_tags,
    message_id,
)

__all__ = ["id_key", "id_key_scope", "id_of_tags", "identity_key", "message_id"]


def identity_key(record: Mapping[str, Any], channel: str) -> int:
    """The index key of a record of a channel: equal for the records the merge folds into one, else
    different. The channel is part of it: the merge works per channel, and Twitch's shared chat
    delivers one message id to several channels."""
    mid = message_id(record)
    if mid is not None:
        return id_key(id_key_scope(channel), mid)
    time, time_range = record["time"], record["time_range"]
    if time_range == 0:
        time_range = 0  # the merge writes a zero range as int 0 and groups it so
    h = hashlib.sha256(b"c" + _scope(channel) + record_content_key(record))
    h.update(repr((time, type(time) is float, time_range, type(time_range) is float)).encode())
    return int.from_bytes(h.digest()[:8], "big", signed=True)


def _scope(channel: str) -> bytes:
    return channel.encode("utf-8", "surrogatepass") + b"\x00"


def id_key_scope(channel: str) -> bytes:
    """What the key of a record with an id hashes before the id, for this channel (made once per
    file by a caller keying many records)."""
    return b"i" + _scope(channel)


def id_key(scope: bytes, mid: str) -> int:
    """The key of a record with message id `mid` in the channel of `scope` (`id_key_scope`)."""
    digest = hashlib.sha256(scope + mid.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
