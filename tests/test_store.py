"""Batch files on disk: atomic, durable, and a failed write names the file and leaves nothing behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from formats.errors import UsageError
from formats.store import iter_batch_files
from tests.archives import read_batch_file, write_batch

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

RECORD = {
    "command": "JOIN",
    "params": ["#c"],
    "sender": "a",
    "user": "a",
    "host": "a",
    "tags": None,
    "receivers": {"h.S.0": 1700000030.25},
    "time": 1699999975.25,
    "time_range": 60,
}


def test_write_then_list_and_read_back(tmp_path: Path) -> None:
    path, written = write_batch(str(tmp_path), "chan", 1699999920, [RECORD])
    assert written
    assert path.startswith(str(tmp_path / "chan" / "chat" / "2023-11-14T22" / "12:00-"))
    again, written_again = write_batch(str(tmp_path), "chan", 1699999920, [RECORD])
    assert (again, written_again) == (path, False)
    [found] = iter_batch_files(str(tmp_path), "chan")
    assert found.path == path and found.batch_time == 1699999920
    assert read_batch_file(path) == [RECORD]


def test_a_full_disk_names_the_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (tmp_path / "chan" / "chat" / "2023-11-14T22").mkdir(parents=True)  # folders exist: the file's fsync fails
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError) as e:
        write_batch(str(tmp_path), "chan", 1699999920, [RECORD])
    assert e.value.errno == errno.ENOSPC
    assert e.value.filename.endswith(".json")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    # a new folder whose fsync fails is named too
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError) as e:
        write_batch(str(tmp_path), "other", 1699999920, [RECORD])
    assert e.value.filename is not None and str(tmp_path) in e.value.filename


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "a\\b", "a\x00b", "", "a b"])
def test_unsafe_channel_folders_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        write_batch(str(tmp_path), name, 1699999920, [RECORD])
    assert list(tmp_path.iterdir()) == []
