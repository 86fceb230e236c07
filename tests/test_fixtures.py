"""Test vectors as data: every fixture recording replays to its expected archive, byte for byte.

- fixtures/spec/*: the two worked examples of ARCHIVE_FORMAT.md; `expected/` holds the spec's bytes
  verbatim under the spec's file names.
- fixtures/cases/*: recordings with an `expected.json` worked out by hand (each record says why);
  the content fields of a record come from parsing the line it references.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fixtures.txt2raw import convert, to_us
from formats.canonical import batch_relpath, batch_time_of, content_hash, format_batch
from formats.irc import parse_compat
from formats.rawcodec import receiver_name
from tests.pipeline import replay

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

FIXTURES = Path(__file__).parent.parent / "fixtures"
SPEC_CASES = sorted(p for p in (FIXTURES / "spec").iterdir() if p.is_dir())
CASES = sorted(p for p in (FIXTURES / "cases").iterdir() if p.is_dir())


def read_tree(root: Path) -> dict[str, bytes]:
    tree = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            tree[str(path.relative_to(root))] = path.read_bytes()
    return tree


@pytest.mark.parametrize("case", SPEC_CASES + CASES, ids=lambda p: p.name)
def test_committed_raw_files_match_their_readable_source(case: Path) -> None:
    for txt in case.glob("*.txt"):
        assert txt.with_suffix(".jsonl").read_bytes() == convert(txt.read_text("utf-8")), txt


@pytest.mark.parametrize("case", SPEC_CASES, ids=lambda p: p.name)
@pytest.mark.parametrize("merge", [False, True], ids=["per-connection", "merged"])
def test_spec_worked_examples_byte_for_byte(case: Path, merge: bool, tmp_path: Path) -> None:
    expected = read_tree(case / "expected")
    for rel, data in expected.items():  # the spec's names are the hashes of the spec's bytes
        assert rel.endswith(f"-{content_hash(data)}.json")
    replay([str(case / "host1.jsonl")], str(tmp_path), merge=merge)
    assert read_tree(tmp_path) == expected


class Recording:
    """The recv lines of a case's readable recordings, looked up by (file, conn, time[, nth])."""

    def __init__(self, case: Path) -> None:
        self.lines: dict[tuple[str, int, int], list[str]] = {}
        self.receivers: dict[str, str] = {}
        for txt in case.glob("*.txt"):
            for raw in txt.read_text("utf-8").splitlines():
                if raw.startswith("header "):
                    _, recorder, slug, _host = raw.split(" ")
                    self.receivers[txt.name] = f"{recorder}.{slug}"
                elif raw and not raw.startswith("#"):
                    at, kind, conn, rest = [*raw.split(" ", 3), ""][:4]
                    if kind == "recv":
                        self.lines.setdefault((txt.name, int(conn), to_us(at)), []).append(rest)

    def record(self, spec: dict[str, Any]) -> dict[str, Any]:
        contents = set()
        receivers = {}
        for ref in spec["seen"]:
            name, conn, at = ref[0], ref[1], to_us(ref[2])
            line = self.lines[(name, conn, at)][ref[3] if len(ref) > 3 else 0]
            contents.add(line)
            recorder, slug = self.receivers[name].split(".")
            receivers[receiver_name(recorder, slug, conn)] = at / 1_000_000
        assert len(contents) == 1, f"references of one record point at different lines: {contents}"
        command, params, sender, user, host, tags = parse_compat(contents.pop())
        return {
            "command": command,
            "params": params,
            "sender": sender,
            "user": user,
            "host": host,
            "tags": tags,
            "receivers": receivers,
            "time": spec["time"],
            "time_range": spec["time_range"],
        }


def expected_tree(case: Path, files: list[dict[str, Any]]) -> dict[str, bytes]:
    recording = Recording(case)
    tree = {}
    for f in files:
        batch_time = int(datetime.strptime(f["minute"], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC).timestamp())
        records = [recording.record(r) for r in f["records"]]
        assert all(batch_time_of(r["time"]) == batch_time for r in records), f"a record is not in {f['minute']}"
        data = format_batch(records)
        hour, name = batch_relpath(batch_time, content_hash(data))
        tree[f"{f['channel']}/chat/{hour}/{name}"] = data
    return tree


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_case_per_connection_files(case: Path, tmp_path: Path) -> None:
    spec = json.loads((case / "expected.json").read_text())
    replay([str(case)], str(tmp_path), merge=False)
    assert read_tree(tmp_path) == expected_tree(case, spec["no_merge"])


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_case_merged_archive(case: Path, tmp_path: Path) -> None:
    spec = json.loads((case / "expected.json").read_text())
    files = spec["no_merge"] if spec["merged"] == "same" else spec["merged"]
    replay([str(case)], str(tmp_path))
    assert read_tree(tmp_path) == expected_tree(case, files)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
@pytest.mark.parametrize("merge", [False, True], ids=["no-merge", "merged"])
def test_cli_replay_merges_unless_told_not_to(case: Path, merge: bool, tmp_path: Path) -> None:
    """The CLI runs the replay stage, then the merge stage on the channels written (as a user runs it)."""
    from typer.testing import CliRunner

    from chat_archiver.cli import app

    spec = json.loads((case / "expected.json").read_text())
    files = spec["no_merge"] if not merge or spec["merged"] == "same" else spec["merged"]
    args = ["replay", str(case), "--out", str(tmp_path), "--json", *([] if merge else ["--no-merge"])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert read_tree(tmp_path) == expected_tree(case, files)
    summary = json.loads(result.stdout)
    assert (summary["merge"] is not None) == merge
    if merge:
        assert summary["merge"]["channels"] == len(summary["channels"])
