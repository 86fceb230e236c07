"""The export formats, as pure functions from records to text.

- `json`: one JSON array, what upstream's reader returns (one canonical record per line inside it,
  so a diff of two exports reads well and a tool that parses JSON sees the same array).
- `jsonl`: one canonical record per line, the archive's own line format.
- `text`: a transcript for people, one line per record: `[HH:MM:SS] name: text`. A line
  `--- YYYY-MM-DD ---` opens each UTC day. A time that is only known to within a range is shown at
  the start of its range with a `~`.
- `irc`: IRC lines rebuilt from the records, tags escaped per IRCv3 message-tags.

Every renderer takes any record that passes the archive schema and never raises: chat is
untrusted, so control characters are shown as `\\xNN` in text (a transcript must not carry
terminal escape sequences) and CR, LF and NUL, which an IRC line cannot hold, become spaces there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

import orjson

from export.ass import AssRenderer
from export.fields import display_name, me_action, printable, tag_of
from export.html import HtmlRenderer
from formats.canonical import canonical_json
from formats.irc import escape_tag_value

if TYPE_CHECKING:
    from export.emotes import ChatImages

FORMATS = ("json", "jsonl", "text", "irc", "ass", "html", "twitchdownloader")
WHOLE_WINDOW = frozenset({"ass", "html", "twitchdownloader"})  # never cut into parts: one renderer sees every record


@dataclass(frozen=True)
class Playback:
    """What the playback formats need beside the records: the window (time zero is its start),
    how long a subtitle stays up, a title, and the images chat showed (the html page and the
    TwitchDownloader JSON embed them; without, emotes and badges stay words)."""

    start: float
    end: float
    hold: float = 10.0
    title: str = "chat"
    images: ChatImages | None = None


class _Stream(Protocol):
    def begin(self) -> str: ...
    def add(self, record: Mapping[str, Any]) -> str: ...
    def end(self) -> str: ...


class _StoredStream(_Stream, Protocol):
    def add_stored(self, time: Any, line: bytes) -> str: ...


class _RowsStream(_Stream, Protocol):
    def add_rows(self, rows: list[tuple[Any, ...]]) -> str: ...


_IRC_BREAKERS = re.compile("[\r\n\x00]")
_TAG_KEY_BREAKERS = re.compile("[ ;=\r\n\x00]")


def _param(record: Mapping[str, Any], index: int) -> str | None:
    params = record.get("params") or []
    return params[index] if len(params) > index else None


def clock(record: Mapping[str, Any]) -> str:
    """`HH:MM:SS` of the record's time in UTC, `~` first when the time is a range."""
    try:
        moment = datetime.fromtimestamp(record["time"], UTC)
        text = moment.strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError, TypeError):
        text = printable(repr(record.get("time")))
    return text if record.get("time_range") == 0 else f"~{text}"


def day_of(record: Mapping[str, Any]) -> str | None:
    try:
        return datetime.fromtimestamp(record["time"], UTC).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def _seconds(value: str | None) -> str:
    return f"{value} s" if value and value.isdigit() else "a while"


def describe(record: Mapping[str, Any]) -> str:
    """The body of a transcript line (everything after the clock)."""
    command = record.get("command")
    name = display_name(record)
    text = _param(record, 1)
    if command == "PRIVMSG":
        body = text or ""
        action = me_action(body)
        if action is not None:
            return f"* {name} {printable(action)}"
        return f"{name}: {printable(body)}"
    if command == "USERNOTICE":
        system = tag_of(record, "system-msg") or tag_of(record, "msg-id") or "user notice"
        line = f"** {printable(system)}"
        if text:
            line += f" | {name}: {printable(text)}"
        return line
    if command == "CLEARCHAT":
        if text is None:
            return "-- chat was cleared by a moderator"
        duration = tag_of(record, "ban-duration")
        if duration is not None:
            return f"-- {printable(text)} was timed out for {_seconds(duration)}"
        return f"-- {printable(text)} was banned"
    if command == "CLEARMSG":
        who = tag_of(record, "login") or "someone"
        return f"-- a message from {printable(who)} was deleted: {printable(text or '')}"
    if command == "NOTICE":
        return f"-- notice: {printable(text or '')}"
    if command == "JOIN":
        return f"-> {name} joined"
    if command == "PART":
        return f"<- {name} left"
    if command == "HOSTTARGET":
        target = (text or "").split(" ", 1)[0]
        return "-- stopped hosting" if target in ("", "-") else f"-- now hosting {printable(target)}"
    if command == "ROOMSTATE":
        tags = record.get("tags") or {}
        settings = ", ".join(
            f"{printable(k)}={printable(v)}" for k, v in sorted(tags.items()) if k not in ("room-id", "tmi-sent-ts")
        )
        return f"-- room settings: {settings or '(none)'}"
    if command == "USERSTATE":
        return f"-- user state of {name}"
    params = " ".join(printable(p) for p in record.get("params") or [])
    return f"-- {printable(command)} {name} {params}".rstrip()


def arrival(record: Mapping[str, Any]) -> float:
    """When the record first reached a receiver (its earliest receive time), for ordering records
    of one server time; infinity when it names none."""
    receivers = record.get("receivers")
    times = [t for t in receivers.values() if isinstance(t, int | float)] if isinstance(receivers, dict) else []
    return float(min(times)) if times else math.inf


def text_line(record: Mapping[str, Any]) -> str:
    return f"[{clock(record)}] {describe(record)}"


def irc_line(record: Mapping[str, Any]) -> str:
    """The record as one IRC line (without CRLF): `@tags :sender!user@host COMMAND params :last`.

    Tags come out in the record's (sorted) order, values escaped per IRCv3, `true` as a bare key.
    Parameters that IRC cannot carry (a middle one that is empty or has spaces, which no parsed
    line yields) are squeezed rather than refused, so any record renders.
    """
    parts = []
    tags = record.get("tags")
    if isinstance(tags, dict) and tags:
        items = []
        for key, value in tags.items():
            name = _TAG_KEY_BREAKERS.sub("", str(key))
            items.append(name if value is True else f"{name}={escape_tag_value(str(value))}")
        parts.append("@" + ";".join(items))
    sender = record.get("sender")
    if sender:
        source = str(sender)
        if record.get("user"):
            source += f"!{record['user']}"
        if record.get("host"):
            source += f"@{record['host']}"
        parts.append(":" + source.replace(" ", ""))
    parts.append(str(record.get("command") or "").replace(" ", "") or "?")
    params = [str(p) for p in record.get("params") or []]
    if params:
        parts.extend(p.replace(" ", "") or "*" for p in params[:-1])
        last = params[-1]
        # Twitch's habit: the last of several parameters is trailing (`PRIVMSG #c :hi`), a lone
        # one is not (`JOIN #c`) unless it has to be
        trailing = len(params) > 1 or not last or " " in last or last.startswith(":")
        parts.append(":" + last if trailing else last)
    return _IRC_BREAKERS.sub(" ", " ".join(parts))


@dataclass(frozen=True)
class Framing:
    """How a format of one line per record puts the lines together: `begin`, then each line after
    `lead` (the first) or `between` (the others) and followed by `tail`, then `end` (`end_empty`
    when there was no line). json is one array holding a record per line, the others a line each.
    Lines given all at once are `lead`/`between`, then the lines joined by `between + tail`, then
    `tail`: so a renderer, an export of stored lines and the stitching of parts frame alike."""

    begin: str = ""
    lead: str = ""
    between: str = ""
    tail: str = "\n"
    end: str = ""
    end_empty: str = ""

    def joined(self, lines: list[bytes], first: bool) -> list[bytes]:
        """`lines` (UTF-8, at least one) framed, as pieces to write one after another (joining the
        separators to a long run would copy it once more)."""
        return [
            (self.lead if first else self.between).encode(),
            (self.between + self.tail).encode().join(lines),
            self.tail.encode(),
        ]


_JSON_ARRAY = Framing(begin="[", lead="\n", between=",\n", tail="", end="\n]\n", end_empty="]\n")
_LINES = Framing()


def framing_of(fmt: str) -> Framing:
    """The framing of a format of one line per record (json's array, else a line each)."""
    return _JSON_ARRAY if fmt == "json" else _LINES


class Renderer:
    """Turns a stream of records into text in one format: `begin()`, `add(record)` per record,
    `end()`. Stateful only for the transcript's day headers and the first line (`Framing`); the
    playback formats (`WHOLE_WINDOW`) hand every record to their own renderer, which needs
    `playback`."""

    def __init__(self, fmt: str, playback: Playback | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.fmt = fmt
        self._stream: _Stream | None = None
        if fmt in WHOLE_WINDOW:
            if playback is None:
                raise ValueError(f"format {fmt!r} needs the window (playback options)")
            self._stream = _playback_renderer(fmt, playback)
        self.framing = framing_of(fmt)
        self._first = True
        self._day: str | None = None
        # text: records at one (time, time_range), held until the next key, then written in the
        # order they reached a receiver (the archive's order at a tie says nothing about it)
        self._tied: list[Mapping[str, Any]] = []
        self._tied_key: tuple[Any, Any] | None = None
        self._line: Callable[[Mapping[str, Any]], str] = {
            "json": canonical_json,
            "jsonl": canonical_json,
            "text": text_line,
            "irc": irc_line,
        }.get(fmt, canonical_json)

    def begin(self) -> str:
        if self._stream is not None:
            return self._stream.begin()
        return self.framing.begin

    def add(self, record: Mapping[str, Any]) -> str:
        if self._stream is not None:
            return self._stream.add(record)
        if self.fmt == "text":
            key = (record.get("time"), record.get("time_range"))
            out = self._text_tied() if self._tied and key != self._tied_key else ""
            self._tied_key = key
            self._tied.append(record)
            return out
        return self.add_line(self._line(record))

    def _text_tied(self) -> str:
        """The held records' transcript lines, in arrival order (see `arrival`)."""
        tied, self._tied = self._tied, []
        if len(tied) > 1:
            tied.sort(key=arrival)  # stable: no receive time to go by keeps the archive's order
        out = []
        for record in tied:
            line = text_line(record)
            day = day_of(record)
            if day is not None and day != self._day:
                self._day = day
                out.append(f"--- {day} ---\n{line}\n")
            else:
                out.append(self.add_line(line))
        return "".join(out)

    def add_rows(self, rows: list[tuple[Any, ...]]) -> str:
        """Add export's rows (export.stream.Row: time, range, canonical line, place, and the record
        when the export built one): the playback formats decode a line only where they need it."""
        stream = self._stream
        if stream is not None and hasattr(stream, "add_rows"):
            return cast("_RowsStream", stream).add_rows(rows)
        add, add_stored = self.add, self.stored_adder()
        return "".join([add(row[4]) if len(row) == 5 else add_stored(row[0], row[2]) for row in rows])

    def stored_adder(self) -> Callable[[Any, bytes], str]:
        """`add_stored`, bound once for a loop over many lines."""
        stream = self._stream
        if stream is not None and hasattr(stream, "add_stored"):
            return cast("_StoredStream", stream).add_stored
        return self.add_stored

    def add_stored(self, time: Any, line: bytes) -> str:
        """`add` of the record whose time is `time` and whose canonical line is `line` (a stored
        line an export passes through): the playback formats decode it only where they need it,
        the others decode it."""
        stream = self._stream
        if stream is not None and hasattr(stream, "add_stored"):
            return cast("_StoredStream", stream).add_stored(time, line)
        return self.add(orjson.loads(line))

    def add_line(self, line: str) -> str:
        """Add an already rendered line."""
        f = self.framing
        first, self._first = self._first, False
        return (f.lead if first else f.between) + line + f.tail

    def add_lines(self, lines: list[bytes]) -> list[bytes]:
        """Add already rendered lines (UTF-8: the canonical JSON lines json and jsonl print), as
        pieces to write one after another (`Framing.joined`)."""
        if not lines:
            return []
        first, self._first = self._first, False
        return self.framing.joined(lines, first)

    def flush(self) -> str:
        """What `add` still holds (text: the records of the last time), without the closing
        framing: for a part of a parallel export, whose closing is the stitcher's."""
        return self._text_tied() if self._tied else ""

    def end(self) -> str:
        if self._stream is not None:
            return self._stream.end()
        held = self.flush()
        return held + (self.framing.end_empty if self._first else self.framing.end)


def _playback_renderer(fmt: str, playback: Playback) -> _Stream:
    if fmt == "ass":
        return AssRenderer(playback.start, playback.hold, playback.title)
    if fmt == "twitchdownloader":
        from export.twitchdownloader import TwitchDownloaderRenderer  # noqa: PLC0415

        channel = playback.title.lstrip("#")
        return TwitchDownloaderRenderer(playback.start, playback.end, playback.title, channel, playback.images)

    return HtmlRenderer(playback.start, playback.end, playback.title, playback.images)
