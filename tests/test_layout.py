"""Dependencies run one way (issue 8): CLI -> stages -> formats. Read from the sources' imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
STAGES = ("recorder", "replay", "merge", "verify", "export", "live", "index")


def imported_packages(package: str) -> set[str]:
    """The top-level packages imported anywhere in `package` (lazy imports inside functions too)."""
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_formats_imports_no_stage_and_no_cli() -> None:
    assert imported_packages("formats") & {*STAGES, "chat_archiver"} == set()


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_never_imports_the_cli(stage: str) -> None:
    assert "chat_archiver" not in imported_packages(stage)


def test_replay_does_not_import_merge() -> None:
    """The CLI runs replay, then merge; replay itself knows nothing of merge."""
    assert "merge" not in imported_packages("replay")


def test_live_builds_on_replay_merge_and_formats() -> None:
    """The live follower is the replay run incrementally, then the merge (issue 9)."""
    assert imported_packages("live") & {"verify", "export", "chat_archiver"} == set()


def test_index_builds_on_formats_and_the_merges_identity_only() -> None:
    """The index reads batch files (formats) and keys messages as the merge does (merge.core's
    message_id, imported in index/identity.py alone); the live follower calls it through a hook."""
    assert imported_packages("index") & {*STAGES, "chat_archiver", "serve", "sync"} == {"index", "merge"}
    assert "index" not in imported_packages("live")
