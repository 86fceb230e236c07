"""What `chat-archiver replay` does, for tests that need the archive it leaves: replay the raw
recordings, then merge the channels written (unless `merge=False`), as chat_archiver/cmd_replay.py
does. (The replay stage does not merge: merge is another stage, and replay must not import it.)"""

from __future__ import annotations

from typing import Any

from merge.directory import merge_tree
from replay.shell import ReplayReport
from replay.shell import replay as replay_only


def replay(raw_paths: list[str], out_root: str, *, merge: bool = True, **options: Any) -> ReplayReport:
    report = replay_only(raw_paths, out_root, **options)
    if merge and report.channels:
        merge_tree(out_root, channels=sorted(report.channels))
    return report
