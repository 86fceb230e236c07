"""What `chat-archiver replay` does, for tests that need the archive it leaves: replay the raw
recordings, then merge the channels written (unless `merge=False`), as chat_archiver/cmd_replay.py
does. (The replay stage does not merge: merge is another stage, and replay must not import it.)"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from formats.rawcodec import Event
from merge.directory import merge_tree
from replay.batches import ClosedBatch
from replay.engine import StreamReplayer
from replay.shell import ReplayReport
from replay.shell import replay as replay_only


def replay(raw_paths: list[str], out_root: str, *, merge: bool = True, **options: Any) -> ReplayReport:
    report = replay_only(raw_paths, out_root, **options)
    if merge and report.channels:
        merge_tree(out_root, channels=sorted(report.channels))
    return report


def replay_events(recorder: str, slug: str, events: Iterable[Event]) -> list[ClosedBatch]:
    """Every batch of one stream, in the order they close: the engine fed event by event, then
    finished, as the replay's shell drives it."""
    engine = StreamReplayer(recorder, slug)
    out: list[ClosedBatch] = []
    for event in events:
        out.extend(engine.feed(event))
    out.extend(engine.finish())
    return out
