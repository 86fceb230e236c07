"""From a batch file's bytes to the index's rows: pure, shared by both backends.

`read_batch` turns one file into `MessageRow`s (PRIVMSG, USERNOTICE, CLEARCHAT), `RemovalRow`s
(CLEARMSG, CLEARCHAT of a user) and the channel's room id, each keyed by `identity_key`. A file
holding one identity twice (one receiver's two sightings of an id-less line) gives one row: the
best version (`better`), which is also how a backend picks between two files' versions of a row.

Strings that a database cannot hold as text (NUL, lone surrogates, from a hand-made archive) are
made safe by `_safe` in the columns that are compared; the line itself is the file's JSON, which
is ASCII or valid UTF-8 and holds neither raw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from formats import speedups
from formats.canonical import decode_batch_fast, parse_batch
from index.api import MESSAGE_COMMANDS
from index.identity import id_key, id_key_scope, id_of_tags, identity_key, message_id
from index.text import fts_document, pg_words, text_words


class MessageRow(NamedTuple):
    key: int
    command: str
    time: float
    time_range: float
    msg_id: str | None
    user_id: str | None
    login: str | None
    recipient_id: str | None
    words: tuple[str, ...]
    line: str


class RemovalRow(NamedTuple):
    """A CLEARMSG (target_msg_id) or a CLEARCHAT of one user (target_user_id, else target_login)."""

    key: int
    time: float
    target_msg_id: str | None
    target_user_id: str | None
    target_login: str | None


class BatchRows(NamedTuple):
    messages: tuple[MessageRow, ...]
    removals: tuple[RemovalRow, ...]
    room_id: str | None
    records: int


# The columns of a row of the index's `messages` table, in order (index.base writes its SQL with
# them): a build inserts the rows `read_build` gives as plain tuples of these values, which the
# compiled scan makes too (native/index.c, ix_row)
MESSAGE_VALUES = (
    "id", "refs", "channel", "time", "time_range", "command", "msg_id", "user_id", "login", "recipient_id",
    "words", "line", "tier",
)  # fmt: skip


def message_values(channel: str, r: MessageRow, refs: int, tier: int, words: Any) -> tuple[Any, ...]:
    """A row of `messages` (MESSAGE_VALUES), its words as the backend stores them."""
    return (r.key, refs, channel, r.time, r.time_range, r.command, r.msg_id, r.user_id, r.login, r.recipient_id,
            words, r.line, tier)  # fmt: skip


class BuildRows(NamedTuple):
    """A file's rows as a build inserts them (`read_build`)."""

    messages: list[tuple[Any, ...]]  # one row of `messages` a key (MESSAGE_VALUES): 1 ref, main tier
    removals: tuple[RemovalRow, ...]
    room_id: str | None
    records: int


def _safe(value: Any) -> str | None:
    """A tag or parameter as a comparable text column: strings only, NUL and surrogates escaped."""
    if not isinstance(value, str):
        return None
    text: str = value
    if "\x00" in text or not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text


def _lower(value: Any) -> str | None:
    safe = _safe(value)
    return safe.lower() if safe else None


def text_of(record: Mapping[str, Any]) -> str:
    """The text of a chat line: its last parameter after the channel ("" when there is none)."""
    params = record.get("params") or []
    return params[-1] if len(params) > 1 and isinstance(params[-1], str) else ""


def author(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(user id, login) of the user a chat line is about: the sender of a PRIVMSG, the `login` tag's
    user of a USERNOTICE, the target of a CLEARCHAT."""
    tags = record.get("tags") or {}
    command = record.get("command")
    if command == "CLEARCHAT":
        params = record.get("params") or []
        return _safe(tags.get("target-user-id")), _lower(params[1]) if len(params) > 1 else None
    login = tags.get("login") if command == "USERNOTICE" and isinstance(tags.get("login"), str) else None
    return _safe(tags.get("user-id")), _lower(login if login is not None else record.get("sender"))


def message_row(record: Mapping[str, Any], line: str, channel: str) -> MessageRow:
    tags = record.get("tags") or {}
    user_id, login = author(record)
    command = record["command"]
    return MessageRow(
        key=identity_key(record, channel),
        command=command,
        time=float(record["time"]),
        time_range=float(record["time_range"]),
        msg_id=_safe(message_id(record)),
        user_id=user_id,
        login=login,
        recipient_id=_safe(tags.get("msg-param-recipient-id")) if command == "USERNOTICE" else None,
        words=tuple(text_words(text_of(record))),
        line=line,
    )


def privmsg_row_py(record: Mapping[str, Any], line: str, channel: str, id_scope: bytes) -> MessageRow:
    """`message_row` of a PRIVMSG, with less Python per record (the index build reads millions):
    the calls of `author`, `_safe`, `identity_key` and `text_of` inlined for plain values, each
    odd value handed to the function it stands for. `line` is the record's stored line (what
    `read_batch` pairs it with); `id_scope` is `identity_key`'s prefix of an id key for the channel
    (`id_key_scope`). Equal to `message_row` for every PRIVMSG (tests/test_index.py holds it to
    that). The reference; `privmsg_row` is its compiled twin (native/index.c) when built, which
    reads the fields from the line's bytes instead of the record."""
    tags = record["tags"]
    mid = id_of_tags(tags)
    user_id = None
    if tags:
        user_id = tags.get("user-id")
        if type(user_id) is not str:
            user_id = None
        elif "\x00" in user_id or not user_id.isascii():
            user_id = _safe(user_id)
    if mid is None:
        key = identity_key(record, channel)
        msg_id = None
    else:
        key = id_key(id_scope, mid)
        msg_id = mid if mid.isascii() and "\x00" not in mid else _safe(mid)
    sender = record["sender"]
    if type(sender) is str and sender.isascii() and "\x00" not in sender:
        login = sender.lower() or None
    else:
        login = _lower(sender)
    params = record["params"]
    text = params[-1] if len(params) > 1 and type(params[-1]) is str else ""
    return MessageRow(
        key,
        "PRIVMSG",
        float(record["time"]),
        float(record["time_range"]),
        msg_id,
        user_id,
        login,
        None,
        tuple(text_words(text)),
        line,
    )


privmsg_row = speedups.twin(privmsg_row_py, "index_privmsg_row", MessageRow)


def removal_row(record: Mapping[str, Any], channel: str) -> RemovalRow | None:
    """The removal a CLEARMSG or a CLEARCHAT of one user stands for; None for anything else."""
    tags = record.get("tags") or {}
    if record["command"] == "CLEARMSG":
        target = _safe(tags.get("target-msg-id"))
        if not target:
            return None
        return RemovalRow(identity_key(record, channel), float(record["time"]), target, None, None)
    if record["command"] == "CLEARCHAT":
        user_id, login = author(record)
        if not user_id and not login:
            return None  # chat cleared for everyone: not a removal here (api's docstring says why)
        return RemovalRow(identity_key(record, channel), float(record["time"]), None, user_id or None, login)
    return None


def better_version(a_range: float, a_line: str, b_range: float, b_line: str) -> bool:
    """Whether version a of one message (its time range and stored line) beats version b: the
    narrower range (a merge intersects ranges), then the longer line (a merge unites receivers),
    then the larger line, by code point. The one statement of the rule in Python; the backends'
    SQL says it once too (index.base, `version_order`), so the chosen version does not depend on
    the order files come in, nor on whether a build or an update chose it."""
    if a_range != b_range:
        return a_range < b_range
    if len(a_line) != len(b_line):
        return len(a_line) > len(b_line)
    return a_line > b_line


def better(a: MessageRow, b: MessageRow) -> bool:
    """Whether row a holds a better version of its message than row b (`better_version`)."""
    return better_version(a.time_range, a.line, b.time_range, b.line)


def read_batch(data: bytes, source: str, channel: str) -> BatchRows:
    """The rows of one batch file. Raises formats.errors.InputError (naming FILE:LINE) if damaged.

    With the compiled core, its scanner (`index_scan_rows`, native/index.c) reads the rows of the
    common PRIVMSG lines from the bytes, and only the other lines are decoded (`_read_scanned`);
    else, and for a file it does not read, `read_batch_py`. The two give equal rows (the twin test
    in tests/test_index.py)."""
    if _scan_rows is not None:
        rows: BatchRows | None = _read_scanned(_scan_rows, data, source, _Reader(channel))
        if rows is not None:
            return rows
    return read_batch_py(data, source, channel)


def read_build(data: bytes, source: str, channel: str, words: Callable[[Sequence[str]], Any]) -> BuildRows:
    """The rows of one batch file as a build inserts them, each row of `messages` a tuple of its
    values (MESSAGE_VALUES: one ref, the main tier, the words as `words` makes them). Raises
    formats.errors.InputError (naming FILE:LINE) if the file is damaged.

    With the compiled core and `words` one of index.text's forms it makes (fts_document,
    pg_words), its scan makes the tuples of the common PRIVMSG lines straight from the bytes,
    without a row or a string per word; else, and for a file it does not read, `read_build_py`.
    The two give equal rows (the twin test in tests/test_index.py)."""
    form = _WORD_FORMS.get(words)
    if _scan_rows is not None and form is not None:
        scan = _scan_rows
        built: BuildRows | None = _read_scanned(
            lambda d, scope: scan(d, scope, form, channel), data, source, _BuildReader(channel, words)
        )
        if built is not None:
            return built
    return read_build_py(data, source, channel, words)


def read_build_py(data: bytes, source: str, channel: str, words: Callable[[Sequence[str]], Any]) -> BuildRows:
    """`read_build` from `read_batch_py`'s rows: the reference."""
    rows = read_batch_py(data, source, channel)
    return BuildRows(
        [message_values(channel, r, 1, 1, words(r.words)) for r in rows.messages],
        rows.removals,
        rows.room_id,
        rows.records,
    )


def read_batch_py(data: bytes, source: str, channel: str) -> BatchRows:
    """`read_batch` from the decoded records: the reference, and the path for any file."""
    fast = decode_batch_fast(data)
    records = fast if fast is not None else parse_batch(data, source)
    lines = data.decode("utf-8", "surrogateescape").split("\n") if records else []
    reader = _Reader(channel)
    for record, line in zip(records, lines, strict=False):
        reader.record(record, line)
    result: BatchRows = reader.result(len(records))
    return result


class _Reader:
    """The rows of one file, fed its records (and rows read from lines) in order."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.id_scope = id_key_scope(channel)
        self.messages: dict[int, MessageRow] = {}
        self.removals: dict[int, RemovalRow] = {}
        self.room_id: str | None = None

    def row(self, row: MessageRow) -> None:
        old = self.messages.get(row.key)
        if old is None or better(row, old):
            self.messages[row.key] = row

    def scanned(self, row: Any) -> None:
        """A row the compiled scan read (a MessageRow here)."""
        self.row(row)

    def record(self, record: Mapping[str, Any], line: str) -> None:
        command = record["command"]
        tags = record["tags"]
        if self.room_id is None and tags and isinstance(tags.get("room-id"), str):
            self.room_id = _safe(tags["room-id"])
        if command == "PRIVMSG":
            self.row(privmsg_row(record, line, self.channel, self.id_scope))
        elif command in MESSAGE_COMMANDS:
            self.row(message_row(record, line, self.channel))
        if command in ("CLEARMSG", "CLEARCHAT"):
            removal = removal_row(record, self.channel)
            if removal is not None:
                self.removals[removal.key] = removal

    def result(self, records: int) -> Any:
        return BatchRows(tuple(self.messages.values()), tuple(self.removals.values()), self.room_id, records)


class _BuildReader(_Reader):
    """`_Reader` for `read_build`: rows become build tuples (MESSAGE_VALUES) as they come, the best
    version of each key kept (`better_version`)."""

    def __init__(self, channel: str, words: Callable[[Sequence[str]], Any]) -> None:
        super().__init__(channel)
        self.words = words
        self.values: dict[int, tuple[Any, ...]] = {}

    def row(self, row: MessageRow) -> None:
        self.scanned(message_values(self.channel, row, 1, 1, self.words(row.words)))

    def scanned(self, row: Any) -> None:
        key, old = row[0], self.values.get(row[0])
        if old is None:
            self.values[key] = row
            return
        if better_version(row[4], row[11], old[4], old[11]):  # time_range and line (MESSAGE_VALUES)
            self.values[key] = row

    def result(self, records: int) -> BuildRows:
        return BuildRows(list(self.values.values()), tuple(self.removals.values()), self.room_id, records)


ScanRows = Callable[[bytes, bytes], tuple[list[Any], tuple[int, str] | None] | None]


def _read_scanned(scan: ScanRows, data: bytes, source: str, reader: _Reader) -> Any:
    """`read_batch` (or `read_build`, by `reader`) with `scan` reading the rows of the PRIVMSG lines
    it can; the other lines decoded together (`decode_batch_fast`). None when `scan` does not read
    the file or the other lines do not decode so (then the reference reads it, and names what is
    wrong)."""
    scanned = scan(data, reader.id_scope)
    if scanned is None:
        return None
    rows, room = scanned
    others = [i for i, row in enumerate(rows) if row is None]
    records: list[dict[str, Any]] = []
    raw: list[bytes] = []
    if others:
        raw = data.split(b"\n")
        decoded = decode_batch_fast(b"".join(raw[i] + b"\n" for i in others))
        if decoded is None:
            return None
        records = decoded
    room_at = room[0] if room is not None else len(rows)
    found = 0
    for i, row in enumerate(rows):
        if row is not None:
            reader.scanned(row)
            continue
        if reader.room_id is None and i > room_at and room is not None:
            reader.room_id = room[1]  # the first room id is on a line read by the scan
        reader.record(records[found], raw[i].decode("utf-8", "surrogateescape"))
        found += 1
    if reader.room_id is None and room is not None:
        reader.room_id = room[1]
    return reader.result(len(rows))


_scan_rows: Any = speedups.compiled("index_scan_rows")
# the forms of a build's words the scan makes (index.text's functions), by its number for each
_WORD_FORMS: dict[Callable[[Sequence[str]], Any], int] = {fts_document: 1, pg_words: 2}
