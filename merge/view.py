"""A display fold for readers: one line per message, the way upstream's reader shows it.

The stored merge keeps every ranged id-less observation (JOIN, PART, NOTICE, ROOMSTATE, ...) on its
own line, because pairing them by overlapping ranges cannot be associative (docs/merge.md). A
reader still wants one JOIN when three receivers saw one JOIN, so `fold_for_reading` folds them
here, in a view that is never written back:

* Only records without an id are folded (ids are already one record each); a zero range is the
  point range [t, t], so an exact record folds with ranged ones of equal content that contain t.
* Records with equal content from *different* receivers whose closed ranges meet are shown as one:
  receivers united, range intersected. A receiver's own two sightings are never folded (they are
  two messages).
* Deterministic: input is merged first (so only the set of observations matters), then swept in
  canonical order; each record joins the earliest open fold it fits, else opens one. The result is
  a function of the archive, though not a semilattice: a view need not be one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from operator import itemgetter
from typing import Any

from formats.canonical import CONTENT_KEYS, canonical_bytes, canonical_json, record_content_key
from formats.errors import InputError
from formats.identity import message_id
from merge.core import Number, as_merged, merge, taken_as_they_are


class _Fold:
    __slots__ = ("first", "hi", "lo", "receivers", "size")

    def __init__(self, record: dict[str, Any]) -> None:
        self.first = record
        self.lo: Number = record["time"]
        self.hi: Number = record["time"] + record["time_range"]
        self.receivers: dict[str, Number] = dict(record["receivers"])
        self.size = 1

    def fits(self, record: dict[str, Any]) -> bool:
        start, end = record["time"], record["time"] + record["time_range"]
        return max(self.lo, start) <= min(self.hi, end) and self.receivers.keys().isdisjoint(record["receivers"])

    def take(self, record: dict[str, Any]) -> None:
        self.lo = max(self.lo, record["time"])
        self.hi = min(self.hi, record["time"] + record["time_range"])
        self.receivers.update(record["receivers"])
        self.size += 1

    def record(self) -> dict[str, Any]:
        if self.size == 1:
            return self.first
        out = {k: self.first[k] for k in CONTENT_KEYS}
        out["receivers"] = {name: self.receivers[name] for name in sorted(self.receivers)}
        # readings of two or more receivers combined: upstream's reader gives the range as a float
        # (ARCHIVE_FORMAT.md section 5.1), `0.0` included
        out["time"] = self.lo
        out["time_range"] = float(self.hi - self.lo)
        return out


_plain_content = itemgetter("command", "host", "sender", "user")
_STR_OR_NONE = frozenset({str, type(None)})
Content = Hashable  # a key equal exactly for equal contents


def content_of(record: Mapping[str, Any]) -> Content:
    """A key equal exactly for records of one content: for a record without tags whose strings are
    strings (or null), the tuple of them (== on strings and None is exact JSON equality, and the
    length of the tuple tells the params apart), in a fifth of the time of `record_content_key`,
    which is the key of any other (bytes: never equal to a tuple)."""
    if record["tags"] is None:
        key = (*_plain_content(record), *record["params"])
        if set(map(type, key)) <= _STR_OR_NONE:
            return key
    return record_content_key(record)


def by_content(records: Iterable[Mapping[str, Any]]) -> tuple[list[Any], dict[Content, list[Any]]]:
    """The records with an id (the fold passes them as they are), and the others by content
    (`content_of`: contents never fold together), each in the order given."""
    with_id: list[Any] = []
    contents: dict[Content, list[Any]] = {}
    for record in records:
        if message_id(record) is not None:
            with_id.append(record)
        else:
            contents.setdefault(content_of(record), []).append(record)
    return with_id, contents


def _fold_content(records: Iterable[dict[str, Any]]) -> list[_Fold]:
    """The folds of one content's records, swept in canonical order (each joins the earliest open
    fold it fits, else opens one)."""
    open_folds: list[_Fold] = []
    done: list[_Fold] = []
    for record in records:  # ascending start time
        start = record["time"]
        still_open: list[_Fold] = []
        for fold in open_folds:
            # Later records start no earlier, so a fold ending before this start is closed for good.
            (still_open if fold.hi >= start else done).append(fold)
        open_folds = still_open
        for fold in open_folds:
            if fold.fits(record):
                fold.take(record)
                break
        else:
            open_folds.append(_Fold(record))
    done.extend(open_folds)
    return done


def fold_for_reading(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records as a reader should show them: merged, with ranged duplicates folded.

    Returns new records in canonical order (`time`, `time_range`, line). Raises
    formats.errors.InputError for records the merge cannot use.
    """
    out, contents = by_content(merge(records).records())  # canonical order: ascending start time
    for group in contents.values():
        out.extend(fold.record() for fold in _fold_content(group))
    keyed = [(r["time"], r["time_range"], canonical_json(r), r) for r in out]
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed]


# What fold_rows gives: a shown record with its canonical line.
Row = tuple[Number, Number, bytes, dict[str, Any]]
# Cuts one content's records (export's trim before quiet points); [] drops the content.
Trim = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
_row_order = itemgetter(0, 1, 2)
_time_order = itemgetter("time", "time_range")
_FAILURES = (InputError, KeyError, TypeError, AttributeError, ValueError, OverflowError)


def trimmed(records: Iterable[Mapping[str, Any]], trim: Trim) -> list[Any]:
    """The records with an id, and each content's records cut by `trim`."""
    kept, contents = by_content(records)
    for group in contents.values():
        kept.extend(trim(group))
    return kept


def fold_rows(records: list[dict[str, Any]], trim: Trim | None = None) -> list[Row]:
    """`fold_for_reading(records)` (of `trimmed(records, trim)` with a `trim`) as rows
    `(time, time_range, canonical line, record)` in canonical order: the same records, or the
    same error, for less work. Each record's content key is made once (for the trim, the merge
    and the fold together), each shown record is encoded once, and a content whose records are
    each alone in their merge group (`merge.core.taken_as_they_are`, no two with one time and
    range) skips the merge: what the merge would give back is `as_merged` of each. Records with
    an id, and any other content, go through the merge (it groups by id or content, so the merge
    of each part is that part of the whole merge). Anything odd is handed to the
    reference, which names what is wrong. tests/test_export_fold.py holds this to it."""
    try:
        return _fold_rows(records, trim)
    except _FAILURES:
        pass
    shown = fold_for_reading(records if trim is None else trimmed(records, trim))
    return [(r["time"], r["time_range"], canonical_bytes(r), r) for r in shown]


def _fold_rows(records: list[dict[str, Any]], trim: Trim | None) -> list[Row]:
    with_id, contents = by_content(records)
    groups = list(contents.values()) if trim is None else [g for g in map(trim, contents.values()) if g]
    # the usual case in one check over every record; else content by content
    every = taken_as_they_are([r for g in groups for r in g])
    rows: list[Row] = []
    others: list[dict[str, Any]] = with_id  # these go through the merge
    for group in groups:
        merged = _merge_groups(group) if every or taken_as_they_are(group) else None
        if merged is None:
            others.extend(group)
        elif len(merged) == 1:  # one merge group: one record, a fold of one
            record = as_merged(merged[0])
            rows.append((record["time"], record["time_range"], canonical_bytes(record), record))
        else:
            alike = [s[0] if len(s) == 1 and len(s[0]["receivers"]) == 1 else as_merged(s) for s in merged]
            for fold in _fold_content(alike):
                record = fold.record() if fold.size > 1 else as_merged((fold.first,))
                rows.append((record["time"], record["time_range"], canonical_bytes(record), record))
    if others:
        items = merge(others).items
        lines = {id(item[3]): item[2] for item in items}  # a fold of one is the merged record itself
        with_id, contents = by_content(item[3] for item in items)
        rows.extend((record["time"], record["time_range"], lines[id(record)], record) for record in with_id)
        for group in contents.values():
            for fold in _fold_content(group):
                record = fold.record()
                line = lines[id(record)] if fold.size == 1 else canonical_bytes(record)
                rows.append((record["time"], record["time_range"], line, record))
    rows.sort(key=_row_order)
    return rows


def _merge_groups(group: list[dict[str, Any]]) -> list[list[dict[str, Any]]] | None:
    """The merge groups of one content's id-less records `taken_as_they_are`, in canonical order,
    when each is one record or records with one type of each number and no receiver twice (the
    merge makes `as_merged` of each); else None (they go to the merge)."""
    if len(group) == 1:
        return [group]
    times = list(map(_time_order, group))
    if len(set(times)) == len(group):
        group.sort(key=_time_order)  # no ties: the canonical order
        return [[record] for record in group]
    by_time: dict[tuple[Number, Number], list[dict[str, Any]]] = {}
    for at, record in zip(times, group, strict=True):
        by_time.setdefault(at, []).append(record)
    for same in by_time.values():
        if len(same) > 1:
            # 1 and 1.0 are one key here but two groups in the merge
            if len({(type(r["time"]), type(r["time_range"])) for r in same}) > 1:
                return None
            names = [name for r in same for name in r["receivers"]]
            if len(set(names)) < len(names):
                return None
    return [by_time[at] for at in sorted(by_time)]  # no ties: the canonical order
