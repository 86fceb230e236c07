"""A mixed cluster (tests/mixed_cluster.py): a chat-archiver node and a wubloader node (the clean-room
model) recording one channel and copying each other's files by name, as the backfiller does.

With every record carrying an id, nothing moves after the first round. On a Twitch-like recording
what keeps moving is, almost entirely, our files holding a JOIN or PART that the wubloader node's
merge deleted (folded into the record of the next such line of the same user, whose range it met)
and the minute beside each until it settles: no merge that keeps those receptions can write the
wubloader node's bytes there. With upstream's receiver check firing (section 5's fourth defect
fixed), nothing is deleted and the mix settles in two rounds (docs/serve-sync.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mixed_cluster import archive_sightings, simulate

pytestmark = pytest.mark.integration


def test_a_recording_whose_records_all_carry_ids_settles_after_one_round(tmp_path: Path) -> None:
    rounds, files = simulate(tmp_path, 10, ids_only=True, rounds=4)
    assert files >= 10
    assert rounds[0].theirs_fetched == rounds[0].ours_fetched == files  # each node's own recording
    assert [r.moved for r in rounds[1:]] == [0, 0, 0]


def test_a_twitch_like_recording_moves_what_upstreams_merge_deleted(tmp_path: Path) -> None:
    rounds, files = simulate(tmp_path, 20, ids_only=False, rounds=5)
    assert files >= 20
    for r in rounds[1:]:
        assert r.lost > 0, rounds  # the residue is there, and it is upstream's deletions ...
        assert r.other <= 2, rounds  # ... with the minutes beside them, nearly alone
    assert all(r.ours_fetched <= 2 for r in rounds[2:]), rounds  # we fetch each of its merges once
    assert rounds[-1].moved < rounds[1].moved, rounds  # the minutes beside settle
    assert archive_sightings(tmp_path / "ours") > archive_sightings(tmp_path / "theirs")  # we lost none


def test_with_upstreams_receiver_check_firing_a_twitch_like_recording_settles(tmp_path: Path) -> None:
    rounds, files = simulate(tmp_path, 20, ids_only=False, rounds=4, receiver_check=True)
    assert files >= 20
    assert rounds[0].theirs_fetched == rounds[0].ours_fetched == files
    for r in rounds[1:]:
        assert r.lost == 0 and r.moved <= files // 10, rounds
