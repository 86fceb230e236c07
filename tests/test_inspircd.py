"""The recorder against a real IRCv3 server (InspIRCd 3 over WebSocket, on loopback).

The recorder records #lobby while other clients talk, join and part on the plain port. The
recording must hold those lines with the server's own `time` and `msgid` tags, and the replay of
the recording must hold every message at exactly the server's time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ircd import INSPIRCD, InspIRCd, IrcClient
from twitchlike import Recording, RunningRecorder, fast_config, wait_until

from formats.irc import parse

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        INSPIRCD is None,
        reason="inspircd is not installed here (CI installs it: apt-get install inspircd)",
    ),
]


def _recv_lines(out: Path) -> list[str]:
    return [e.text for e in Recording(str(out)).of("recv")]


def test_recorder_records_a_real_ircv3_channel_with_server_time_and_msgid(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    with InspIRCd(tmp_path / "ircd") as ircd:
        config = fast_config(ircd.ws_url, str(raw), channels=("lobby",), dialect="ircv3", nick="recorder1")
        with RunningRecorder(config) as rec:
            assert wait_until(lambda: any(" 366 recorder1 #lobby " in line for line in _recv_lines(raw)), 20), (
                rec.logs,
                ircd.output(),
            )
            talker = IrcClient(ircd.irc_port, "talker")
            visitor = IrcClient(ircd.irc_port, "visitor")
            try:
                talker.send("JOIN #lobby")
                assert talker.wait_for(lambda line: " 366 talker #lobby " in line)
                texts = [f"message {i}: hello ünïcode ✓ and  two spaces" for i in range(25)]
                talker.send(*(f"PRIVMSG #lobby :{t}" for t in texts))
                talker.send("NOTICE #lobby :a notice")  # (no TOPIC: the recorder joined first, so only it is op)
                visitor.send("JOIN #lobby")
                assert visitor.wait_for(lambda line: " 366 visitor #lobby " in line)
                visitor.send("PRIVMSG #lobby :visitor says hi", "PART #lobby :gone")
                talker.send("CAP REQ :message-tags")  # client tags (ircv3_ctctags) ride along to the recorder
                assert talker.wait_for(lambda line: " ACK :message-tags" in line)
                talker.send("@+example.com/mood=happy PRIVMSG #lobby :tagged by the client")
                talker.send("PRIVMSG #lobby :last one")
                assert wait_until(lambda: any(line.endswith(" :last one") for line in _recv_lines(raw)), 20)
            finally:
                talker.close()
                visitor.close()
            assert wait_until(lambda: any(" QUIT " in line and "talker" in line for line in _recv_lines(raw)), 20)
            rec.stop()

    recording = Recording(str(raw))
    assert recording.problems == []
    assert [e.dialect for e in recording.of("open")] == ["ircv3"]
    sent = recording.by_conn("send")[0]
    assert sent[:3] == ["CAP LS 302", "NICK recorder1", "USER recorder1 0 * :chat-archiver recorder"]
    assert "CAP REQ :server-time message-tags" in sent and "CAP END" in sent
    assert sent.index("JOIN #lobby") > sent.index("CAP END")  # no JOIN before the welcome
    messages = [parse(line) for line in recording.by_conn("recv")[0]]
    privmsgs = [m for m in messages if m.command == "PRIVMSG"]
    assert [m.params[1] for m in privmsgs] == [*texts, "visitor says hi", "tagged by the client", "last one"]
    assert privmsgs[-2].tags is not None and privmsgs[-2].tags.get("+example.com/mood") == "happy"
    for m in privmsgs:
        assert m.tags is not None and m.tags.get("time") and m.tags.get("msgid"), m
    commands = {(m.command, (m.source or "").partition("!")[0]) for m in messages}
    assert {("JOIN", "visitor"), ("PART", "visitor"), ("NOTICE", "talker"), ("QUIT", "talker")} <= commands
    assert all(m.tags and "time" in m.tags for m in messages if m.command in ("JOIN", "PART", "NOTICE", "QUIT"))

    # the replay of this recording holds every message at exactly the server's time
    api = pytest.importorskip("replay.shell")
    from formats.dialect import ircv3_server_time
    from formats.store import iter_batch_files
    from tests.archives import read_batch_file

    report = api.replay([str(raw)], str(tmp_path / "archive"))
    assert not report.raw_problems
    archived = {}
    for batch in iter_batch_files(str(tmp_path / "archive"), "lobby"):
        for record in read_batch_file(batch.path):
            if record["command"] == "PRIVMSG":
                archived[record["tags"]["msgid"]] = record
    assert len(archived) == len(privmsgs)
    for m in privmsgs:
        assert m.tags is not None
        record = archived[m.tags["msgid"]]
        assert record["time"] == ircv3_server_time(m.tags), (record, m.tags)
        assert record["time_range"] == 0
        assert record["params"][1] == m.params[1]  # verbatim: the run of two spaces is kept
