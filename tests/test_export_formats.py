"""export's renderers: transcript lines for each kind of record, IRC lines that parse back to the
record's fields, and no record that passes the schema can make either raise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from export.render import Renderer, irc_line, text_line
from formats.irc import parse_compat
from tests.strategies import archive_records, records_in_minute

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

T = 1700000012.345  # 22:13:32.345 UTC


def rec(
    command: str,
    params: list[str],
    tags: dict[str, Any] | None = None,
    *,
    nick: str | None = None,
    time_range: float = 0,
) -> dict[str, Any]:
    return {
        "command": command,
        "params": params,
        "tags": tags,
        "sender": nick or "tmi.twitch.tv",
        "user": nick,
        "host": f"{nick}.tmi.twitch.tv" if nick else None,
        "receivers": {"h.s.0": T},
        "time": T,
        "time_range": time_range,
    }


@pytest.mark.parametrize(
    ("record", "line"),
    [
        (rec("PRIVMSG", ["#c", "hello"], {"display-name": "Alice"}, nick="alice"), "[22:13:32] Alice: hello"),
        (rec("PRIVMSG", ["#c", "hello"], None, nick="alice"), "[22:13:32] alice: hello"),
        (
            rec("PRIVMSG", ["#c", "\x01ACTION waves\x01"], {"display-name": "Alice"}, nick="alice"),
            "[22:13:32] * Alice waves",
        ),
        (rec("PRIVMSG", ["#c", "bell\x07 and\nnewline"], None, nick="x"), "[22:13:32] x: bell\\x07 and\\x0anewline"),
        (
            rec("USERNOTICE", ["#c"], {"system-msg": "5 raiders from R have joined!", "login": "r"}),
            "[22:13:32] ** 5 raiders from R have joined!",
        ),
        (rec("USERNOTICE", ["#c", "hi"], {"msg-id": "sub", "login": "bob"}), "[22:13:32] ** sub | bob: hi"),
        (rec("CLEARCHAT", ["#c", "bob"], {"ban-duration": "60"}), "[22:13:32] -- bob was timed out for 60 s"),
        (rec("CLEARCHAT", ["#c", "bob"], {}), "[22:13:32] -- bob was banned"),
        (rec("CLEARCHAT", ["#c"], None), "[22:13:32] -- chat was cleared by a moderator"),
        (rec("CLEARMSG", ["#c", "oops"], {"login": "bob"}), "[22:13:32] -- a message from bob was deleted: oops"),
        (rec("JOIN", ["#c"], nick="lurker", time_range=60), "[~22:13:32] -> lurker joined"),
        (rec("PART", ["#c"], nick="lurker", time_range=55), "[~22:13:32] <- lurker left"),
        (rec("HOSTTARGET", ["#c", "other 12"], time_range=10), "[~22:13:32] -- now hosting other"),
        (rec("HOSTTARGET", ["#c", "- 0"], time_range=10), "[~22:13:32] -- stopped hosting"),
        (rec("NOTICE", ["#c", "slow"], {"msg-id": "slow_on"}, time_range=10), "[~22:13:32] -- notice: slow"),
        (rec("PING", ["x"]), "[22:13:32] -- PING tmi.twitch.tv x"),
        (rec("USERSTATE", ["#c"], {"display-name": "Me"}, time_range=10), "[~22:13:32] -- user state of Me"),
        (
            rec("PRIVMSG", ["#c", "hi"], {"display-name": "\u7530\u4e2d"}, nick="tanaka"),
            "[22:13:32] \u7530\u4e2d (tanaka): hi",
        ),
    ],
)
def test_transcript_lines(record: dict[str, Any], line: str) -> None:
    assert text_line(record) == line


def test_transcript_day_headers() -> None:
    r = Renderer("text")
    first = rec("PRIVMSG", ["#c", "a"], nick="a")
    other = dict(first, time=T + 1)
    later = dict(first, time=T + 86400)
    # a record is written once the next one's time shows nothing more can tie with it
    assert r.begin() + r.add(first) == ""
    assert r.add(other) == "--- 2023-11-14 ---\n[22:13:32] a: a\n"
    assert r.add(later) == "[22:13:33] a: a\n"
    assert r.end().startswith("--- 2023-11-15 ---\n[22:13:32] a: a\n")


def test_transcript_writes_one_millisecond_in_the_order_it_arrived() -> None:
    """The archive orders records of one server time by their bytes; which reached a receiver
    first is in their receive times, and the transcript follows those (issue 23)."""
    late = dict(rec("PRIVMSG", ["#c", "first said"], nick="zed"), receivers={"h.s.0": T + 0.2})
    early = dict(rec("PRIVMSG", ["#c", "said second"], nick="amy"), receivers={"h.s.0": T + 0.3, "h.s.1": T + 0.1})
    unknown = dict(rec("PRIVMSG", ["#c", "no receive time"], nick="bob"), receivers={})
    r = Renderer("text")
    text = r.begin() + "".join(r.add(x) for x in [early, unknown, late]) + r.end()
    said = [line.split("] ", 1)[1] for line in text.splitlines() if line.startswith("[")]
    assert said == ["amy: said second", "zed: first said", "bob: no receive time"]
    # a record of another time closes the tie: the order within it is kept, the times are not mixed
    r = Renderer("text")
    after = dict(late, time=T + 1, receivers={"h.s.0": T - 5})
    text = r.begin() + "".join(r.add(x) for x in [late, early, after]) + r.end()
    said = [line.split("] ", 1)[1] for line in text.splitlines() if line.startswith("[")]
    assert said == ["amy: said second", "zed: first said", "zed: first said"]


def test_json_renderer_makes_an_array() -> None:
    r = Renderer("json")
    records = [rec("PRIVMSG", ["#c", "\u00e9"], nick="a"), rec("JOIN", ["#c"], nick="b", time_range=60)]
    text = r.begin() + "".join(r.add(x) for x in records) + r.end()
    assert json.loads(text) == records
    empty = Renderer("json")
    assert json.loads(empty.begin() + empty.end()) == []


@given(records_in_minute())
def test_irc_lines_parse_back_to_the_records_fields(records: list[dict[str, Any]]) -> None:
    for record in records:
        if (
            any(c in record["params"][-1] for c in "\r\n\x00")
            or record["params"][-1] != " ".join(record["params"][-1].split(" ")).strip()
            or not record["params"][-1].strip()
        ):
            continue  # girc's reading collapses spaces: only lines it would keep as is compare
        command, params, sender, user, host, tags = parse_compat(irc_line(record))
        assert (command, params, sender, user, host, tags) == (
            record["command"],
            record["params"],
            record["sender"],
            record["user"],
            record["host"],
            record["tags"],
        ), irc_line(record)


@given(archive_records())
def test_renderers_never_raise_on_any_record(record: dict[str, Any]) -> None:
    line = text_line(record)
    assert "\n" not in line and "\r" not in line
    raw = irc_line(record)
    assert not set(raw) & {"\r", "\n", "\x00"}
    for fmt in ("json", "jsonl", "text", "irc"):
        r = Renderer(fmt)
        r.begin()
        r.add(record)
        r.end()


def test_an_export_of_centuries_reads_only_the_hours_that_exist(tmp_path: Path) -> None:
    """The same records as the export of the day they are in, without a chunk per ten minutes of
    the eight thousand years in between."""
    from typer.testing import CliRunner

    from chat_archiver.cli import app
    from fixtures.export import make_archive

    make_archive.build(str(tmp_path / "a"))
    outs = []
    for since, until in (("2023-11-14T00:00Z", "2023-11-16T00:00Z"), ("2000-01-01T00:00Z", "9999-12-30T00:00Z")):
        out = tmp_path / f"{since[:4]}.jsonl"
        args = ["export", str(tmp_path / "a"), "desertbus", "--since", since, "--until", until, "--format", "jsonl"]
        result = CliRunner().invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") > 5
