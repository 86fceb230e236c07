"""A mixed cluster settles (tests/mixed_cluster.py): a chat-archiver node and a wubloader node (the
clean-room model) recording one channel and copying each other's files by name, as the backfiller
does. With every record carrying an id, nothing moves after the first round; on a Twitch-like
recording, from the third round on only files in or next to a minute holding id-less ranged
readings that differ between the receivers move (upstream pairs those in read order, our CRDT
keeps them apart: documented in docs/serve-sync.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mixed_cluster import simulate

pytestmark = pytest.mark.integration


def test_a_recording_whose_records_all_carry_ids_settles_after_one_round(tmp_path: Path) -> None:
    rounds, files, residue = simulate(tmp_path, 10, ids_only=True, rounds=4)
    assert residue == 0 and files >= 10
    assert rounds[0].theirs_fetched == rounds[0].ours_fetched == files  # each node's own recording
    assert [r.moved for r in rounds[1:]] == [0, 0, 0]


def test_a_twitch_like_recording_moves_only_its_residue_after_two_rounds(tmp_path: Path) -> None:
    rounds, files, residue = simulate(tmp_path, 20, ids_only=False, rounds=5)
    assert files >= 20
    for r in rounds[2:]:
        assert r.theirs_fetched <= residue and r.ours_fetched <= residue, (rounds, residue)
    assert rounds[-1].moved < rounds[0].moved // 3, rounds
