"""merge.plan, the rules of a directory merge, tested without a filesystem: which minutes take
part, which bytes are written, which files are deleted."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from formats.canonical import batch_time_of, content_hash, format_batch
from merge.core import merge_records
from merge.plan import InputFile, dirty_minutes, plan_window, window, worth_visiting
from tests.strategies import MERGE_MINUTE0, merge_archives

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

M = MERGE_MINUTE0 + 60  # the window's minute; its neighbours are M - 60 and M + 60


def msg(t: float, receiver: str, text: str = "hi", mid: str | None = "a") -> dict[str, Any]:
    return {
        "command": "PRIVMSG",
        "params": ["#c", text],
        "sender": "u",
        "user": "u",
        "host": "u.tmi.twitch.tv",
        "tags": None if mid is None else {"id": mid, "tmi-sent-ts": str(round(t * 1000))},
        "receivers": {receiver: t + 0.25},
        "time": t,
        "time_range": 0,
    }


def join(received: float, receiver: str) -> dict[str, Any]:
    """A delayed JOIN: its range starts 55 s before it was received, so it may belong a minute earlier."""
    return {
        "command": "JOIN",
        "params": ["#c"],
        "sender": "u",
        "user": "u",
        "host": "u.tmi.twitch.tv",
        "tags": None,
        "receivers": {receiver: received},
        "time": received - 55,
        "time_range": 55,
    }


def file(name: str, records: list[dict[str, Any]], minute: int | None = None) -> InputFile:
    data = format_batch(records)
    return InputFile(
        minute if minute is not None else batch_time_of(records[0]["time"]), content_hash(data), name, records
    )


def test_two_files_of_one_minute_become_one_and_both_go() -> None:
    a, b = file("a", [msg(M + 5, "r1")]), file("b", [msg(M + 5, "r2")])
    plan = plan_window(M, {M: [a, b]})
    assert plan is not None
    assert plan.included == (M,)
    (out,) = plan.outputs
    assert out.minute == M and out.records == merge_records(a.records + b.records)
    assert out.records[0]["receivers"] == {"r1": M + 5.25, "r2": M + 5.25}
    assert out.data == format_batch(out.records) and out.digest == content_hash(out.data)
    assert plan.deletes == (a, b)
    assert (plan.records_in, plan.records_out) == (2, 1)


def test_a_neighbour_that_meets_nothing_is_left_alone() -> None:
    before = file("before", [msg(M - 30, "r1", mid="other")])
    after = file("after", [msg(M + 70, "r1", mid="third")])
    a, b = file("a", [msg(M + 5, "r1")]), file("b", [msg(M + 5, "r2")])
    plan = plan_window(M, {M - 60: [before], M: [a, b], M + 60: [after]})
    assert plan is not None
    assert plan.included == (M,)
    assert before not in plan.deletes and after not in plan.deletes
    assert [o.minute for o in plan.outputs] == [M]


def test_a_neighbour_holding_the_same_id_takes_part() -> None:
    # the same message id seen in the minute after (a receiver's file named for the wrong minute is
    # not possible, but an IRCv3 msgid with ranges across the boundary is): both minutes are merged
    here, there = file("here", [msg(M + 59.5, "r1", mid="x")]), file("there", [msg(M + 59.5, "r2", mid="x")], M + 60)
    plan = plan_window(M, {M: [here, file("here2", [msg(M + 1, "r1", mid="y")])], M + 60: [there]})
    assert plan is not None
    assert M + 60 in plan.included
    assert there in plan.deletes  # its observation went into the merged file of M


def test_a_record_that_belongs_to_the_minute_before_moves_there() -> None:
    moved = join(M + 50, "r2")  # starts at M - 5: it belongs to the minute before
    a = file("a", [moved, msg(M + 1, "r1")], M)  # a file of M holding it (as an upstream archiver may write)
    b = file("b", [msg(M + 1, "r2")])
    earlier = file("earlier", [msg(M - 20, "r1", mid="e")])
    plan = plan_window(M, {M - 60: [earlier], M: [a, b]})
    assert plan is not None
    assert plan.included == (M, M - 60)
    by_minute = {o.minute: o.records for o in plan.outputs}
    assert moved in by_minute[M - 60] and all(batch_time_of(r["time"]) == m for m, rs in by_minute.items() for r in rs)
    assert {f.path for f in plan.deletes} == {"a", "b", "earlier"}


def test_an_input_the_plan_writes_again_is_not_deleted() -> None:
    both = merge_records([msg(M + 5, "r1"), msg(M + 5, "r2")])
    whole, part = file("whole", both), file("part", [msg(M + 5, "r2")])
    plan = plan_window(M, {M: [whole, part]})
    assert plan is not None
    (out,) = plan.outputs
    assert out.digest == whole.digest  # the output is that file, byte for byte
    assert plan.deletes == (part,)


def test_full_leaves_a_file_that_is_already_merged() -> None:
    merged = file("m", merge_records([msg(M + 5, "r1"), msg(M + 5, "r2")]))
    assert plan_window(M, {M: [merged]}, full=True) is None
    # a single file that is not what a merge writes (two deliveries of one id) is rewritten
    twice = InputFile(M, "not-the-hash-of-the-merge", "t", [msg(M + 5, "r1"), msg(M + 5, "r2")])
    plan = plan_window(M, {M: [twice]}, full=True)
    assert plan is not None and plan.deletes == (twice,) and len(plan.outputs[0].records) == 1


def test_which_minutes_need_a_merge() -> None:
    assert window(M) == (M - 60, M, M + 60)
    assert not worth_visiting(1, full=False) and worth_visiting(2, full=False)
    assert worth_visiting(1, full=True) and not worth_visiting(0, full=True)
    assert dirty_minutes({M + 60: ["a", "b"], M: ["a", "b", "c"], M - 60: ["a"]}) == [M, M + 60]
    assert dirty_minutes({M + 60: ["a", "b"], M: ["a", "b"]}, skip=[M]) == [M + 60]


@given(merge_archives(), st.sampled_from([M - 60, M, M + 60]), st.booleans())
def test_carrying_out_a_plan_loses_nothing(archives: list[list[dict[str, Any]]], minute: int, full: bool) -> None:
    """Law: writing the outputs and deleting what the plan says leaves files whose merge is the merge
    of the files before, whatever the archives and the minute."""
    files: dict[int, list[InputFile]] = {}
    for i, records in enumerate(archives):
        by_minute: dict[int, list[dict[str, Any]]] = {}
        for r in records:
            by_minute.setdefault(batch_time_of(r["time"]), []).append(r)
        for m, rs in by_minute.items():
            files.setdefault(m, []).append(file(f"archive{i}/{m}", rs, m))
    given_files = {m: fs for m, fs in files.items() if m in window(minute)}
    before = [r for fs in given_files.values() for f in fs for r in f.records]
    plan = plan_window(minute, given_files, full=full)
    if plan is None:
        assert full
        return
    deleted = {f.path for f in plan.deletes}
    kept = [r for fs in given_files.values() for f in fs if f.path not in deleted for r in f.records]
    after = [r for o in plan.outputs for r in o.records] + kept
    assert merge_records(after) == merge_records(before)
    for o in plan.outputs:
        assert o.records and all(batch_time_of(r["time"]) == o.minute for r in o.records)
    assert all(f.minute in plan.included for f in plan.deletes)
