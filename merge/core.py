"""The merge: a pure function of the set of observations an archive holds (a join-semilattice).

Theory of operation
-------------------
An *observation* is one receiver's sighting of one message: (content, receiver, receive time,
time, time_range), where *content* is the record without `receivers`, `time` and `time_range`.
A record with k receivers is k observations. The merged archive of a set S of observations is
`f(S)`, and merging archives a and b is `f(obs(a) | obs(b))`. The laws (associative, commutative,
idempotent, the empty archive as identity, at the byte level) follow from one property:
`f(obs(f(X)) | Y) == f(X | Y)` for all X, Y, i.e. `f(X)` stands for X exactly. f is built
group by group so that each group is a join-semilattice of its own:

* Records with an id (tag `id`, or `msgid` from IRCv3 servers) are one message by definition.
  Group key: the content (which holds the id). A group folds into one record: per receiver the
  smallest receive time (a second delivery to one receiver is a duplicate, counted, not a second
  message), and the range is the intersection of the members' ranges: `lo = max(time)`,
  `hi = min(time + time_range)`. min, max and union are semilattices, so the fold is one.
  Two contents with one id are two groups: both kept, counted as a conflict. Disjoint ranges
  (`lo > hi`, the server contradicting itself) keep `time_range = hi - lo < 0`, counted too.
* Records without an id are grouped by (content, exact time, exact time_range), so nothing with
  a different range is ever folded: three chained JOIN ranges [0,0], [0,1], [1,1] stay three
  lines whatever the merge order (upstream's fuzzy pairing folds them differently per order).
  Within a group each receiver's distinct receive times are sorted and event i takes the i-th
  time of every receiver that has one: exact-time records (CLEARCHAT) seen by several receivers
  fold into one line, while one receiver's two sightings stay two messages. The group is just
  the set of (receiver, receive time) pairs, so this is lossless: obs(f(X)) == X.

Numbers. Ties between an int and an equal float are broken towards the int (so `0` never turns
into `0.0`, upstream's idempotence defect). A range that is numerically 0 is written as int `0`.
For a folded id record, `time = lo` and `time_range` is, among the members lying exactly on
`(lo, hi)` and the computed width `hi - lo`, the int if any, else the smallest float. Including
the computed width among the candidates is what makes the choice associative: a merged record
contributes exactly that width, so it must never beat a member's value in one grouping and lose
in another. `lo + time_range == hi` must hold exactly for the round trip; it does when
`hi - lo` is exact (Sterbenz: `hi/2 <= lo <= 2*hi`), which holds for Unix times after 1970-01-02
with any range shorter than decades. Numbers must be finite and ints within 2**53 (InputError).

Combined records (ARCHIVE_FORMAT.md section 5.1). A line that holds readings of two or more
receivers is written with the number types upstream's merge gives a combined record, so that a
wubloader node merging the same readings writes the same bytes (the same file name) and stops
fetching ours: an id record's `time` and `time_range` become floats (`0.0`, `55.0`), and so does
an id-less line's `time_range` (its `time` is the group's, a float in every real archive). The
choice depends only on the line's receivers, never on a number's type in a group's key: an id
group has no numbers in its key, and an id-less group's key holds its range in one form, an
integral range as an int (`55.0` and `55` are one group, as `0.0` and `0` always were). So
`obs(f(X))` lands in the groups X did and the laws hold; and since a line's receivers only grow,
a combined line stays combined. A line of one receiver keeps the numbers its writer wrote (an
id-less integral range as an int). Where upstream's result depends on the order it reads files
in (id-less readings whose ranges differ, which it pairs first come first served), ours is still
this CRDT's: that residue is the price of the laws (docs/serve-sync.md).

Cost: one dict lookup per record and a sort per group and of the output: O(n log n).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar

from formats.canonical import (
    CONTENT_KEYS,
    batch_relpath,
    batch_time_of,
    canonical_bytes,
    canonical_bytes_py,
    content_key,
    record_content_key,
)
from formats.errors import InputError
from formats.identity import id_of_tags
from formats.memory import gc_paused

Number = int | float

EXACT_LIMIT = 2**53

# (value, is_float): a total order on numbers in which an int sorts before the equal float.
NumKey = tuple[Number, bool]

# An output item: (time, time_range, canonical line, record, origins of its observations).
Item = tuple[Number, Number, bytes, dict[str, Any], frozenset[Hashable]]

_sort_key = itemgetter(0, 1, 2)


def _line_pure(record: Mapping[str, Any]) -> bytes:
    # The pure encoder returns orjson's bytes, whose buffer keeps the capacity it grew to (about
    # 4 KiB for a 600-byte line): a merge keeps every line until the end, so it keeps a copy of the
    # exact size (b"%b" copies, in a twentieth of the encoding's time).
    return b"%b" % canonical_bytes(record)


# The canonical line of a merged record, as the merge keeps it (the compiled encoder's bytes are exact).
_line: Callable[[Mapping[str, Any]], bytes] = _line_pure if canonical_bytes is canonical_bytes_py else canonical_bytes
_NO_ORIGINS: frozenset[Hashable] = frozenset()


def _num(value: Any, what: str) -> Number:
    """Check a number against the merge's preconditions; -0.0 becomes 0.0 (one zero, one byte form)."""
    if type(value) is float:
        if not math.isfinite(value):
            raise InputError(f"{what} is not finite: {value!r}")
        return value if value != 0.0 else 0.0
    if type(value) is int:
        if -EXACT_LIMIT <= value <= EXACT_LIMIT:
            return value
        raise InputError(f"{what} is an int beyond 2**53: {value!r}")
    raise InputError(f"{what} is not a number: {value!r}")


def _key(value: Number) -> NumKey:
    return (value, type(value) is float)


def check_records(records: Iterable[Mapping[str, Any]]) -> None:
    """Check what the merge needs of each record beyond the archive schema, without merging: finite
    numbers, ints within 2**53 (`_num`). The schema itself is formats.canonical.validate_record's,
    which every record read from a file has passed already.

    Lets a caller refuse a whole file before any of it enters a merge. InputError's `line` is
    the record's position, from 1.
    """
    for index, record in enumerate(records, 1):
        try:
            _num(record["time"], "time")
            _num(record["time_range"], "time_range")
            for when in record["receivers"].values():
                _num(when, "receive time")
        except InputError as e:
            raise InputError(e.message, None, index) from None


def check_parsed(records: list[dict[str, Any]], path: str) -> None:
    """The merge's checks of a file's decoded records beyond the schema: numbers it can merge, and
    minutes the layout can name. InputError says where."""
    try:
        check_records(records)  # the merge's own checks, so a bad file fails here, not mid-merge
    except InputError as e:
        raise e.at(path) from None
    placed: set[int] = set()
    for number, record in enumerate(records, 1):
        batch_time = batch_time_of(record["time"])
        if batch_time not in placed:
            try:
                batch_relpath(batch_time, "")  # a minute the layout can name (years 1 to 9999)
            except (OverflowError, ValueError, OSError):
                raise InputError(
                    f"time {record['time']!r} is outside any batch the layout can name", path, number
                ) from None
            placed.add(batch_time)


Member = tuple[Number, bool, Number, bool]  # (time, is_float, time_range, is_float)
Content = tuple[Any, ...]  # the CONTENT_KEYS values of a record, in that order


class _IdGroup:
    """All observations of one (id, content): folds into one record."""

    __slots__ = ("content", "dups", "first", "members", "message_id", "origins", "receivers")

    def __init__(self, content: Content, mid: str, first: Member) -> None:
        self.content = content
        self.message_id = mid
        self.receivers: dict[str, Number] = {}
        self.dups: dict[str, set[NumKey]] | None = None  # distinct receive times, once a receiver repeats
        self.first = first
        self.members: set[Member] | None = None  # only once a second, different (time, range) comes
        self.origins: set[Hashable] | None = None

    def add_member(self, member: Member) -> None:
        if member == self.first:
            return
        if self.members is None:
            self.members = {self.first}
        self.members.add(member)

    def add_receiver(self, name: str, when: Number) -> None:
        self.dups = add_receiver_time(self.receivers, self.dups, name, when)

    def fold(self) -> tuple[Number, Number, bool]:
        """(time, time_range, disjoint) of the folded record; see the module essay for why."""
        return fold_members(self.members if self.members is not None else (self.first,))


Name = TypeVar("Name", str, bytes)


def add_receiver_time(
    receivers: dict[Name, Number], dups: dict[Name, set[NumKey]] | None, name: Name, when: Number
) -> dict[Name, set[NumKey]] | None:
    """One receiver's sighting of an id group: it keeps its earliest time (an int before an equal
    float); a second, different time is a duplicate delivery, noted in `dups` (distinct times per
    receiver, made when first needed). Returns `dups`."""
    current = receivers.get(name)
    if current is None:
        receivers[name] = when
        return dups
    new, old = _key(when), _key(current)
    if new == old:
        return dups
    if dups is None:
        dups = {}
    dups.setdefault(name, {old}).add(new)
    if new < old:
        receivers[name] = when
    return dups


def combined(time: Number, time_range: Number, receivers: int) -> tuple[Number, Number]:
    """The numbers of an id record whose line holds `receivers` receivers: floats once two or
    more receivers are combined (upstream computes them in floats: section 5.1), else as folded."""
    if receivers < 2:
        return time, time_range
    return float(time), float(time_range)


def combined_range(time_range: Number, receivers: int) -> Number:
    """The range of an id-less line with `receivers` receivers, from its group's key form
    (`plain_range`): a float once two or more receivers are combined, else as keyed."""
    return float(time_range) if receivers >= 2 else time_range


def plain_range(time_range: Number) -> Number:
    """An id-less record's range as its group's key holds it: an integral float as the int (`0.0`
    and `0`, `55.0` and `55` are one group); any other range as it is."""
    if type(time_range) is float and time_range.is_integer() and -EXACT_LIMIT <= time_range <= EXACT_LIMIT:
        return int(time_range)
    return time_range


def fold_members(members: Collection[Member]) -> tuple[Number, Number, bool]:
    """(time, time_range, disjoint) of an id group whose distinct members (time, range) are these."""
    lo_key: tuple[Number, bool] | None = None  # (value, is_int): max prefers the int
    hi_key: NumKey | None = None  # (value, is_float): min prefers the int
    for t, t_float, r, _r_float in members:
        k = (t, not t_float)
        if lo_key is None or k > lo_key:
            lo_key = k
        h = t + r
        hk = (h, type(h) is float)
        if hi_key is None or hk < hi_key:
            hi_key = hk
    assert lo_key is not None and hi_key is not None  # a group has at least one member
    lo, hi = lo_key[0], hi_key[0]
    width = hi - lo
    if width == 0:
        return lo, 0, False
    # Candidates: the computed width and every member lying exactly on (lo, hi); the int wins,
    # then the smallest value. The order is (is_float, value).
    best: tuple[bool, Number] = (type(width) is float, width)
    for t, _t_float, r, r_float in members:
        if t == lo and t + r == hi and (r_float, r) < best:
            best = (r_float, r)
    return lo, best[1], lo > hi


class _PlainGroup:
    """All observations of one (content, exact time, exact range) without an id."""

    __slots__ = ("content", "origins", "receivers", "time", "time_range")

    def __init__(self, content: Content, time: Number, time_range: Number) -> None:
        self.content = content
        self.time = time
        self.time_range = time_range
        self.receivers: dict[str, set[NumKey]] = {}
        self.origins: set[Hashable] | None = None


@dataclass(frozen=True)
class MergeCounts:
    """What one merge saw. Informational: the merged bytes never depend on these."""

    records_in: int = 0
    observations_in: int = 0
    records_out: int = 0
    duplicate_deliveries: int = 0  # an id received more than once by one receiver (extra copies)
    id_conflicts: int = 0  # extra contents sharing one id (each kept as its own record)
    range_conflicts: int = 0  # id records whose members' ranges do not intersect


@dataclass(frozen=True)
class Merged:
    """The result of a merge: items in canonical order, and counts."""

    items: list[Item]
    counts: MergeCounts

    def records(self) -> list[dict[str, Any]]:
        return [item[3] for item in self.items]

    def to_bytes(self) -> bytes:
        """The batch file bytes (what `format_batch` gives, without encoding every line twice)."""
        return items_to_bytes(self.items)

    def by_batch(self) -> dict[int, list[Item]]:
        """Items split by the one-minute batch their `time` falls in, in canonical order."""
        out: dict[int, list[Item]] = {}
        for item in self.items:
            out.setdefault(batch_time_of(item[0]), []).append(item)
        return out

    def entangled(self) -> set[Hashable]:
        """Origins (and batch times) that a merge of windows must rewrite together.

        With origins being the batch times of the files the observations came from, an item whose
        origins are not exactly its own batch either moved between minutes or joined observations
        of several minutes; every minute involved must then be rewritten, or a record would be lost
        (deleted from one minute, not written to the other) or doubled.
        """
        out: set[Hashable] = set()
        for item in self.items:
            b = batch_time_of(item[0])
            if item[4] and item[4] != {b}:
                out |= item[4]
                out.add(b)
        return out


def items_to_bytes(items: Iterable[Item]) -> bytes:
    lines = [item[2] for item in items]
    if lines:
        lines.append(b"")  # the final newline, without copying the whole file once more
    return b"\n".join(lines)


class Merger:
    """Accumulates records (as observations) and folds them on `finish()`.

    Feed archives with `add()` in any order, split any way: only the set of observations matters.
    `origin` tags where records came from (the directory shell passes the file's batch time); it
    never changes the merged bytes.
    """

    def __init__(self) -> None:
        # Id records are looked up by id, then by content equality (usually one candidate): for
        # schema-valid records (strings, null, true), == on contents is exact JSON equality, and
        # it spares serialising the content of every chat message. Id-less records need a hash key.
        self._by_id: dict[str, list[_IdGroup]] = {}
        self._plain: dict[tuple[Any, ...], _PlainGroup] = {}
        self._records_in = 0
        self._observations_in = 0

    def add(self, records: Iterable[Mapping[str, Any]], origin: Hashable = None) -> None:
        """Add records. Raises InputError (with the record's index as `line`, from 1) if one is unusable."""
        with gc_paused():
            self._add(records, origin)

    def _add(self, records: Iterable[Mapping[str, Any]], origin: Hashable) -> None:
        by_id, plain = self._by_id, self._plain
        for index, record in enumerate(records, 1):
            try:
                # A tuple of the content's values, not a new dict: it is compared (ids) or
                # serialised (id-less) once, and kept only for a group's first record.
                content = (
                    record["command"],
                    record["host"],
                    record["params"],
                    record["sender"],
                    record["tags"],
                    record["user"],
                )
                receivers = record["receivers"]
                time = _num(record["time"], "time")
                time_range = _num(record["time_range"], "time_range")
                if not isinstance(receivers, dict) or not receivers:
                    raise InputError("receivers is not a non-empty object")
                mid = id_of_tags(content[4])
                group: _IdGroup | _PlainGroup
                if mid is not None:
                    member = (time, type(time) is float, time_range, type(time_range) is float)
                    candidates = by_id.get(mid)
                    if candidates is None:
                        group = _IdGroup(content, mid, member)
                        by_id[mid] = [group]
                    else:
                        for group in candidates:
                            if group.content == content:
                                group.add_member(member)
                                break
                        else:
                            group = _IdGroup(content, mid, member)
                            candidates.append(group)
                    for name, when in receivers.items():
                        if not isinstance(name, str):
                            raise InputError("a receiver name is not a string")
                        group.add_receiver(name, _num(when, "receive time"))
                else:
                    time_range = plain_range(time_range)
                    key = (content_key(content), time, type(time) is float, time_range, type(time_range) is float)
                    plain_group = plain.get(key)
                    if plain_group is None:
                        plain_group = plain[key] = _PlainGroup(content, time, time_range)
                    group = plain_group
                    for name, when in receivers.items():
                        if not isinstance(name, str):
                            raise InputError("a receiver name is not a string")
                        plain_group.receivers.setdefault(name, set()).add(_key(_num(when, "receive time")))
            except InputError as e:
                raise InputError(e.message, None, index) from None
            except (KeyError, TypeError, AttributeError, ValueError) as e:
                raise InputError(f"not an archive record ({type(e).__name__}: {e})", None, index) from None
            if origin is not None:
                if group.origins is None:
                    group.origins = set()
                group.origins.add(origin)
            self._records_in += 1
            self._observations_in += len(receivers)

    def finish(self) -> Merged:
        """Fold every group; the items come out in canonical batch order."""
        with gc_paused():
            return self._finish()

    def _finish(self) -> Merged:
        items: list[Item] = []
        duplicates = range_conflicts = 0
        ids: Counter[str] = Counter()
        # Groups are taken out as they are folded, so the merge's memory does not hold both the groups
        # and the records made of them.
        by_id, plain = self._by_id, self._plain
        self._by_id, self._plain = {}, {}

        def groups() -> Iterator[_IdGroup | _PlainGroup]:
            while by_id:
                yield from by_id.popitem()[1]
            while plain:
                yield plain.popitem()[1]

        for group in groups():
            origins = frozenset(group.origins) if group.origins else _NO_ORIGINS
            if isinstance(group, _IdGroup):
                ids[group.message_id] += 1
                time, time_range, disjoint = group.fold()
                time, time_range = combined(time, time_range, len(group.receivers))
                range_conflicts += disjoint
                if group.dups is not None:
                    duplicates += sum(len(s) - 1 for s in group.dups.values())
                record = dict(zip(CONTENT_KEYS, group.content, strict=True))
                record["receivers"] = {name: group.receivers[name] for name in sorted(group.receivers)}
                record["time"] = time
                record["time_range"] = time_range
                items.append((time, time_range, _line(record), record, origins))
                continue
            times = {name: sorted(keys) for name, keys in group.receivers.items()}
            names = sorted(times)
            for i in range(max(len(v) for v in times.values())):
                record = dict(zip(CONTENT_KEYS, group.content, strict=True))
                receivers = {name: times[name][i][0] for name in names if len(times[name]) > i}
                record["receivers"] = receivers
                record["time"] = group.time
                record["time_range"] = time_range = combined_range(group.time_range, len(receivers))
                items.append((group.time, time_range, _line(record), record, origins))
        items.sort(key=_sort_key)
        counts = MergeCounts(
            records_in=self._records_in,
            observations_in=self._observations_in,
            records_out=len(items),
            duplicate_deliveries=duplicates,
            id_conflicts=sum(n - 1 for n in ids.values()),
            range_conflicts=range_conflicts,
        )
        return Merged(items, counts)


def merge(*archives: Iterable[Mapping[str, Any]]) -> Merged:
    """Merge archives (each an iterable of records) into one canonical result."""
    merger = Merger()
    for archive in archives:
        merger.add(archive)
    return merger.finish()


def merge_records(*archives: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The merged records, in canonical order (`format_batch` of them gives the merged bytes)."""
    return merge(*archives).records()


def merge_bytes(*archives: Iterable[Mapping[str, Any]]) -> bytes:
    """The merged batch bytes of `archives`."""
    return merge(*archives).to_bytes()


Observation = tuple[bytes, str, NumKey, NumKey, NumKey]


def observations(records: Iterable[Mapping[str, Any]]) -> set[Observation]:
    """The set of observations a list of records holds: (content, receiver, receive time, time, range).

    Numbers are (value, is_float) pairs so that `1` and `1.0` stay apart, as they do in the bytes,
    except an integral range, which is one group's (`plain_range`): the merge writes it as a float
    once two receivers are combined.
    For tests and the docs: `observations(merge_records(a)) == observations(a)` for records without
    an id; with an id, each receiver keeps its earliest time and the range is the intersection.
    """
    out: set[Observation] = set()
    for record in records:
        content = record_content_key(record)
        t, r = _key(record["time"]), _key(plain_range(record["time_range"]))
        for name, when in record["receivers"].items():
            out.add((content, name, _key(when), t, r))
    return out


# --- what the merge gives back as it is (export's shortcuts: export.stream, merge.view.fold_rows) ---

_NUMBER_TYPES = frozenset({int, float})
_STR = {str}
_DICT = {dict}
_times = itemgetter("time", "time_range")
_receivers = itemgetter("receivers")


def kept_as_is(value: Any) -> bool:
    """Whether the merge keeps a number as it is: a finite non-zero float (it turns -0.0 into 0.0,
    and a range 0.0 into the int 0), or an int within 2**53 (beyond, or not finite, it refuses the
    record: `_num`)."""
    if type(value) is float:
        return value != 0.0 and math.isfinite(value)
    return type(value) is int and -EXACT_LIMIT <= value <= EXACT_LIMIT


def alone_as_is(time: Any, time_range: Any, receivers: int) -> bool:
    """Whether the merge gives an exact id record that no other record shares its id with back with
    these numbers: the time `kept_as_is`, and the range the int `0` for one receiver, or `0.0` with
    a float time for two or more (a combined record: `combined`). Its receive times are the
    caller's to check (`kept_as_is` each)."""
    if time_range != 0 or not kept_as_is(time):
        return False
    if type(time_range) is int:
        return receivers == 1
    return type(time_range) is float and type(time) is float and receivers >= 2 and math.copysign(1.0, time_range) > 0


def numbers_kept_as_is(values: list[Any]) -> bool:
    """`kept_as_is` of every value, in C loops for the usual case (ints and floats, none zero, all
    within 2**53: the sum is then finite unless one is NaN); anything else is asked value by value."""
    if not set(map(type, values)) <= _NUMBER_TYPES:
        return False
    if values and 0 not in values and min(values) >= -EXACT_LIMIT and max(values) <= EXACT_LIMIT:
        return math.isfinite(sum(values))
    return all(map(kept_as_is, values))


def taken_as_they_are(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the merge takes every one of `records` without refusing it or changing one of its
    numbers: time, time_range and receive times `kept_as_is` (and no integral float range),
    receivers a non-empty object of string names. An id-less such record that no other record of
    a merge shares its (content, time, time_range) with is then its own group, and comes out as
    `as_merged(record)`."""
    receivers = list(map(_receivers, records))
    if set(map(type, receivers)) - _DICT or not all(receivers):
        return False
    if set(map(type, chain.from_iterable(receivers))) - _STR:
        return False
    values = list(chain.from_iterable(map(_times, records)))
    if any(type(v) is float and v.is_integer() for v in values[1::2]):
        return False  # an integral float range: an id-less group keys it as the int (`plain_range`)
    values.extend(chain.from_iterable(map(dict.values, receivers)))
    return numbers_kept_as_is(values)


def as_merged(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The record the merge makes of the id-less records of one group (content, time, time_range,
    the types of both numbers too) when they are `taken_as_they_are` and no receiver is in two of
    them (`Merger._finish`): the first one's values in the merge's key order, the receivers of
    all, sorted by name, the range a float once they are two or more (`combined_range`)."""
    first = records[0]
    out = {key: first[key] for key in CONTENT_KEYS}
    receivers = first["receivers"]
    if len(records) > 1:
        receivers = dict(chain.from_iterable(r["receivers"].items() for r in records))
    out["receivers"] = {name: receivers[name] for name in sorted(receivers)}
    out["time"] = first["time"]
    out["time_range"] = combined_range(first["time_range"], len(receivers))
    return out
