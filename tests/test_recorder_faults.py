"""The recorder under network faults: a fault-injecting proxy between it and a chat server.

The proxy (tests/faultproxy.py) knows, per connection, every byte the server sent and every byte
written into the recorder's socket. The laws checked after each run:
- every line written into the recorder's socket is in the raw recording, on one connection, in
  order (and nothing the server did not send);
- the replay of the recording holds each chat message once (the overlaps fold);
- a stall that clears loses nothing: every message of the channel is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy, Pipe
from ircd import INSPIRCD, InspIRCd, IrcClient
from twitchlike import (
    LiveChannel,
    Recording,
    RunningRecorder,
    ServerConn,
    TwitchLikeServer,
    caught_up,
    chat_line,
    fast_config,
    wait_until,
)

pytestmark = pytest.mark.integration

# Quick watchdog for tests (the defaults are 3 s, 3 s and 30 s).
FAST_WATCHDOG: dict[str, Any] = {"ping_after": 0.4, "ping_timeout": 0.4, "silence_limit": 3.0}


def check_pipes_against_recording(pipes: list[Pipe], recording: Recording) -> None:
    """Every pipe's delivered lines are one recorded connection's lines (which the server sent)."""
    recv = recording.by_conn("recv")
    sent_by_pipe = [pipe.lines(delivered=False) for pipe in pipes]
    for pipe, sent in zip(pipes, sent_by_pipe, strict=True):
        got = pipe.lines(delivered=True)
        if not got:
            continue
        matches = [c for c, lines in recv.items() if lines[: len(got)] == got and sent[: len(lines)] == lines]
        assert matches, f"pipe {pipe.index}: {len(got)} delivered lines are not all in the recording"
        [conn] = matches[:1]
        assert recv[conn] == got, f"pipe {pipe.index}: recorded {len(recv[conn])} lines, delivered {len(got)}"
    for conn, lines in recv.items():
        assert any(sent[: len(lines)] == lines for sent in sent_by_pipe), f"conn {conn}: not from a server"
    # ticks keep their promise under faults too: per connection, `at` never goes back in seq order
    latest: dict[int, int] = {}
    for e in sorted(recording.events, key=lambda e: e.seq):
        assert e.at >= latest.get(e.conn, 0), (e, latest[e.conn])
        latest[e.conn] = e.at


def archived_ids(raw: Path, archive: Path, channels: tuple[str, ...], tag: str) -> list[str]:
    """Each archived chat message's id (as many times as it is in the archive), after a replay and
    the merge that follows it, as `chat-archiver replay` runs them."""
    from formats.store import iter_batch_files
    from tests.archives import read_batch_file
    from tests.pipeline import replay

    report = replay([str(raw)], str(archive))
    assert not report.raw_problems, report.raw_problems
    ids = []
    for channel in channels:
        for batch in iter_batch_files(str(archive), channel):
            for record in read_batch_file(batch.path):
                if record["command"] == "PRIVMSG":
                    ids.append(record["tags"][tag])
    return ids


def the_laws_hold(
    raw: Path, archive: Path, pipes: list[Pipe], channel: str = "alpha", tag: str = "id"
) -> tuple[
    Recording,
    list[str],
]:
    """The recording reads back clean, every delivered line is in it, and its replay holds each
    message once. Returns the recording and the archived message ids."""
    recording = Recording(str(raw))
    assert recording.problems == []
    check_pipes_against_recording(pipes, recording)
    ids = archived_ids(raw, archive, (channel,), tag)
    assert len(ids) == len(set(ids)), "a message twice in the archive"
    return recording, ids


def _id(line: str) -> str:
    return line.split(";id=")[1].split(";", maxsplit=1)[0]


def _live_script(channel: LiveChannel) -> Any:
    def script(conn: ServerConn) -> None:
        if conn.wait_joined([channel.name]):
            channel.join(conn)

    return script


def test_a_stall_that_clears_just_after_the_watchdog_acts_loses_nothing(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    channel = LiveChannel(interval=0.01)
    with TwitchLikeServer(_live_script(channel)) as server, FaultProxy(server.port) as proxy:
        channel.start()
        try:
            config = fast_config(proxy.url, str(raw), channels=("alpha",), **FAST_WATCHDOG)
            with RunningRecorder(config) as rec:
                assert server.wait_conns(1)
                first = server.conns[0]
                assert first.wait_for(lambda: len(first.sent) > 11 + 30), rec.logs
                proxy.pipes[0].stall()
                # the watchdog acts: a new connection opens and joins while the old one is stalled
                assert server.wait_conns(2, 20), rec.logs
                second = server.conns[1]
                assert second.wait_for(lambda: len(second.sent) > 11 + 10), rec.logs
                backlog = len(first.sent)
                proxy.pipes[0].resume()  # the stall ends just after: its backlog must be recorded
                assert first.wait_for(lambda: first.closed, 20), rec.logs  # handed over, then closed
                mark = len(second.sent)
                assert second.wait_for(lambda: len(second.sent) > mark + 10)
                channel.finish()
                assert wait_until(lambda: caught_up(str(raw), second), 20), rec.logs
                rec.stop()
        finally:
            channel.finish()
        pipes = list(proxy.pipes)
        assert pipes[0].dropped() == []
    recording, ids = the_laws_hold(raw, tmp_path / "archive", pipes)
    recorded = {line for lines in recording.by_conn("recv").values() for line in lines}
    missing = [line for line in channel.published if line not in recorded]
    assert missing == [], f"{len(missing)} of {len(channel.published)} messages lost"
    assert backlog > 11 + 30
    closes = {e.conn: e.text for e in recording.of("close")}
    assert closes[0] == "closed by us: a newer connection records everything from here"
    assert sorted(ids) == sorted(_id(line) for line in channel.published if " PRIVMSG " in line)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_a_cut_loses_only_what_never_reached_the_recorder(tmp_path: Path, how: str) -> None:
    raw = tmp_path / "raw"
    channel = LiveChannel(interval=0.005)
    with TwitchLikeServer(_live_script(channel)) as server, FaultProxy(server.port) as proxy:
        channel.start()
        try:
            with RunningRecorder(fast_config(proxy.url, str(raw), channels=("alpha",), **FAST_WATCHDOG)) as rec:
                for k in range(2):  # two cuts in a row: both connections' lines, then a third
                    assert server.wait_conns(k + 1, 20), rec.logs
                    conn = server.conns[k]
                    assert conn.wait_for(lambda c=conn: len(c.sent) > 11 + 40), rec.logs
                    assert proxy.wait_pipes(k + 1)
                    proxy.pipes[k].cut(how)
                assert server.wait_conns(3, 20), rec.logs
                last = server.conns[2]
                assert last.wait_for(lambda: len(last.sent) > 11 + 20), rec.logs
                channel.finish()
                assert wait_until(lambda: caught_up(str(raw), last), 20), rec.logs
                rec.stop()
        finally:
            channel.finish()
        pipes = list(proxy.pipes)
    recording, ids = the_laws_hold(raw, tmp_path / "archive", pipes)
    closes = [e.text for e in recording.of("close")]
    assert sum(c.startswith("connection lost") for c in closes) == 2, closes
    # what the channel lost is exactly what no connection delivered (the cut's gap), nothing else
    delivered = {line for p in pipes for line in p.lines(delivered=True)}
    recorded = {line for lines in recording.by_conn("recv").values() for line in lines}
    assert {line for line in channel.published if line in delivered} <= recorded
    assert set(ids) == {_id(line) for line in recorded if " PRIVMSG " in line}


def test_fragmented_and_slowly_read_traffic_arrives_whole(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    lines = [chat_line(i, "alpha") + " " + "ünïcödé ✓ " * (i % 9) for i in range(300)]

    def script(conn: ServerConn) -> None:
        assert conn.wait_joined(["alpha"])
        for k in range(0, len(lines), 3):
            conn.send_frame(lines[k : k + 3])

    with (
        TwitchLikeServer(script) as server,
        FaultProxy(server.port, fragment=True, slow_read=True, seed=7) as proxy,
        RunningRecorder(fast_config(proxy.url, str(raw), channels=("alpha",))) as rec,
    ):
        assert server.wait_conns(1)
        conn = server.conns[0]
        assert wait_until(lambda: caught_up(str(raw), conn, 11 + len(lines)), 60), rec.logs
        rec.stop()
        pipes = list(proxy.pipes)
    recording = Recording(str(raw))
    check_pipes_against_recording(pipes, recording)
    assert recording.by_conn("recv")[0][-len(lines) :] == lines


@pytest.mark.skipif(INSPIRCD is None, reason="inspircd is not installed here (CI installs it)")
def test_inspircd_through_stalls_cuts_and_fragmentation(tmp_path: Path) -> None:
    """A real IRCv3 server behind the proxy: a stall that clears after the watchdog acted, then a
    reset, with fragmented traffic throughout. Every delivered line is recorded; the archive holds
    each message once; the messages sent around the cleared stall are all there."""
    raw = tmp_path / "raw"
    with InspIRCd(tmp_path / "ircd") as ircd, FaultProxy(ircd.ws_port, fragment=True, seed=3) as proxy:
        config = fast_config(proxy.url, str(raw), channels=("lobby",), dialect="ircv3", nick="rec1", **FAST_WATCHDOG)
        with RunningRecorder(config) as rec:

            def recv_lines() -> list[str]:
                return [e.text for e in Recording(str(raw)).of("recv")]

            assert wait_until(lambda: any(" 366 rec1 #lobby " in x for x in recv_lines()), 20), rec.logs
            talker = IrcClient(ircd.irc_port, "talker")
            sent: list[str] = []
            try:
                talker.send("JOIN #lobby")
                assert talker.wait_for(lambda line: " 366 talker #lobby " in line)

                def say(n: int) -> None:
                    for _ in range(n):
                        text = f"message {len(sent)}"
                        sent.append(text)
                        talker.send(f"PRIVMSG #lobby :{text}")

                say(20)
                assert wait_until(lambda: sum(" :message " in x for x in recv_lines()) >= 20, 20)
                proxy.pipes[0].stall()
                say(30)  # during the stall: queued for the stalled connection
                assert proxy.wait_pipes(2), rec.logs
                assert wait_until(lambda: sum(" 366 " in x for x in recv_lines()) >= 2, 20), rec.logs
                proxy.pipes[0].resume()
                say(20)
                assert wait_until(proxy.pipes[0].closed.is_set, 20), rec.logs  # handed over
                assert wait_until(lambda: all(any(x.endswith(f" :{t}") for x in recv_lines()) for t in sent), 20)
                proxy.pipes[1].cut("rst")
                assert proxy.wait_pipes(3), rec.logs
                assert wait_until(lambda: sum(" 366 " in x for x in recv_lines()) >= 3, 20), rec.logs
                say(20)
                assert wait_until(lambda: any(x.endswith(f" :{sent[-1]}") for x in recv_lines()), 20)
            finally:
                talker.close()
            rec.stop()
        pipes = list(proxy.pipes)
    _recording, ids = the_laws_hold(raw, tmp_path / "archive", pipes, "lobby", "msgid")
    assert len(ids) == len(sent), (len(ids), len(sent))


@pytest.mark.slow
def test_the_cli_through_a_stall_a_cut_and_kill_9_then_a_restart(tmp_path: Path) -> None:
    """`chat-archiver record` as a user runs it, with the watchdog options, through the proxy: a
    stall that clears, a reset, then kill -9 and a restart. The killed process's connections hold
    a prefix of what was delivered to them (it may not have read the rest); the restarted one's hold
    all of it; the archive holds each message once."""
    import signal

    from test_recorder_cli import Proc

    raw = tmp_path / "raw"
    channel = LiveChannel(interval=0.01)
    with TwitchLikeServer(_live_script(channel)) as server, FaultProxy(server.port, fragment=True, seed=11) as proxy:
        channel.start()
        args = [
            "alpha",
            "--out",
            str(raw),
            "--server",
            proxy.url,
            "--dialect",
            "twitch",
            "--name",
            "chaos",
            "--ping-after",
            "0.4",
            "--ping-timeout",
            "0.4",
            "--silence-limit",
            "3",
        ]
        first = Proc(tmp_path, args, tag="first")
        try:
            assert server.wait_conns(1, 30), first.output()
            c0 = server.conns[0]
            assert c0.wait_for(lambda: len(c0.sent) > 11 + 30), first.output()
            proxy.pipes[0].stall()
            assert server.wait_conns(2, 20), first.output()
            c1 = server.conns[1]
            assert c1.wait_for(lambda: len(c1.sent) > 11 + 10), first.output()
            proxy.pipes[0].resume()
            assert c0.wait_for(lambda: c0.closed, 20), first.output()
            proxy.pipes[1].cut("rst")
            assert server.wait_conns(3, 20), first.output()
            c2 = server.conns[2]
            assert c2.wait_for(lambda: len(c2.sent) > 11 + 20), first.output()
        finally:
            first.kill()
        assert first.proc.returncode == -signal.SIGKILL
        killed_pipes = len(proxy.pipes)
        second = Proc(tmp_path, args, tag="second")
        try:
            assert server.wait_conns(killed_pipes + 1, 30), second.output()
            last = server.conns[-1]
            assert last.wait_for(lambda: len(last.sent) > 11 + 30), second.output()
            channel.finish()

            def restarted_caught_up() -> bool:
                recording = Recording(str(raw))
                newest = max(recording.streams, key=lambda s: s.header.at)
                recv = [e.text for e in recording.by_slug[newest.header.slug] if e.kind == "recv"]
                return len(recording.streams) == 2 and recv == last.sent

            assert wait_until(restarted_caught_up, 20), second.output()
            assert second.stop() == 0, second.output()
        finally:
            channel.finish()
            second.kill()
        pipes = list(proxy.pipes)
    assert "Traceback" not in first.output() + second.output()
    recording = Recording(str(raw))
    assert all("torn last line" in p.message for p in recording.problems), recording.problems
    [killed, restarted] = sorted(recording.streams, key=lambda s: s.header.at)
    for stream, these_pipes, whole in ((killed, pipes[:killed_pipes], False), (restarted, pipes[killed_pipes:], True)):
        recv: dict[int, list[str]] = {}
        for e in recording.by_slug[stream.header.slug]:
            if e.kind == "recv":
                recv.setdefault(e.conn, []).append(e.text)
        for pipe in these_pipes:
            got = pipe.lines(delivered=True)
            if not got:
                continue
            # the handshake lines are the same on every connection: match on the whole list
            assert any(
                (lines == got) if whole else (got[: len(lines)] == lines and len(lines) > 11) for lines in recv.values()
            ), (stream.header.slug, pipe.index, len(got))
    ids = archived_ids(raw, tmp_path / "archive", ("alpha",), "id")
    assert len(ids) == len(set(ids)), "a message twice in the archive"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_a_random_schedule_of_faults_keeps_the_laws(tmp_path: Path, seed: int) -> None:
    """Stalls that clear before the watchdog acts and after, FIN and RST cuts, in a seeded random
    order on fragmented traffic at 40 messages/s: the laws hold whatever the order."""
    import random
    import time

    rand = random.Random(seed)
    raw = tmp_path / "raw"
    channel = LiveChannel(interval=0.025, always=True)
    with (
        TwitchLikeServer(_live_script(channel)) as server,
        FaultProxy(server.port, fragment=True, seed=seed) as proxy,
    ):
        channel.start()
        try:
            with RunningRecorder(fast_config(proxy.url, str(raw), channels=("alpha",), **FAST_WATCHDOG)) as rec:
                assert server.wait_conns(1)
                assert wait_until(lambda: bool(channel.members), 20), rec.logs
                for _ in range(5):
                    time.sleep(rand.uniform(0.5, 1.5))
                    assert wait_until(lambda: any(not p.closed.is_set() for p in proxy.pipes), 20), rec.logs
                    pipe = [p for p in proxy.pipes if not p.closed.is_set()][-1]
                    fault = rand.choice(["short stall", "long stall", "fin", "rst"])
                    if fault == "short stall":
                        pipe.stall(rand.uniform(0.1, 0.5))  # clears before the watchdog's 0.8 s
                    elif fault == "long stall":
                        pipe.stall(rand.uniform(1.2, 2.5))  # clears after a new connection opened
                    else:
                        pipe.cut(fault)
                time.sleep(3.0)
                assert wait_until(lambda: bool(channel.members), 20), rec.logs
                channel.finish()
                newest = server.conns[-1]
                assert wait_until(lambda: caught_up(str(raw), newest), 20), rec.logs
                rec.stop()
        finally:
            channel.finish()
        pipes = list(proxy.pipes)
    recording, ids = the_laws_hold(raw, tmp_path / "archive", pipes)
    recorded = {line for lines in recording.by_conn("recv").values() for line in lines}
    assert set(ids) == {_id(line) for line in recorded if " PRIVMSG " in line}
