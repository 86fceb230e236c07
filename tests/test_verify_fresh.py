"""verify --raw tells when an archive differs from what a replay of its raw recordings gives today:
an archive written by a reader that collapsed runs of spaces is stale, and replaying again
upgrades it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from chat_archiver.cli import app
from fixtures.txt2raw import convert
from formats.canonical import parse_batch
from tests.archives import write_batch
from tests.pipeline import replay
from verify import shell
from verify.shell import verify_archive

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

T0 = 1_700_000_000
TEXTS = ["hello there", "two  spaces", "  leading", "plain", "a   b  c"]


def recording(folder: Path, minutes: int = 3) -> Path:
    """A raw recording: one connection on #chan, a PRIVMSG every 12 s, some with runs of spaces."""
    lines = [
        "header host1 Ab3dE host1",
        f"{T0}.0 open 0 twitch wss://irc-ws.chat.twitch.tv:443",
        f"{T0}.1 send 0 JOIN #chan",
        f"{T0}.2 recv 0 @room-id=1 :tmi.twitch.tv ROOMSTATE #chan",
    ]
    for n, second in enumerate(range(10, 60 * minutes, 12)):
        text = TEXTS[n % len(TEXTS)]
        lines.append(
            f"{T0 + second}.5 recv 0 @id=m{n};tmi-sent-ts={(T0 + second) * 1000} "
            f":v!v@v.tmi.twitch.tv PRIVMSG #chan :{text}"
        )
    lines.append(f"{T0 + 60 * minutes}.0 close 0 bye")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "host1.jsonl"
    path.write_bytes(convert("\n".join(lines) + "\n"))
    return path


def findings(root: Path, raw: Path | None, jobs: int = 1) -> list[Any]:
    """The findings, less the notice that one recorder saw everything (true of these archives)."""
    report = verify_archive(str(root), raw=[str(raw)] if raw else None, jobs=jobs)
    return [f for f in report.findings if f.kind != "single-receiver"]


def batch_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json"))


def old_way(fresh_root: Path, old_root: Path) -> int:
    """The archive as the parse before the fix wrote it: runs of spaces in the text collapsed and
    its ends trimmed (girc's word-by-word rebuild). Returns how many records that changed."""
    changed = 0
    for path in batch_files(fresh_root):
        records = parse_batch(path.read_bytes())
        out = []
        for record in records:
            text = record["params"][-1]
            old = " ".join(w for w in text.split(" ") if w)
            changed += old != text
            out.append({**record, "params": [*record["params"][:-1], old]})
        write_batch(str(old_root), "chan", int(records[0]["time"] // 60 * 60), out)
    return changed


@pytest.fixture
def archives(tmp_path: Path) -> tuple[Path, Path, Path]:
    raw = recording(tmp_path / "raw")
    replay([str(raw)], str(tmp_path / "fresh"))
    changed = old_way(tmp_path / "fresh", tmp_path / "old")
    assert changed == 9  # 15 messages, 3 of every 5 texts hold runs or leading spaces
    return raw, tmp_path / "fresh", tmp_path / "old"


def test_a_fresh_replay_is_not_stale(archives: tuple[Path, Path, Path]) -> None:
    raw, fresh, _old = archives
    assert findings(fresh, raw) == []


def test_an_archive_written_the_old_way_is_stale_and_names_the_lines(archives: tuple[Path, Path, Path]) -> None:
    raw, _fresh, old = archives
    report = verify_archive(str(old), raw=[str(raw)], jobs=1)
    stale = [f for f in report.findings if f.kind == "stale"]
    summary = [f for f in stale if f.path is None]
    assert [f.message.split(";")[0] for f in summary] == ["9 records differ from a fresh replay of the raw"]
    assert "replay again to upgrade" in summary[0].message
    # every line named holds a text with its spaces collapsed; none of the others is named
    named = {(f.path, f.line) for f in stale if f.path is not None}
    expected = set()
    for path in batch_files(old):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            text = parse_batch((line + "\n").encode())[0]["params"][-1]
            if text in ("two spaces", "leading", "a b c"):
                expected.add((str(path), number))
    assert named == expected and len(named) == 9
    assert report.exit_status == 1
    # without the raw recordings nobody can tell
    assert findings(old, None) == []


def test_replaying_again_upgrades_the_archive(archives: tuple[Path, Path, Path]) -> None:
    raw, fresh, old = archives
    replay([str(raw)], str(old))  # the same minutes again, then merged with the old files
    # the merge keeps both readings of a stale message (their content differs), so the old
    # records remain: the upgrade is a replay into a new archive
    assert any(f.kind == "stale" for f in findings(old, raw))
    new = old.parent / "new"
    replay([str(raw)], str(new))
    assert findings(new, raw) == []
    assert [p.read_bytes() for p in batch_files(new)] == [p.read_bytes() for p in batch_files(fresh)]


def test_stale_check_in_worker_processes(archives: tuple[Path, Path, Path], monkeypatch: Any) -> None:
    raw, _fresh, old = archives
    monkeypatch.setattr(shell, "POOL_MIN_FILES", 1)
    one = findings(old, raw, jobs=1)
    two = findings(old, raw, jobs=2)
    assert sorted(map(str, one)) == sorted(map(str, two)) and any(f.kind == "stale" for f in two)


def test_cli_says_how_to_upgrade(archives: tuple[Path, Path, Path]) -> None:
    raw, _fresh, old = archives
    result = CliRunner().invoke(app, ["verify", str(old), "--raw", str(raw)])
    assert result.exit_code == 1
    flat = re.sub(r"\s+", " ", result.stdout)
    assert "9 records differ from a fresh replay of the raw; replay again to upgrade" in flat


def test_lines_of_one_frame_share_a_receive_time_and_are_each_judged(tmp_path: Path) -> None:
    """The recorder stamps every line of one WebSocket frame with the frame's receive time, so one
    moment can hold several lines: a record is stale only if it is none of them today."""
    lines = [
        "header host1 Ab3dE host1",
        f"{T0}.0 open 0 twitch wss://irc-ws.chat.twitch.tv:443",
        f"{T0}.2 recv 0 @room-id=1 :tmi.twitch.tv ROOMSTATE #chan",
        *(
            f"{T0 + 10}.5 recv 0 @id=f{i};tmi-sent-ts={(T0 + 10) * 1000 + i} :v!v@v.tmi.twitch.tv PRIVMSG #chan :{t}"
            for i, t in enumerate(["one", "two  spaces", "three"])
        ),
    ]
    raw = tmp_path / "raw" / "host1.jsonl"
    raw.parent.mkdir()
    raw.write_bytes(convert("\n".join(lines) + "\n"))
    replay([str(raw)], str(tmp_path / "fresh"))
    assert findings(tmp_path / "fresh", raw) == []
    old_way(tmp_path / "fresh", tmp_path / "old")
    stale = [f for f in findings(tmp_path / "old", raw) if f.kind == "stale" and f.line is not None]
    (line,) = [f.line for f in stale]
    (path,) = batch_files(tmp_path / "old")
    assert parse_batch(path.read_bytes())[line - 1]["params"][1] == "two spaces"


@given(
    st.lists(
        st.tuples(st.integers(1_600_000_000_000_000, 1_800_000_000_000_000), st.integers(0, 2**64 - 1)), max_size=30
    ),
    st.data(),
)
def test_index_finds_every_line_of_a_moment_whatever_the_order_added(
    lines: list[tuple[int, int]],
    data: st.DataObject,
) -> None:
    """Clocks step back, and lines of one frame share a time: the index still finds, for the time
    the archive writes (microseconds / 10**6, a float), exactly the lines received then."""
    from verify.fresh import FreshIndex

    if lines:  # some moments hold several lines
        lines += [(lines[0][0], d) for d in data.draw(st.lists(st.integers(0, 2**64 - 1), max_size=2))]
    index = FreshIndex()
    for at, digest in lines:
        index.add("host1.Ab3dE.0", at, digest)
    index.seal()
    assert len(index) == len(lines)
    for at, _digest in lines:
        found = index.digests_at("host1.Ab3dE.0", at / 1_000_000)
        assert found is not None and sorted(found) == sorted(d for a, d in lines if a == at)
        assert index.digests_at("host2.Zz9yX.0", at / 1_000_000) is None
    missing = data.draw(st.integers(1_600_000_000_000_000, 1_800_000_000_000_000))
    if all(at != missing for at, _ in lines):
        assert index.digests_at("host1.Ab3dE.0", missing / 1_000_000) is None


def test_a_record_of_a_line_todays_replay_does_not_archive_is_stale(tmp_path: Path) -> None:
    """An older replay also archived '&chan' targets; the spec archives '#' channels only.
    Such a record's content is the line's reading, but a fresh replay has no record of it."""
    amp = f"@id=z;tmi-sent-ts={(T0 + 10) * 1000} :v!v@v.tmi.twitch.tv PRIVMSG &chan :hi"
    lines = [
        "header host1 Ab3dE host1",
        f"{T0}.0 open 0 twitch wss://irc-ws.chat.twitch.tv:443",
        f"{T0}.2 recv 0 @room-id=1 :tmi.twitch.tv ROOMSTATE #chan",
        f"{T0 + 10}.5 recv 0 {amp}",
        f"{T0 + 11}.5 recv 0 @id=y;tmi-sent-ts={(T0 + 11) * 1000} :v!v@v.tmi.twitch.tv PRIVMSG #chan :fine",
    ]
    raw = tmp_path / "raw" / "host1.jsonl"
    raw.parent.mkdir()
    raw.write_bytes(convert("\n".join(lines) + "\n"))
    replay([str(raw)], str(tmp_path / "old"))
    old = {
        "command": "PRIVMSG",
        "params": ["&chan", "hi"],
        "sender": "v",
        "user": "v",
        "host": "v.tmi.twitch.tv",
        "tags": {"id": "z", "tmi-sent-ts": str((T0 + 10) * 1000)},
        "receivers": {"host1.Ab3dE.0": T0 + 10.5},
        "time": T0 + 10,
        "time_range": 0,
    }
    path, _ = write_batch(str(tmp_path / "old"), "chan", T0 // 60 * 60, [old])
    stale = [(f.path, f.line) for f in findings(tmp_path / "old", raw) if f.kind == "stale" and f.path]
    assert stale == [(path, 1)]
