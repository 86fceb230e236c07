"""The index's public interface: what a search index of the archive answers, and the rows it answers with.

The index is derived from the archive's batch files and is never the source of truth: it can be
dropped and rebuilt from them at any time. Two backends implement `ChatIndex` (SQLite with FTS5,
one file beside the archive; PostgreSQL, shared), and one test suite runs against both.

What is indexed: the chat lines people search for, `PRIVMSG`, `USERNOTICE` and `CLEARCHAT`
(justlog's log lines), each one `Message` row; `CLEARMSG` and `CLEARCHAT` are also read as
removals. A message is *removed* when a `CLEARMSG` of its channel names its id
(`target-msg-id`), or when a `CLEARCHAT` of its channel targeting its author (`target-user-id`,
else the login in the second parameter) was sent at or after it. A `CLEARCHAT` of everyone
("chat cleared") is a row but removes nothing here: it would strike out a channel's whole history.

Identity: a row is keyed by the message's identity (its `id` tag; for an id-less record its
content key with its exact time and range, as the merge groups it), so a merged, synced or
duplicated batch file never adds a second row, and a row disappears only when no batch file
holding it remains.

Users: `user_id` is the author's `user-id` tag (for a `CLEARCHAT`, `target-user-id`), `login`
the author's login (the IRC prefix nick; `login` tag of a `USERNOTICE`; a `CLEARCHAT`'s second
parameter), lower case. A user filter by id also matches a gift's recipient
(`msg-param-recipient-id`), as justlog's user logs do.

Text search: see `index.text`. A query is words and "quoted phrases"; all must occur. A word is a
run of characters other than white space and `. , ! ? "`, compared case-insensitively
(`str.casefold`), so emotes (`Kappa`, `:)`, `<3`) are words. A query never reaches the database
as syntax: it is parsed into terms, passed as bound parameters or quoted FTS tokens.

Times are Unix seconds (UTC) as the archive's `time` (the start of the message's range, which is
the exact server time `tmi-sent-ts` for chat lines). Windows are half-open `[since, until)`.
Ordering is by (time, key), newest first unless `oldest_first`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

# The commands that become Message rows, and the ones read as removals.
MESSAGE_COMMANDS = frozenset(("PRIVMSG", "USERNOTICE", "CLEARCHAT"))
REMOVAL_COMMANDS = frozenset(("CLEARMSG", "CLEARCHAT"))

# At most this many terms in one text query (a QueryError beyond); far more than anyone types.
MAX_TERMS = 32


class ChatIndexError(Exception):
    """Root of the index's errors."""


class QueryError(ChatIndexError, ValueError):
    """The caller asked something the index cannot answer (too many terms, a bad window...)."""


class IndexDamaged(ChatIndexError):
    """The index file or database is unreadable or inconsistent; rebuild it from the archive."""


class IndexUnavailable(ChatIndexError):
    """The backend cannot be used here (no FTS5 in this SQLite, psycopg missing, server down)."""


@dataclass(frozen=True)
class Channel:
    """A channel of the archive: its folder name (the login) and its Twitch id when the archive says
    (`room-id` tag), else None."""

    login: str
    room_id: str | None


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int  # 1..12


@dataclass(frozen=True, order=True)
class Day:
    year: int
    month: int
    day: int


@dataclass(frozen=True)
class NameSeen:
    """One login a user id was seen with, and when (first and last message time)."""

    login: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class DayCount:
    day: Day
    messages: int


@dataclass(frozen=True)
class Chatter:
    user_id: str | None
    login: str | None
    messages: int


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel figures over a window: messages per UTC day (oldest first) and the top chatters
    (most messages first, ties by login). Counts cover PRIVMSG and USERNOTICE rows."""

    channel: str
    total: int
    per_day: tuple[DayCount, ...]
    top_chatters: tuple[Chatter, ...]


@dataclass(slots=True)
class Message:
    """One indexed chat line, with what justlog's JSON needs. (Not frozen: a user's month makes
    thousands, and a frozen dataclass's `__init__` sets each field through `object.__setattr__`,
    four times the cost.)

    `line` is the archive's canonical JSON record (the version from the most recently indexed batch
    file holding it); `record` parses it, and `export.formats.irc_line(message.record)` rebuilds the
    raw IRC line (tags in sorted order, values escaped). `tags` values are strings, or True for a
    tag written without `=`. `text` is the trailing parameter verbatim (a `/me` keeps its
    `\\x01ACTION ...\\x01` wrapper; a CLEARCHAT's text is the target login or ""). `removed` says a
    CLEARMSG or a CLEARCHAT of the author removed it, `removed_at` the earliest such removal's time.
    """

    key: int  # the identity, a signed 64-bit integer; also the tie-breaker of the order
    channel: str
    command: str  # PRIVMSG, USERNOTICE or CLEARCHAT
    time: float
    time_range: float
    msg_id: str  # the `id` tag, "" when absent
    user_id: str | None
    login: str | None
    display_name: str  # `display-name` tag, else the login, else ""
    room_id: str | None
    text: str
    tags: Mapping[str, str | bool] = field(hash=False, compare=False)
    line: str
    removed: bool
    removed_at: float | None

    @property
    def record(self) -> dict[str, Any]:
        """The archive record this row was read from."""
        result: dict[str, Any] = json.loads(self.line)
        return result

    @property
    def timestamp(self) -> datetime:
        """The server time as an aware UTC datetime (justlog's `timestamp`)."""
        return datetime.fromtimestamp(self.time, UTC)


@dataclass(frozen=True)
class Query:
    """What `ChatIndex.messages` selects. Every field narrows; None means no condition.

    `user_id` matches the author (or a CLEARCHAT's target, or a gift's recipient); `login` matches
    the author's login (lower-cased before comparing); `text` is a user's query string (words and
    "quoted phrases", parsed by `index.text.parse_query`); `since`/`until` a half-open window on
    `time`. `include_removed=False` leaves removed messages out. `commands` defaults to all of
    MESSAGE_COMMANDS. `offset` skips that many rows of the ordered answer before `limit` applies.
    """

    channel: str | None = None
    user_id: str | None = None
    login: str | None = None
    text: str | None = None
    since: float | None = None
    until: float | None = None
    commands: frozenset[str] = MESSAGE_COMMANDS
    include_removed: bool = True
    oldest_first: bool = False
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class UpdateReport:
    """What an update did: batch files read, dropped (gone from the archive), message rows written
    (new, or another file's copy of a row) and removed, problems (FILE:LINE: what) met on the way;
    an unreadable file is skipped, never fatal."""

    files_added: int = 0
    files_removed: int = 0
    rows_written: int = 0
    rows_removed: int = 0
    records_read: int = 0
    problems: tuple[str, ...] = ()
    rebuilt: bool = False


# the live follower settles the recent tier once it holds this many rows (10 minutes at 100/s)
SETTLE_ROWS = 60_000


@runtime_checkable
class ChatIndex(Protocol):
    """A search index over one archive. Open one with `index.open_index(root, url)`.

    Reads are safe from several threads when each thread opens its own index (SQLite) or shares
    one (PostgreSQL connections are per call). `update` is incremental; `rebuild` drops everything
    and reads the archive again. Every read answers from what the last update saw.
    """

    root: str
    description: str  # "sqlite:PATH" or "postgresql://user@host/db" (never a password)

    def update(self, channels: Sequence[str] | None = None) -> UpdateReport:
        """Bring the index up to date with the archive's batch files (all channels, or these)."""
        ...

    def update_minutes(self, channel: str, minutes: Iterable[int]) -> UpdateReport:
        """Re-read the batch files of these minutes (batch times) of one channel and of the minutes
        beside them (a merge rewrites those too), dropping files that are gone: the live
        follower's cheap update after it writes and merges minutes."""
        ...

    def recent_rows(self) -> int:
        """How many rows updates wrote since the last `settle` (the recent tier)."""
        ...

    def settle(self, min_rows: int = 0) -> int:
        """Move the recent tier's rows into the main tier, if it holds at least `min_rows`; the
        rows moved. Answers never change; it keeps a live minute's update cheap (index.base, Two
        tiers). The follower calls it after indexing a minute; `index` after an update."""
        ...

    def rebuild(self, lines_by_user: bool | None = None) -> UpdateReport:
        """Drop everything and index the archive from scratch (with lines by user or not, when said;
        else as before: see `set_lines_by_user`)."""
        ...

    @property
    def lines_by_user(self) -> bool:
        """Whether the index keeps a copy of the lines ordered by user (`set_lines_by_user`)."""
        ...

    def set_lines_by_user(self, on: bool) -> None:
        """Keep a copy of the lines ordered by user, or stop: a user's month then reads a few pages
        in a row, not a page a line (in memory or not: it matters most when the index is larger
        than the host's memory), for about the lines' size on disk and a slower build. SQLite's;
        a PostgreSQL index refuses it (QueryError). The index keeps the choice, a rebuild too."""
        ...

    def check(self) -> None:
        """Raise IndexDamaged if the index is unreadable or inconsistent."""
        ...

    def channels(self) -> list[Channel]:
        """Every channel with indexed messages, by login."""
        ...

    def user_months(self, channel: str, user_id: str) -> list[Month]:
        """The UTC months in which the user has rows in the channel, newest first."""
        ...

    def user_months_by_login(self, channel: str, login: str) -> list[Month]:
        """As user_months, matching the author's login (for archives without user ids)."""
        ...

    def channel_days(self, channel: str) -> list[Day]:
        """The UTC days on which the channel has rows, newest first."""
        ...

    def messages(self, query: Query) -> list[Message]:
        """The rows the query selects, in its order, after offset and limit."""
        ...

    def count(self, query: Query) -> int:
        """How many rows the query selects (ignoring offset and limit)."""
        ...

    def random_message(
        self, channel: str, user_id: str | None = None, seed: int | None = None, total: int | None = None
    ) -> Message | None:
        """One row chosen uniformly from the channel's rows (or that user's), None if there is none.
        `total` is their count when the caller has it (`count`): several picks, one count."""
        ...

    def user_id_of(self, login: str) -> str | None:
        """The user id that most recently used this login (case-insensitive), or None."""
        ...

    def login_of(self, user_id: str) -> str | None:
        """The login this user id used most recently, or None."""
        ...

    def name_history(self, user_id: str) -> list[NameSeen]:
        """Every login this user id was seen with, oldest first."""
        ...

    def channel_stats(
        self, channel: str, since: float | None = None, until: float | None = None, top: int = 10
    ) -> ChannelStats:
        """Messages per day and the top chatters of a channel over a window."""
        ...

    def close(self) -> None: ...


def day_of_number(day_number: int) -> Day:
    """The Day of a day number (days since 1970-01-01)."""
    d = datetime.fromtimestamp(day_number * 86400, UTC)
    return Day(d.year, d.month, d.day)
