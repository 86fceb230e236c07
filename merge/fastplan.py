"""The window merge on scanned lines: `merge.plan.plan_window`'s result, without decoding records.

`plan_window` (the reference) decodes every record of a window, merges them with `merge.core.Merger`
and encodes the merged records again. Most of that is wasted on canonical input: a merge changes
only `receivers`, `time` and `time_range`, and the rest of a line (its *content*) passes through.
Here each line comes scanned (merge/scan.py: content as bytes, id, receivers, time, range; or, as the
directory merge runs it, kept in C as `Lines` and folded there by `fold_lines`), records
are grouped by their content bytes exactly as `Merger` groups them (an id record by id and content,
which the content holds; an id-less one by content, exact time and exact range), the same fold is
applied (`merge.core.fold_members`, the same receiver rule), and each output line is spliced from the
content bytes and the merged numbers. Canonical bytes of equal records are equal, and a number's
canonical form is its repr, so the lines are the reference's, byte for byte.

It handles the common window only: every record of the minute's files lies in that minute, and no
record of a neighbour minute meets it (lies in it, or shares an id with it). Then the reference
includes no neighbour and touches only the minute, and so does this. Otherwise it answers False and
the caller runs the reference. tests/test_merge_fastplan.py holds the two equal over random windows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from formats import speedups
from merge.core import (
    Member,
    MergeCounts,
    Number,
    NumKey,
    add_receiver_time,
    combined,
    combined_range,
    fold_members,
    plain_range,
)
from merge.plan import LinesFile, OutputFile, WindowPlan
from merge.scan import Scanned, scan_file


def _splice(first: Scanned, receivers_text: bytes, numbers_text: bytes) -> bytes:
    """A line of `first`'s content with these receivers (`"name":when,...`) and numbers
    (`TIME,"time_range":RANGE`)."""
    content, a, k = first.content, first.a, first.k
    return b"".join((content[:a], b"{", receivers_text, b"}", content[a : a + k], numbers_text, content[a + k :]))


def _receivers_text(receivers: list[tuple[bytes, Number]]) -> bytes:
    return b",".join([b'"' + name + b'":' + repr(when).encode("ascii") for name, when in receivers])


def _numbers_text(first: Scanned, time: Number, time_range: Number) -> bytes:
    """`first`'s own text when the numbers are its own (equal, and of the same type: the same repr)."""
    t, r = first.time, first.time_range
    if time == t and type(time) is type(t) and time_range == r and type(time_range) is type(r):
        return first.numbers_text
    return repr(time).encode("ascii") + b',"time_range":' + repr(time_range).encode("ascii")


def _fold_one(first: Scanned) -> tuple[Number, Number, bool]:
    t, r = first.time, first.time_range
    if r == 0 and type(r) is int:
        return t, 0, False  # what fold_members gives for one member with a zero range
    return fold_members(((t, type(t) is float, r, type(r) is float),))


Item = tuple[Number, Number, bytes]  # (time, time_range, line): sorted, they are the file
# (items, rest, observations, id_conflicts) of a window's own lines: see tests/reference/merge_fold.py
Common = tuple[list[Item], list[Scanned], int, int]
# the same and the output's summary as a neighbour (its minutes and ids; compiled: formats._native.Ids)
Folded = tuple[list[Item], list[Scanned], int, int, Any]


# fold_lines(minute, own Lines, neighbour Lines): the twin of tests/reference/merge_fold.py's
# fold_window_py, on `Lines`
# (formats._native.scan_file: a file's lines kept as offsets and numbers, no Python object a line)
fold_lines: Callable[[int, list[Any], list[Any]], Folded | None] | None = speedups.compiled("fold_lines")


def plan_window_lines(
    minute: int,
    own_files: Sequence[LinesFile],
    neighbours: Sequence[Any],
    *,
    full: bool = False,
) -> WindowPlan | bool | None:
    """The plan of a window for files kept as `Lines` (the compiled scanner's, `own_files` the
    minute's, `neighbours` the files of the minutes before and after): the same plan, folded by
    `fold_lines`. False when this is not a window the byte path handles."""
    assert fold_lines is not None  # the caller has Lines: the compiled scanner is built
    folded = fold_lines(minute, [f.lines for f in own_files], list(neighbours))
    if folded is None:
        return False
    return _plan(minute, own_files, sum(len(f.lines) for f in own_files), folded, full)


def _plan(
    minute: int, own_files: Sequence[LinesFile], records_in: int, folded: Folded, full: bool
) -> WindowPlan | None:
    """The plan of a window handled by the byte path, from its folded common groups: the rest of
    the lines are grouped and folded as `Merger` does, and every line is spliced."""
    items, rest, observations, id_conflicts, summary = folded
    by_content: dict[bytes, list[Scanned]] = {}
    plain: dict[tuple[bytes, Number, bool, Number, bool], list[Scanned]] = {}
    for s in rest:
        if s.mid is not None:
            group = by_content.get(s.content)
            if group is None:
                by_content[s.content] = [s]
            else:
                group.append(s)
        else:
            t, r = s.time, s.time_range
            r = plain_range(r)  # as Merger keys it: `55` and a combined `55.0` are one group
            key = (s.content, t, type(t) is float, r, type(r) is float)
            group = plain.get(key)
            if group is None:
                plain[key] = [s]
            else:
                group.append(s)

    duplicates = range_conflicts = 0
    for group in by_content.values():
        first = group[0]
        if len(group) == 1:  # one sighting: its receivers as they are, its numbers as fold_members says
            time, time_range, disjoint = _fold_one(first)
            time, time_range = combined(time, time_range, len(first.receivers))
            range_conflicts += disjoint
            items.append(
                (time, time_range, _splice(first, first.receivers_text, _numbers_text(first, time, time_range)))
            )
            continue
        receivers: dict[bytes, Number] = {}
        dups: dict[bytes, set[NumKey]] | None = None
        distinct: set[Member] = set()
        single = True  # every sighting has one receiver
        for s in group:
            distinct.add((s.time, type(s.time) is float, s.time_range, type(s.time_range) is float))
            seen = s.receivers
            single = single and len(seen) == 1
            for name, when in seen.items():
                dups = add_receiver_time(receivers, dups, name, when)
        if dups is not None:
            duplicates += sum(len(v) - 1 for v in dups.values())
        if single and len(receivers) == len(group):  # one receiver each, all different: their texts, sorted
            receivers_text = b",".join(
                [text for _name, text in sorted([(next(iter(s.receivers)), s.receivers_text) for s in group])]
            )
        else:
            receivers_text = _receivers_text(sorted(receivers.items()))
        if len(distinct) == 1:
            time, time_range, disjoint = _fold_one(first)
        else:
            time, time_range, disjoint = fold_members(distinct)
        time, time_range = combined(time, time_range, len(receivers))
        range_conflicts += disjoint
        items.append((time, time_range, _splice(first, receivers_text, _numbers_text(first, time, time_range))))
    for (_content, time, _tf, time_range, _rf), group in plain.items():
        first = group[0]
        if len(group) == 1:  # one record: each receiver has one time, so it is written as it is
            one_range = combined_range(time_range, len(first.receivers))
            items.append((time, one_range, _splice(first, first.receivers_text, _numbers_text(first, time, one_range))))
            continue
        times: dict[bytes, set[NumKey]] = {}
        for s in group:
            for name, when in s.receivers.items():
                times.setdefault(name, set()).add((when, type(when) is float))
        ordered = {name: sorted(keys) for name, keys in sorted(times.items())}
        for i in range(max(len(v) for v in ordered.values())):
            chosen = [(name, keys[i][0]) for name, keys in ordered.items() if len(keys) > i]
            line_range = combined_range(time_range, len(chosen))
            numbers_text = _numbers_text(first, time, line_range)
            items.append((time, line_range, _splice(first, _receivers_text(chosen), numbers_text)))
    items.sort()
    data = b"\n".join([item[2] for item in items] + [b""]) if items else b""  # one copy, the last newline too
    output = OutputFile(minute, data, None, len(items), summary)
    digest = output.digest  # hashed once: the shell names the file by it
    if full and len(own_files) == 1 and digest == own_files[0].digest:
        return None  # already what a merge would write
    counts = MergeCounts(
        records_in=records_in,
        observations_in=observations,
        records_out=len(items),
        duplicate_deliveries=duplicates,
        id_conflicts=id_conflicts,
        range_conflicts=range_conflicts,
    )
    return WindowPlan(
        minute=minute,
        included=(minute,),
        outputs=(output,) if items else (),
        deletes=tuple(f for f in own_files if not (items and f.digest == digest)),
        records_in=records_in,
        counts=counts,
    )


def merged_minute(minute: int, datas: Sequence[bytes]) -> bytes | None:
    """The merge of one minute's batch files among themselves (bytes of a batch file, b"" when
    they hold nothing), through the compiled scanner and fold the directory merge runs; None when
    that path does not handle them (a file it does not vouch for, a record lying in another minute,
    or no compiled core): the caller then reads the files one by one.

    A reader of a window that is not merged yet (a file per receiver and minute) merges the minute
    here first: the merge is associative and idempotent, so merging the minute's files before the
    window's merge changes nothing in what the window shows, and the window's merge then meets
    each message once instead of once per receiver. Neighbour minutes are not looked at: this is
    no directory merge, and a record of this minute that meets one is merged again with it by the
    reader."""
    if fold_lines is None or scan_file is None:
        return None
    own: list[LinesFile] = []
    for data in datas:
        lines = scan_file(data)
        if isinstance(lines, int):
            return None
        own.append(LinesFile(minute, "", "", lines))
    plan = plan_window_lines(minute, own, [])
    if not isinstance(plan, WindowPlan):  # False: not a window the byte path handles (None needs full=True)
        return None
    return plan.outputs[0].data if plan.outputs else b""
