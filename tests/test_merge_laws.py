"""The merge is a join-semilattice at the byte level (docs/merge.md): one law per test, one strategy.

`m` merges archives (record lists) and returns the canonical bytes; archives on the left and right
of each law are compared as bytes, so `0` vs `0.0` or a different line order would fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from formats.canonical import canonical_json, format_batch, parse_batch
from formats.errors import InputError
from merge.core import merge, merge_bytes, merge_records, observations
from tests.strategies import MERGE_MINUTE0, archive_records, merge_archives

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

Archive = list[dict[str, Any]]


def m(*archives: Archive) -> bytes:
    return merge_bytes(*archives)


def rec(archive: bytes) -> Archive:
    return parse_batch(archive)


def join(receiver: str, start: float, width: float) -> dict[str, Any]:
    return {
        "command": "JOIN",
        "params": ["#chan"],
        "sender": "alice",
        "user": "alice",
        "host": "alice.tmi.twitch.tv",
        "tags": None,
        "receivers": {receiver: MERGE_MINUTE0 + 70.0},
        "time": start,
        "time_range": width,
    }


def clearchat(receiver: str, received: float, width: float) -> dict[str, Any]:
    return {
        "command": "CLEARCHAT",
        "params": ["#chan", "troll"],
        "sender": "tmi.twitch.tv",
        "user": None,
        "host": None,
        "tags": {"room-id": "1"},
        "receivers": {receiver: received},
        "time": T0,
        "time_range": width,
    }


def privmsg(receiver: str, received: float, start: float, width: float, *, mid: str = "m1", text: str = "hi") -> dict:
    return {
        "command": "PRIVMSG",
        "params": ["#chan", text],
        "sender": "bob",
        "user": "bob",
        "host": "bob.tmi.twitch.tv",
        "tags": {"id": mid},
        "receivers": {receiver: received},
        "time": start,
        "time_range": width,
    }


T0 = MERGE_MINUTE0 + 10
# Upstream's associativity counterexample (ARCHIVE_FORMAT.md section 5): chained ranges [0,0], [0,1], [1,1].
CHAINED = [[join("host1.Ab3dE.0", T0, 0)], [join("host2.Zz9xY.0", T0, 1)], [join("host3.Qq1wE.1", T0 + 1, 0)]]
# Upstream's crash: one id three times, and upstream's 0 -> 0.0 defect.
THREE_IDS = [
    [privmsg("host1.Ab3dE.0", T0 + 0.5, T0, 0), privmsg("host1.Ab3dE.0", T0 + 0.7, T0, 0)],
    [privmsg("host2.Zz9xY.0", T0 + 0.4, T0, 0.0)],
    [privmsg("host3.Qq1wE.1", T0 + 0.6, T0, 0)],
]


@given(merge_archives())
@example(CHAINED)
@example(THREE_IDS)
def test_commutative(archives: list[Archive]) -> None:
    a, b, _ = archives
    left, right = m(a, b), m(b, a)
    assert left == right, (left, right)


@given(merge_archives())
@example(CHAINED)
@example(THREE_IDS)
def test_associative(archives: list[Archive]) -> None:
    a, b, c = archives
    left, right = m(rec(m(a, b)), c), m(a, rec(m(b, c)))
    assert left == right, (left, right)


@given(merge_archives())
@example(CHAINED)
@example(THREE_IDS)
def test_idempotent(archives: list[Archive]) -> None:
    a = rec(m(archives[0] + archives[1]))  # an archive is what a merge wrote
    left, right = m(a, a), format_batch(a)
    assert left == right, (left, right)


@given(merge_archives())
@example(CHAINED)
def test_identity(archives: list[Archive]) -> None:
    a = rec(m(archives[0]))
    left, right = m(a, []), format_batch(a)
    assert left == right, (left, right)


@given(merge_archives(), st.randoms(use_true_random=False))
def test_result_depends_only_on_the_set_of_observations(archives: list[Archive], random: Any) -> None:
    """Any split of the same records into archives, in any order, gives the same bytes."""
    everything = [r for a in archives for r in a]
    shuffled = everything[:]
    random.shuffle(shuffled)
    cut = random.randint(0, len(shuffled))
    left, right = m(everything), m(shuffled[:cut], shuffled[cut:], shuffled[: cut // 2])
    assert left == right, (left, right)


@given(merge_archives())
def test_no_observation_is_lost(archives: list[Archive]) -> None:
    """Id-less: every (content, receiver, receive time, time, range) survives exactly. With an id:
    every (content, receiver) survives with its earliest receive time, in a range within each input's."""
    inputs = [r for a in archives for r in a]
    out = rec(m(*archives))
    plain_in = observations(r for r in inputs if not _has_id(r))
    plain_out = observations(r for r in out if not _has_id(r))
    assert plain_in == plain_out, plain_in ^ plain_out
    by_content: dict[str, dict[str, Any]] = {}
    for r in out:
        if _has_id(r):
            by_content[_content(r)] = r
    for r in inputs:
        if not _has_id(r):
            continue
        merged = by_content[_content(r)]
        for name, when in r["receivers"].items():
            assert merged["receivers"][name] <= when
        lo, hi = merged["time"], merged["time"] + merged["time_range"]
        if lo <= hi:
            assert r["time"] <= lo and hi <= r["time"] + r["time_range"]


@given(merge_archives())
def test_bytes_are_format_batch_of_records(archives: list[Archive]) -> None:
    merged = merge(*archives)
    assert merged.to_bytes() == format_batch(merged.records())
    assert rec(merged.to_bytes()) == merged.records()


def _has_id(record: dict[str, Any]) -> bool:
    tags = record["tags"] or {}
    return isinstance(tags.get("id"), str) or isinstance(tags.get("msgid"), str)


def _content(record: dict[str, Any]) -> str:
    return canonical_json({k: v for k, v in record.items() if k not in ("receivers", "time", "time_range")})


# --- the matching rules, one example each ------------------------------------------------------


def test_chained_ranges_stay_three_lines_in_every_order() -> None:
    a, b, c = CHAINED
    results = {m(a, b, c), m(rec(m(a, b)), c), m(a, rec(m(b, c))), m(rec(m(a, c)), b)}
    assert len(results) == 1
    assert len(rec(results.pop())) == 3


def test_one_id_three_times_folds_into_one_record_and_counts_the_duplicate() -> None:
    merged = merge(*THREE_IDS)
    (record,) = merged.records()
    assert record["receivers"] == {"host1.Ab3dE.0": T0 + 0.5, "host2.Zz9xY.0": T0 + 0.4, "host3.Qq1wE.1": T0 + 0.6}
    # three receivers combined: the numbers upstream's merge gives (ARCHIVE_FORMAT.md section 5.1)
    assert (record["time"], record["time_range"]) == (float(T0), 0.0) and type(record["time_range"]) is float
    assert merged.counts.duplicate_deliveries == 1


def test_a_record_combined_from_two_receivers_carries_upstreams_floats() -> None:
    """Section 5.1: two readings of one exact message give `"time_range":0.0`, an intersected
    estimate `55.0`; the time is a float too. One receiver's record keeps its writer's numbers."""
    exact = merge([privmsg("host1.Ab3dE.0", T0 + 0.5, T0, 0)], [privmsg("host2.Zz9xY.0", T0 + 0.4, T0, 0)])
    assert b'"time":%r,"time_range":0.0,' % float(T0) in exact.to_bytes()
    estimated = merge([privmsg("host1.Ab3dE.0", T0 + 60, T0 - 5, 60)], [privmsg("host2.Zz9xY.0", T0 + 55, T0, 60)])
    assert b'"time":%r,"time_range":55.0,' % float(T0) in estimated.to_bytes()
    alone = merge([privmsg("host1.Ab3dE.0", T0 + 0.5, T0, 0)], [privmsg("host1.Ab3dE.0", T0 + 0.5, T0, 0)])
    assert b'"time":%d,"time_range":0,' % T0 in alone.to_bytes()


def test_zero_and_float_zero_readings_of_one_record_are_one_record() -> None:
    ours = privmsg("host1.Ab3dE.0", T0 + 0.5, T0, 0)
    upstreams = {
        **privmsg("host1.Ab3dE.0", T0 + 0.5, float(T0), 0.0),
        "receivers": {"host1.Ab3dE.0": T0 + 0.5, "host2.Zz9xY.0": T0 + 0.4},
    }
    assert len(merge([ours], [upstreams]).items) == 1
    assert m([ours], [upstreams]) == m([upstreams])
    a, b = clearchat("host1.Ab3dE.0", T0 + 0.5, 0), clearchat("host2.Zz9xY.0", T0 + 0.4, 0.0)
    (line,) = m([a], [b]).splitlines()
    assert b'"time_range":0.0,' in line and m(rec(m([a], [b])), [a]) == m([a], [b])
    ranged_a, ranged_b = clearchat("host1.Ab3dE.0", T0 + 0.5, 55), clearchat("host2.Zz9xY.0", T0 + 0.4, 55.0)
    (line,) = m([ranged_a], [ranged_b]).splitlines(keepends=True)  # one range, two receivers: upstream's 55.0
    assert b'"time_range":55.0,' in line and m(rec(line), [ranged_a]) == line
    again = {**ranged_b, "receivers": ranged_a["receivers"]}  # one receiver, written 55.0 by upstream's self-merge
    assert b'"time_range":55,' in m([ranged_a], [again])
    other = clearchat("host2.Zz9xY.0", T0 + 0.4, 54.5)
    assert m([ranged_a], [other]).count(b"\n") == 2  # different ranges: two observations, as before


def test_zero_range_stays_an_int() -> None:
    a = [privmsg("host1.Ab3dE.0", T0 + 0.5, T0, 0)]
    assert b'"time_range":0,' in m(a, a)
    assert b'"time_range":0,' in m([privmsg("host1.Ab3dE.0", T0 + 0.5, T0, 0.0)])


def test_one_id_two_contents_keeps_both_and_counts_a_conflict() -> None:
    merged = merge(
        [privmsg("host1.Ab3dE.0", T0 + 0.5, T0, 0, text="hi")],
        [privmsg("host2.Zz9xY.0", T0 + 0.5, T0, 0, text="edited")],
    )
    assert len(merged.items) == 2
    assert merged.counts.id_conflicts == 1


def test_id_ranges_intersect_and_disjoint_ranges_are_a_counted_conflict() -> None:
    merged = merge([privmsg("host1.Ab3dE.0", T0 + 12, T0, 10)], [privmsg("host2.Zz9xY.0", T0 + 14, T0 + 4, 10)])
    (record,) = merged.records()
    assert (record["time"], record["time_range"]) == (T0 + 4, 6)
    disjoint = merge([privmsg("host1.Ab3dE.0", T0 + 12, T0, 1)], [privmsg("host2.Zz9xY.0", T0 + 14, T0 + 4, 1)])
    (record,) = disjoint.records()
    assert (record["time"], record["time_range"]) == (T0 + 4, -3)
    assert disjoint.counts.range_conflicts == 1
    assert m(disjoint.records(), disjoint.records()) == disjoint.to_bytes()


def test_a_receiver_never_merges_two_sightings_with_different_receive_times() -> None:
    first = join("host1.Ab3dE.0", T0, 55)
    again = {**first, "receivers": {"host1.Ab3dE.0": MERGE_MINUTE0 + 80.0}}
    assert len(rec(m([first], [again]))) == 2
    assert len(rec(m([first], [first]))) == 1  # the same observation twice is one observation


def test_exact_time_records_from_several_receivers_fold() -> None:
    clear = {**join("host1.Ab3dE.0", T0 + 0.25, 0), "command": "CLEARCHAT"}
    other = {**clear, "receivers": {"host2.Zz9xY.0": T0 + 0.5}}
    (record,) = rec(m([clear], [other]))
    assert set(record["receivers"]) == {"host1.Ab3dE.0", "host2.Zz9xY.0"}


def test_float_width_choice_is_associative() -> None:
    """A member's float width that differs from the computed hi - lo in its last bits: including the
    computed width among the candidates keeps every grouping equal (docs/merge.md, counterexample 4)."""
    lo = T0 + 0.1
    hi = lo + 10
    w = hi - lo
    bigger = w + 2e-15  # lo + bigger still rounds to hi
    assert lo + bigger == hi and bigger != w
    a = [privmsg("host1.Ab3dE.0", T0 + 20, lo, bigger)]
    b = [privmsg("host2.Zz9xY.0", T0 + 20, lo, 20), privmsg("host3.Qq1wE.1", T0 + 20, lo - 5, hi - (lo - 5))]
    c = [privmsg("host4.Mm5nB.0", T0 + 20, lo - 1, 30)]
    assert m(rec(m(a, b)), c) == m(a, rec(m(b, c))) == m(rec(m(a, c)), b)


@given(st.lists(archive_records(), max_size=5))
def test_any_schema_record_merges_or_raises_our_error(records: list[dict[str, Any]]) -> None:
    """The fuzz invariant: arbitrary schema-valid records merge, or raise formats.errors.InputError."""
    try:
        merge_records(records)
    except InputError as e:
        assert e.line is not None


@pytest.mark.parametrize("bad", [{"time": float("nan")}, {"time": 2**60}, {"receivers": {}}, {"tags": 5}])
def test_unusable_records_raise_input_error_with_line(bad: dict[str, Any]) -> None:
    good = join("host1.Ab3dE.0", T0, 1)
    with pytest.raises(InputError) as info:
        merge_records([good, {**good, **bad}])
    assert info.value.line == 2
