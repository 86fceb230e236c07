"""export against the hand-made archive in fixtures/export (built by fixtures/export/make_archive.py).

How the expected outputs were checked by hand, record by record (window 22:13:30 to 22:16:00 UTC):
- EARLY (22:13:29.999, exact) ends before the start: out. AT_END (22:16:00.000) is not before
  the end: out. ROOMSTATE starts 22:13:25 but its 10 s range reaches 22:13:35: in, shown `~`.
- Minute 22:13 has two files, one per receiver, both holding message m-a: one line in every
  format, with both receivers (the merge).
- JOIN of lurker seen by host1 as [22:14:05.25, +60] and host2 as [22:14:07.5, +55]: the ranges
  meet, so one line, time 22:14:07.5 (the later start), range 102.5 - 47.5 = 55.0 (the fold's
  intersection, a float), receivers of both.
- A record seen by both receivers (m-a, the dance, the sub, the first CLEARCHAT) is a combined
  record: `"time_range":0.0`, the number upstream's merge writes (ARCHIVE_FORMAT.md section 5.1);
  a record of one receiver keeps its `0`.
- PART of lurker starts 22:15:00.5 (file 22:15) with a 60 s range: in (starts before the end).
- Text: `/me` as `* Dancer dances`; sub and raid by their system-msg (the sub with the user's own
  message after `|`); CLEARCHAT with ban-duration as a timeout, without as a ban, without target
  as a clear; CLEARMSG as a deleted message with its text; the display name 田中 differs from the
  login beyond case, so `田中 (tanaka)`.
- IRC: tag values escaped (`a b;c` -> `a\\sb\\:c`, the system-msg's spaces as `\\s`), CTCP \\x01
  bytes kept, lone parameters without `:`, several with the last one trailing (Twitch's shape).
- users.text (`--user spammer --user LURKER`): the JOIN, the timeout of spammer (a CLEARCHAT's
  target counts), the PART; not spammer2's deleted message. commands.text (`--command clearchat
  --command USERNOTICE`): sub, timeout, ban, clear, raid.
- json is the jsonl lines as one array; jsonl's lines are canonical records (checked with
  canonical_json in test_json_is_upstreams_rule_on_the_fixture below).
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chat_archiver.cli import app
from fixtures.export import make_archive
from formats.canonical import canonical_json
from formats.store import iter_batch_files
from merge.core import merge_records
from merge.view import fold_for_reading
from tests.archives import read_batch_file

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

FIXTURE = Path(__file__).parent.parent / "fixtures" / "export"
ARCHIVE = str(FIXTURE / "archive")
WINDOW = ["--since", "1700000010", "--until", "2023-11-14T22:16:00Z"]


def export(*args: str) -> Any:
    return CliRunner().invoke(app, ["export", ARCHIVE, "desertbus", *WINDOW, *args])


def test_committed_archive_is_what_the_script_builds(tmp_path: Path) -> None:
    make_archive.build(str(tmp_path))
    built = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*.json")}
    committed = {str(p.relative_to(ARCHIVE)): p.read_bytes() for p in Path(ARCHIVE).rglob("*.json")}
    assert built == committed


@pytest.mark.parametrize("fmt", ["json", "jsonl", "text", "irc"])
def test_golden_window(fmt: str) -> None:
    result = export("--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout_bytes == (FIXTURE / "expected" / f"window.{fmt}").read_bytes()


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("users.text", ["--user", "spammer", "--user", "LURKER"]),
        ("commands.text", ["--command", "clearchat", "--command", "USERNOTICE"]),
    ],
)
def test_golden_filters(name: str, args: list[str]) -> None:
    result = export("--format", "text", *args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == (FIXTURE / "expected" / name).read_bytes()


def upstream_rule(root: str, channel: str, start: float, end: float) -> list[dict[str, Any]]:
    """ARCHIVE_FORMAT.md section 6, directly: files from two minutes before start to one after
    end, merged all at once, the records whose range meets [start, end), sorted."""
    lo, hi = int(start // 60) * 60 - 120, int(end // 60) * 60 + 60
    records = [r for f in iter_batch_files(root, channel) if lo <= f.batch_time <= hi for r in read_batch_file(f.path)]
    shown = fold_for_reading(merge_records(records))
    keep = [r for r in shown if start <= r["time"] + r["time_range"] and r["time"] < end]
    return sorted(keep, key=lambda r: (r["time"], r["time_range"], canonical_json(r)))


def test_json_is_upstreams_rule_on_the_fixture() -> None:
    expected = upstream_rule(ARCHIVE, "desertbus", make_archive.START, make_archive.END)
    got = json.loads((FIXTURE / "expected" / "window.json").read_bytes())
    assert got == expected
    lines = (FIXTURE / "expected" / "window.jsonl").read_text().splitlines()
    assert lines == [canonical_json(r) for r in expected]


def test_out_file_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "chat.txt"
    result = export("--format", "text", "--out", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert target.read_bytes() == (FIXTURE / "expected" / "window.text").read_bytes()
    assert os.listdir(tmp_path) == ["chat.txt"]


def test_out_that_is_a_pipe_or_device_is_written_to_not_replaced(tmp_path: Path) -> None:
    """`--out /dev/null` (as root) or a FIFO: writing beside it and renaming over it would put a
    regular file where the device or pipe was. A FIFO stands in for /dev/null here."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = export("--format", "text", "--out", str(fifo))
    reader.join(10)  # a reader left waiting (the FIFO was never opened) is a daemon: it ends with the run
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got == [(FIXTURE / "expected" / "window.text").read_bytes()]
    assert os.listdir(tmp_path) == ["pipe"]


def test_out_that_is_a_folder_is_one_clear_error(tmp_path: Path) -> None:
    result = export("--format", "text", "--out", str(tmp_path))
    assert result.exit_code != 0
    assert "Traceback" not in result.output and str(tmp_path) in result.output
