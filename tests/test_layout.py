"""Dependencies run one way (issue 8): CLI -> stages -> formats. Read from the sources' imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
STAGES = ("recorder", "replay", "merge", "verify", "export", "live", "media")


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


def test_media_builds_on_formats_only() -> None:
    """The media stage reads records and writes files: it needs no other stage (serve and sync
    build on it to share its folders, not the other way round)."""
    assert imported_packages("media") & {"replay", "merge", "verify", "export", "live", "serve", "sync"} == set()
