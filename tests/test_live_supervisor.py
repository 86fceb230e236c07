"""The supervisor of one host: a child that exits is started again; stopping stops the recorders
first, then the follower; metrics come from its children and the follower's status file."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from live.supervisor import ArchiveCollector, ChildSpec, Supervisor

pytestmark = pytest.mark.integration

# a child that notes when SIGTERM reached it, then exits
_STOPPABLE = """
import signal, sys, time
def bye(*_):
    open(sys.argv[1], "a").write(f"{time.monotonic()}\\n")
    time.sleep(float(sys.argv[2]))
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
while True:
    time.sleep(0.05)
"""


def _run(sup: Supervisor) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    runner = threading.Thread(target=sup.run, args=(stop, 0.05))
    runner.start()
    return stop, runner


def test_a_crashing_follower_is_restarted_and_never_stops_the_recorder(tmp_path: Path) -> None:
    children = [
        ChildSpec("recorder-1", [sys.executable, "-c", _STOPPABLE, str(tmp_path / "rec"), "0"], "recorder"),
        ChildSpec("follower", [sys.executable, "-c", "import sys; sys.exit(3)"], "follower"),
    ]
    logs: list[str] = []
    sup = Supervisor(
        children, log=lambda level, m: logs.append(m), state_path=str(tmp_path / "state.json"), backoff_max=0.2
    )
    stop, runner = _run(sup)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sup.restarts()["follower"] < 3:
            time.sleep(0.05)
        assert sup.restarts()["follower"] >= 3 and sup.restarts()["recorder-1"] == 0
        assert any("follower exited with status 3" in m for m in logs)
        state = json.loads((tmp_path / "state.json").read_text())
        recorder_pid = state["children"]["recorder-1"]["pid"]
        assert recorder_pid is not None and sup.up()["recorder-1"]
        os.kill(recorder_pid, 0)  # the recorder the state names is still running: it never stopped
    finally:
        stop.set()
        runner.join(30)


def test_stopping_stops_the_recorders_first_then_the_follower(tmp_path: Path) -> None:
    rec_log, fol_log = tmp_path / "rec", tmp_path / "fol"
    children = [  # the follower is listed first: the order comes from the roles, not the list
        ChildSpec("follower", [sys.executable, "-c", _STOPPABLE, str(fol_log), "0"], "follower"),
        ChildSpec("recorder-1", [sys.executable, "-c", _STOPPABLE, str(rec_log), "0.5"], "recorder"),
    ]
    sup = Supervisor(children, log=lambda level, m: None)
    stop, runner = _run(sup)
    time.sleep(1.0)  # the children install their SIGTERM handlers
    stop.set()
    runner.join(30)
    assert not runner.is_alive() and not any(sup.up().values())
    rec_stopped = float(rec_log.read_text().split()[0])
    fol_stopped = float(fol_log.read_text().split()[0])
    assert fol_stopped >= rec_stopped + 0.5  # the recorder had finished (0.5 s) before the follower was asked


def test_metrics_come_from_the_supervisor_and_the_follower_status(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    status.write_text(
        json.dumps(
            {
                "lines_behind": 12,
                "bytes_behind": 3400,
                "seconds_behind": 1.5,
                "batches_written": 7,
                "merge_passes": 3,
                "last_batch_time": {"c": 1700000040},
            }
        )
    )
    sup = Supervisor([ChildSpec("follower", ["true"], "follower")], log=lambda level, m: None)
    families = {m.name: m for m in ArchiveCollector(sup, str(status)).collect()}
    value = {name: [s.value for s in f.samples] for name, f in families.items()}
    assert value["chat_archiver_archive_lines_behind"] == [12]
    assert value["chat_archiver_archive_seconds_behind"] == [1.5]
    assert value["chat_archiver_archive_batches_written"] == [7]
    assert value["chat_archiver_archive_merge_passes"] == [3]
    assert value["chat_archiver_archive_last_batch_time"] == [1700000040]
    assert value["chat_archiver_archive_child_up"] == [0.0]
    # no status file yet (the follower has not run a pass): zeros, not an error
    status.unlink()
    assert {m.name for m in ArchiveCollector(sup, str(status)).collect()} == set(families)


def test_a_media_helper_is_stopped_with_the_others(tmp_path: Path) -> None:
    """`archive --emote-sets` runs `emotes` as a child of role "media": stopping the host stops it too."""
    children = [
        ChildSpec("recorder-1", [sys.executable, "-c", _STOPPABLE, str(tmp_path / "rec"), "0"], "recorder"),
        ChildSpec("emotes", [sys.executable, "-c", _STOPPABLE, str(tmp_path / "media"), "0"], "media"),
    ]
    sup = Supervisor(children, log=lambda level, m: None)
    stop, runner = _run(sup)
    time.sleep(1.0)
    stop.set()
    runner.join(30)
    assert not runner.is_alive() and not any(sup.up().values())
    assert (tmp_path / "media").read_text().strip()  # it got SIGTERM, not left running


@pytest.mark.parametrize(("dialect", "gets_token"), [("twitch", True), ("ircv3", False)])
def test_the_emote_sets_child_gets_a_token_only_for_twitch(
    dialect: str, gets_token: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emotes child sends its token to Twitch: the password of another IRC server (from
    --token-file or an inherited CHAT_ARCHIVER_TOKEN) must not reach it."""
    from chat_archiver.cmd_archive import emote_sets_spec

    monkeypatch.setenv("CHAT_ARCHIVER_TOKEN", "hunter2")
    spec = emote_sets_spec(
        ["chat-archiver"], Path("archive"), ["chan"], 6, token_file=Path("tok"), dialect=dialect, allow_private=False
    )
    assert ("--token-file" in spec.argv) is gets_token
    env = os.environ if spec.env is None else spec.env
    assert ("CHAT_ARCHIVER_TOKEN" in env) is gets_token


def test_a_child_runs_with_its_own_environment(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    code = f"import os; open({str(out)!r}, 'w').write(os.environ.get('ONLY_HERE', '-'))"
    spec = ChildSpec("media", [sys.executable, "-c", code], "media", env={**os.environ, "ONLY_HERE": "yes"})
    sup = Supervisor([spec], log=lambda level, m: None, backoff_max=0.1)
    sup._start(sup.children[0])
    proc = sup.children[0].proc
    assert proc is not None
    proc.wait(timeout=30)
    assert out.read_text() == "yes"
