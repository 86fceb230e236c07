"""Disks that fill up or refuse writes, and the metrics endpoint, with an in-process recorder."""

from __future__ import annotations

import errno
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from twitchlike import (
    Recording,
    RunningRecorder,
    ServerConn,
    TwitchLikeServer,
    caught_up,
    chat_line,
    fast_config,
    wait_until,
)

from demo.twitchlike import free_port
from recorder.errors import LoginFailed, StorageError

pytestmark = pytest.mark.integration


def _chatty(conn: ServerConn) -> None:
    assert conn.wait_joined(["alpha", "beta"])
    conn.send(*(chat_line(i, "alpha" if i % 3 else "beta") for i in range(40)))


def test_disk_full_mid_run_stops_with_a_clear_error_and_keeps_what_was_written(tmp_path: Path) -> None:
    with TwitchLikeServer(_chatty) as server:
        with RunningRecorder(fast_config(server.url, str(tmp_path))) as rec:
            assert server.wait_conns(1)
            conn = server.conns[0]
            assert wait_until(lambda: caught_up(str(tmp_path), conn, 41))
            writer = rec.recorder.writer
            real_append = writer._append

            def full_disk(data: bytes) -> None:
                raise OSError(errno.ENOSPC, "No space left on device")

            writer._append = full_disk  # type: ignore[method-assign]
            conn.send(chat_line(999, "alpha"))
            assert wait_until(rec.finished, 20)
            writer._append = real_append  # type: ignore[method-assign]
            with pytest.raises(StorageError) as info:
                rec.stop()
        kept = list(conn.sent[:-1])
    message = str(info.value)
    assert "No space left on device" in message and "everything written before is kept" in message
    recording = Recording(str(tmp_path))
    assert recording.problems == []
    assert recording.by_conn("recv")[0] == kept


def test_a_disk_that_takes_no_byte_at_all_fails_at_once(tmp_path: Path) -> None:
    """Every hour file this process could open is /dev/full: the very first write fails."""
    slug = "FuLL1"
    folder = tmp_path / "test"
    folder.mkdir()
    now = datetime.now(UTC)
    for hour in (now - timedelta(hours=1), now, now + timedelta(hours=1)):
        (folder / f"{hour:%Y-%m-%dT%H}.{slug}.jsonl").symlink_to("/dev/full")
    with (
        TwitchLikeServer(_chatty) as server,
        RunningRecorder(fast_config(server.url, str(tmp_path)), slug=slug) as rec,
    ):
        assert wait_until(rec.finished, 20)
        with pytest.raises(StorageError, match="No space left on device"):
            rec.stop()


def test_bad_token_in_process_raises_login_failed_without_the_token(tmp_path: Path) -> None:
    token = "oauth:hunter2hunter2"
    with TwitchLikeServer(token="something-else") as server:
        config = fast_config(server.url, str(tmp_path), nick="archivist", token=token)
        assert token not in repr(config)
        with RunningRecorder(config) as rec:
            assert wait_until(rec.finished, 20)
            with pytest.raises(LoginFailed) as info:
                rec.stop()
    assert "Login authentication failed" in str(info.value)
    assert "hunter2" not in str(info.value)
    assert all("hunter2" not in m for _level, m in rec.logs)
    sends = Recording(str(tmp_path)).by_conn("send")[0]
    assert "PASS ***" in sends and not any("hunter2" in s for s in sends)


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_report_lines_by_channel_and_command_connections_bytes_and_fsync(tmp_path: Path) -> None:
    from recorder.metrics import serve

    with TwitchLikeServer(_chatty) as server, RunningRecorder(fast_config(server.url, str(tmp_path))) as rec:
        port = free_port()
        http, thread = serve(rec.recorder.collector, port)
        try:
            assert server.wait_conns(1)
            conn = server.conns[0]
            assert wait_until(lambda: caught_up(str(tmp_path), conn, 41))
            assert wait_until(lambda: rec.recorder.writer.fsync_count > 0, 10)
            m: dict[str, Any] = _scrape(port)
        finally:
            http.shutdown()
            http.server_close()
            thread.join(5)
        rec.stop()
    prefix = "chat_archiver_recorder"
    privmsg_alpha = sum(1 for line in conn.sent if " PRIVMSG #alpha " in line)
    assert m[f'{prefix}_lines_received_total{{channel="alpha",command="PRIVMSG"}}'] == privmsg_alpha
    assert m[f'{prefix}_lines_received_total{{channel="",command="001"}}'] == 1
    assert sum(v for k, v in m.items() if k.startswith(f"{prefix}_lines_received_total")) == len(conn.sent)
    assert m[f"{prefix}_connections_opened_total"] == 1
    assert m[f"{prefix}_connections_open"] == 1
    assert m[f'{prefix}_lines_sent_total{{command="JOIN"}}'] == 2
    assert m[f"{prefix}_bytes_written_total"] > 0
    assert m[f"{prefix}_fsync_seconds_count"] >= 1
    assert m[f"{prefix}_seconds_since_last_line"] >= 0
