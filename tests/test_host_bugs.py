"""A host run unattended, as a new user runs it: relative paths, tokens, mistakes, damaged files,
deleted files, signals. Each test reproduces one thing a user met and checks what they should see."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from chat_archiver.cli import app

ROOT = Path(__file__).parent.parent
CASES = ROOT / "fixtures" / "cases"
CLI = [sys.executable, "-m", "chat_archiver.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args: str) -> typer.testing.Result:  # type: ignore[name-defined]
    return CliRunner().invoke(app, list(args))


def test_follow_with_relative_out_and_bare_checkpoint_writes_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `replay raw/ --out archive/ --follow`: an --out without a parent folder, and a
    bare `--checkpoint ck.json`, put the checkpoint in the current folder."""
    shutil.copytree(CASES / "two_recorders", tmp_path / "raw")
    monkeypatch.chdir(tmp_path)
    result = run("replay", "raw/", "--out", "archive/", "--follow", "--until-idle", "--idle", "0", "--poll", "0.01")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".archive.follow-checkpoint.json").is_file()
    assert list((tmp_path / "archive").rglob("*.json"))
    result = run("replay", "raw", "-o", "other", "--follow", "--checkpoint", "ck.json", "--until-idle", "--idle", "0")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ck.json").is_file()
