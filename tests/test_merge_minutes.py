"""`merge.directory.ChannelMerger`: the minutes asked for, merged with a cache kept between calls,
give `merge_tree`'s tree whatever the order and grouping of the calls and of the writes."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profiles import examples, suppressing

from formats.canonical import batch_relpath, batch_time_of, format_batch
from formats.store import write_batch_bytes
from merge.directory import ChannelMerger, MergeProblem, merge_tree
from tests.strategies import MERGE_MINUTE0, merge_archives
from tests.test_merge_directory import CHANNEL, tree, write_archive

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

settings_minutes = settings(
    max_examples=examples(0.2), deadline=None, suppress_health_check=suppressing(HealthCheck.function_scoped_fixture)
)


def _batches(records: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    by_batch: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_batch.setdefault(batch_time_of(record["time"]), []).append(record)
    return by_batch


def _groups(draw: Any, minutes: list[int]) -> list[list[int]]:
    """`minutes` in any order, cut into any groups (some minutes asked for twice)."""
    order = draw(st.permutations(minutes + draw(st.lists(st.sampled_from(minutes), max_size=2)) if minutes else []))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=4)))
    out, start = [], 0
    for cut in [*cuts, len(order)]:
        out.append(order[start:cut])
        start = cut
    return out


@settings_minutes
@given(archives=merge_archives(), data=st.data())
def test_minutes_in_any_order_and_grouping_give_merge_tree_once(
    tmp_path: Path, archives: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    once, by_minutes = tempfile.mkdtemp(dir=tmp_path), tempfile.mkdtemp(dir=tmp_path)
    for archive in archives:
        write_archive(once, archive)
    merge_tree(once)
    merger = ChannelMerger(by_minutes, CHANNEL)
    written: set[int] = set()
    for archive in archives:
        for minute, records in sorted(_batches(archive).items()):
            path, new = write_batch_bytes(by_minutes, CHANNEL, minute, format_batch(records))
            if new and data.draw(st.booleans(), label="tell the merger"):
                assert merger.written(path, minute, records)
            written.add(minute)
        if data.draw(st.booleans(), label="merge now"):  # as the follower: merge between the writes
            for group in _groups(data.draw, sorted(written)):
                merger.merge_minutes(group)
    for group in _groups(data.draw, sorted(written)):
        merger.merge_minutes(group)
    merger.merge_minutes(written)  # each group is complete on its own; this one covers them all
    assert tree(by_minutes) == tree(once)


def test_files_the_caller_wrote_are_not_read_back(tmp_path: Path) -> None:
    root = str(tmp_path)
    merger = ChannelMerger(root, CHANNEL)
    minute = MERGE_MINUTE0
    for i in range(3):
        records = [
            {
                "command": "PRIVMSG",
                "params": ["#chan", "hi"],
                "sender": "bob",
                "user": "bob",
                "host": "b",
                "tags": {"id": "m1"},
                "receivers": {f"host{i}.a.0": minute + 1.5 + i},
                "time": minute + 1.0,
                "time_range": 0,
            }
        ]
        path, new = write_batch_bytes(root, CHANNEL, minute, format_batch(records))
        assert new and merger.written(path, minute, records)
    stats = merger.merge_minutes([minute])
    assert stats.files_read == 0 and stats.files_written == 1 and stats.files_deleted == 3
    (merged,) = tree(root).values()
    assert b'"receivers":{"host0.a.0":1700000041.5,"host1.a.0":1700000042.5,"host2.a.0":1700000043.5}' in merged
    # the merged file is kept too: the next minute's window reads nothing of this one again
    later = minute + 60
    for i in range(2):
        write_archive(
            root,
            [
                {
                    "command": "JOIN",
                    "params": ["#chan"],
                    "sender": "ann",
                    "user": "ann",
                    "host": "a",
                    "tags": None,
                    "receivers": {f"host{i}.a.0": later + 2.0},
                    "time": later + 1.0,
                    "time_range": 1,
                }
            ],
        )
    assert merger.merge_minutes([later]).files_read == 2


def test_records_that_reading_would_refuse_are_not_taken_and_the_file_is_reported(tmp_path: Path) -> None:
    root = str(tmp_path)
    minute = MERGE_MINUTE0
    good = {
        "command": "JOIN",
        "params": ["#chan"],
        "sender": "ann",
        "user": "ann",
        "host": "a",
        "tags": None,
        "receivers": {"host1.a.0": minute + 2.0},
        "time": minute + 1.0,
        "time_range": 1,
    }
    bad = dict(good, receivers={"host2.a.0": math.inf})
    write_archive(root, [good])
    path, _ = write_batch_bytes(root, CHANNEL, minute, format_batch([bad]))
    seen: list[MergeProblem] = []
    merger = ChannelMerger(root, CHANNEL, on_problem=seen.append)
    assert not merger.written(path, minute, [bad])
    merger.merge_minutes([minute])
    (problem,) = seen
    assert problem.path == path and problem.quarantined_to is not None and not os.path.exists(path)


def test_a_file_left_in_place_is_reported_once_over_many_calls(tmp_path: Path) -> None:
    root = str(tmp_path)
    minute = MERGE_MINUTE0
    write_archive(
        root,
        [
            {
                "command": "JOIN",
                "params": ["#chan"],
                "sender": "ann",
                "user": "ann",
                "host": "a",
                "tags": None,
                "receivers": {"host1.a.0": minute + 2.0},
                "time": minute + 1.0,
                "time_range": 1,
            }
        ],
    )
    hour, name = batch_relpath(minute, "A" * 43)
    damaged = os.path.join(root, CHANNEL, "chat", hour, name)
    Path(damaged).write_bytes(b"{not json\n")
    seen: list[MergeProblem] = []
    merger = ChannelMerger(root, CHANNEL, on_problem=seen.append, quarantine=False)
    for _ in range(3):
        merger.merge_minutes([minute])
    assert [p.path for p in seen] == [damaged]


def test_the_cache_holds_only_the_last_minutes(tmp_path: Path) -> None:
    root = str(tmp_path)
    merger = ChannelMerger(root, CHANNEL)
    for k in range(10):
        minute = MERGE_MINUTE0 + 60 * k
        records = [
            {
                "command": "JOIN",
                "params": ["#chan"],
                "sender": "ann",
                "user": "ann",
                "host": "a",
                "tags": None,
                "receivers": {"host1.a.0": minute + 2.0},
                "time": minute + 1.0,
                "time_range": 1,
            }
        ]
        path, _ = write_batch_bytes(root, CHANNEL, minute, format_batch(records))
        merger.written(path, minute, records)  # one recorder: no minute ever needs merging
        merger.merge_minutes([minute])
        assert merger.cached_minutes() <= {minute - 60, minute}
