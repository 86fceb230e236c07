"""docs/verify-export.md keeps up with the code: every finding kind with its severity, every
option of both commands, and the JSON schema's top-level keys."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from chat_archiver.cli import app
from verify.findings import KINDS
from verify.render import JSON_VERSION

DOC = (Path(__file__).parent.parent / "docs" / "verify-export.md").read_text("utf-8")


def test_every_finding_kind_is_documented_with_its_severity() -> None:
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| ([a-z]+) \|", DOC, re.MULTILINE))
    assert rows == {kind: severity for kind, (severity, _meaning) in KINDS.items()}


def test_every_option_is_documented_and_has_help() -> None:
    for command in ("verify", "export"):
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.stderr
        options = set(re.findall(r"(--[a-z][a-z-]+)", result.stdout)) - {"--help"}
        assert options, result.stdout
        for option in options:
            assert option in DOC, (command, option)


def test_json_schema_version_and_keys_are_documented() -> None:
    assert f"version {JSON_VERSION}" in DOC
    for key in ("findings", "channels", "connections", "skew_reference", "empty_spans", "recorder_shares"):
        assert f'"{key}"' in DOC, key
