"""The raw recording format, version 2 (reads 1 too): what a recorder writes and a replay reads.

Specified in docs/raw-format.md. One JSON object per line, UTF-8, append-only. Every file opens
with a `header`; then `open`, `recv`, `send`, `close` and (version 2) `tick` events follow, each
with a per-process sequence number `seq` (the true order: wall clocks step, sequence numbers do
not), the local wall-clock time `at` in integer microseconds, and the connection index `conn`.

This module is pure: it turns bytes into typed events and back, and raises InputError on bad data.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from formats.errors import InputError

FORMAT_NAME = "chat-archiver-raw"
FORMAT_VERSION = 2
# Version 1 has no `tick` events; everything else is the same, so a version 1 file replays by the
# same rules (its batches close when later events show their deadline has passed).
READABLE_VERSIONS = frozenset((1, 2))

# Event kinds. A header starts every file; the rest describe one connection each.
HEADER = "header"
OPEN = "open"
RECV = "recv"
SEND = "send"
CLOSE = "close"
# "Connection `conn` is open and every line it received before `at` is already recorded": the
# passing of time, written while a connection is quiet, so that a replay closes batches at the
# same moments whether it runs live or later (docs/raw-format.md).
TICK = "tick"
EVENT_KINDS = frozenset((OPEN, RECV, SEND, CLOSE, TICK))

DIALECT_TWITCH = "twitch"
DIALECT_IRCV3 = "ircv3"
DIALECTS = frozenset((DIALECT_TWITCH, DIALECT_IRCV3))

# Commands whose arguments are credentials: only the command word reaches disk.
_SECRET_COMMANDS = re.compile(r"^\s*(?:@\S+\s+)?(?::\S+\s+)?(PASS|AUTHENTICATE|OPER)\b", re.IGNORECASE)
REDACTED = "***"


def redact(line: str) -> str:
    """A sent line safe to store: credential-bearing commands lose their arguments."""
    m = _SECRET_COMMANDS.match(line)
    if m is None:
        return line
    return f"{m.group(1).upper()} {REDACTED}"


@dataclass(frozen=True)
class Header:
    """Who wrote a raw file: one recorder process, identified by (recorder, slug)."""

    recorder: str
    slug: str
    host: str
    software: str
    seq: int
    at: int
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": HEADER,
            "format": FORMAT_NAME,
            "version": self.version,
            "recorder": self.recorder,
            "slug": self.slug,
            "host": self.host,
            "software": self.software,
            "seq": self.seq,
            "at": self.at,
        }


class Event(NamedTuple):
    """One connection event. `text` is the line (recv/send), the server (open) or the reason (close).

    `dialect` is only meaningful on `open` events.
    """

    kind: str
    seq: int
    at: int
    conn: int
    text: str
    dialect: str = DIALECT_TWITCH


_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}\Z", re.ASCII)
_SLUG_RE = re.compile(r"[A-Za-z0-9]{1,32}\Z", re.ASCII)


def check_recorder_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InputError(f"invalid recorder name {name!r} (letters, digits, '.', '_', '-')")
    return name


def check_slug(slug: str) -> str:
    if not _SLUG_RE.match(slug):
        raise InputError(f"invalid slug {slug!r} (1-32 letters or digits)")
    return slug


def receiver_name(recorder: str, slug: str, conn: int) -> str:
    """The archive's receiver name for one connection: `RECORDER.SLUG.INDEX` (as upstream)."""
    return f"{recorder}.{slug}.{conn}"


def encode_header(header: Header) -> bytes:
    return orjson.dumps(header.to_json()) + b"\n"


def encode_event(event: Event) -> bytes:
    obj: dict[str, Any] = {"kind": event.kind, "seq": event.seq, "at": event.at, "conn": event.conn}
    if event.kind in (RECV, SEND):
        obj["line"] = redact(event.text) if event.kind == SEND else event.text
    elif event.kind == OPEN:
        obj["server"] = event.text
        obj["dialect"] = event.dialect
    elif event.kind == CLOSE:
        obj["reason"] = event.text
    return orjson.dumps(obj) + b"\n"


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if type(value) is not int or value < 0:
        raise InputError(f"field {key!r} is not a non-negative integer")
    return value


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if type(value) is not str:
        raise InputError(f"field {key!r} is not a string")
    return value


# The longest raw line read: far above any IRC line a server sends (Twitch's are at most a few KiB,
# IRCv3 caps tags at 8 KiB), far below memory. A longer line is one problem, never read whole.
MAX_LINE = 1 << 20  # bytes
# What `Decoder` hands on in place of a line over MAX_LINE (no raw line starts with a NUL).
OVERLONG = b"\x00over-long line"
OVERLONG_MESSAGE = f"line longer than {MAX_LINE:,} bytes"


def decode_line(data: bytes) -> Header | Event:
    """Decode one line (without its newline). Raises InputError on anything malformed."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if data == OVERLONG or len(data) > MAX_LINE:
            raise InputError(OVERLONG_MESSAGE) from None
        raise InputError(f"not JSON ({e.msg})") from None
    if type(obj) is not dict:
        raise InputError("not a JSON object")
    kind = obj.get("kind")
    if kind == RECV:
        # the hot path: one dict lookup per field, no generic validation
        seq, at, conn, line = obj.get("seq"), obj.get("at"), obj.get("conn"), obj.get("line")
        if type(seq) is int and type(at) is int and type(conn) is int and type(line) is str and conn >= 0:
            return Event(RECV, seq, at, conn, line)
    if kind == HEADER:
        if obj.get("format") != FORMAT_NAME:
            raise InputError("header of an unknown format")
        version = _int(obj, "version")
        if version not in READABLE_VERSIONS:
            raise InputError(f"raw format version {version} is not supported (this reads 1 and 2)")
        return Header(
            recorder=check_recorder_name(_str(obj, "recorder")),
            slug=check_slug(_str(obj, "slug")),
            host=_str(obj, "host"),
            software=_str(obj, "software"),
            seq=_int(obj, "seq"),
            at=_int(obj, "at"),
            version=version,
        )
    if kind not in EVENT_KINDS:
        raise InputError(f"unknown event kind {kind!r}")
    seq, at, conn = _int(obj, "seq"), _int(obj, "at"), _int(obj, "conn")
    if kind in (RECV, SEND):
        return Event(kind, seq, at, conn, _str(obj, "line"))
    if kind == OPEN:
        dialect = obj.get("dialect", DIALECT_TWITCH)
        if dialect not in DIALECTS:
            raise InputError(f"unknown dialect {dialect!r}")
        return Event(OPEN, seq, at, conn, _str(obj, "server"), dialect)
    if kind == TICK:
        return Event(TICK, seq, at, conn, "")
    return Event(CLOSE, seq, at, conn, _str(obj, "reason"))


TORN_LAST_LINE = "torn last line (recorder stopped mid-write)"


def _cut_overlong(block: bytes) -> bytes:
    """`block` (whole lines) with every line over MAX_LINE replaced by OVERLONG. One pass at memrchr
    speed: each step jumps to the last newline within MAX_LINE + 1 bytes, so it moves about a
    MAX_LINE per step, and a window with no newline at all starts an over-long line."""
    if len(block) <= MAX_LINE:
        return block
    out: list[bytes] = []
    start = kept = 0
    size = len(block)
    while size - start > MAX_LINE:
        last = block.rfind(b"\n", start, start + MAX_LINE + 1)
        if last != -1:
            start = last + 1
            continue
        end = block.find(b"\n", start)  # the over-long line ends in the block: it holds whole lines
        out.append(block[kept:start])
        out.append(OVERLONG)
        kept = start = end
    if not out:
        return block
    out.append(block[kept:])
    return b"".join(out)


class Decoder:
    """Incremental decoder (sans-I/O, like h11): feed bytes in any chunks, take events out. The file
    reader (formats.rawfile) reads every raw file through it, so its property tests test the product.

    `next_block()` takes the complete lines received so far, undecoded (`decode_line` decodes one
    and raises InputError for a malformed one). `receive_data(b"")` marks the end of input; a final
    line without its newline is then torn and reported as an InputError from `next_block()`.
    A line longer than `MAX_LINE` is never held: the decoder drops its bytes as they come and hands
    on `OVERLONG` in its place (one line, which `decode_line` refuses), so memory stays bounded by
    the chunks fed, whatever the input. `line_number` counts the lines taken (the torn one included).
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._blocks: deque[bytes] = deque()  # complete lines as received, each block ending with b"\n"
        self._eof = False
        self._skipping = False  # inside a line over MAX_LINE: its bytes are dropped up to its newline
        self.line_number = 0

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        if self._skipping:
            end = data.find(b"\n")
            if end == -1:
                return
            self._skipping = False
            data = data[end + 1 :]
        cut = data.rfind(b"\n") + 1
        if not cut:
            self._hold(self._buffer + data)
            return
        block = self._buffer + memoryview(data)[:cut]
        self._blocks.append(_cut_overlong(block) if len(block) > MAX_LINE else block)
        self._hold(data[cut:])

    def _hold(self, partial: bytes) -> None:
        """Keep the start of a line whose newline has not come yet, unless it is over MAX_LINE."""
        if len(partial) > MAX_LINE:
            self._blocks.append(OVERLONG + b"\n")
            self._buffer = b""
            self._skipping = True
        else:
            self._buffer = partial

    def next_block(self, *, count: bool = True) -> bytes:
        """Every complete line received and not taken yet, undecoded and as received (each ends
        with b"\n"; `decode_line` decodes one without it), so a reader can decode some lines
        another way. `line_number` moves past them (with `count=False` it does
        not: a caller that counts the lines as it goes moves it, by `pass_lines`, sparing a pass
        over the block); b"" when more data is needed. A torn last line raises InputError."""
        if self._blocks:
            block = self._blocks.popleft() if len(self._blocks) == 1 else b"".join(self._blocks)
            self._blocks.clear()
            if count:
                self.line_number += block.count(b"\n")
            return block
        self._check_torn()
        return b""

    def pass_lines(self, n: int) -> None:
        """Move `line_number` past the `n` lines of a block taken with `next_block(count=False)`."""
        self.line_number += n

    def _check_torn(self) -> None:
        if self._eof and self._buffer:
            self._buffer = b""
            self.line_number += 1
            raise InputError(TORN_LAST_LINE)
