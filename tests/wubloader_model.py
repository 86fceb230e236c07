"""A clean-room model of the wubloader node parts that talk to us: its backfiller, its merge and its
chat reader. Written from shared/spec/WUBLOADER_HTTP.md and ARCHIVE_FORMAT.md sections 5-6 only,
never from this project's code, so that tests can hold our bytes against what a wubloader node
would do with the same files.

The model reproduces upstream's behaviour, defects included (the merge is not associative; merging
a record turns its `time_range` into a float), because those are what a real node does. It is
deliberately naive: plain lists and dicts, quadratic pairing, no error handling beyond upstream's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Record = dict[str, Any]

# -- the backfiller (WUBLOADER_HTTP.md, "Who calls them") ------------------------------------------


def http_get(url: str) -> tuple[int, bytes]:
    """One GET; an HTTP error status is an answer like any other (the backfiller looks at bodies)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def name_hash(body: bytes) -> str:
    """SHA-256 of the bytes, URL-safe base64 without padding (ARCHIVE_FORMAT.md section 1)."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode("ascii").rstrip("=")


class PassFailed(Exception):
    """The backfiller's pass ended early: a listing that is not JSON (it never looks at the status)."""


@dataclass
class Backfiller:
    """wubloader's backfiller as deployed: `--qualities source,480p,chat --extras emotes,media`.

    Lists `/files/<ch>/<quality>` for every quality, then each hour with `?tombstones=true`, fetches
    the names it lacks locally, checks the hash in the name, writes to a temporary name and renames.
    Every listing is read as JSON whatever its status, so a 404 there fails the whole pass."""

    base: str
    channels: Sequence[str]
    dest: Path
    qualities: Sequence[str] = ("source", "480p", "chat")
    extras: Sequence[str] = ("emotes", "media")
    fetched: list[str] = field(default_factory=list)

    def listing(self, path: str) -> list[str]:
        _, body = http_get(f"{self.base}{path}")
        try:
            names = json.loads(body)
        except ValueError as e:
            raise PassFailed(f"{path}: {body[:60]!r} is not JSON") from e
        assert isinstance(names, list), (path, names)
        return [str(n) for n in names]

    def fetch(self, remote: str, local: Path) -> bool:
        status, body = http_get(f"{self.base}{remote}")
        if status == 404:
            return False  # merged away meanwhile: normal
        assert status == 200, (remote, status)
        if "/chat/" in remote:  # a batch name MM:SS-HASH.json: the backfiller checks the hash
            assert local.name[6:-5] == name_hash(body), f"hash mismatch for {remote}"
        local.parent.mkdir(parents=True, exist_ok=True)
        temp = local.with_name(local.name + ".backfill.temp")
        temp.write_bytes(body)
        temp.rename(local)
        self.fetched.append(remote)
        return True

    def run_pass(self) -> int:
        """One pass over every channel, quality and extras folder: the number of files fetched."""
        before = len(self.fetched)
        for channel in self.channels:
            for quality in self.qualities:
                for hour in self.listing(f"/files/{channel}/{quality}"):
                    names = self.listing(f"/files/{channel}/{quality}/{hour}?tombstones=true")
                    folder = self.dest / channel / quality / hour
                    have = set(os.listdir(folder)) if folder.is_dir() else set()
                    for name in sorted(set(names) - have):
                        self.fetch(f"/segments/{channel}/{quality}/{hour}/{name}", folder / name)
        for extra in self.extras:
            for rel in self.listing(f"/extras/{extra}"):
                local = self.dest / extra / rel
                if not local.exists():
                    self.fetch(f"/segments/{extra}/{rel}", local)
        return len(self.fetched) - before


# -- the merge (ARCHIVE_FORMAT.md section 5 and 5.1) -----------------------------------------------

MATCH_EXCEPT = ("receivers", "time", "time_range")


def combine(a: Record, b: Record) -> Record:
    """Two readings of one message: receivers united, range intersected. Times are floats in every
    archive (section 5.1), so the result's `time_range` is a float even where both said `0`."""
    time = max(a["time"], b["time"])
    end = min(a["time"] + a["time_range"], b["time"] + b["time_range"])
    assert time <= end, (a, b)  # upstream refuses readings whose ranges do not meet
    return dict(a, time=time, time_range=end - time, receivers={**a["receivers"], **b["receivers"]})


def _overlap(a: Record, b: Record) -> bool:
    return a["time"] <= b["time"] + b["time_range"] and b["time"] <= a["time"] + a["time_range"]


def _fuzzy_equal(a: Record, b: Record, receiver_check: bool = False) -> bool:
    if not (all(a[k] == b[k] for k in a if k not in MATCH_EXCEPT) and set(a) == set(b) and _overlap(a, b)):
        return False
    # Upstream means to refuse two records of one receiver with different receive times, but its
    # check looks in the wrong dictionary and never fires (section 5). `receiver_check` asks what
    # upstream would do if it fired, as a refusal to pair them: off, as upstream runs.
    return not receiver_check or all(
        a["receivers"][n] == b["receivers"][n] for n in a["receivers"].keys() & b["receivers"].keys()
    )


def record_id(record: Record) -> str | None:
    """The tag `id` a record is matched by, if any."""
    tags = record.get("tags")
    return tags.get("id") if isinstance(tags, dict) else None


_id = record_id


def merge_two(left: list[Record], right: list[Record], *, receiver_check: bool = False) -> list[Record]:
    """Upstream's merge of two lists. An empty side gives the other side as it is. Records with an
    id are grouped by id in the order ids first appear (left, then right) and a pair is combined
    (three of one id crash, as upstream does); the others pair by first fuzzy match, left to right,
    and the right's leftovers come last. So the output lists every record with an id first.
    `receiver_check`: upstream's receiver check made to fire (`_fuzzy_equal`)."""
    if not left:
        return right
    if not right:
        return left
    by_id: dict[str, list[Record]] = {}
    unmatched: tuple[list[Record], list[Record]] = ([], [])
    for records, rest in zip((left, right), unmatched, strict=True):
        for record in records:
            rid = _id(record)
            if rid:
                by_id.setdefault(rid, []).append(record)
            else:
                rest.append(record)
    result: list[Record] = []
    for group in by_id.values():
        if len(group) == 1:
            result.append(group[0])
        else:
            a, b = group  # upstream: a ValueError for three
            result.append(combine(a, b))
    left_rest, right_rest = unmatched
    for record in left_rest:
        for other in right_rest:
            if _fuzzy_equal(record, other, receiver_check):
                right_rest.remove(other)
                result.append(combine(record, other))
                break
        else:
            result.append(record)
    return result + right_rest


def merge_files(files: Iterable[list[Record]], *, receiver_check: bool = False) -> list[Record]:
    """Upstream's reader and merge loop: file after file into one list (records inside one file are
    never compared with each other, the first file is taken as it is)."""
    result: list[Record] | None = None
    for records in files:
        result = list(records) if result is None else merge_two(result, records, receiver_check=receiver_check)
    return result or []


# -- bytes (ARCHIVE_FORMAT.md sections 1-2) --------------------------------------------------------


def line(record: Record) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


def file_bytes(records: Iterable[Record]) -> bytes:
    lines = sorted(records, key=lambda r: (r["time"], r["time_range"], line(r)))
    return "".join(line(r) + "\n" for r in lines).encode("utf-8")


def batch_of(record: Record) -> int:
    return int(record["time"] / 60) * 60


def hour_minute(hour: str, name: str) -> int:
    """Unix seconds of a batch file's minute, from its hour folder and name (`MM:SS-HASH.json`)."""
    from datetime import UTC, datetime

    start = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp()
    return int(start) + 60 * int(name[:2]) + int(name[3:5])


def parse_file(body: bytes) -> list[Record]:
    return [json.loads(text) for text in body.decode("utf-8").splitlines() if text]


# -- the reader (ARCHIVE_FORMAT.md section 6) ------------------------------------------------------


def read_window(files_by_minute: dict[int, list[list[Record]]], start: float, end: float) -> list[Record]:
    """The rows `chat.json` gives for `[start, end)`: files from two minutes before `start` to one
    minute after `end`, merged file by file in the order given, filtered, then a stable sort by
    `(time, time_range)`."""
    first = int(start // 60) * 60 - 120
    files = [f for minute, fs in sorted(files_by_minute.items()) if first <= minute <= end + 60 for f in fs]
    merged = merge_files(files)
    kept = [r for r in merged if start <= r["time"] + r["time_range"] and r["time"] < end]
    return sorted(kept, key=lambda r: (r["time"], r["time_range"]))
