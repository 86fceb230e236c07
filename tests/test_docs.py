"""The promises a newcomer relies on: the README's commands, every command's help, CI's entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chat_archiver import cli
from chat_archiver.cli import app

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
COMMANDS = sorted(cli.COMMANDS)


def test_readme_opens_with_the_run_and_test_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_expected_commands_exist() -> None:
    assert {"record", "replay", "merge", "verify", "export"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) > 3
    assert f"chat-archiver {command}" in README


def test_documents_the_readme_points_to_exist() -> None:
    for doc in re.findall(r"`(docs/[\w.-]+\.md)`", README):
        assert (ROOT / doc).exists(), doc


def test_replay_cli_prints_summary_on_stdout_and_errors_on_stderr(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["replay", str(ROOT / "fixtures" / "cases"), "--out", str(tmp_path / "a"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert '"records_written": 26' in ok.stdout
    assert ok.stderr == ""
    bad = runner.invoke(app, ["replay", str(tmp_path / "missing"), "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2
    assert "missing: no such file or folder" in bad.stderr
    assert bad.stdout == ""
    lag = runner.invoke(app, ["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "c"), "--max-server-lag", "30"])
    assert lag.exit_code == 2
    assert "must exceed" in lag.stderr
