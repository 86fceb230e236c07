"""The recorder's pure core: channel names, redaction, rotation, backoff, join pacing, the session."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from formats.irc import parse
from formats.rawcodec import DIALECT_IRCV3, DIALECT_TWITCH, SEND, Event, encode_event
from formats.rawfile import find_raw_files, group_streams, iter_stream_events
from recorder.channels import normalise_channel, normalise_channels
from recorder.errors import UsageError
from recorder.limits import Backoff, JoinLimiter
from recorder.rawwriter import RawWriter
from recorder.session import (
    HANDOVER_TOKEN,
    Close,
    Fail,
    HandedOver,
    Joined,
    Ready,
    Reconnect,
    Send,
    Session,
    SessionConfig,
    Stalled,
    Warn,
    Welcomed,
    anonymous_nick,
)
from recorder.wire import peek, split_frame
from tests.strategies import watchdog_steps

HOUR_US = 3_600_000_000
CHAT = "@id=m-1;tmi-sent-ts=1 :someone!someone@someone.tmi.twitch.tv PRIVMSG #alpha :hello"


def receive(session: Session, line: str, now: float) -> Sequence[object]:
    """A line from the server, peeked as the connection peeks it (recorder/connection.py)."""
    command, channel = peek(line)
    return session.receive_peeked(line, command, channel, now)


BASE_US = 1_764_320_400_000_000  # 2025-11-28T09:00:00Z, an hour boundary

# -- strategies (recorder-specific; the shared ones live in tests/strategies.py) -------------------
twitch_channel = st.from_regex(r"[A-Za-z0-9_]{1,25}", fullmatch=True)
token = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0 "), min_size=6, max_size=40).map(
    lambda t: "tok" + t
)
line_char = st.characters(codec="utf-8", exclude_characters="\r\n\0")
word = st.characters(codec="utf-8", exclude_characters="\r\n\0 ")
tag_key = st.from_regex(r"[a-z-]{1,8}", fullmatch=True)
line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), min_size=1, max_size=40)


# -- channel names ---------------------------------------------------------------------------------


@given(twitch_channel, st.booleans())
def test_plain_channel_names_normalise_to_lowercase_without_hash(name: str, hashed: bool) -> None:
    given_name = f"#{name}" if hashed else name
    result = normalise_channel(given_name)
    assert result == name.lower(), (result, name)
    assert normalise_channel(result) == result  # idempotent


@given(st.text(max_size=60), st.sampled_from([DIALECT_TWITCH, DIALECT_IRCV3]))
@example("\u212a", DIALECT_TWITCH)  # KELVIN SIGN lowercases to ASCII "k": refused, not folded
@example("..", DIALECT_IRCV3)
@example("a/b", DIALECT_IRCV3)
def test_any_text_is_either_refused_or_a_safe_name(name: str, dialect: str) -> None:
    try:
        result = normalise_channel(name, dialect)
    except UsageError as e:
        assert "not a plain channel name" in str(e)
        return
    assert re.fullmatch(r"[a-z0-9_][a-z0-9_.-]*", result), result
    assert len(result) <= 50 and result not in (".", "..") and "/" not in result


def test_duplicate_and_empty_channel_lists() -> None:
    assert normalise_channels(["#Alpha", "alpha", "beta"]) == ["alpha", "beta"]
    with pytest.raises(UsageError):
        normalise_channels([])
    with pytest.raises(UsageError):
        normalise_channel("a-b", DIALECT_TWITCH)
    assert normalise_channel("#a-b.c", DIALECT_IRCV3) == "a-b.c"


# -- redaction -----------------------------------------------------------------------------------


@given(
    token,
    st.sampled_from(
        [
            "PASS {t}",
            "pass {t}",
            "  PASS {t}",
            "PASS :{t}",
            "@label=x PASS {t}",
            "AUTHENTICATE {t}",
            "OPER admin {t}",
            "PASS oauth:{t}",
        ]
    ),
)
def test_credentials_never_reach_the_encoded_event(secret: str, template: str) -> None:
    line = template.format(t=secret)
    data = encode_event(Event(SEND, 1, BASE_US, 0, line))
    assert secret.encode() not in data
    assert secret not in data.decode()  # nor in any escaped form orjson could choose


@given(secret=token)
def test_the_sessions_own_login_lines_are_redacted_on_disk(
    secret: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    out = tmp_path_factory.mktemp("redact")
    for dialect in (DIALECT_TWITCH, DIALECT_IRCV3):
        session = Session(SessionConfig(dialect, ("alpha",), "archivist", secret), 0.0)
        assert secret not in repr(session.config)
        writer = RawWriter(str(out), "r", "abcde", "h", "test")
        for action in session.start():
            assert isinstance(action, Send)
            writer.write_send(0, action.line, BASE_US)
        writer.close()
    for path in Path(out).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes()


# -- rotation --------------------------------------------------------------------------------------


@given(steps=st.lists(st.integers(0, 2 * HOUR_US // 3), min_size=1, max_size=30), offset_s=st.integers(-3, 3))
def test_rotation_puts_each_event_in_its_hour_and_reads_back_in_order(
    steps: list[int],
    offset_s: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    out = tmp_path_factory.mktemp("rot")
    writer = RawWriter(str(out), "r", "abcde", "h", "test")
    at = BASE_US - HOUR_US + offset_s * 1_000_000
    times = []
    for step in steps:
        at += step
        times.append(at)
        writer.write_recv(0, f"line {len(times)}", at)
    writer.close()
    problems: list[object] = []
    [stream] = group_streams(find_raw_files([str(out)]), problems)
    events = list(iter_stream_events(stream, problems))
    assert problems == []
    assert [e.at for e in events] == times
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    hours = sorted({t // HOUR_US for t in times})
    assert len(stream.files) == len(hours)  # one file per hour that had events, no more
    for (_seq, path), hour in zip(stream.files, hours, strict=True):
        from datetime import UTC, datetime

        assert Path(path).name.startswith(datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H"))


@given(steps=st.lists(st.integers(-HOUR_US, HOUR_US), min_size=1, max_size=30))
def test_a_wall_clock_that_steps_back_never_reopens_an_old_file(
    steps: list[int],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    out = tmp_path_factory.mktemp("back")
    writer = RawWriter(str(out), "r", "abcde", "h", "test")
    at = BASE_US
    for i, step in enumerate(steps):
        at = max(0, at + step)
        writer.write_recv(0, f"line {i}", at)
    writer.close()
    problems: list[object] = []
    streams = group_streams(find_raw_files([str(out)]), problems)
    events = [e for s in streams for e in iter_stream_events(s, problems)]
    assert problems == []  # in particular no "unexpected second header"
    assert [e.text for e in events] == [f"line {i}" for i in range(len(steps))]


def test_writing_after_close_is_refused_rather_than_starting_a_new_file(tmp_path: Path) -> None:
    writer = RawWriter(str(tmp_path), "r", "abcde", "h", "test")
    writer.write_recv(0, "x", BASE_US)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write_recv(0, "y", BASE_US + HOUR_US)
    assert len(find_raw_files([str(tmp_path)])) == 1


# -- backoff and join pacing -----------------------------------------------------------------------


@given(
    st.floats(0.01, 10),
    st.floats(0, 1000),
    st.integers(1, 2000),
    st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=50),
)
def test_backoff_delays_stay_within_half_and_whole_ceiling_and_under_the_cap(
    base: float,
    extra: float,
    failures: int,
    rands: list[float],
) -> None:
    cap = base + extra
    it = iter(rands * (failures // len(rands) + 1))
    backoff = Backoff(base, cap, rand=lambda: next(it))
    previous_ceiling = 0.0
    for n in range(1, min(failures, 200) + 1):
        delay = backoff.next_delay()
        ceiling = backoff.ceiling(n)
        assert ceiling / 2 <= delay <= ceiling <= cap, (n, delay, ceiling)
        assert ceiling >= previous_ceiling
        previous_ceiling = ceiling
    backoff.reset()
    assert backoff.next_delay() <= base
    assert Backoff(base, cap).ceiling(failures + 10_000) == cap


@given(st.lists(st.floats(0, 0.7), min_size=1, max_size=120), st.integers(1, 25), st.floats(0.5, 20))
def test_join_limiter_never_lets_more_than_limit_into_any_window(gaps: list[float], limit: int, window: float) -> None:
    limiter = JoinLimiter(limit, window)
    now = 0.0
    taken: list[float] = []
    for gap in gaps:
        now += gap
        wait = limiter.wait(now)
        assert limiter.take(now) == (wait == 0)
        if wait == 0:
            taken.append(now)
    for i, t in enumerate(taken):
        assert sum(1 for u in taken[i:] if u < t + window) <= limit


# -- frames and peeking ----------------------------------------------------------------------------


@given(st.lists(line_text, max_size=8), st.booleans())
@example(["a\u2028b", "c\x85d", "e\x1cf"], True)  # str.splitlines() would split these
def test_split_frame_gives_back_the_lines(lines: list[str], trailing: bool) -> None:
    lines = [line for line in lines if line.strip("\r")]
    assume(all(not line.endswith("\r") for line in lines))
    text = "\r\n".join(lines) + ("\r\n" if trailing and lines else "")
    assert split_frame(text) == lines


@given(
    st.one_of(st.none(), st.dictionaries(tag_key, st.text(line_char, max_size=8), max_size=3)),
    st.one_of(st.none(), st.from_regex(r"[a-z]{1,8}(![a-z]{1,8}@[a-z.]{1,12})?", fullmatch=True)),
    st.sampled_from(["PRIVMSG", "privmsg", "JOIN", "PING", "001", "366", "ROOMSTATE"]),
    st.lists(
        st.one_of(st.text(word, min_size=1, max_size=8), st.text(word, max_size=8).map(lambda w: "#" + w)), max_size=3
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=12),
)
def test_peek_agrees_with_the_full_parser(
    tags: dict[str, str] | None,
    source: str | None,
    command: str,
    middle: list[str],
    trailing: str,
) -> None:
    middle = [m for m in middle if not m.startswith(":")]
    parts = []
    if tags is not None:
        parts.append("@" + ";".join(f"{k}={v.replace(' ', '').replace(';', '')}" for k, v in tags.items()))
        assume(parts[0] != "@")
    if source is not None:
        parts.append(":" + source)
    parts += [command, *middle, ":" + trailing]
    line = " ".join(parts)
    message = parse(line)
    got_command, channel = peek(line)
    assert got_command == message.command.upper()
    first = middle[0] if middle else ""  # a trailing parameter never names the channel for peek
    assert channel == (first[1:] if first.startswith("#") else "")
    assert not middle or message.params[0] == middle[0]


# -- the session -----------------------------------------------------------------------------------


def _sends(actions: object) -> list[str]:
    return [a.line for a in actions if isinstance(a, Send)]  # type: ignore[attr-defined]


def _config(dialect: str = DIALECT_TWITCH, **kw: object) -> SessionConfig:
    return SessionConfig(dialect, ("alpha", "beta"), "justinfan123_15", **kw)  # type: ignore[arg-type]


def test_twitch_handshake_is_anonymous_unless_a_token_is_given() -> None:
    assert _sends(Session(_config(), 0).start()) == [
        "CAP REQ :twitch.tv/tags twitch.tv/commands twitch.tv/membership",
        "NICK justinfan123_15",
    ]
    assert _sends(Session(_config(token="abc"), 0).start())[1] == "PASS oauth:abc"
    assert _sends(Session(_config(token="oauth:abc"), 0).start())[1] == "PASS oauth:abc"
    assert re.fullmatch(r"justinfan\d{5}", anonymous_nick())


def test_no_join_before_the_welcome_then_joins_and_readiness() -> None:
    s = Session(_config(), 0)
    s.start()
    assert _sends(s.tick(1)) == []
    actions = receive(s, ":tmi.twitch.tv 001 justinfan123_15 :Welcome, GLHF!", 2)
    assert Welcomed("justinfan123_15") in actions
    assert _sends(actions) == ["JOIN #alpha", "JOIN #beta"]
    assert receive(s, ":justinfan123_15!justinfan123_15@justinfan123_15.tmi.twitch.tv JOIN #alpha", 3) == (
        Joined("alpha"),
    )
    assert receive(s, ":tmi.twitch.tv 366 justinfan123_15 #alpha :End", 3) == ()  # Twitch waits for ROOMSTATE
    assert receive(s, "@room-id=1 :tmi.twitch.tv ROOMSTATE #alpha", 3) == (Ready("alpha"),)
    assert receive(s, "@room-id=1;slow=10 :tmi.twitch.tv ROOMSTATE #alpha", 4) == ()  # only the first counts
    assert receive(s, ":someone!someone@someone.tmi.twitch.tv JOIN #alpha", 4) == ()


def test_ping_is_answered_with_its_argument_and_reconnect_is_reported() -> None:
    s = Session(_config(), 0)
    assert receive(s, "PING :tmi.twitch.tv", 1) == (Send("PONG :tmi.twitch.tv"),)
    assert receive(s, "PING x", 1) == (Send("PONG :x"),)
    assert receive(s, ":tmi.twitch.tv RECONNECT", 1) == (Reconnect(),)


def test_watchdog_pings_after_silence_then_reports_a_stall_once_and_keeps_the_connection() -> None:
    s = Session(_config(ping_after=60, ping_timeout=30), 0)
    receive(s, ":tmi.twitch.tv 001 justinfan123_15 :Welcome", 0)
    s.tick(0)
    assert s.next_deadline(10) == 60
    assert _sends(s.tick(60)) == ["PING :chat-archiver"]
    assert s.next_deadline(61) == 90
    receive(s, ":tmi.twitch.tv PONG tmi.twitch.tv :chat-archiver", 70)  # any line is proof of life
    assert s.tick(95) == []
    assert _sends(s.tick(130)) == ["PING :chat-archiver"]
    assert s.tick(160) == [Stalled("no answer to our PING within 30 s")]
    # a stalled connection is not closed (its backlog may still come), and is not pinged again
    assert s.tick(1000) == []
    assert receive(s, ":tmi.twitch.tv PONG tmi.twitch.tv :chat-archiver", 1001) == ()
    assert s.tick(5000) == []


def test_handover_asks_for_a_last_pong_and_that_pong_hands_over() -> None:
    s = Session(_config(ping_after=3, ping_timeout=3, silence_limit=30), 0)
    receive(s, ":tmi.twitch.tv 001 justinfan123_15 :Welcome", 0)
    s.tick(3)
    assert s.tick(6) == [Stalled("no answer to our PING within 3 s")]
    assert _sends(s.handover(7)) == [f"PING :{HANDOVER_TOKEN}"]
    assert s.handover(8) == []  # asked once
    # the stall clears: the backlog (and the old watchdog PONG) are just lines
    assert receive(s, ":tmi.twitch.tv PONG tmi.twitch.tv :chat-archiver", 9) == ()
    assert receive(s, CHAT, 9) == ()
    assert receive(s, f":tmi.twitch.tv PONG tmi.twitch.tv :{HANDOVER_TOKEN}", 9) == (HandedOver(),)


def test_a_connection_silent_past_the_limit_after_the_handover_is_closed() -> None:
    s = Session(_config(ping_after=3, ping_timeout=3, silence_limit=30), 0)
    receive(s, ":tmi.twitch.tv 001 justinfan123_15 :Welcome", 0)
    s.tick(3)
    s.tick(6)
    s.handover(10)
    assert s.next_deadline(10) == 30
    assert s.tick(29) == []
    assert s.tick(30) == [Close("closed by us after 30 s of silence; a newer connection records")]


@given(st.lists(st.floats(0.01, 2.99), min_size=1, max_size=50))
def test_a_server_that_talks_more_often_than_ping_after_is_never_pinged_nor_stalled(gaps: list[float]) -> None:
    s = Session(_config(ping_after=3, ping_timeout=3), 0)
    receive(s, ":tmi.twitch.tv 001 justinfan123_15 :Welcome", 0)
    s.tick(0)
    now = 0.0
    for gap in gaps:
        # the shell ticks whenever a deadline passes; here at every deadline before the next line
        while s.next_deadline(now) <= now + gap:
            due = s.next_deadline(now)
            assert not any(isinstance(a, Send | Stalled) for a in s.tick(due)), (now, due)
        now += gap
        receive(s, CHAT, now)


@given(watchdog_steps)
def test_the_watchdog_stalls_at_most_once_and_only_a_handover_ends_a_stalled_connection(
    steps: list[tuple[str, float]],
) -> None:
    c = _config(ping_after=3, ping_timeout=3, silence_limit=30)
    s = Session(c, 0)
    receive(s, ":tmi.twitch.tv 001 justinfan123_15 :Welcome", 0)
    now, last_line, handover_at = 0.0, 0.0, None
    stalls = 0
    stalled_before = False
    for what, gap in steps:
        now += gap
        if what == "tick":
            actions: Sequence[object] = s.tick(now)
        elif what == "handover":
            actions = s.handover(now)
            handover_at = now if handover_at is None else handover_at
        else:
            token = HANDOVER_TOKEN if what == "handover pong" else "chat-archiver"
            line = CHAT if what == "line" else f":tmi.twitch.tv PONG tmi.twitch.tv :{token}"
            actions = receive(s, line, now)
            last_line = now
        stalls += sum(isinstance(a, Stalled) for a in actions)
        for a in actions:
            if isinstance(a, HandedOver):
                assert what == "handover pong" and handover_at is not None, (what, handover_at)
            if isinstance(a, Close):
                assert handover_at is not None and now - last_line >= c.silence_limit, (now, last_line)
            if isinstance(a, Send) and a.line.startswith("PING") and (handover_at is not None or stalled_before):
                assert a.line == f"PING :{HANDOVER_TOKEN}" and what == "handover"  # no watchdog PING any more
        stalled_before = stalls > 0
        assert stalls <= 1


def test_no_welcome_in_time_closes() -> None:
    s = Session(_config(register_timeout=30, ping_after=1000), 0)
    assert s.tick(29) == []
    assert s.tick(30) == [Close("no welcome from the server within 30 s")]


def test_refused_logins_fail_and_quote_the_server() -> None:
    s = Session(_config(token="secret"), 0)
    [fail] = receive(s, ":tmi.twitch.tv NOTICE * :Login authentication failed", 1)
    assert isinstance(fail, Fail) and "Login authentication failed" in fail.reason and "secret" not in fail.reason
    s = Session(_config(DIALECT_IRCV3, token="secret"), 0)
    [fail] = receive(s, ":irc.example 464 * :Password incorrect", 1)
    assert isinstance(fail, Fail)
    receive(s, ":irc.example 001 justinfan123_15 :Welcome", 2)
    assert receive(s, ":tmi.twitch.tv NOTICE * :some notice", 3) == ()


def test_ircv3_negotiates_only_offered_caps_and_survives_a_nak() -> None:
    s = Session(_config(DIALECT_IRCV3), 0)
    assert _sends(s.start()) == [
        "CAP LS 302",
        "NICK justinfan123_15",
        "USER justinfan123_15 0 * :chat-archiver recorder",
    ]
    assert receive(s, ":irc.example CAP * LS * :multi-prefix sasl=PLAIN", 1) == ()
    offered = receive(s, ":irc.example CAP * LS :server-time message-tags", 1)
    assert _sends(offered) == ["CAP REQ :server-time message-tags"]
    actions = receive(s, ":irc.example CAP * NAK :server-time message-tags", 1)
    assert _sends(actions) == ["CAP END"] and any(isinstance(a, Warn) for a in actions)
    s2 = Session(_config(DIALECT_IRCV3), 0)
    assert _sends(receive(s2, ":irc.example CAP * LS :server-time", 1)) == ["CAP REQ :server-time"]
    assert _sends(receive(s2, ":irc.example CAP * ACK :server-time", 1)) == ["CAP END"]
    s3 = Session(_config(DIALECT_IRCV3), 0)
    assert _sends(receive(s3, ":irc.example CAP * LS :away-notify", 1)) == ["CAP END"]
    actions = receive(s3, ":irc.example 433 * justinfan123_15 :Nickname is already in use", 1)
    assert _sends(actions) == ["NICK justinfan123_1"]
    assert _sends(receive(s3, ":irc.example 001 justinfan123_1 :Welcome", 2)) == ["JOIN #alpha", "JOIN #beta"]
    receive(s3, ":justinfan123_1!u@h JOIN :#alpha", 3)
    assert receive(s3, "@time=2026-01-01T00:00:00.000Z :irc.example 366 justinfan123_1 #alpha :End", 3) == (
        Ready("alpha"),
    )


def test_kicked_or_refused_channels_are_joined_again_later() -> None:
    s = Session(_config(DIALECT_IRCV3, rejoin_after=30, ping_after=1000), 0)
    receive(s, ":irc.example 001 justinfan123_15 :Welcome", 0)
    receive(s, ":justinfan123_15!u@h JOIN #alpha", 1)
    actions = receive(s, ":op!u@h KICK #alpha justinfan123_15 :bye", 2)
    assert any(isinstance(a, Warn) for a in actions)
    assert _sends(s.tick(10)) == []
    assert _sends(s.tick(32)) == ["JOIN #alpha"]
    receive(s, ":irc.example 474 justinfan123_15 #beta :Cannot join channel (+b)", 33)
    assert _sends(s.tick(63)) == ["JOIN #beta"]


@given(st.text(max_size=200), st.sampled_from([DIALECT_TWITCH, DIALECT_IRCV3]))
@example(":x 001", DIALECT_TWITCH)
@example("CAP", DIALECT_IRCV3)
@example(":a!b@c KICK #alpha", DIALECT_IRCV3)
def test_any_line_is_taken_without_an_exception(line: str, dialect: str) -> None:
    s = Session(_config(dialect), 0)
    s.start()
    receive(s, line, 1)
    receive(s, ":irc.example 001 justinfan123_15 :Welcome", 2)
    receive(s, line, 3)
    s.tick(4)


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("vm", "vm"),
        ("my host.local!", "my-host.local-"),
        (".hidden", "hidden"),
        ("", "recorder"),
        ("...", "recorder"),
        ("wörk", "w-rk"),
    ],
)
def test_the_default_recorder_name_is_the_host_name_made_safe(
    host: str,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from formats.rawcodec import check_recorder_name
    from recorder import recorder

    monkeypatch.setattr(recorder.socket, "gethostname", lambda: host)
    assert recorder.default_name() == name
    assert check_recorder_name(recorder.default_name()) == name
    slugs = {recorder.new_slug() for _ in range(20)}
    assert len(slugs) > 1 and all(re.fullmatch(r"[A-Za-z0-9]{5}", s) for s in slugs)
