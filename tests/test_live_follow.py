"""The follower (`replay --follow`): live equals offline, byte for byte, through hourly rotation, gzip,
a recorder killed mid-line and restarted (new slug), torn lines completed later, and the follower
itself stopped and restarted from its checkpoint at random moments. Plus checkpoint mismatch,
damaged lines, the lock, and the CLI under SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import live.follow as follow_module
from live.follow import Follower, FollowOptions
from merge.directory import merge_tree
from recorder.rawwriter import RawWriter, gzip_file
from replay.shell import ReplayReport
from replay.shell import replay as replay_unmerged

ROOT = Path(__file__).parent.parent
HOUR0 = 1_700_002_800  # an hour boundary (1700002800 = 2023-11-14T23:00Z)


def replay(raw: list[str], out: str) -> ReplayReport:
    """What `chat-archiver replay RAW --out OUT` does: replay, then merge the channels written."""
    report = replay_unmerged(raw, out)
    if report.channels:
        merge_tree(out, channels=sorted(report.channels))
    return report


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def tree_difference(live: dict[str, bytes], offline: dict[str, bytes]) -> str:
    """What differs between two archives, by minute: the records only one side holds."""

    def minutes(t: dict[str, bytes]) -> dict[str, set[bytes]]:
        out: dict[str, set[bytes]] = {}
        for name, data in t.items():
            out.setdefault(name.split("-", 3)[-2] if "/" in name else name, set()).update(data.splitlines())
        return out

    a, b = minutes(live), minutes(offline)
    lines = []
    for minute in sorted(set(a) | set(b)):
        only_live, only_offline = (
            a.get(minute, set()) - b.get(minute, set()),
            b.get(minute, set()) - a.get(minute, set()),
        )
        for side, records in (("live only", only_live), ("offline only", only_offline)):
            lines += [f"{minute} {side}: {r[:300]!r}" for r in sorted(records)[:5]]
    return "\n".join(lines[:40])


class SplitWriter(RawWriter):
    """A real raw writer that can tear one line: half of it, then `hook()`, then the rest."""

    hook: Callable[[], None] | None = None

    def _append(self, data: bytes) -> None:
        hook, self.hook = self.hook, None
        if hook is None or self._file is None:
            super()._append(data)
            return
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        hook()
        super()._append(data[len(data) // 2 :])


def chat(i: int, sent_s: float, channel: str = "#c") -> str:
    return f"@id=m{i};room-id=1;tmi-sent-ts={int(sent_s * 1000)} :u{i}!u@u.tmi.twitch.tv PRIVMSG {channel} :hi {i}"


def timeline(rng: random.Random) -> list[tuple[int, str, str, int, str]]:
    """(at µs, writer, kind, conn, text): host1 (closes cleanly, crosses an hour), host2 (killed
    mid-line, no close events) and host2 again (a restart: new slug), with ticks while quiet."""
    out: list[tuple[int, str, str, int, str]] = []
    spans = {"A": (HOUR0 - 420, HOUR0 + 330), "B": (HOUR0 - 300, HOUR0 + 30), "C": (HOUR0 + 60, HOUR0 + 400)}
    for w, (start, end) in spans.items():
        for conn in (0, 1) if w == "A" else (0,):
            t = start + conn * 100
            out.append((t * 10**6, w, "open", conn, ""))
            out.append(((t + 1) * 10**6, w, "recv", conn, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c"))
            now = float(t + 2)
            i = 0
            while now < end:
                gap = rng.choice([0.2, 0.7, 1.5, 4.0, 20.0, 75.0])
                quiet = now
                while quiet + 1 < now + gap and quiet + 1 < end:  # the recorder's ticks while quiet
                    quiet += 1
                    out.append((int(quiet * 10**6), w, "tick", conn, ""))
                now += gap
                if now >= end:
                    break
                i += 1
                line = chat(rng.randrange(10**6), now - rng.uniform(0.05, 2.0))
                if rng.random() < 0.1:
                    line = f":u{i}!u@u.tmi.twitch.tv JOIN #c"
                out.append((int(now * 10**6), w, "recv", conn, line))
            if w != "B":
                out.append((end * 10**6, w, "close", conn, "stopped"))
    out.sort(key=lambda e: (e[0], e[1], e[3]))
    return out


def run_scenario(tmp: Path, seed: int) -> tuple[Path, Path, list[str]]:
    rng = random.Random(seed)
    raw, root, cp = tmp / "raw", tmp / "live", tmp / "state" / "cp.json"
    writers = {
        "A": SplitWriter(str(raw), "host1", "Aaaaa", "h1", "test", gzip_finished=True),
        "B": SplitWriter(str(raw), "host2", "Bbbbb", "h2", "test"),
        "C": SplitWriter(str(raw), "host2", "Ccccc", "h2", "test"),
    }
    opts = FollowOptions((str(raw),), str(root), str(cp), idle=1e9, checkpoint_every=0)
    problems: list[str] = []
    follower = [Follower(opts)]

    def restart() -> None:
        follower[0].close()
        problems.extend(follower[0].problems)
        follower[0] = Follower(opts)
        follower[0].restore()

    def follower_pass() -> None:
        f, roll = follower[0], rng.random()
        if roll < 0.1:  # killed after writing and merging its batches, before its checkpoint is saved
            f.save_checkpoint = lambda: None  # type: ignore[method-assign]
            f.pass_once()
            restart()
        elif roll < 0.2:  # killed between passes
            f.pass_once()
            restart()
        else:
            f.pass_once()

    events = timeline(rng)
    for n, (at, w, kind, conn, text) in enumerate(events):
        writer = writers[w]
        if rng.random() < 0.01:
            writer.hook = follower_pass  # a line torn mid-write, completed after a follower pass
        if kind == "open":
            writer.write_open(conn, "wss://sim", at)
        elif kind == "recv":
            writer.write_recv(conn, text, at)
        elif kind == "tick":
            writer.write_tick(conn, at)
        else:
            writer.write_close(conn, text, at)
        if w == "B" and n == max(i for i, e in enumerate(events) if e[1] == "B"):
            # host2 is killed mid-write: half a line stays at the end of its file, never completed
            with open(writers["B"].paths[-1], "ab") as f:
                f.write(b'{"kind":"recv","seq":99999,"at":1')
            writers["B"].close()
        if rng.random() < 0.05:
            follower_pass()
    for w in ("A", "C"):
        writers[w].close()
    for t in threading.enumerate():  # the writer's background gzip of finished hours
        if t is not threading.main_thread() and t.daemon and "gzip" in repr(getattr(t, "_target", "")):
            t.join(30)
    problems.extend(follower[0].problems)
    follower[0].close()
    last = Follower(FollowOptions((str(raw),), str(root), str(cp), idle=0, until_idle=True, poll=0.01))
    last.run()
    problems.extend(last.problems)
    return raw, root, problems


@pytest.mark.parametrize("seed", range(4))
def test_live_equals_offline_whatever_the_follower_restarts(tmp_path: Path, seed: int) -> None:
    raw, root, problems = run_scenario(tmp_path, seed)
    offline = tmp_path / "offline"
    report = replay([str(raw)], str(offline))
    assert any(p.name.endswith(".jsonl.gz") for p in raw.rglob("*")), "an hour was rotated and gzipped"
    live_tree, offline_tree = tree(root), tree(offline)
    assert offline_tree and report.batches_written > 5
    assert live_tree == offline_tree, tree_difference(live_tree, offline_tree)
    # the killed recorder's torn last line is reported (once per follower that saw it), as offline
    assert [str(p) for p in report.raw_problems] == sorted(set(problems))


def _write_stream(raw: Path, slug: str = "Aaaaa", minutes: int = 5, bad_at: int | None = None) -> RawWriter:
    w = RawWriter(str(raw), "host1", slug, "h1", "test")
    t = HOUR0
    w.write_open(0, "wss://sim", t * 10**6)
    w.write_recv(0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c", (t + 1) * 10**6)
    for i in range(minutes * 6):
        now = t + 2 + i * 10
        w.write_recv(0, chat(i, now - 0.3), now * 10**6)
        if i == bad_at:
            with open(w.paths[-1], "ab") as f:
                f.write(b"this is not json\n")
    return w


def test_damaged_raw_line_reported_once_and_skipped(tmp_path: Path) -> None:
    raw, root = tmp_path / "raw", tmp_path / "live"
    w = _write_stream(raw, bad_at=3)
    opts = FollowOptions((str(raw),), str(root), str(tmp_path / "cp.json"), idle=1e9)
    f = Follower(opts)
    for _ in range(3):
        f.pass_once()
    w.write_close(0, "stopped", (HOUR0 + 400) * 10**6)
    w.close()
    f.pass_once()
    f.pass_once()
    # header, open, ROOMSTATE, four lines, then the damage: line 8, said once, as offline says it
    assert len(f.problems) == 1 and ".jsonl:8: not JSON" in f.problems[0]
    offline = tmp_path / "offline"
    report = replay([str(raw)], str(offline))
    assert f.problems == [str(p) for p in report.raw_problems]
    assert tree(root) == tree(offline)


def _offline(tmp: Path, raw: Path) -> Path:
    out = tmp / "offline"
    replay([str(raw)], str(out))
    return out


def test_checkpoint_not_matching_an_edited_raw_file_replays_that_stream_from_its_start(tmp_path: Path) -> None:
    raw, root, cp = tmp_path / "raw", tmp_path / "live", tmp_path / "cp.json"
    w = _write_stream(raw, minutes=8)
    path = Path(w.paths[-1])
    Follower(FollowOptions((str(raw),), str(root), str(cp), idle=1e9)).pass_once(final=True)
    assert cp.exists()
    w.write_close(0, "stopped", (HOUR0 + 600) * 10**6)
    w.close()
    # same length, other bytes just before where the follower stopped reading
    data = path.read_bytes()
    stop = data.rindex(b":hi ", 0, data.index(b'"kind":"close"'))
    path.write_bytes(data[:stop] + b":ho " + data[stop + 4 :])
    logs: list[str] = []
    root2 = tmp_path / "live2"
    root2.mkdir()
    second = Follower(
        FollowOptions((str(raw),), str(root2), str(cp), idle=0, until_idle=True, poll=0.01),
        log=lambda level, m: logs.append(m),
    )
    second.run()
    assert any(
        "checkpoint does not match stream host1.Aaaaa" in m
        and "differs from what was read before" in m
        and "replaying it from its start" in m
        for m in logs
    ), logs
    assert second.status.restarted_streams == 1
    assert tree(root2) == tree(_offline(tmp_path, raw))


def test_checkpoint_naming_a_deleted_raw_file_replays_that_stream_from_its_start(tmp_path: Path) -> None:
    raw, root, cp = tmp_path / "raw", tmp_path / "live", tmp_path / "cp.json"
    w = RawWriter(str(raw), "host1", "Aaaaa", "h1", "test")
    w.write_open(0, "wss://sim", (HOUR0 - 200) * 10**6)
    w.write_recv(0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c", (HOUR0 - 199) * 10**6)
    for i in range(40):
        now = HOUR0 - 190 + i * 10
        w.write_recv(0, chat(i, now - 0.3), now * 10**6)
    assert len(w.paths) == 2  # the hour turned
    Follower(FollowOptions((str(raw),), str(root), str(cp), idle=1e9)).pass_once(final=True)
    w.close()
    os.unlink(w.paths[1])  # the file the checkpoint points into
    logs: list[str] = []
    second = Follower(
        FollowOptions((str(raw),), str(root), str(cp), idle=0, until_idle=True, poll=0.01),
        log=lambda level, m: logs.append(m),
    )
    second.run()
    assert any("checkpoint does not match stream host1.Aaaaa" in m and "is gone" in m for m in logs), logs
    assert second.status.restarted_streams == 1 and second.status.events == 21  # the first hour, again


def test_checkpointed_stream_whose_files_are_all_gone_is_said(tmp_path: Path) -> None:
    raw, root, cp = tmp_path / "raw", tmp_path / "live", tmp_path / "cp.json"
    w = _write_stream(raw, minutes=1)
    root.mkdir()
    Follower(FollowOptions((str(raw),), str(root), str(cp), idle=1e9)).pass_once(final=True)
    w.close()
    os.unlink(w.paths[0])
    logs: list[str] = []
    Follower(
        FollowOptions((str(raw),), str(root), str(cp), idle=0, until_idle=True, poll=0.01),
        log=lambda level, m: logs.append(m),
    ).run()
    assert any("host1.Aaaaa" in m and "no raw files" in m for m in logs), logs


def test_a_second_follower_on_the_same_checkpoint_is_refused(tmp_path: Path) -> None:
    from formats.errors import UsageError
    from live.checkpoint import Lock

    cp = str(tmp_path / "cp.json")
    with Lock(cp), pytest.raises(UsageError, match="another follower"):
        Follower(FollowOptions((str(tmp_path),), str(tmp_path / "a"), cp)).run()


def test_version_1_recording_follows_like_offline(tmp_path: Path) -> None:
    fixtures = ROOT / "fixtures" / "cases"
    root = tmp_path / "live"
    Follower(
        FollowOptions((str(fixtures),), str(root), str(tmp_path / "cp.json"), idle=0, until_idle=True, poll=0.01)
    ).run()
    assert tree(root) == tree(_offline(tmp_path, fixtures))


@pytest.mark.integration
def test_cli_follow_writes_batches_as_they_close_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    raw, root, cp = tmp_path / "raw", tmp_path / "live", tmp_path / "cp.json"
    raw.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chat_archiver.cli",
            "replay",
            str(raw),
            "--out",
            str(root),
            "--follow",
            "--checkpoint",
            str(cp),
            "--poll",
            "0.05",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        w = _write_stream(raw, minutes=1)
        end = HOUR0 + 2 + 60 + 60  # past the first minute's deadline: a tick closes it
        w.write_tick(0, end * 10**6)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(root.rglob("*.json")):
            time.sleep(0.05)
        assert [p.name[:5] for p in root.rglob("*.json")] == ["00:00"]
        proc.send_signal(signal.SIGTERM)
        out, errs = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errs
    assert b"batches_written=1" in out
    assert cp.exists() and b"Traceback" not in errs
    w.close()


def test_a_truncated_gz_is_reported_once_and_the_rest_followed(tmp_path: Path) -> None:
    import gzip

    raw, root = tmp_path / "raw", tmp_path / "live"
    w = RawWriter(str(raw), "host1", "Aaaaa", "h1", "test")
    w.write_open(0, "wss://sim", (HOUR0 - 200) * 10**6)
    w.write_recv(0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c", (HOUR0 - 199) * 10**6)
    for i in range(500):
        now = HOUR0 - 190 + i * 0.4
        w.write_recv(0, chat(i, now - 0.3), int(now * 10**6))
    w.write_close(0, "stopped", (HOUR0 + 500) * 10**6)
    w.close()
    assert len(w.paths) == 2
    first = Path(w.paths[0])
    data = gzip.compress(first.read_bytes())
    Path(str(first) + ".gz").write_bytes(data[: len(data) * 2 // 3])  # the hour, compressed, then cut
    first.unlink()
    f = Follower(FollowOptions((str(raw),), str(root), str(tmp_path / "cp.json"), idle=0, until_idle=True, poll=0.01))
    f.run()
    assert len(f.problems) == 1 and "file ends early or is damaged" in f.problems[0], f.problems
    assert 30 < f.status.events < 470  # the readable part of the cut hour and all of the next one
    assert list(root.rglob("*.json"))


def test_a_checkpoint_entry_of_another_shape_replays_that_stream_instead_of_crashing(tmp_path: Path) -> None:
    import json

    raw, root, cp = tmp_path / "raw", tmp_path / "live", tmp_path / "cp.json"
    w = _write_stream(raw, minutes=4)
    root.mkdir()
    Follower(FollowOptions((str(raw),), str(root), str(cp), idle=1e9)).pass_once(final=True)
    saved = json.loads(cp.read_text())
    saved["streams"][0]["engine"]["conns"][0][4] = [["c", 1700002800, []]]  # an older shape of the state
    cp.write_text(json.dumps(saved))
    w.write_close(0, "stopped", (HOUR0 + 400) * 10**6)
    w.close()
    logs: list[str] = []
    f = Follower(
        FollowOptions((str(raw),), str(root), str(cp), idle=0, until_idle=True, poll=0.01),
        log=lambda level, m: logs.append(m),
    )
    f.run()
    assert any("checkpoint does not match stream host1.Aaaaa: its entry is not readable" in m for m in logs), logs
    assert tree(root) == tree(_offline(tmp_path, raw))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "{raw}", "--out", "{root}", "--follow", "--since", "2023-11-14"], "--follow takes no --channel"),
        (["replay", "{raw}/missing", "--out", "{root}", "--follow"], "missing: no such file or folder"),
        (["archive", "c", "--dir", "{root}", "--server", "http://x"], "--server must be a ws:// or wss:// URL"),
    ],
)
def test_live_commands_refuse_bad_arguments_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from chat_archiver.cli import app

    (tmp_path / "raw").mkdir()
    result = CliRunner().invoke(app, [a.format(raw=tmp_path / "raw", root=tmp_path / "root") for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_archive_dialect_is_the_same_choice_as_records(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from chat_archiver.cli import app

    result = CliRunner().invoke(app, ["archive", "c", "--dir", str(tmp_path / "root"), "--dialect", "irc"])
    assert result.exit_code == 2, result.output
    assert "error: --dialect: 'irc' is not one of" in result.stderr and "Traceback" not in result.output
    assert "'twitch', 'ircv3'" in result.stderr


def test_a_file_damaged_throughout_is_listed_up_to_a_cap_and_counted(tmp_path: Path) -> None:
    from formats.rawfile import PROBLEMS_PER_FILE

    raw, root = tmp_path / "raw", tmp_path / "live"
    w = _write_stream(raw, minutes=1)
    with open(w.paths[-1], "ab") as f:
        f.write(b"garbage\n" * (PROBLEMS_PER_FILE + 50))
    w.close()
    logs: list[str] = []
    f = Follower(
        FollowOptions((str(raw),), str(root), str(tmp_path / "cp.json"), idle=0, until_idle=True, poll=0.01),
        log=lambda level, m: logs.append(m),
    )
    f.run()
    assert f.status.raw_problems == PROBLEMS_PER_FILE + 50
    assert len(f.problems) == PROBLEMS_PER_FILE
    assert sum("counted, no longer listed" in m for m in logs) == 1
    assert tree(root) == tree(_offline(tmp_path, raw))


def test_a_checkpoint_that_cannot_be_written_is_an_error_of_the_follower_not_lost(tmp_path: Path) -> None:
    from live.checkpoint import Writer

    (tmp_path / "file").write_text("not a folder")
    writer = Writer(str(tmp_path / "file" / "cp.json"))
    writer.write(b"{}")
    with pytest.raises(OSError):
        writer.wait()
    writer.wait()  # said once
    ok = Writer(str(tmp_path / "cp.json"))
    ok.write(b"{}")
    ok.write(b"[]")  # in order: the second waits for the first
    ok.wait()
    assert (tmp_path / "cp.json").read_bytes() == b"[]"


def test_after_a_deadline_the_follower_looks_fast_until_every_stream_has_shown_it(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    w = _write_stream(raw, minutes=1)  # open batches of minute HOUR0, deadline HOUR0 + 120
    f = Follower(FollowOptions((str(raw),), str(tmp_path / "live"), str(tmp_path / "cp.json"), idle=1e9, poll=0.25))
    f.pass_once()
    deadline = HOUR0 + 60 + 60
    assert f.next_wait(HOUR0 + 100) == 0.25  # nothing due before the next poll
    assert f.next_wait(deadline - 0.1) == pytest.approx(0.1)  # woken at the deadline, not up to `poll` after
    assert f.next_wait(deadline + 0.5) == 0.02  # passed, not yet shown by the stream: look again soon
    assert f.next_wait(deadline + 3) == 0.25  # a quiet stream: back to `poll` (its tick closes the batch)
    w.write_tick(0, (deadline + 1) * 10**6)
    f.pass_once()
    assert f.next_wait(deadline + 1.1) == 0.25  # shown and written: nothing due before the next poll
    w.close()
    f.close()


def test_a_raw_file_replaced_by_its_gz_between_listing_and_reading_is_not_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder's background gzip can replace a finished hour while a (restarted) follower lists
    the folder and reads each new file's header: the file is gone, not damaged (the cause of a rare
    failure of test_live_equals_offline_whatever_the_follower_restarts under load)."""
    raw, root = tmp_path / "raw", tmp_path / "live"
    w = _write_stream(raw, minutes=3)
    w.write_close(0, "stopped", (HOUR0 + 400) * 10**6)
    w.close()
    real = follow_module.read_header

    def gzip_first(path: str) -> Any:
        if not path.endswith(".gz") and os.path.exists(path):
            gzip_file(path)  # the recorder's gzip, right between the listing and this read
        return real(path)

    monkeypatch.setattr(follow_module, "read_header", gzip_first)
    f = Follower(FollowOptions((str(raw),), str(root), str(tmp_path / "cp.json"), idle=1e9))
    f.pass_once()
    f.pass_once()
    f.close()
    assert f.problems == []
    assert any(p.name.endswith(".jsonl.gz") for p in raw.rglob("*"))
    assert tree(root) == tree(_offline(tmp_path, raw))


@pytest.mark.parametrize("gz", [False, True])
def test_lines_longer_than_a_read_are_followed_as_offline_reads_them(tmp_path: Path, gz: bool) -> None:
    """A line longer than the follower's read (64 KiB here) but within the 1 MiB cap is archived;
    a longer one is one problem naming its file and line; the lines after both are followed; and
    the live archive is the offline one (before, the follower stalled on such a line)."""
    from formats.rawcodec import MAX_LINE

    raw, root = tmp_path / "raw", tmp_path / "live"
    w = RawWriter(str(raw), "host1", "Aaaaa", "h1", "test")
    t = HOUR0
    w.write_open(0, "wss://sim", t * 10**6)
    w.write_recv(0, "@room-id=1 :tmi.twitch.tv ROOMSTATE #c", (t + 1) * 10**6)
    w.write_recv(0, chat(1, t + 2), (t + 2) * 10**6)
    w.write_recv(0, chat(2, t + 3) + "x" * 200_000, (t + 3) * 10**6)  # long, kept
    with open(w.paths[-1], "ab") as f:  # over the cap, as only a hostile or broken writer makes it
        f.write(b'{"kind":"recv","seq":99,"at":1,"conn":0,"line":"' + b"y" * (MAX_LINE + 10) + b'"}\n')
    w.write_recv(0, chat(3, t + 4), (t + 4) * 10**6)
    w.write_close(0, "stopped", (t + 200) * 10**6)
    w.close()
    if gz:
        gzip_file(w.paths[-1])
    opts = FollowOptions((str(raw),), str(root), str(tmp_path / "cp.json"), idle=1e9, chunk=1 << 16)
    f = Follower(opts)
    for _ in range(4):
        f.pass_once()
    name = Path(w.paths[-1]).name + (".gz" if gz else "")
    assert len(f.problems) == 1 and f"{name}:6: line longer than 1,048,576 bytes" in f.problems[0], f.problems
    report = replay([str(raw)], str(tmp_path / "offline"))
    assert f.problems == [str(p) for p in report.raw_problems]
    assert tree(root) == tree(tmp_path / "offline")
    assert report.stats.records == 3
