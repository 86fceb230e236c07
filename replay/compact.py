"""Compact records: a record's canonical bytes written once, when its line is read.

A record's canonical line (formats.canonical.canonical_bytes) depends on its fields, and only two
of them can still change while its batch is open: `time` (never, in fact) and `time_range` (cut by
a later exact server time). The keys sort as command, host, params, receivers, sender, tags, time,
time_range, user, so the line is

    head + TIME + b',"time_range":' + TIME_RANGE + tail

with `head` everything up to `"time":` and `tail` the `,"user":...}` after. The bulk replay
(`replay.shell`) keeps each record as `{"time", "time_range", PARTS: (head, tail, line, receiver,
now)}`: the batch code reads and cuts `time` and `time_range` as on a full record, and the batch
file is written from the parts (`batch_bytes`: `format_batch` with `record_bytes`), without the tag
dict, params list and receivers dict that a full record holds, or the encoder's pass over them.

`twitch_line_py` (tests/reference/replay_step.py) is the reference of the one
step that makes the parts from a received Twitch
line; `formats._native.twitch_line` (native/replay.c) is its compiled twin, which handles the common
shape and returns None for everything else (the engine then reads the line the reference way,
into a full record). The compiled lane (`formats._native.lane`, StreamReplayer.feed_raw) runs the same
step on raw lines, and `formats._native.replay_batch` is the compiled twin of `format_batch(records,
record_bytes)`. tests/test_replay_core.py holds each twin equal to its reference. Without the
compiled core the engine keeps full records, as before: the pure core is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from formats import speedups
from formats.canonical import canonical_bytes, canonical_bytes_py, format_batch
from formats.irc import parse_compat

# The key of a compact record's parts; a full record never has it (its keys are RECORD_KEYS).
PARTS = "parts"

# The compiled lane's contract with the engine: the attributes it reads and writes by name on each
# class (and the record keys it reads and sets), in native/replay.c. A rename here must be made there;
# tests/test_replay_core.py holds this equal to the names the C uses and every name present on its class.
LANE_CONTRACT: dict[str, tuple[str, ...]] = {
    "replay.engine._Connection": ("batches", "clock", "dialect", "ready", "receiver", "receiver_key"),
    "replay.batches.OpenBatches": ("_by_channel", "next_deadline"),
    "replay.batches._Batch": ("cut", "ends", "ranged", "records"),  # cut: a method, called
    "replay.timestamps.ServerClock": ("last_received", "last_server_time"),  # written: clock.observe
    "record": ("time", "time_range", PARTS),  # keys of the batch's record dicts
}

# (command, first parameter, server time, head, tail), or None when the reference must read the line
TwitchLine = tuple[str, str | None, float | None, bytes, bytes]
TwitchLineFn = Callable[[str, bytes, float], TwitchLine | None]


def receiver_key(receiver: str) -> bytes:
    """`"RECEIVER":`, the receivers map's key as it precedes the receive time in canonical bytes."""
    return canonical_bytes_py({receiver: 0})[1:-1].removesuffix(b"0")


def compiled_twitch_line() -> TwitchLineFn | None:
    """The compiled step, or None on the pure path (forced, or not built)."""
    fn: TwitchLineFn | None = speedups.compiled("twitch_line")
    return fn


# lane(block, offset, last_seq, conns, twitch, kept, channels, safe) -> (stop, last_seq, taken, lines)
LaneFn = Callable[
    [bytes, int, int, Any, Any, frozenset[str], frozenset[str] | None, Callable[[str], bool]], tuple[int, int, int, int]
]


def compiled_lane() -> LaneFn | None:
    """The compiled lane (native/replay.c `lane`, driven by StreamReplayer.feed_raw), or None."""
    fn: LaneFn | None = speedups.compiled("lane")
    return fn


def full_record(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The record with every field: a compact one is read again from its line; a full one as is."""
    parts = record.get(PARTS)
    if parts is None:
        return record
    _head, _tail, line, receiver, now = parts
    command, params, sender, user, host, tags = parse_compat(line)
    return {
        "command": command,
        "params": params,
        "sender": sender,
        "user": user,
        "host": host,
        "tags": tags,
        "receivers": {receiver: now},
        "time": record["time"],
        "time_range": record["time_range"],
    }


def batch_bytes(records: Sequence[Mapping[str, Any]]) -> bytes:
    """`format_batch` of compact and full records: the batch file's bytes."""
    batch = speedups.compiled("replay_batch")
    if batch is None:  # no compact record is made without the compiled core
        return format_batch(records)
    data: bytes | None = batch(list(records), record_bytes)
    return format_batch(records, record_bytes) if data is None else data


def _finite(x: object) -> bool:
    return type(x) is int or (type(x) is float and math.isfinite(x))


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """`canonical_bytes` of a record, compact (from its parts) or full."""
    parts = record.get(PARTS)
    if parts is None:
        return canonical_bytes(record)
    time, time_range = record["time"], record["time_range"]
    if not (_finite(time) and _finite(time_range)):
        return canonical_bytes(full_record(dict(record)))
    # %r of a finite float or an int is what json.dumps prints for it
    return b'%b%r,"time_range":%r%b' % (parts[0], time, time_range, parts[1])
