"""The byte path's fold on scanned tuples: `fold_window_py` is the reference of the compiled
`fold_lines` (native/merge.c), which folds the same window from `Lines`, and `plan_window_bytes`
the plan made from it (merge.fastplan's `_plan`), held to `merge.plan.plan_window` by
tests/test_merge_fastplan.py. The directory merge runs only the compiled fold: without it, every
window takes the reference way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from formats.canonical import BATCH_INTERVAL
from merge.core import combined
from merge.fastplan import Common, Folded, Item, _numbers_text, _plan, _splice
from merge.plan import ScannedFile, Summary, WindowPlan, summary_of
from merge.scan import Scanned


def fold_common_py(files: Sequence[Sequence[Scanned]]) -> Common:
    """The common id groups of a minute's lines, folded: (items, rest, observations, id_conflicts).

    A group (lines of equal content, with an id) is common when its range is the int 0, every line
    has one receiver and the very same numbers text, and no receiver appears twice: its fold is
    then the time as it is, the range 0, and the receivers united (what the general code below
    gives, without its bookkeeping); two or more receivers combined make the numbers floats
    (`merge.core.combined`: the time as a float, the range `0.0`). `items` are those groups' output
    lines, `rest` every other line (id-less ones in file order, then the other groups whole),
    `observations` the receivers counted over every line, `id_conflicts` the groups of an id beyond
    its first (an id seen with several contents)."""
    groups: dict[bytes, list[Scanned]] = {}
    rest: list[Scanned] = []
    observations = 0
    for scans in files:
        for s in scans:
            observations += len(s[4])
            if s[3] is None:
                rest.append(s)
            else:
                groups.setdefault(s[0], []).append(s)
    items: list[Item] = []
    for group in groups.values():
        first = group[0]
        numbers, r = first[8], first[6]
        names = [next(iter(s[4])) for s in group if len(s[4]) == 1]
        if not (
            len(group) <= 16
            and type(r) is int
            and r == 0
            and len(names) == len(group)
            and all(s[8] == numbers for s in group)
            and len(set(names)) == len(names)
        ):
            rest.extend(group)
            continue
        texts = [s[7] for _name, s in sorted(zip(names, group, strict=True), key=lambda pair: pair[0])]
        time, time_range = combined(first[5], 0, len(group))
        if len(group) > 1:
            numbers = _numbers_text(first, time, time_range)
        items.append((time, time_range, _splice(first, b",".join(texts), numbers)))
    id_conflicts = len(groups) - len({group[0][3] for group in groups.values()})
    return items, rest, observations, id_conflicts


def fold_window_py(minute: int, own: Sequence[Sequence[Scanned]], neighbours: Sequence[Summary]) -> Folded | None:
    """The window over `minute` folded from its own files' lines (`fold_common_py`), given its
    neighbour files' summaries, and the summary of the output (its records all lie in the minute;
    its ids are the window's); None when it is not a window the byte path handles (see above). The
    reference of the compiled `fold_lines`, which takes the files as `Lines` (and a neighbour
    written by this path as the `Ids` it answered with, whose `summary()` is this summary)."""
    ids: set[bytes] = set()
    for scans in own:
        minutes, mids = summary_of(scans)
        if minutes != {minute}:
            return None  # a record that moves to another minute: the reference rewrites both
        ids |= mids
    for minutes, mids in neighbours:
        if minute in minutes or not ids.isdisjoint(mids):
            return None  # the reference includes that neighbour
    return (*fold_common_py(own), (frozenset([minute]), frozenset(ids)))


def plan_window_bytes(
    minute: int,
    files: Mapping[int, Sequence[ScannedFile]],
    *,
    full: bool = False,
) -> WindowPlan | bool | None:
    """`plan_window(minute, files, full=full)` for the files scanned; False when this is not a window
    it handles (see above): the caller then runs `plan_window` on the decoded records."""
    own_files = files.get(minute, ())
    own_scans = [f.scans for f in own_files if f.scans is not None]
    if len(own_scans) != len(own_files):
        return False  # the minute's own files come with their lines; else the reference runs
    neighbours = [f.summary for m in (minute - BATCH_INTERVAL, minute + BATCH_INTERVAL) for f in files.get(m, ())]
    folded = fold_window_py(minute, own_scans, neighbours)
    if folded is None:
        return False
    return _plan(minute, own_files, sum(len(scans) for scans in own_scans), folded, full)
