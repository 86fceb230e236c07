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

from collections.abc import Iterable, Mapping
from typing import Any

from formats.canonical import CONTENT_KEYS, canonical_json, record_content_key
from merge.core import Number, merge, message_id


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
        width = self.hi - self.lo
        out["time"] = self.lo
        out["time_range"] = 0 if width == 0 else width
        return out


def fold_for_reading(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records as a reader should show them: merged, with ranged duplicates folded.

    Returns new records in canonical order (`time`, `time_range`, line). Raises
    formats.errors.InputError for records the merge cannot use.
    """
    merged = merge(records).records()
    out: list[dict[str, Any]] = []
    open_folds: dict[bytes, list[_Fold]] = {}
    done: list[_Fold] = []
    for record in merged:  # canonical order: ascending start time
        if message_id(record) is not None:
            out.append(record)
            continue
        key = record_content_key(record)
        folds = open_folds.setdefault(key, [])
        still_open: list[_Fold] = []
        for fold in folds:
            # Later records start no earlier, so a fold ending before this start is closed for good.
            (still_open if fold.hi >= record["time"] else done).append(fold)
        folds[:] = still_open
        for fold in folds:
            if fold.fits(record):
                fold.take(record)
                break
        else:
            folds.append(_Fold(record))
    for folds in open_folds.values():
        done.extend(folds)
    out.extend(fold.record() for fold in done)
    keyed = [(r["time"], r["time_range"], canonical_json(r), r) for r in out]
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed]
