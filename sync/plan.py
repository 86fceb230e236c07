"""What a sync fetches, as data: wubloader's backfiller rules for chat (WUBLOADER_HTTP.md), pure.

The backfiller lists a peer's hours, keeps those in its window, lists each hour's files and
fetches the names it lacks (a set difference), then checks each body's SHA-256 against the name.
Everything a peer says is untrusted: a name is used only if it has the exact shape the archive
writes (`formats.names` holds those shapes, shared with the server), so no name can leave ROOT. A
body is kept only if the merge's own reader accepts it (`merge.directory.read_verified`: the hash
is its name, its lines are valid records at times the layout can name); the shell checks that.

"Lacks" also counts names already fetched once (`known`): after a local merge a fetched file is
gone under its own name but its records are in the merged file, and fetching it again would only
merge the same records again (the merge is idempotent). That is what makes a second sync fetch
nothing while the peer has not merged yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from formats.canonical import BATCH_INTERVAL, EARLIEST_TIME, MAX_AHEAD, batch_time_of
from formats.errors import InputError
from formats.names import Segment, batch_name_ok, hour_ok, hour_start, peer_channel_ok


def hours_in_window(hours: Iterable[str], start: float, end: float) -> list[str]:
    """The hour folder names (valid ones only) whose hour meets `[start, end]`, oldest first."""
    return sorted(h for h in set(hours) if hour_ok(h) and hour_start(h) + 3600 > start and hour_start(h) <= end)


def hours_before(hours: Iterable[str], start: float) -> list[str]:
    """The hour folder names (valid ones only) that end at or before `start`, oldest first: what a
    peer holds that a window starting at `start` leaves out."""
    return sorted(h for h in set(hours) if hour_ok(h) and hour_start(h) + 3600 <= start)


def names_list(body: bytes, what: str) -> list[str]:
    """A peer's listing: a JSON array of strings. InputError (naming `what`) if it is not one."""
    try:
        value: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InputError("not JSON", what) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError("not a JSON array of names", what)
    return value


def implausible_time(batch_time: int, record_times: Iterable[float], now: float) -> str | None:
    """Why a fetched file of minute `batch_time` is not believed (one line), or None: a minute
    before EARLIEST_TIME or more than MAX_AHEAD past `now`, or a record more than a day from the
    file's minute. `now` comes from the caller: this module reads no clock."""
    if batch_time < EARLIEST_TIME:
        return "its minute is before 2011: no recorder saw it; refused"
    if batch_time > now + MAX_AHEAD:
        return "its minute is more than a day ahead of now; refused"
    for number, t in enumerate(record_times, 1):
        if not batch_time - MAX_AHEAD <= t < batch_time + BATCH_INTERVAL + MAX_AHEAD:
            return f"line {number}: time {t!r} is more than a day from the file's minute; refused"
        if batch_time_of(t) > now + MAX_AHEAD:
            return f"line {number}: time {t!r} is more than a day ahead of now; refused"
    return None


Wanted = Segment  # one file to fetch: the batch file a /segments/ route names


@dataclass
class HourPlan:
    """What one hour's listing asks for: the files to fetch, and the names refused outright."""

    wanted: list[Wanted] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


MAX_NAMES = 10_000  # an hour holds a few files a minute; a listing of more is not an archive's


def plan_hour(channel: str, hour: str, remote: Iterable[str], have: set[str]) -> HourPlan:
    """The backfiller's set difference for one hour, with hostile names refused."""
    plan = HourPlan()
    names = set(remote)
    if len(names) > MAX_NAMES:
        plan.refused.append((f"{len(names):,} names", f"more than {MAX_NAMES:,} in one hour: none fetched"))
        return plan
    for name in sorted(names):
        if name in have:
            continue
        if not batch_name_ok(hour, name):
            if name.endswith(".json"):  # a .ts segment or a tombstone is someone else's business
                plan.refused.append((name, "not a batch file name (MM:00-HASH.json)"))
            elif "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
                plan.refused.append((name, "a name that is not a plain file name"))
            continue
        plan.wanted.append(Wanted(channel, hour, name))
    return plan


def channel_names(body: bytes, what: str) -> tuple[list[str], list[str]]:
    """(channels usable as folders, refused names) from a peer's `/files`."""
    names = names_list(body, what)
    good = sorted({n for n in names if peer_channel_ok(n)})
    return good, sorted({n for n in names if not peer_channel_ok(n)})
