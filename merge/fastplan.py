"""The window merge on scanned lines: `merge.plan.plan_window`'s result, without decoding records.

`plan_window` (the reference) decodes every record of a window, merges them with `merge.core.Merger`
and encodes the merged records again. Most of that is wasted on canonical input: a merge changes
only `receivers`, `time` and `time_range`, and the rest of a line (its *content*) passes through.
Here each line comes scanned (merge/scan.py: content as bytes, id, receivers, time, range), records
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

from collections import Counter
from collections.abc import Mapping, Sequence

from formats.canonical import BATCH_INTERVAL, batch_time_of, content_hash
from merge.core import Member, MergeCounts, Number, NumKey, fold_members
from merge.plan import OutputFile, ScannedFile, WindowPlan
from merge.scan import Scanned


def _line(first: Scanned, receivers: list[tuple[bytes, Number]], time: Number, time_range: Number) -> bytes:
    content, a, k = first[0], first[1], first[2]
    parts = [b'"' + name + b'":' + repr(when).encode("ascii") for name, when in receivers]
    return b"".join((
        content[:a], b"{", b",".join(parts), b"}", content[a:a + k], repr(time).encode("ascii"),
        b',"time_range":', repr(time_range).encode("ascii"), content[a + k:],
    ))


def plan_window_bytes(
    minute: int, files: Mapping[int, Sequence[ScannedFile]], *, full: bool = False,
) -> WindowPlan | bool | None:
    """`plan_window(minute, files, full=full)` for the files scanned; False when this is not a window
    it handles (see above): the caller then runs `plan_window` on the decoded records."""
    own_files = files.get(minute, ())
    bt = batch_time_of
    ids: set[bytes] = set()
    for f in own_files:
        for s in f.scans:
            if bt(s[5]) != minute:
                return False  # a record that moves to another minute: the reference rewrites both
            if s[3] is not None:
                ids.add(s[3])
    for neighbour in (minute - BATCH_INTERVAL, minute + BATCH_INTERVAL):
        for f in files.get(neighbour, ()):
            for s in f.scans:
                if bt(s[5]) == minute or (s[3] is not None and s[3] in ids):
                    return False  # the reference includes that neighbour

    by_content: dict[bytes, list[Scanned]] = {}
    plain: dict[tuple[bytes, Number, bool, Number, bool], list[Scanned]] = {}
    records_in = observations = 0
    for f in own_files:
        records_in += len(f.scans)
        for s in f.scans:
            observations += len(s[4])
            if s[3] is not None:
                group = by_content.get(s[0])
                if group is None:
                    by_content[s[0]] = [s]
                else:
                    group.append(s)
            else:
                t, r = s[5], s[6]
                key = (s[0], t, type(t) is float, r, type(r) is float)
                group = plain.get(key)
                if group is None:
                    plain[key] = [s]
                else:
                    group.append(s)

    items: list[tuple[Number, Number, bytes]] = []
    duplicates = range_conflicts = 0
    ids_seen: Counter[bytes] = Counter()
    for group in by_content.values():
        first = group[0]
        ids_seen[first[3]] += 1  # type: ignore[index]  # an id group: its id is not None
        if len(group) == 1:
            receivers: dict[bytes, Number] = first[4]
            members: Sequence[Member] = ((first[5], type(first[5]) is float, first[6], type(first[6]) is float),)
        else:
            receivers = {}
            dups: dict[bytes, set[NumKey]] | None = None
            distinct: set[Member] = set()
            for s in group:
                distinct.add((s[5], type(s[5]) is float, s[6], type(s[6]) is float))
                for name, when in s[4].items():  # merge.core._IdGroup.add_receiver's rule
                    current = receivers.get(name)
                    if current is None:
                        receivers[name] = when
                        continue
                    new, old = (when, type(when) is float), (current, type(current) is float)
                    if new == old:
                        continue
                    if dups is None:
                        dups = {}
                    dups.setdefault(name, {old}).add(new)
                    if new < old:
                        receivers[name] = when
            if dups is not None:
                duplicates += sum(len(v) - 1 for v in dups.values())
            members = tuple(distinct)
        time, time_range, disjoint = fold_members(members)
        range_conflicts += disjoint
        items.append((time, time_range, _line(first, sorted(receivers.items()), time, time_range)))
    for (_content, time, _tf, time_range, _rf), group in plain.items():
        times: dict[bytes, set[NumKey]] = {}
        for s in group:
            for name, when in s[4].items():
                times.setdefault(name, set()).add((when, type(when) is float))
        ordered = {name: sorted(keys) for name, keys in sorted(times.items())}
        first = group[0]
        for i in range(max(len(v) for v in ordered.values())):
            chosen = [(name, keys[i][0]) for name, keys in ordered.items() if len(keys) > i]
            items.append((time, time_range, _line(first, chosen, time, time_range)))
    items.sort()
    data = b"\n".join([item[2] for item in items]) + b"\n" if items else b""
    digest = content_hash(data)
    if full and len(own_files) == 1 and digest == own_files[0].digest:
        return None  # already what a merge would write
    counts = MergeCounts(
        records_in=records_in,
        observations_in=observations,
        records_out=len(items),
        duplicate_deliveries=duplicates,
        id_conflicts=sum(n - 1 for n in ids_seen.values()),
        range_conflicts=range_conflicts,
    )
    return WindowPlan(
        minute=minute,
        included=(minute,),
        outputs=(OutputFile(minute, data, None, len(items)),) if items else (),
        deletes=tuple(f for f in own_files if not (items and f.digest == digest)),
        records_in=records_in,
        counts=counts,
    )
