"""Hypothesis strategies shared by the whole suite (one file, as attrs does). Extend, don't copy.

Drawing is most of what a property test costs, and CI draws twelve times as many examples as `dev`:
build a strategy once, at module level, not inside a composite's draw (where it is built and
validated again on every draw; `_pick` chooses among options made during a draw), and prefer
`st.text` over an alphabet to `st.from_regex` for simple languages (`_word`). Drawing lists of
`archive_records` this way costs about a third of what it did.
"""

from __future__ import annotations

import string
import time
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

from hypothesis import strategies as st

from formats.rawcodec import CLOSE, OPEN, RECV, SEND, TICK, Event
from media.thirdparty import Emote, Snapshot

# Text that exercises the canonical encoder: ASCII, Latin-1, BMP, astral (emoji), controls, DEL.
any_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


def _word(first: str, rest: str, max_rest: int) -> Any:
    """Strings of the regular language `[first][rest]{0,max_rest}`, drawn without a regex.

    Hypothesis's `from_regex` costs about twice as much a draw, and these are drawn for every record.
    """
    return st.builds(str.__add__, st.sampled_from(first), st.text(rest, max_size=max_rest))


def _pick(draw: Any, options: list[Any]) -> Any:
    """One of `options`, as `draw(st.sampled_from(options))` picks it, for options built during a draw.

    Indexing with a cached `st.integers` strategy skips building and validating a new strategy per draw.
    """
    return options[draw(st.integers(0, len(options) - 1))]


_LOWER, _DIGITS = string.ascii_lowercase, string.digits
nick = _word(_LOWER, _LOWER + _DIGITS + "_", 11)  # [a-z][a-z0-9_]{0,11}
# host[1-4]\.[A-Za-z0-9]{5}\.[0-3]
receiver = st.builds(
    "host{}.{}.{}".format,
    st.integers(1, 4),
    st.text(string.ascii_letters + _DIGITS, min_size=5, max_size=5),
    st.integers(0, 3),
)

# Times as upstream produces them: server ms / 1000, or receive times in microseconds.
server_time = st.integers(1_700_000_000_000, 1_700_000_600_000).map(lambda ms: ms / 1000)
receive_time = st.integers(1_700_000_000_000_000, 1_700_000_600_000_000).map(lambda us: us / 1_000_000)
any_number = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), st.just(0), st.just(0.0)
)

tag_value = st.one_of(any_text, st.just(True))
tag_key = _word(_LOWER, _LOWER + _DIGITS + "-", 12)  # [a-z][a-z0-9-]{0,12}
tags = st.one_of(st.none(), st.dictionaries(tag_key, tag_value))


# archive_records' parts, built once: a strategy built inside a draw is validated again on every draw.
_commands = st.sampled_from(["PRIVMSG", "JOIN", "PART", "NOTICE", "CLEARCHAT", "USERNOTICE"])
_params = st.lists(any_text, max_size=3)
_maybe_nick = st.one_of(st.none(), nick)
_maybe_host = st.one_of(st.none(), any_text)
_any_time = st.one_of(server_time, st.integers(0, 60), any_number)
_any_receivers = st.dictionaries(receiver, st.one_of(receive_time, _any_time), min_size=1, max_size=3)


@st.composite
def archive_records(draw: Any, numbers: Any = None) -> dict[str, Any]:
    """Any record with the archive schema (ARCHIVE_FORMAT.md section 3)."""
    number, receivers = _any_time, _any_receivers
    if numbers is not None:
        number = numbers
        receivers = st.dictionaries(receiver, st.one_of(receive_time, number), min_size=1, max_size=3)
    return {
        "command": draw(_commands),
        "params": draw(_params),
        "sender": draw(_maybe_nick),
        "user": draw(_maybe_nick),
        "host": draw(_maybe_host),
        "tags": draw(tags),
        "receivers": draw(receivers),
        "time": draw(number),
        "time_range": draw(number),
    }


# --- merge: realistic multi-receiver streams, including what breaks naive merges ---------
# A "world" is a list of observations: single-receiver records. Archives are drawn from it, each
# holding some observations (some twice), some already merged. Times stay near MERGE_MINUTE0.

MERGE_MINUTE0 = 1_700_000_040  # a minute boundary (divisible by 60)
MERGE_RECEIVERS = ("host1.Ab3dE.0", "host2.Zz9xY.0", "host3.Qq1wE.1", "host4.Mm5nB.0")
_merge_nick = st.sampled_from(["alice", "bob", "carol"])
_merge_text = st.sampled_from(["hi", "h\u00e9llo \U0001f389", "Kappa", ""])


def _merge_record(
    command: str, user: str | None, params: list[str], tag_map: dict[str, Any] | None, *obs: Any
) -> dict[str, Any]:
    receiver_name, received, time, time_range = obs
    return {
        "command": command,
        "params": params,
        "tags": tag_map,
        "sender": user or "tmi.twitch.tv",
        "user": user,
        "host": f"{user}.tmi.twitch.tv" if user else None,
        "receivers": {receiver_name: received},
        "time": time,
        "time_range": time_range,
    }


_obs_kinds = st.sampled_from(["privmsg", "msgid", "clearchat", "join", "chain", "notice"])
_obs_seen = st.lists(st.sampled_from(MERGE_RECEIVERS), min_size=1, max_size=5)
_obs_zeros = st.sampled_from([0, 0, 0.0])
_obs_ids = st.sampled_from(["m1", "m2", "m3"])
_obs_msgids = st.sampled_from(["x1", "x2"])
_obs_widths = st.sampled_from([10, 15, 10.0, 12.5])
_obs_joins = st.sampled_from(["JOIN", "PART"])
_obs_tens = st.sampled_from([10, 10.0])
_obs_bases = st.sampled_from([10, 10.5])
_obs_shapes = st.sampled_from([[(0, 0), (0, 1), (1, 1)], [(0, 1), (1, 2)], [(0, 0.0), (0, 1.0)]])
_obs_orders = st.permutations(MERGE_RECEIVERS)


def _delay(draw: Any) -> float:
    return draw(st.integers(1_000, 900_000)) / 1_000_000


@st.composite
def merge_observations(draw: Any, cross_minute: bool = True) -> list[dict[str, Any]]:
    """Single-receiver records of a realistic stream spanning three minutes.

    Kinds: Twitch PRIVMSG with `id` and exact time seen by up to 4 receivers (duplicate deliveries,
    id conflicts via a small id alphabet, `0` vs `0.0` ranges); IRCv3 `msgid` with per-receiver
    ranges (ids shared across minutes and ranges across a boundary only if `cross_minute`);
    CLEARCHAT (exact, no id); JOIN/PART estimated per receiver, one receiver seeing equal content
    twice; chained ([0,0],[0,1],[1,1]) and touching ([0,1],[1,2]) ranges of one JOIN over distinct receivers.
    """
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(_obs_kinds)
        minute = MERGE_MINUTE0 + 60 * draw(st.integers(0, 2))
        # Without cross_minute, an id belongs to one minute (as Twitch ids carry the exact server time).
        suffix = "" if cross_minute else f"@{minute}"
        seen = draw(_obs_seen)  # repeats = re-deliveries
        user = draw(_merge_nick)
        if kind in ("privmsg", "clearchat"):
            ms = minute * 1000 + draw(st.integers(0, 59_999))
            t = ms / 1000
            zero: float = draw(_obs_zeros)
            if kind == "privmsg":
                mid = draw(_obs_ids) + suffix
                tag_map: dict[str, Any] = {"id": mid, "tmi-sent-ts": str(ms)}
                params = ["#chan", draw(_merge_text)]
            else:
                tag_map, params = {"room-id": "1", "tmi-sent-ts": str(ms)}, ["#chan", user]
            for name in seen:
                out.append(
                    _merge_record(
                        kind.upper(),
                        user if kind == "privmsg" else None,
                        params,
                        tag_map,
                        name,
                        t + _delay(draw),
                        t,
                        zero,
                    )
                )
        elif kind == "msgid":
            lo = 5 if cross_minute else 15
            center = minute + draw(st.integers(lo, 45 if not cross_minute else 59)) + draw(st.integers(0, 999)) / 1000
            tag_map = {"msgid": draw(_obs_msgids) + suffix}
            for name in seen:
                start = center - draw(st.integers(0, 9_000)) / 1000
                width = draw(_obs_widths)
                out.append(
                    _merge_record(
                        "PRIVMSG", user, ["#chan", "hey"], tag_map, name, start + 10 + _delay(draw), start, width
                    )
                )
        elif kind in ("join", "notice"):
            for name in seen:
                received = minute + 50 + draw(st.integers(0, 9_999_999)) / 1_000_000
                if kind == "join":
                    out.append(
                        _merge_record(
                            draw(_obs_joins),
                            user,
                            ["#chan"],
                            None,
                            name,
                            received,
                            received - 55,
                            55,
                        )
                    )
                else:
                    out.append(
                        _merge_record(
                            "NOTICE",
                            None,
                            ["#chan", "slow mode"],
                            {"msg-id": "slow_on"},
                            name,
                            received,
                            received - 5,
                            draw(_obs_tens),
                        )
                    )
        else:  # chained or touching ranges of one JOIN, one receiver each (upstream's counterexample)
            base: float = minute + draw(_obs_bases)
            shape = draw(_obs_shapes)
            names = draw(_obs_orders)
            for (a, b), name in zip(shape, names, strict=False):
                out.append(_merge_record("JOIN", user, ["#chan"], None, name, base + 50, base + a, b - a))
    return out


@st.composite
def merge_archives(draw: Any, count: int = 3, cross_minute: bool = True) -> list[list[dict[str, Any]]]:
    """`count` archives (record lists) drawn from one world: observations shared between archives,
    some twice in one archive, some archives already merged (as a replica's files would be)."""
    from merge.core import merge_records

    world = draw(merge_observations(cross_minute=cross_minute))
    archives: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for record in world:
        homes = draw(st.lists(st.integers(0, count - 1), min_size=0, max_size=count + 1))
        for home in homes:
            archives[home].append(record)
    result = []
    for records in archives:
        shuffled = draw(st.permutations(records))
        result.append(merge_records(shuffled) if shuffled and draw(st.booleans()) else shuffled)
    return result


# --- verify and export -------------------------------------------------------------------


_minute_receivers = st.lists(st.sampled_from(MERGE_RECEIVERS), min_size=1, max_size=3, unique=True)
_minute_commands = st.sampled_from(["JOIN", "NOTICE", "ROOMSTATE"])
_minute_ranges = st.sampled_from([10, 15, 55, 60, 3.5])


@st.composite
def records_in_minute(draw: Any, minute: int = MERGE_MINUTE0) -> list[dict[str, Any]]:
    """Well-formed records of one batch minute (what a healthy batch file holds): exact PRIVMSGs
    with unique ids and estimated or delayed id-less records, any text."""
    out = []
    for i in range(draw(st.integers(1, 12))):
        t = minute + draw(st.integers(0, 59_999)) / 1000
        exact = draw(st.booleans())
        names = draw(_minute_receivers)
        out.append(
            {
                "command": "PRIVMSG" if exact else draw(_minute_commands),
                "params": ["#chan", draw(any_text)],
                "sender": draw(nick),
                "user": draw(_maybe_nick),
                "host": None,
                "tags": {"id": f"m{i}", "tmi-sent-ts": str(round(t * 1000))} if exact else None,
                "receivers": {n: t + draw(st.integers(1, 900_000)) / 1_000_000 for n in names},
                "time": t,
                "time_range": 0 if exact else draw(_minute_ranges),
            }
        )
    return out


# Numbers for crowded_contents: a time, its int and float twins, zeros of both signs, and ints at and
# beyond 2**53 (the merge refuses those).
_CROWDED_T0 = MERGE_MINUTE0 + 10
_crowded_time = st.sampled_from(
    [
        _CROWDED_T0,
        float(_CROWDED_T0),
        _CROWDED_T0 + 0.5,
        _CROWDED_T0 + 1,
        _CROWDED_T0 + 1.0,
        _CROWDED_T0 + 2.5,
        _CROWDED_T0 + 56,
    ]
)
_crowded_range = st.sampled_from([0, 0, 0.0, 1, 1.0, 1.5, 2, 55, -1])
_crowded_params = st.sampled_from([["#chan"], ["#chan"], ["#chan2"], ["#chan", "#chan2"], ["#chan,#chan2"], []])
_crowded_odd = st.sampled_from([0, 0.0, -0.0, 2**53, 2**53 + 1, 2**60, 1e300, 5])
_crowded_kinds = st.sampled_from(
    [("JOIN", None), ("JOIN", None), ("PART", None), ("NOTICE", {"msg-id": "slow_on"}), ("PRIVMSG", {"id": "m1"})]
)
_crowded_receivers = st.lists(st.sampled_from(MERGE_RECEIVERS[:3]), min_size=1, max_size=3, unique=True)
_crowded_faults = st.sampled_from(["none"] * 12 + ["time", "range", "receiver"])
_crowded_users = st.sampled_from(["alice", "alice", None, "None"])
_crowded_hosts = st.sampled_from(["alice.tmi.twitch.tv", "alice.tmi.twitch.tv", None])


@st.composite
def crowded_contents(draw: Any) -> list[dict[str, Any]]:
    """Records of a few contents that the merge and the reading fold both work on: many records of
    one content (id-less JOIN/PART, a NOTICE, a message with an id) from a few receivers, with
    equal, overlapping and touching ranges, one (time, range) shared by several records, a
    receiver's own two sightings (one name in two records, or twice with one time), contents that
    differ only in a param, the user or the host (null, "None"), numbers as
    int and float twins, and now and then an odd number: -0.0, 0.0, ints at and beyond 2**53."""
    out = []
    for _ in range(draw(st.integers(1, 10))):
        command, tag_map = draw(_crowded_kinds)
        names = draw(_crowded_receivers)
        time = draw(_crowded_time)
        receivers = {name: _pick(draw, [time + 60, _CROWDED_T0 + 61.25, _CROWDED_T0 + 62]) for name in names}
        time_range = draw(_crowded_range)
        odd = draw(_crowded_faults)
        if odd == "time":
            time = draw(_crowded_odd)
        elif odd == "range":
            time_range = draw(_crowded_odd)
        elif odd == "receiver":
            receivers[names[0]] = draw(_crowded_odd)
        out.append(
            {
                "command": command,
                "params": draw(_crowded_params),
                "sender": "alice",
                "user": draw(_crowded_users),
                "host": draw(_crowded_hosts),
                "tags": tag_map,
                "receivers": receivers,
                "time": time,
                "time_range": time_range,
            }
        )
    return out


# A window [start, end) around the three minutes merge_observations draws from (ends exclusive).
export_windows = st.tuples(
    st.integers(MERGE_MINUTE0 - 90, MERGE_MINUTE0 + 200),
    st.integers(1, 300),
).map(lambda p: (p[0], p[0] + p[1]))


# -- raw event streams (the live follower's engine laws) ----------------------------------------

RAW_T0_US = 1_700_000_000_000_000
_raw_steps = st.sampled_from([0, 1, 200_000, 1_000_000, 7_000_000, 30_000_000, 61_000_000, 130_000_000, -2_000_000])
_raw_dialects = st.sampled_from(["twitch", "ircv3"])


@st.composite
def raw_event_streams(draw: Any) -> list[Any]:
    """One recorder process's events: connections (Twitch or IRCv3) that open, initialise channels,
    receive exact, estimated, delayed and unparsable lines, go quiet with ticks, and close; the
    wall clock mostly advances (sometimes by minutes, sometimes a step back), so batches close."""
    events: list[Any] = []
    at = RAW_T0_US + draw(st.integers(0, 59_999_999))
    open_conns: dict[int, str] = {}
    next_conn = 0
    for seq in range(draw(st.integers(1, 120))):
        at += draw(_raw_steps)
        at = max(at, 0)
        choice = draw(st.integers(0, 9))
        if choice == 0 or not open_conns:
            dialect = draw(_raw_dialects)
            conn = next_conn if draw(st.booleans()) or not open_conns else _pick(draw, sorted(open_conns))
            next_conn = max(next_conn, conn + 1)
            open_conns[conn] = dialect
            events.append(Event(OPEN, seq, at, conn, "wss://sim", dialect))
            continue
        conn = _pick(draw, sorted(open_conns))
        dialect = open_conns[conn]
        if choice == 1:
            del open_conns[conn]
            events.append(Event(CLOSE, seq, at, conn, "dropped"))
        elif choice == 2:
            events.append(Event(TICK, seq, at, _pick(draw, [conn, conn + 7]), ""))
        elif choice == 3:
            events.append(Event(SEND, seq, at, conn, "PONG :tmi.twitch.tv"))
        else:
            chan = _pick(draw, ["#a", "#b"])
            sent_ms = at // 1000 + draw(st.integers(-3000, 500))
            if dialect == "twitch":
                line = _pick(
                    draw,
                    [
                        f"@room-id=1 :tmi.twitch.tv ROOMSTATE {chan}",
                        f"@id=m{seq};tmi-sent-ts={sent_ms} :u!u@u.tmi.twitch.tv PRIVMSG {chan} :hi {seq}",
                        f":u{seq}!u@u.tmi.twitch.tv JOIN {chan}",
                        f"@msg-id=x :tmi.twitch.tv NOTICE {chan} :note {seq}",
                        "@bad tag without a command",
                    ],
                )
            else:
                whole, ms = divmod(sent_ms, 1000)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"
                line = _pick(
                    draw,
                    [
                        f":irc.test 366 me {chan} :End of /NAMES list",
                        f"@msgid=i{seq};time={stamp} :u!u@h PRIVMSG {chan} :hi {seq}",
                        f":u!u@h TOPIC {chan} :topic {seq}",
                    ],
                )
            events.append(Event(RECV, seq, at, conn, line))
    return events


# --- exact text: IRC lines with runs of spaces, and what ARCHIVE_FORMAT.md 3 reads ------

# Surrounding whitespace that `str.strip()` removes, including tab, CR, LF and U+3000.
_outer_space = st.text(st.sampled_from([" ", "\t", "\r", "\n", "\x0b", "\x0c", "\u3000", "\x85"]), max_size=3)
_spaces = st.integers(1, 4).map(lambda n: " " * n)
# Message text: runs of spaces, leading spaces, tabs, U+3000, colons, non-ASCII; never CR, LF, NUL.
irc_text = st.text(
    st.sampled_from([" ", " ", " ", "\t", "\u3000", ":", "a", "b", "#", "@", "\u00e9", "\U0001f389"]), max_size=16
)
_middle = _word("#&" + _LOWER + _DIGITS, _LOWER + _DIGITS + ":#", 6)  # [#&a-z0-9][a-z0-9:#]{0,6}
_irc_tags = st.one_of(
    st.none(),
    st.dictionaries(
        _word(_LOWER, _LOWER + "-", 8),  # [a-z][a-z-]{0,8}
        st.text(string.ascii_letters + _DIGITS + "#/,", max_size=6),  # [A-Za-z0-9#/,]{0,6}
        min_size=1,
        max_size=3,
    ),
)
_irc_command = st.text(string.ascii_letters, min_size=1, max_size=10)  # [A-Za-z]{1,10}
_middles = st.lists(_middle, max_size=3)
_maybe_irc_text = st.one_of(st.none(), irc_text)


@st.composite
def irc_lines(draw: Any, command: Any = None, first: Any = None) -> tuple[str, tuple[Any, ...]]:
    """(line, fields): a line built word by word with runs of spaces, and the fields that the rule of
    ARCHIVE_FORMAT.md section 3 gives for it, worked out from the parts rather than by a parser."""
    words: list[str] = []
    tag_map = draw(_irc_tags)
    if tag_map is not None:
        words.append("@" + ";".join(f"{k}={v}" for k, v in tag_map.items()))
    sender = user = host = None
    if draw(st.booleans()):
        sender, user, host = draw(nick), draw(_maybe_nick), draw(_maybe_nick)
        words.append(":" + sender + (f"!{user}" if user is not None else "") + (f"@{host}" if host is not None else ""))
    cmd = draw(command if command is not None else _irc_command)
    words.append(cmd)
    middles = draw(_middles)
    if first is not None:
        middles.insert(0, draw(first))
    words.extend(middles)
    params = list(middles)
    text = draw(_maybe_irc_text)
    if text is not None:
        words.append(":" + text)
        params.append(text.rstrip())  # the end of the text is the end of the line, which is stripped
    line = draw(_outer_space) + "".join(w + draw(_spaces) for w in words[:-1]) + words[-1] + draw(_outer_space)
    return line, (cmd.upper(), params, sender, user, host, tag_map)


# --- record schema (one validator): records with at most a few faults planted ----------

_json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False),
    any_text,
    st.lists(st.one_of(any_text, st.integers(0, 2)), max_size=2),
    st.dictionaries(any_text, st.one_of(any_text, st.booleans(), st.integers(0, 1)), max_size=2),
)


@st.composite
def maybe_faulty_records(draw: Any) -> dict[str, Any]:
    """An archive record, or one with some keys dropped, added or given any JSON value."""
    record = draw(archive_records())
    for key in draw(st.lists(st.sampled_from([*sorted(record), "extra"]), max_size=2)):
        if key in record and draw(st.booleans()):
            del record[key]
        else:
            record[key] = draw(_json_values)
    return record


@st.composite
def typed_times(draw: Any) -> tuple[float, list[str]]:
    """A moment (whole milliseconds, 1971..2100) and the ways a person or the web editor types it:
    Unix seconds, ISO 8601 with `Z`, with some offset, without an offset (UTC), with a space for
    `T`, and the editor's `YYYY-MM-DDTHH:MM:SS.mmm` (formats/times.py reads them all the same)."""
    ms = draw(st.integers(31_536_000_000, 4_102_444_800_000))
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    offset = timezone(timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60))))
    naive = moment.replace(tzinfo=None)
    forms = [
        repr(ms / 1000),
        naive.isoformat() + "Z",
        moment.astimezone(offset).isoformat(),
        naive.isoformat(),
        naive.isoformat(sep=" "),
        naive.isoformat(timespec="milliseconds"),
    ]
    return ms / 1000, forms


# The recorder's watchdog: what happens on a connection, and the seconds since the step before.
watchdog_steps = st.lists(
    st.tuples(st.sampled_from(["line", "pong", "handover pong", "tick", "handover"]), st.floats(0, 4)),
    max_size=40,
)


# --- playback: chat as viewers see it, written to break subtitle and HTML markup ------

PLAY_START = 1_700_000_000  # the window start of a playback session
# ASS overrides and breaks ({ } \N \n \h), HTML (< > & "), CTCP, controls, anything else
markup_text = st.lists(
    st.one_of(
        st.sampled_from([*"{}\\Nnh<>/&\"' \x01\n\r\t", "</script>", "\\N", "{\\i1}"]),
        st.characters(blacklist_categories=["Cs"]),
    ),
    max_size=40,
).map("".join)
PLAY_USERS = ("alice", "bob", "carol")


def play_message(i: int, at: float, login: str, text: str, **tags: str) -> dict[str, Any]:
    """A Twitch PRIVMSG record with id `m{i}` at `at` (Unix seconds)."""
    return {
        "command": "PRIVMSG",
        "params": ["#chan", text],
        "sender": login,
        "user": login,
        "host": f"{login}.tmi.twitch.tv",
        "receivers": {"host1.Ab3dE.0": at + 0.2},
        "time": at,
        "time_range": 0,
        "tags": {"id": f"m{i}", "display-name": login.capitalize(), "tmi-sent-ts": str(round(at * 1000)), **tags},
    }


def play_removal(at: float, command: str, target: str | None, login: str = "") -> dict[str, Any]:
    """A CLEARMSG of message `target` (by id), or a CLEARCHAT of user `target` (None: everyone)."""
    params = ["#chan"] + ([target] if target is not None else [])
    tags = {"tmi-sent-ts": str(round(at * 1000))}
    if command == "CLEARMSG":
        params, tags = ["#chan", "deleted text"], {**tags, "login": login, "target-msg-id": str(target)}
    return {
        "command": command,
        "params": params,
        "sender": "tmi.twitch.tv",
        "user": None,
        "host": None,
        "receivers": {"host1.Ab3dE.0": at + 0.2},
        "time": at,
        "time_range": 0,
        "tags": tags,
    }


@st.composite
def chat_sessions(draw: Any, max_messages: int = 12, spaced: bool = False) -> list[dict[str, Any]]:
    """A window's chat in time order from PLAY_START: one-line messages `u: m{i}` (some /me) from a
    few users, and CLEARMSG / CLEARCHAT records removing some of them later. `spaced`: every two
    records at least 0.3 s apart (more than a subtitle frame)."""
    count = draw(st.integers(1, max_messages))
    gaps = draw(st.lists(st.integers(300 if spaced else 0, 4000), min_size=count, max_size=count))
    records: list[dict[str, Any]] = []
    ms = draw(st.integers(0, 2000))
    for i, gap in enumerate(gaps):
        ms += gap
        login = draw(st.sampled_from(PLAY_USERS))
        text = f"\x01ACTION m{i}\x01" if draw(st.booleans()) and i % 3 == 0 else f"m{i}"
        tags = {"color": "#1E90FF"} if draw(st.booleans()) else {}
        records.append(play_message(i, PLAY_START + ms / 1000, login, text, **tags))
        removal = draw(st.sampled_from([None, None, "CLEARMSG", "CLEARCHAT-user", "CLEARCHAT-all"]))
        if removal is not None:
            delay = draw(st.integers(300 if spaced else 0, 12000))
            at = PLAY_START + (ms + delay) / 1000
            if removal == "CLEARMSG":
                records.append(play_removal(at, "CLEARMSG", f"m{draw(st.integers(0, i))}"))
            else:
                records.append(play_removal(at, "CLEARCHAT", login if removal == "CLEARCHAT-user" else None))
    records.sort(key=lambda r: r["time"])
    if spaced:  # removals may land near a message: push records apart
        for a, b in pairwise(records):
            if b["time"] - a["time"] < 0.3:
                b["time"] = round(a["time"] + 0.3, 3)
    return records


# -- IRC lines as servers send them and as damage leaves them (the compiled parser's laws) --

_irc_alphabet = st.sampled_from(list("@:!; =\\ab#sPRIVMSGprivmsg09\r\n\x00é😂"))
_irc_word = st.text(_irc_alphabet.filter(lambda c: c != " "), min_size=1, max_size=8)
_tag_item = st.one_of(
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(["id", "color", "emotes", "a", "", "system-msg"]),
        st.text(st.sampled_from(list("ab\\s:r n;=é😂0")), max_size=8),
    ),
    st.sampled_from(["flag", "", "x=y=z"]),
)
_prefix = st.builds(
    lambda n, u, h: n + u + h,
    st.sampled_from(["nick", "", "a!b", "tmi.twitch.tv"]),
    st.sampled_from(["", "!user", "!u!v"]),
    st.sampled_from(["", "@host", "@h@i"]),
)


@st.composite
def damaged_irc_lines(draw: Any) -> str:
    """IRC-like lines: well formed ones (tags, prefix, command, middles, trailing) mutated now and then."""
    parts = []
    if draw(st.booleans()):
        parts.append("@" + ";".join(draw(st.lists(_tag_item, min_size=1, max_size=5))))
    if draw(st.booleans()):
        parts.append(":" + draw(_prefix))
    parts.append(draw(st.sampled_from(["PRIVMSG", "privmsg", "366", "NOTICE", "Join", "ß", "x"])))
    parts.extend(draw(st.lists(_irc_word, max_size=3)))
    if draw(st.booleans()):
        parts.append(":" + draw(st.text(_irc_alphabet, max_size=12)))
    line = " ".join(parts)
    if draw(st.integers(0, 3)) == 0:  # damage: a run of spaces, whitespace at an end, a CR, a cut
        i = draw(st.integers(0, len(line)))
        damage = draw(st.sampled_from(["  ", " ", "\t", "\u3000", "\x0b", "\r", "\n", "\x00", ""]))
        line = line[:i] + damage + line[i + draw(st.integers(0, 3)) :]
    return line


# -- HTTP requests for `serve`: paths that try to leave ROOT, query strings of any shape --
_path_parts = st.one_of(
    st.sampled_from(
        [
            "files",
            "segments",
            "chat",
            "desertbus",
            "2023-11-14T22",
            "..",
            ".",
            "%2e%2e",
            "%2E%2e",
            "..%2f",
            "%00",
            "\x00",
            "\\",
            "..\\..",
            "/",
            "//",
            "etc",
            "passwd",
            "chat.json",
            "chat.jsonl",
            "metrics",
            "healthz",
            "14:00-FBQDKwvPYcfkjXoxGrhpitLEqeEUydWtSPdb9H4B41k.json",
            "evil",
            "quarantine",
            ".sync",
            "~",
            "player",
        ]
    ),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=12),
)
request_paths = st.lists(_path_parts, max_size=6).map(lambda parts: "/" + "/".join(parts))
_query_values = st.one_of(
    st.sampled_from(
        [
            "2023-11-14T22:13:30.000",
            "2023-11-14T22:16:00",
            "1700000010",
            "nan",
            "inf",
            "-1e308",
            "9999-12-31T23:59:59",
            "0001-01-01T00:00:00",
            "true",
            "false",
            "TRUE",
            "",
            "%00",
            "%ff",
        ]
    ),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=20),
)
query_strings = st.lists(
    st.tuples(st.sampled_from(["start", "end", "tombstones", "x", "start%00", ""]), _query_values),
    max_size=4,
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))


# -- Twitch-shaped lines (the replay's compiled step, tests/test_replay_core.py): tag values with every
# escape, odd tmi-sent-ts values, repeated and non-ASCII tag names, prefixes and channels of every shape
_tw_value = st.text(st.sampled_from(list('ab\\s:rn;= é😂\x7f"\t0')), max_size=8)
_tw_ts = st.one_of(st.integers(0, 10**17).map(str), st.sampled_from(["", "12a", "1\\s2", "٣", "+5", " 7"]))
_tw_tag = st.one_of(
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(["id", "color", "badges", "emotes", "a-b", "Z", "é", 'q"', "system-msg", "tmi-sent-ts"]),
        _tw_value,
    ),
    st.builds(lambda v: f"tmi-sent-ts={v}", _tw_ts),
    st.sampled_from(["flag", "tmi-sent-ts", "", "x=y=z"]),
)
twitch_shaped_lines = st.builds(
    lambda tags, prefix, command, middles, text: " ".join(
        ([("@" + ";".join(tags))] if tags else [])
        + ([":" + prefix] if prefix is not None else [])
        + [command, *middles]
        + ([":" + text] if text is not None else [])
    ),
    st.lists(_tw_tag, max_size=6),
    st.one_of(st.none(), st.sampled_from(["u!u@u.tmi.twitch.tv", "tmi.twitch.tv", "a@b@c", "a!b!c", "", "é!😂@x"])),
    st.sampled_from(["PRIVMSG", "privmsg", "USERNOTICE", "ROOMSTATE", "366", "JOIN", "ß", "a1"]),
    st.lists(st.sampled_from(["#chan", "#Chan", "#é", "#", "x", ":y", "#a:b"]), max_size=3),
    st.one_of(st.none(), st.text(max_size=12)),
)


# --- media: third-party emote sets and their snapshots ---------------------------------------------

any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), any_number, any_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "code",
                    "name",
                    "emotes",
                    "sets",
                    "emoticons",
                    "channelEmotes",
                    "sharedEmotes",
                    "emote_set",
                    "room",
                    "set",
                    "default_sets",
                    "data",
                    "animated",
                    "1",
                    "3",
                ]
            )
            | any_text,
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)
emote_word = st.sampled_from(["catJAM", "OMEGALUL", "KEKW", "Clap", "LUL", "pepeD"])
emote_scope = st.sampled_from(["", "chan"])  # media.thirdparty.GLOBAL, a channel login
emote_provider = st.sampled_from(["ffz", "bttv", "7tv"])


@st.composite
def emote_snapshots(draw: Any) -> Any:
    """A snapshot of a small set (words from a few, so sets overlap) at a time within 100 s."""
    provider = draw(emote_provider)
    words = draw(st.lists(emote_word, max_size=4))
    emotes = tuple(Emote(provider, f"{provider}{draw(st.integers(0, 9))}", w) for w in words)
    return Snapshot(provider, draw(emote_scope), float(draw(st.integers(0, 100))), emotes)


# -- the index (index/): small archives of chat lines, removals and noise, and queries over them --

INDEX_T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
INDEX_CHANNELS = ("chan", "other")
_index_users = st.sampled_from([("1", "alice"), ("2", "bob"), ("3", "carol"), ("3", "caroline"), (None, "dave")])
INDEX_WORDS = ["hello", "HELLO", "Kappa", "kappa", ":)", "<3", "world", "h\u00e9llo", "Stra\u00dfe", "strasse", "the"]
_index_word = st.sampled_from(INDEX_WORDS)
_index_glue = st.sampled_from([" ", "  ", ", ", "! ", ".", " \u3000", '"'])
# seconds after INDEX_T0: the same minute, the next day, and the next month (for months and days)
_index_time = st.tuples(st.sampled_from([0, 0, 86400, 40 * 86400]), st.integers(0, 150)).map(
    lambda t: (INDEX_T0 + t[0] + t[1]) + 0.5 * (t[1] % 2)
)


@st.composite
def index_text(draw: Any) -> str:
    words = draw(st.lists(_index_word, max_size=5))
    out = ""
    for word in words:
        out += word + draw(_index_glue)
    return out.strip(" ") if draw(st.booleans()) else out


def index_record(
    command: str,
    at: float,
    tags: dict[str, Any] | None,
    params: list[str],
    sender: str | None,
    *,
    receiver: str = "host1.Ab3dE.0",
) -> dict[str, Any]:
    """An archive record as the replay writes it for a chat line with an exact server time."""
    user = sender if sender and sender != "tmi.twitch.tv" else None
    return {
        "command": command,
        "host": f"{user}.tmi.twitch.tv" if user else None,
        "params": params,
        "receivers": {receiver: at + 0.25},
        "sender": sender,
        "tags": tags,
        "time": at,
        "time_range": 0,
        "user": user,
    }


_index_kinds = st.sampled_from(["msg", "msg", "msg", "noid", "sub", "ban", "clear", "clearmsg", "join"])


@st.composite
def index_archives(draw: Any) -> list[tuple[str, dict[str, Any]]]:
    """(channel, record) pairs: PRIVMSGs (with and without ids), USERNOTICEs (some gifts),
    CLEARCHATs of one user and of everyone, CLEARMSGs of earlier or unknown ids, and JOINs."""
    out: list[tuple[str, dict[str, Any]]] = []
    ids: list[str] = []
    for i in range(draw(st.integers(0, 18))):
        channel = draw(st.sampled_from(INDEX_CHANNELS))
        at = draw(_index_time)
        user_id, login = draw(_index_users)
        kind = draw(_index_kinds)
        tags: dict[str, Any] = {"room-id": "100" if channel == "chan" else "200", "tmi-sent-ts": str(int(at * 1000))}
        if kind in ("msg", "noid", "sub"):
            if kind != "noid":
                tags["id"] = f"m{i}"
                ids.append(f"m{i}")
            if user_id:
                tags["user-id"] = user_id
            if draw(st.booleans()):
                tags["display-name"] = login.upper()
            if kind == "sub":
                tags["login"] = login
                if draw(st.booleans()):
                    recipient_id, _ = draw(_index_users)
                    if recipient_id:
                        tags["msg-param-recipient-id"] = recipient_id
                command, sender = "USERNOTICE", "tmi.twitch.tv"
            else:
                command, sender = "PRIVMSG", login
            text = draw(index_text())
            if draw(st.integers(0, 5)) == 0:
                text = "\x01ACTION " + text + "\x01"
            params = [f"#{channel}", text]
            if kind == "sub" and not text and draw(st.booleans()):
                params = [f"#{channel}"]
        elif kind == "ban":
            command, sender, params = "CLEARCHAT", "tmi.twitch.tv", [f"#{channel}", login]
            if user_id:
                tags["target-user-id"] = user_id
        elif kind == "clear":
            command, sender, params = "CLEARCHAT", "tmi.twitch.tv", [f"#{channel}"]
        elif kind == "clearmsg":
            target = _pick(draw, [*ids, "nope"]) if ids else "nope"
            tags.update({"login": login, "target-msg-id": target})
            command, sender, params = "CLEARMSG", "tmi.twitch.tv", [f"#{channel}", "gone"]
        else:
            command, sender, params, tags = "JOIN", login, [f"#{channel}"], None  # type: ignore[assignment]
        out.append((channel, index_record(command, at, tags, params, sender)))
    return out


index_queries = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.sampled_from(INDEX_CHANNELS),
        "user_id": st.sampled_from(["1", "2", "3", "9"]),
        "login": st.sampled_from(["alice", "Bob", "caroline", "carol", "dave", "zed"]),
        "text": st.one_of(
            index_text(),
            st.sampled_from(['"hello world"', '"kappa', "KAPPA :)", '"" ,', "strasse", 'x" OR 1=1 --', "NEAR(a b)"]),
        ),
        "since": st.sampled_from([INDEX_T0, INDEX_T0 + 60, INDEX_T0 + 86400, INDEX_T0 + 86400 + 75.5]),
        "until": st.sampled_from([INDEX_T0 + 60, INDEX_T0 + 86400 + 75.5, INDEX_T0 + 50 * 86400]),
        "commands": st.sampled_from(
            [frozenset({"PRIVMSG"}), frozenset({"USERNOTICE", "CLEARCHAT"}), frozenset({"JOIN"})]
        ),
        "include_removed": st.booleans(),
        "oldest_first": st.booleans(),
        "limit": st.integers(0, 4),
        "offset": st.integers(0, 3),
    },
)


# --- index: the PRIVMSG fast path's odd values (index.extract.privmsg_row) ----------------------
_odd_tag_value = st.one_of(
    st.sampled_from(["m1", "12345", "", "caf\u00e9", "a\x00b", "\U0001f389"]), any_text, st.just(True)
)
_odd_sender = st.one_of(st.none(), nick, st.sampled_from(["ALICE", "", "Stra\u00dfe", "nul\x00x"]), any_text)


@st.composite
def odd_privmsgs(draw: Any) -> dict[str, Any]:
    """A PRIVMSG with the archive schema whose id, msgid, user-id, sender and text may each be
    missing, empty, True, non-ASCII or hold NUL."""
    tags = draw(
        st.one_of(
            st.none(), st.just({}), st.dictionaries(st.sampled_from(["id", "msgid", "user-id", "x"]), _odd_tag_value)
        )
    )
    params = draw(st.one_of(st.just([]), st.lists(st.one_of(any_text, index_text()), min_size=1, max_size=3)))
    record = index_record("PRIVMSG", draw(_index_time), tags, params, draw(_odd_sender))
    record["time_range"] = draw(st.sampled_from([0, 0.0, 1.5, 2]))
    return record


# --- index: chat text for the compiled PRIVMSG row (native/index.c) ----------------------------
# each path of its word cut: json.dumps's short escapes, controls, Unicode white space (\x85, NBSP,
# U+2028, the ideographic space), letters whose casefold differs from lower or grows (ß, ﬁ, İ, ς),
# astral characters (a surrogate pair in the line), a lone surrogate, and the /me wrapper
_CHAT_ASCII = ["Kappa", "HeLLo", ":)", "<3", "a.b", '"q"', "\\", "\n", "\t", "\x00", "\x1c", "\x7f"]
_CHAT_OTHER = ["\x85", "\xa0", "\u2028", "\u3000", "Stra\u00dfe", "\ufb01", "\u0130", "\u03a3\u03c2", "caf\u00e9"]
_chat_pieces = st.sampled_from([*_CHAT_ASCII, *_CHAT_OTHER, "\U0001f389", "\ud800"])
_chat_glue = st.sampled_from([" ", "", ",", "!?", "  "])


@st.composite
def chat_texts(draw: Any) -> str:
    """A chat line's text built from the pieces above (or any text), maybe as a `/me` line."""
    if draw(st.integers(0, 4)) == 0:
        text = draw(any_text)
    else:
        text = "".join(draw(_chat_pieces) + draw(_chat_glue) for _ in range(draw(st.integers(0, 6))))
    return "\x01ACTION " + text + "\x01" if draw(st.integers(0, 4)) == 0 else text


@st.composite
def index_privmsgs(draw: Any) -> dict[str, Any]:
    """A PRIVMSG as the index reads it most: an id, a user-id, a sender, its text from chat_texts;
    or, now and then, one of odd_privmsgs."""
    if draw(st.integers(0, 3)) == 0:
        record: dict[str, Any] = draw(odd_privmsgs())
        return record
    tags: dict[str, Any] = {"id": draw(st.sampled_from(["m1", "0f3c-9a", ""])), "room-id": "22510310"}
    if draw(st.booleans()):
        tags["user-id"] = draw(st.sampled_from(["1", "12345", "", True]))
    sender = draw(st.one_of(nick, st.sampled_from(["ALICE", "", "Bob_2"]), st.none()))
    params = ["#chan", draw(chat_texts())] if draw(st.integers(0, 5)) else ["#chan"]
    record = index_record("PRIVMSG", draw(_index_time), tags, params, sender)
    record["time"] += draw(st.sampled_from([0, 0.5, 0.123]))
    record["time_range"] = draw(st.sampled_from([0, 0.0, 1.5, 2, 0.001]))
    return record
