"""What both backends share: keeping the index in step with the archive, and the queries in SQL.

Theory of operation
-------------------
The index is a function of the set of batch files present. Each file indexed is a row of `files`
holding the keys of the rows it contributed; each message or removal row counts the files that
hold it (`refs`). Updating is a set difference between the files on disk and the files indexed:
new files add their rows (a key already present gets `refs + 1` and keeps the better version,
`on_conflict_messages`), files gone release theirs (`refs - 1`; at 0 the row goes). New files are applied
before gone ones, so a merge that replaces A and B by C never drops and re-adds a row. Names are
content hashes, so a path seen once never needs reading again.

An empty index is built in bulk, in one transaction (see Building): a crash or a kill leaves the
empty index it started from, which the next update builds again, never a partial one.

The SQL is written once, with `?` placeholders (the PostgreSQL backend turns them into `%s`);
the backends supply the column types, the text search clause and the connection.

Two tiers, one table
--------------------
A live minute's rows would each land on a random page of the user and login indexes (they are in
user order), so a minute dirtied a page per row in each, tens of MB of log at a million rows.
So `tier` leads those two indexes: rows written by an update are *recent* (tier 0) and go to
the small tier-0 end of each index, whose pages stay in cache; `settle` moves them to tier 1 in
one statement, touching each page of the big end once for many rows (the follower calls it every
few thousand rows, after a minute is indexed). A bulk build writes tier 1 directly. (PostgreSQL
writes tier 1 always, see index.pg.) Every query
on those indexes says `tier IN (0, 1)` (a CHECK makes it always true), so it reads both ends and
answers as one table would. The identity index stays one (a key must be unique across tiers):
it is the one index a live row still dirties at random.

Building
--------
A build (new files into an empty index) is most of a host's indexing work, and keeping six
B-trees and a text index in step row by row is what made it slow: rows land at random places of
the identity (a hash) and user indexes. So a build writes differently, in one transaction:
the identity, channel, user and login indexes are dropped (PostgreSQL: a side table without them
is filled instead, committed by a second connection that makes its word index while the build's
transaction makes the others, and swapped in at the end, so readers never wait for the build); each
file's rows are appended with plain inserts (PostgreSQL: COPY), made ready to insert by the
processes that read the files (`build_file`), so the writer binds values and nothing else; then
each index is built once, by sorting. Files are not merged row by row on the way: a message held
by several files (an unmerged archive, a synced copy) is inserted once per file, and when the
identity index finds keys twice, `_merge_duplicates` keeps each key's best version
(`best_of_duplicates`) with the number of files holding it, as the upserts of an update would have. The
transaction is the crash safety: killed at any point, the index is the empty one it was, and the
next update builds it again (PostgreSQL: a side table left committed is dropped then).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import threading
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import orjson

from formats.canonical import batch_relpath
from formats.errors import InputError
from formats.store import hour_batch_files, list_channels, list_hours
from index.api import (
    MESSAGE_COMMANDS,
    Channel,
    ChannelStats,
    Chatter,
    Day,
    DayCount,
    IndexDamaged,
    Message,
    Month,
    NameSeen,
    Query,
    QueryError,
    UpdateReport,
    day_of_number,
)
from index.extract import (
    MESSAGE_VALUES,
    BatchRows,
    BuildRows,
    MessageRow,
    RemovalRow,
    better,
    message_values,
    read_batch,
    read_build,
    text_of,
)
from index.identity import message_id
from index.text import Term, parse_query

SCHEMA_VERSION = 3  # 3: the tier column (see Two tiers)
FLUSH_ROWS = 50_000  # rows per transaction while indexing
POOL_MIN_FILES = 32  # new files from which worker processes read them (starting them costs ~0.3 s)
CHAT_COMMANDS = ("PRIVMSG", "USERNOTICE")  # the lines a removal can strike, and stats count

# A removal strikes a chat line three ways: a CLEARMSG of its id; a CLEARCHAT of its user id at or
# after it; of its login, by a CLEARCHAT that names no id, at or after it (`messages` reads when,
# `_removed_at`; a query leaving removed lines out says so in SQL)
_REMOVED_EXISTS = (
    "EXISTS (SELECT 1 FROM removals r WHERE r.channel = m.channel AND r.target_msg_id = m.msg_id)",
    "EXISTS (SELECT 1 FROM removals r WHERE r.channel = m.channel AND r.target_user_id = m.user_id"
    " AND r.time >= m.time)",
    "EXISTS (SELECT 1 FROM removals r WHERE r.channel = m.channel AND r.target_user_id IS NULL"
    " AND r.target_login = m.login AND r.time >= m.time)",
)
_CHAT_IN = "m.command IN ('PRIVMSG', 'USERNOTICE')"

MESSAGE_COLUMNS = ", ".join(MESSAGE_VALUES)
TIERS = "tier IN (0, 1)"  # always true (a CHECK): it lets the user and login indexes be read at both ends


def version_order(row: str, order_text: Callable[[str], str]) -> tuple[tuple[str, str], ...]:
    """The version rule (extract.better_version) over the columns of `row` (a table or alias): its
    terms as (expression, direction), best first. `order_text` is the backend's code-point order
    of text (SqlIndex._order_text): PostgreSQL's default collation may order otherwise. The SQL's
    two forms of the rule (`better_sql`, `best_of_duplicates`) are made from it."""
    return (
        (f"{row}.time_range", "ASC"),
        (f"length({row}.line)", "DESC"),
        (order_text(f"{row}.line"), "DESC"),
    )


def better_sql(a: str, b: str, order_text: Callable[[str], str]) -> str:
    """An SQL condition: the version in row `a` beats the one in row `b` (extract.better_version)."""
    condition = ""
    terms = zip(version_order(a, order_text), version_order(b, order_text), strict=True)
    for (x, direction), (y, _) in reversed(list(terms)):
        beats = f"{x} {'<' if direction == 'ASC' else '>'} {y}"
        condition = f"({beats} OR ({x} = {y} AND {condition}))" if condition else beats
    return condition


def on_conflict_messages(order_text: Callable[[str], str]) -> str:
    """The end of an upsert of `messages`: one more file holds the row, and the better version wins."""
    better = better_sql("excluded", "messages", order_text)
    return (
        "ON CONFLICT (id) DO UPDATE SET refs = messages.refs + excluded.refs,"
        f" time = CASE WHEN {better} THEN excluded.time ELSE messages.time END,"
        f" line = CASE WHEN {better} THEN excluded.line ELSE messages.line END,"
        f" time_range = CASE WHEN {better} THEN excluded.time_range ELSE messages.time_range END"
    )


def best_of_duplicates(table: str, row: str, order_text: Callable[[str], str]) -> str:
    """A query of the best version of each key that several rows of `table` (a build's `messages`)
    hold (extract.better_version): the key, the row to keep (`row`: the backend's row identity)
    and the number of files holding the key (see Building)."""
    order = ", ".join(f"{x} {direction}" for x, direction in version_order(table, order_text))
    return (
        f"SELECT id, ref, total FROM (SELECT id, {row} AS ref, sum(refs) OVER per_key AS total,"
        f" count(*) OVER per_key AS n, row_number() OVER (PARTITION BY id ORDER BY {order}) AS r"
        f" FROM {table} WINDOW per_key AS (PARTITION BY id)) AS ranked WHERE n > 1 AND r = 1"
    )


class TableIndex(NamedTuple):
    """An index of one of the tables, named `TABLE_SUFFIX`: `create` makes it on the table, or on
    another of the same columns under that table's name (PostgreSQL builds into a side table)."""

    table: str
    suffix: str
    key: tuple[str, ...]
    where: str = ""
    using: str = ""

    @property
    def name(self) -> str:
        return self.named(self.table)

    def named(self, table: str) -> str:
        return f"{table}_{self.suffix}"

    def create(self, table: str | None = None) -> str:
        on = table or self.table
        using = f" USING {self.using}" if self.using else ""
        where = f" WHERE {self.where}" if self.where else ""
        return f"CREATE INDEX IF NOT EXISTS {self.named(on)} ON {on}{using} ({', '.join(self.key)}){where}"


SECONDARY_INDEXES = (
    TableIndex("messages", "channel", ("channel", "time", "id")),
    TableIndex("messages", "user", ("tier", "user_id", "channel", "time"), "user_id IS NOT NULL"),
    TableIndex("messages", "login", ("tier", "login", "time"), "login IS NOT NULL"),
    TableIndex("messages", "recent", ("id",), "tier = 0"),
    TableIndex("messages", "recipient", ("recipient_id", "channel", "time"), "recipient_id IS NOT NULL"),
    TableIndex("removals", "msg", ("channel", "target_msg_id"), "target_msg_id IS NOT NULL"),
    TableIndex("removals", "user", ("channel", "target_user_id", "time"), "target_user_id IS NOT NULL"),
    TableIndex("removals", "login", ("channel", "target_login", "time"), "target_user_id IS NULL"),
    TableIndex("files", "minute", ("channel", "batch_time")),
)
# The columns `messages` reads a row by (message_from_row and _removed_at take them in this order),
# and those of them the user index does not hold as its key: SQLite's carries them (index.sqlite)
ROW_COLUMNS = ("id", "channel", "command", "user_id", "login", "line", "msg_id", "time")
USER_ROW_COLUMNS = tuple(column for column in ROW_COLUMNS if column not in SECONDARY_INDEXES[1].key)
# What a build drops and makes at its end, by sorting (see Building); the partial indexes hold few
# rows (none of the recent tier in a build), so keeping them costs less than a scan of the table each
BUILT_AT_END = SECONDARY_INDEXES[:3]


def index_name(statement: str) -> str:
    """The name of the index a `CREATE [UNIQUE] INDEX IF NOT EXISTS name ...` statement makes."""
    return statement.split(" EXISTS ", 1)[1].split(" ", 1)[0]


@dataclass(frozen=True)
class DiskFile:
    relpath: str  # CHANNEL/chat/HOUR/NAME, the files table's key
    channel: str
    batch_time: int


@dataclass
class _Pending:
    """Rows of new files not yet written: per key the best version and how many files hold it."""

    messages: dict[int, list[Any]] = field(default_factory=dict)  # key -> [channel, row, files holding it]
    removals: dict[int, list[Any]] = field(default_factory=dict)
    files: list[tuple[str, str, int, bytes, bytes]] = field(default_factory=list)
    rooms: dict[str, str] = field(default_factory=dict)
    size: int = 0


class BuildFile(NamedTuple):
    """One file's rows as a build inserts them (`build_file`): plain tuples, cheap to pickle."""

    messages: list[Any]  # rows of `messages` as the backend's `pack` made them (SqlIndex._build_pack)
    message_count: int  # how many rows `messages` holds
    removals: list[tuple[Any, ...]]  # rows of `removals`: id, refs, channel, time, targets
    room_id: str | None
    records: int
    message_keys: bytes
    removal_keys: bytes


def build_file(rows: BuildRows, channel: str, pack: Callable[[list[tuple[Any, ...]]], list[Any]]) -> BuildFile:
    """A file's rows as a build inserts them: `read_build`'s rows of `messages` as the backend's
    `pack` makes them ready for its writer (SQLite: groups of rows, one INSERT each; PostgreSQL:
    their COPY data), the rest as plain tuples."""
    return BuildFile(
        pack(rows.messages),
        len(rows.messages),
        [(r.key, 1, channel, r.time, r.target_msg_id, r.target_user_id, r.target_login) for r in rows.removals],
        rows.room_id,
        rows.records,
        _keys_blob(r[0] for r in rows.messages),
        _keys_blob(r.key for r in rows.removals),
    )


def _keys_blob(keys: Iterable[int]) -> bytes:
    return array("q", keys).tobytes()


def _blob_keys(blob: bytes) -> list[int]:
    keys = array("q")
    keys.frombytes(bytes(blob))
    return keys.tolist()


def scan_archive(root: str, channels: Sequence[str] | None = None) -> dict[str, DiskFile]:
    """The batch files of the archive (these channels only, if given), by relative path."""
    found: dict[str, DiskFile] = {}
    for channel in list_channels(root) if channels is None else channels:
        for hour in list_hours(root, channel):
            for bf in hour_batch_files(root, channel, hour):
                rel = f"{channel}/chat/{hour}/{os.path.basename(bf.path)}"
                found[rel] = DiskFile(rel, channel, bf.batch_time)
    return found


def minute_files(root: str, channel: str, minutes: Iterable[int]) -> dict[str, DiskFile]:
    """The batch files of these minutes of one channel, by relative path."""
    found: dict[str, DiskFile] = {}
    wanted = set(minutes)
    for hour in sorted({_hour_name(m) for m in wanted}):
        for bf in hour_batch_files(root, channel, hour):
            if bf.batch_time in wanted:
                rel = f"{channel}/chat/{hour}/{os.path.basename(bf.path)}"
                found[rel] = DiskFile(rel, channel, bf.batch_time)
    return found


def read_file(path: str, channel: str, read: Callable[[bytes, str, str], Any] = read_batch) -> tuple[Any, str | None]:
    """(rows, None) of a batch file (`read`'s: read_batch's, or another reading of it); (None, None)
    if it is gone; (None, problem) if unreadable."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        return read(data, path, channel), None
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"{path}: cannot read: {e.strerror}"
    except InputError as e:
        return None, str(e)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def extract_jobs() -> int:
    """Worker processes for reading many files: one per core beside the writer's, at most 3 (the
    writer is one process; beyond a few readers it is the bottleneck). 0: read in this process."""
    return max(0, min(3, _cores() - 1))


def build_jobs() -> int:
    """Worker processes for reading a build's files: one per core, at most 3. A build's writer
    spends its load binding values and in the database's C (about 40% of a reader's time a row),
    so a reader per core keeps every core busy; with one core, reading in this process spares
    the pickling."""
    cores = _cores()
    return 0 if cores < 2 else min(3, cores)


def _read_in_worker(job: tuple[str, str]) -> tuple[Any, str | None]:
    """`read_file` in a worker: rows travel as plain tuples (a NamedTuple pickles at twice the cost)."""
    rows, problem = read_file(*job)
    if rows is None:
        return None, problem
    return (tuple(map(tuple, rows.messages)), tuple(map(tuple, rows.removals)), rows.room_id, rows.records), None


def _plain_rows(plain: Any) -> BatchRows:
    messages, removals, room_id, records = plain
    return BatchRows(tuple(map(MessageRow._make, messages)), tuple(map(RemovalRow._make, removals)), room_id, records)


def build_read(
    job: tuple[str, str, Callable[[Sequence[str]], Any], Callable[[list[Any]], list[Any]]],
) -> tuple[BuildFile | None, str | None]:
    """`read_file` for a build, made into `build_file`'s rows (in a worker: the rows travel as the
    backend's writer takes them, a few objects a file, not a tuple of strings a row to unpickle)."""
    path, channel, words, pack = job
    rows, problem = read_file(path, channel, lambda data, source, ch: read_build(data, source, ch, words))
    return (None if rows is None else build_file(rows, channel, pack)), problem


@contextmanager
def _without_gc() -> Iterator[None]:
    """The cyclic garbage collector off: reading and writing rows makes millions of tuples and
    strings, none in a cycle, and each collection walks every one still held (the rows in flight),
    which measured a third of a reader's time. Worker processes run with it off."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _read_in_workers(
    root: str, new: list[str], disk: dict[str, DiskFile], jobs: int, task: Callable[[Any], Any], *extra: Any
) -> Iterator[tuple[str, DiskFile, Any, str | None]]:
    """Decoding and cutting a file into rows is most of an index build's Python; worker processes
    do it (`task` of (path, channel, *extra)) for many files while this process writes, in file
    order, with a few files in flight (so a writer slower than its readers never holds the whole
    archive's rows)."""
    window = 2 * jobs + 2
    # forkserver: safe when the parent runs threads (serve and the checkpointer do), cheap to start
    with ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context("forkserver"), initializer=gc.disable
    ) as pool:
        queue: deque[tuple[str, Future[tuple[Any, str | None]]]] = deque()
        todo = iter(new)
        for rel in todo:
            queue.append((rel, pool.submit(task, (os.path.join(root, rel), disk[rel].channel, *extra))))
            if len(queue) >= window:
                break
        while queue:
            rel, future = queue.popleft()
            for more in todo:
                queue.append((more, pool.submit(task, (os.path.join(root, more), disk[more].channel, *extra))))
                break
            result, problem = future.result()
            yield rel, disk[rel], result, problem


def _readable(
    read: Iterable[tuple[str, DiskFile, Any, str | None]], problems: list[str]
) -> Iterator[tuple[str, DiskFile, Any]]:
    """The files read (rel, file, rows), their problems put in `problems`; a file merged away since
    the listing is passed over (the next update sees its replacement)."""
    for rel, f, rows, problem in read:
        if problem is not None:
            problems.append(problem)
        elif rows is not None:
            yield rel, f, rows


def _hour_name(batch_time: int) -> str:
    return batch_relpath(batch_time, "")[0]


def message_from_row(row: Sequence[Any], removed_at: float | None) -> Message:
    """A Message from a row of `messages`' SELECT (its key, channel, command, author: `user_id` and
    `login`, which extract.author made from the same line when it was indexed, and stored line)
    and when it was first removed."""
    key, channel, command, user_id, login, line = row[:6]
    record = orjson.loads(line)
    tags = record.get("tags") or {}
    display = tags.get("display-name")
    if not isinstance(display, str) or not display:
        display = login or ""
    mid = message_id(record) or ""
    room = tags.get("room-id")
    return Message(
        key=key,
        channel=channel,
        command=command,
        time=float(record["time"]),
        time_range=float(record["time_range"]),
        msg_id=mid,
        user_id=user_id,
        login=login,
        display_name=display,
        room_id=room if isinstance(room, str) else None,
        text=text_of(record),
        tags=tags,
        line=line,
        removed=removed_at is not None,
        removed_at=removed_at,
    )


class SqlIndex:
    """The shared body of the two backends. Subclasses provide the connection and dialect hooks."""

    root: str
    description: str
    recent_tier = True  # whether updates write recent rows (tier 0): see Two tiers

    @property
    def lines_by_user(self) -> bool:
        return False

    def set_lines_by_user(self, on: bool) -> None:
        raise NotImplementedError

    def _user_rows_sources(self) -> list[tuple[str, str]]:
        """How a user's own rows are read (`split_user_reads`): a FROM for each tier condition."""
        return [("messages m", TIERS)]

    split_user_reads = False  # a user's rows read by two SELECTs, not one OR (SqliteIndex, lines by user)

    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.RLock()

    # -- dialect hooks -----------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def _execmany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run a statement once per row; the number of rows it changed."""
        raise NotImplementedError

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    def _text_clause(self, terms: list[Term]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def _in_values(self, column: str, values: list[Any]) -> tuple[str, Any]:
        """`column IN values` as SQL whose text does not depend on how many (so it is prepared
        once) and the one parameter it takes."""
        raise NotImplementedError

    def _messages_source(self, query: Query) -> str:
        """The FROM of `messages`: a backend may name the index to walk (a plan, never a different answer)."""
        return "messages m"

    def _page_keys(self, query: Query) -> list[int] | None:
        """The keys of a limited query's page, in no order, if the backend finds them another way than
        by its plan of `messages` (the same answer, sooner); None: by that plan."""
        return None

    def _words_value(self, words: Sequence[str]) -> Any:
        raise NotImplementedError

    def _day_expr(self) -> str:
        raise NotImplementedError

    def _order_text(self, column: str) -> str:
        """`column` (text) as it orders by code point, as Python's `<` does (extract.better_version)."""
        return column

    def _create_schema(self) -> None:
        raise NotImplementedError

    def _drop_all(self) -> None:
        raise NotImplementedError

    # -- building hooks (see Building) --------------------------------------------------------

    def _build_words(self) -> Callable[[Sequence[str]], Any]:
        """The module-level function making a row's `words` value in a build (it crosses to the readers)."""
        raise NotImplementedError

    @contextmanager
    def _building(self) -> Iterator[None]:
        """The one transaction of a build, with the backend's settings for it."""
        raise NotImplementedError
        yield

    def _begin_build(self) -> None:
        """In the build's transaction, before the rows: drop the indexes built at the end."""
        raise NotImplementedError

    def _build_pack(self) -> Callable[[list[tuple[Any, ...]]], list[Any]]:
        """The module-level function making a file's rows (MESSAGE_VALUES tuples) ready for
        `_insert_built`, in the readers."""
        raise NotImplementedError

    def _insert_built(self, packed: list[Any]) -> None:
        """Append a file's rows of `messages` (as `_build_pack` made them), with no upsert: as each
        file comes, so the database works while the readers read."""
        raise NotImplementedError

    def _flush_built(self) -> None:
        """Finish what `_insert_built` began (before other statements: the files and removals)."""

    def _loaded(self) -> None:
        """In the build's transaction: the rows are in, the indexes are made next (by sorting)."""

    def _unique_keys(self) -> bool:
        """Make `messages.id` unique again (its index, or key); False, and nothing made, if a key is twice."""
        raise NotImplementedError

    def _merge_duplicates(self) -> None:
        """Of each key held by several rows, keep the best version (`best_of_duplicates`) with the sum of
        their `refs`, and delete the others (see Building)."""
        raise NotImplementedError

    def _end_build(self) -> None:
        """In the build's transaction, after the rows and the identity key: the other indexes."""
        raise NotImplementedError

    def _write_messages(self, rows: list[tuple[str, MessageRow, int]]) -> int:
        return self._execmany(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" {on_conflict_messages(self._order_text)}",
            (self._message_values(channel, r, n) for channel, r, n in rows),
        )

    def _message_values(self, channel: str, r: MessageRow, n: int) -> tuple[Any, ...]:
        """A row of `messages` an update writes (recent tier where the backend keeps one)."""
        return message_values(channel, r, n, 0 if self.recent_tier else 1, self._words_value(r.words))

    def _write_removals(self, rows: list[tuple[str, RemovalRow, int]]) -> None:
        self._execmany(
            "INSERT INTO removals (id, refs, channel, time, target_msg_id, target_user_id, target_login)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET refs = removals.refs + excluded.refs",
            ((r.key, n, channel, r.time, r.target_msg_id, r.target_user_id, r.target_login) for channel, r, n in rows),
        )

    def _release(self, table: str, counts: dict[int, int]) -> int:
        """Take `n` references off each key's row; delete the rows left with none. Returns rows deleted."""
        if not counts:
            return 0
        self._execmany(f"UPDATE {table} SET refs = refs - ? WHERE id = ?", ((n, k) for k, n in counts.items()))
        return self._execmany(f"DELETE FROM {table} WHERE id = ? AND refs <= 0", ((k,) for k in counts))

    # -- keeping up with the archive ---------------------------------------------------------

    def _known_files(self, channels: Sequence[str] | None) -> dict[str, int]:
        if channels is None:
            rows = self._fetch("SELECT path, id FROM files")
        else:
            rows = []
            for channel in channels:
                rows += self._fetch("SELECT path, id FROM files WHERE channel = ?", (channel,))
        return dict(rows)

    def _is_empty(self) -> bool:
        return not self._fetch("SELECT 1 FROM files LIMIT 1")

    def update(self, channels: Sequence[str] | None = None) -> UpdateReport:
        with self._lock:
            disk = scan_archive(self.root, channels)
            return self._sync_files(disk, self._known_files(channels))

    def update_minutes(self, channel: str, minutes: Iterable[int]) -> UpdateReport:
        with self._lock:
            wanted: set[int] = set()
            for m in minutes:
                wanted.update((m - 60, m, m + 60))
            disk = minute_files(self.root, channel, wanted)
            known: dict[str, int] = {}
            for m in sorted(wanted):
                rows = self._fetch("SELECT path, id FROM files WHERE channel = ? AND batch_time = ?", (channel, m))
                known.update(dict(rows))
            return self._sync_files(disk, known)

    def recent_rows(self) -> int:
        with self._lock:
            return int(self._fetch("SELECT count(*) FROM messages WHERE tier = 0")[0][0])

    def settle(self, min_rows: int = 0) -> int:
        with self._lock:
            if min_rows > 0 and self.recent_rows() < min_rows:
                return 0
            with self._transaction():
                return self._execmany("UPDATE messages SET tier = 1 WHERE tier = 0", [()])

    def rebuild(self, lines_by_user: bool | None = None) -> UpdateReport:
        if lines_by_user:
            self.set_lines_by_user(True)  # PostgreSQL's refusal, before anything is dropped
        with self._lock:
            with self._transaction():
                self._drop_all()
            self._create_schema()
            report = self._sync_files(scan_archive(self.root), {})
            return replace(report, rebuilt=True)

    def _sync_files(self, disk: dict[str, DiskFile], known: dict[str, int]) -> UpdateReport:
        new = sorted(set(disk) - set(known))
        gone = sorted(set(known) - set(disk))
        if new and not known and self._is_empty():
            return self._build(new, disk)
        problems: list[str] = []
        added = records = 0
        pending = _Pending()
        for rel, f, rows in _readable(self._read_files(new, disk), problems):
            records += rows.records
            pending_messages = pending.messages
            for row in rows.messages:
                slot = pending_messages.get(row.key)
                if slot is None:
                    pending_messages[row.key] = [f.channel, row, 1]
                else:
                    slot[2] += 1
                    if better(row, slot[1]):
                        slot[1] = row
            for removal in rows.removals:
                rslot = pending.removals.get(removal.key)
                if rslot is None:
                    pending.removals[removal.key] = [f.channel, removal, 1]
                else:
                    rslot[2] += 1
            if rows.room_id:
                pending.rooms[f.channel] = rows.room_id
            pending.files.append(
                (
                    rel,
                    f.channel,
                    f.batch_time,
                    _keys_blob(r.key for r in rows.messages),
                    _keys_blob(r.key for r in rows.removals),
                )
            )
            pending.size += len(rows.messages) + len(rows.removals) + 1
            if pending.size >= FLUSH_ROWS:
                added += self._flush(pending)
                pending = _Pending()
        added += self._flush(pending)
        removed = self._drop_files([known[rel] for rel in gone])
        return UpdateReport(
            files_added=len(new),
            files_removed=len(gone),
            rows_written=added,
            rows_removed=removed,
            records_read=records,
            problems=tuple(problems),
        )

    def _build(self, new: list[str], disk: dict[str, DiskFile]) -> UpdateReport:
        """Index `new` into the empty index, in one transaction (see Building)."""
        problems: list[str] = []
        written = records = 0
        with _without_gc(), self._building():
            self._begin_build()
            count = 0
            removals: list[tuple[Any, ...]] = []
            files: list[tuple[str, str, int, bytes, bytes]] = []
            rooms: dict[str, str] = {}
            for rel, f, built in _readable(self._read_build_files(new, disk), problems):
                records += built.records
                self._insert_built(built.messages)
                count += built.message_count
                removals += built.removals
                files.append((rel, f.channel, f.batch_time, built.message_keys, built.removal_keys))
                if built.room_id:
                    rooms[f.channel] = built.room_id
                if count + len(removals) + len(files) >= FLUSH_ROWS:
                    self._load_built(removals, files)
                    written += count
                    removals, files, count = [], [], 0
            self._load_built(removals, files)
            written += count
            self._loaded()
            self._execmany(
                "INSERT INTO channels (channel, room_id) VALUES (?, ?)"
                " ON CONFLICT (channel) DO UPDATE SET room_id = excluded.room_id",
                sorted(rooms.items()),
            )
            if not self._unique_keys():
                self._merge_duplicates()
                if not self._unique_keys():
                    raise IndexDamaged(f"{self.description}: keys still twice after merging them")
            self._end_build()
        return UpdateReport(files_added=len(new), rows_written=written, records_read=records, problems=tuple(problems))

    def _load_built(self, removals: list[tuple[Any, ...]], files: list[tuple[str, str, int, bytes, bytes]]) -> None:
        """The files whose rows `_insert_built` took since the last time, and their removals."""
        self._flush_built()
        self._execmany(
            "INSERT INTO removals (id, refs, channel, time, target_msg_id, target_user_id, target_login)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET refs = removals.refs + excluded.refs",
            removals,
        )
        self._execmany(
            "INSERT INTO files (path, channel, batch_time, message_keys, removal_keys) VALUES (?, ?, ?, ?, ?)", files
        )

    def _read_files(
        self, new: list[str], disk: dict[str, DiskFile]
    ) -> Iterator[tuple[str, DiskFile, BatchRows | None, str | None]]:
        """The rows of each new file, in order: (relpath, file, rows or None if it is gone, problem).
        Many files are read by worker processes while this one writes (see `_read_in_workers`)."""
        jobs = extract_jobs()
        if jobs and len(new) >= POOL_MIN_FILES:
            for rel, f, plain, problem in _read_in_workers(self.root, new, disk, jobs, _read_in_worker):
                yield rel, f, None if plain is None else _plain_rows(plain), problem
            return
        for rel in new:
            f = disk[rel]
            rows, problem = read_file(os.path.join(self.root, rel), f.channel)
            yield rel, f, rows, problem

    def _read_build_files(
        self, new: list[str], disk: dict[str, DiskFile]
    ) -> Iterator[tuple[str, DiskFile, BuildFile | None, str | None]]:
        """`_read_files` for a build: each file's rows as `build_file` makes them."""
        words, pack = self._build_words(), self._build_pack()
        jobs = build_jobs()
        if jobs and len(new) >= POOL_MIN_FILES:
            yield from _read_in_workers(self.root, new, disk, jobs, build_read, words, pack)
            return
        for rel in new:
            f = disk[rel]
            built, problem = build_read((os.path.join(self.root, rel), f.channel, words, pack))
            yield rel, f, built, problem

    def _flush(self, pending: _Pending) -> int:
        if not pending.files:
            return 0
        with self._transaction():
            # in the order they came (files by name, so by minute): SQLite's row numbers then follow time
            written = self._write_messages([(ch, row, n) for ch, row, n in pending.messages.values()])
            self._write_removals([(ch, row, n) for ch, row, n in pending.removals.values()])
            self._execmany(
                "INSERT INTO files (path, channel, batch_time, message_keys, removal_keys) VALUES (?, ?, ?, ?, ?)",
                pending.files,
            )
            self._execmany(
                "INSERT INTO channels (channel, room_id) VALUES (?, ?)"
                " ON CONFLICT (channel) DO UPDATE SET room_id = excluded.room_id",
                sorted(pending.rooms.items()),
            )
        return written

    def _drop_files(self, file_ids: list[int]) -> int:
        if not file_ids:
            return 0
        removed = 0
        for start in range(0, len(file_ids), 500):
            chunk = file_ids[start : start + 500]
            with self._transaction():
                message_counts: dict[int, int] = {}
                removal_counts: dict[int, int] = {}
                for fid in chunk:
                    for mkeys, rkeys in self._fetch(
                        "SELECT message_keys, removal_keys FROM files WHERE id = ?", (fid,)
                    ):
                        for k in _blob_keys(mkeys):
                            message_counts[k] = message_counts.get(k, 0) + 1
                        for k in _blob_keys(rkeys):
                            removal_counts[k] = removal_counts.get(k, 0) + 1
                removed += self._release("messages", message_counts)
                self._release("removals", removal_counts)
                self._execmany("DELETE FROM files WHERE id = ?", ((fid,) for fid in chunk))
        return removed

    # -- reading -----------------------------------------------------------------------------

    def _where(self, query: Query, who: str = "either", tiers: str = TIERS) -> tuple[str, list[Any]]:
        """The WHERE clause of `query` and its parameters. A user's rows are those they wrote
        (`who="user"`, in the `tiers` given), those naming them as recipient but not written by
        them (`"recipient"`), or both (`"either"`)."""
        clauses: list[str] = []
        params: list[Any] = []
        commands = sorted(query.commands & MESSAGE_COMMANDS)
        if not commands:
            return "1 = 0", []
        if len(commands) < len(MESSAGE_COMMANDS):
            clauses.append("m.command IN (" + ", ".join("?" for _ in commands) + ")")
            params += commands
        if query.channel is not None:
            clauses.append("m.channel = ?")
            params.append(query.channel)
        if query.user_id is not None:
            if who == "user":
                clauses.append(f"m.{tiers} AND m.user_id = ?")
                params.append(query.user_id)
            elif who == "recipient":
                clauses.append("m.recipient_id = ? AND (m.user_id IS NULL OR m.user_id <> ?)")
                params += [query.user_id, query.user_id]
            else:
                clauses.append(f"((m.{TIERS} AND m.user_id = ?) OR m.recipient_id = ?)")
                params += [query.user_id, query.user_id]
        if query.login is not None:
            clauses.append(f"m.{TIERS} AND m.login = ?")
            params.append(query.login.lower())
        if query.since is not None:
            clauses.append("m.time >= ?")
            params.append(float(query.since))
        if query.until is not None:
            clauses.append("m.time < ?")
            params.append(float(query.until))
        if query.text is not None:
            terms = parse_query(query.text)
            if terms:
                sql, values = self._text_clause(terms)
                clauses.append(sql)
                params += values
        if not query.include_removed:
            clauses.append(f"NOT ({_CHAT_IN} AND ({' OR '.join(_REMOVED_EXISTS)}))")
        return " AND ".join(clauses) or "1 = 1", params

    def messages(self, query: Query) -> list[Message]:
        if (query.limit is not None and query.limit < 0) or query.offset < 0:
            raise QueryError("limit and offset must not be negative")
        where, params = self._where(query)
        order = "ASC" if query.oldest_first else "DESC"
        ordered = f"ORDER BY m.time {order}, m.id {order}"
        columns = ", ".join(f"m.{column}" for column in ROW_COLUMNS)
        with self._lock:
            if not query.commands & MESSAGE_COMMANDS:
                return []  # no row can be asked for (the statements below would name a user's index for none)
            if query.limit is None and not query.offset and query.user_id is not None and self.split_user_reads:
                # a user's rows, then those naming them as recipient (not theirs): each read by its
                # own index, from the index alone where it holds the lines (as one OR, SQLite
                # looks every row up in the table by key)
                parts, params = [], []
                for source, tiers in self._user_rows_sources():
                    mine, mine_params = self._where(query, "user", tiers)
                    parts.append(f"SELECT {columns} FROM {source} WHERE {mine}")
                    params += mine_params
                named, named_params = self._where(query, "recipient")
                parts.append(f"SELECT {columns} FROM messages m WHERE {named}")
                params += named_params
                sql = f"{' UNION ALL '.join(parts)} ORDER BY time {order}, id {order}"
            elif query.limit is None and not query.offset:
                sql = f"SELECT {columns} FROM messages m WHERE {where} {ordered}"
            elif (keys := self._page_keys(query)) is not None:
                if not keys:
                    return []
                sql = f"SELECT {columns} FROM messages m WHERE m.id IN ({', '.join('?' * len(keys))}) {ordered}"
                params = list(keys)
            else:
                # choose the page first, then read lines and removals for its rows only (a common word
                # matches a quarter of the channel: its lines must not all go through the sort)
                source = self._messages_source(query)
                page = f"SELECT m.id FROM {source} WHERE {where} {ordered} LIMIT ? OFFSET ?"
                params += [2**62 if query.limit is None else query.limit, query.offset]
                sql = f"SELECT {columns} FROM messages m WHERE m.id IN ({page}) {ordered}"
            rows = self._fetch(sql, params)
            removed = self._removed_at(rows)
        return [message_from_row(row, at) for row, at in zip(rows, removed, strict=True)]

    def _removed_at(self, rows: list[tuple[Any, ...]]) -> list[float | None]:
        """When each row of `messages`' SELECT was first removed (see _REMOVED_EXISTS), None if
        never or if it is no chat line: read by three statements a channel for all the rows (a
        statement a row and way cost a user's month of 2,000 lines 6,000 lookups, half its SQL),
        then matched here, by id, and by the first time at or after the line's among its user's
        or login's removals."""
        by_msg: dict[tuple[str, str], float] = {}
        by_user: dict[tuple[str, str], list[float]] = {}
        by_login: dict[tuple[str, str], list[float]] = {}
        by_channel: dict[str, list[tuple[Any, ...]]] = {}
        for r in rows:
            if r[2] in CHAT_COMMANDS:
                by_channel.setdefault(r[1], []).append(r)
        for channel, mine in sorted(by_channel.items()):
            since = min(r[7] for r in mine)
            values = sorted({r[6] for r in mine if r[6] is not None})
            if values:
                in_sql, in_value = self._in_values("target_msg_id", values)
                for msg_id, at in self._fetch(
                    f"SELECT target_msg_id, min(time) FROM removals WHERE channel = ? AND {in_sql}"
                    " GROUP BY target_msg_id",
                    [channel, in_value],
                ):
                    by_msg[channel, msg_id] = float(at)
            for column, found, values, named in (
                ("target_user_id", by_user, sorted({r[3] for r in mine if r[3] is not None}), ""),
                (
                    "target_login",
                    by_login,
                    sorted({r[4] for r in mine if r[4] is not None}),
                    " AND target_user_id IS NULL",
                ),
            ):
                if not values:
                    continue
                in_sql, in_value = self._in_values(column, values)
                for who, at in self._fetch(
                    f"SELECT {column}, time FROM removals WHERE channel = ? AND {in_sql}{named} AND time >= ?",
                    [channel, in_value, since],
                ):
                    found.setdefault((channel, who), []).append(float(at))
        for times in (*by_user.values(), *by_login.values()):
            times.sort()
        out: list[float | None] = []
        for _key, channel, command, user_id, login, _line, msg_id, at in rows:
            if command not in CHAT_COMMANDS:
                out.append(None)
                continue
            first = by_msg.get((channel, msg_id))
            for found, who in ((by_user, user_id), (by_login, login)):
                struck = found.get((channel, who))
                if struck and (i := bisect_left(struck, at)) < len(struck) and (first is None or struck[i] < first):
                    first = struck[i]
            out.append(first)
        return out

    def count(self, query: Query) -> int:
        where, params = self._where(query)
        with self._lock:
            return int(self._fetch(f"SELECT count(*) FROM messages m WHERE {where}", params)[0][0])

    def random_message(
        self, channel: str, user_id: str | None = None, seed: int | None = None, total: int | None = None
    ) -> Message | None:
        if total is None:
            total = self.count(Query(channel=channel, user_id=user_id, oldest_first=True))
        if not total:
            return None
        pick = random.Random(seed).randrange(total)
        found = self.messages(Query(channel=channel, user_id=user_id, oldest_first=True, limit=1, offset=pick))
        return found[0] if found else None

    def channels(self) -> list[Channel]:
        with self._lock:
            rows = self._fetch(
                "SELECT c.channel, c.room_id FROM channels c"
                " WHERE EXISTS (SELECT 1 FROM messages m WHERE m.channel = c.channel)"
            )
        return sorted((Channel(ch, room) for ch, room in rows), key=lambda c: c.login)

    def _first_time_from(self, sql: str, params: list[Any], start: float) -> float | None:
        row = self._fetch(sql, [*params, start])
        return None if not row or row[0][0] is None else float(row[0][0])

    def _months(self, probes: list[tuple[str, list[Any]]]) -> list[Month]:
        """Walk the months holding rows by asking for the first time at or after each month's start."""
        months: list[Month] = []
        start = float("-inf")
        with self._lock:
            while True:
                firsts = [t for sql, p in probes if (t := self._first_time_from(sql, p, start)) is not None]
                if not firsts:
                    break
                month = _month_at(min(firsts))
                months.append(month)
                start = _next_month_start(month)
        return months[::-1]

    def user_months(self, channel: str, user_id: str) -> list[Month]:
        return self._months(
            [
                (
                    f"SELECT min(time) FROM messages WHERE {TIERS} AND user_id = ? AND channel = ? AND time >= ?",
                    [user_id, channel],
                ),
                (
                    "SELECT min(time) FROM messages WHERE recipient_id = ? AND channel = ? AND time >= ?",
                    [user_id, channel],
                ),
            ]
        )

    def user_months_by_login(self, channel: str, login: str) -> list[Month]:
        return self._months(
            [
                (
                    f"SELECT min(time) FROM messages WHERE {TIERS} AND login = ? AND channel = ? AND time >= ?",
                    [login.lower(), channel],
                )
            ]
        )

    def channel_days(self, channel: str) -> list[Day]:
        days: list[Day] = []
        start = float("-inf")
        with self._lock:
            while True:
                first = self._first_time_from(
                    "SELECT min(time) FROM messages WHERE channel = ? AND time >= ?", [channel], start
                )
                if first is None:
                    break
                number = int(first // 86400)
                days.append(day_of_number(number))
                start = float((number + 1) * 86400)
        return days[::-1]

    def _newest_in_tiers(self, column: str, where: str, value: str) -> str | None:
        """`column` of the newest row (time, then id) matching `where`: the newest of each tier's
        newest, so each tier's end of the index is walked newest first and stops at one row (one
        query over both tiers would sort every row of the user, and a bot has hundreds of thousands)."""
        newest = (
            f"SELECT {column}, time, id FROM (SELECT {column}, time, id FROM messages WHERE tier = {{tier}} AND {where}"
            " ORDER BY time DESC, id DESC LIMIT 1) AS t{tier}"
        )
        tiers = (0, 1) if self.recent_tier else (1,)  # a backend without a recent tier writes tier 1 only
        with self._lock:
            rows = self._fetch(
                " UNION ALL ".join(newest.format(tier=t) for t in tiers) + " ORDER BY 2 DESC, 3 DESC LIMIT 1",
                [value] * len(tiers),
            )
        return str(rows[0][0]) if rows else None

    def user_id_of(self, login: str) -> str | None:
        return self._newest_in_tiers("user_id", "login = ? AND user_id IS NOT NULL", login.lower())

    def login_of(self, user_id: str) -> str | None:
        return self._newest_in_tiers("login", "user_id = ? AND login IS NOT NULL", user_id)

    def name_history(self, user_id: str) -> list[NameSeen]:
        with self._lock:
            rows = self._fetch(
                f"SELECT login, min(time), max(time) FROM messages WHERE {TIERS} AND user_id = ? AND login IS NOT NULL"
                " GROUP BY login",
                (user_id,),
            )
        seen = [NameSeen(login, float(a), float(b)) for login, a, b in rows]
        return sorted(seen, key=lambda n: (n.first_seen, n.login))

    def channel_stats(
        self, channel: str, since: float | None = None, until: float | None = None, top: int = 10
    ) -> ChannelStats:
        where = f"m.channel = ? AND {_CHAT_IN}"
        params: list[Any] = [channel]
        if since is not None:
            where += " AND m.time >= ?"
            params.append(float(since))
        if until is not None:
            where += " AND m.time < ?"
            params.append(float(until))
        day = self._day_expr()
        with self._lock:
            per_day = self._fetch(
                f"SELECT {day} AS d, count(*) FROM messages m WHERE {where} GROUP BY d ORDER BY d", params
            )
            chatters = self._fetch(
                f"SELECT m.user_id, m.login, count(*) AS n FROM messages m WHERE {where}"
                f" GROUP BY m.user_id, m.login ORDER BY n DESC,"
                f" {self._order_text('coalesce(m.login, ' + chr(39) * 2 + ')')},"
                f" {self._order_text('coalesce(m.user_id, ' + chr(39) * 2 + ')')} LIMIT ?",
                [*params, max(0, top)],
            )
        days = tuple(DayCount(day_of_number(int(d)), int(n)) for d, n in per_day)
        return ChannelStats(
            channel=channel,
            total=sum(d.messages for d in days),
            per_day=days,
            top_chatters=tuple(Chatter(u, lg, int(n)) for u, lg, n in chatters),
        )

    def _check_rows(self) -> None:
        """What both backends check: the schema's version is there, and every row has a file."""
        found = self._fetch("SELECT value FROM meta WHERE key = 'version'")
        if not found or str(found[0][0]) != str(SCHEMA_VERSION):
            raise IndexDamaged(f"{self.description}: no index schema version {SCHEMA_VERSION}")
        for table in ("messages", "removals"):
            bad = self._fetch(f"SELECT count(*) FROM {table} WHERE refs <= 0")[0][0]
            if bad:
                raise IndexDamaged(f"{self.description}: {bad} {table} rows held by no batch file")

    def close(self) -> None:
        raise NotImplementedError


def _month_at(time: float) -> Month:
    d = day_of_number(int(time // 86400))
    return Month(d.year, d.month)


def _next_month_start(month: Month) -> float:
    from datetime import UTC, datetime  # noqa: PLC0415 - only here

    y, m = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
    return datetime(y, m, 1, tzinfo=UTC).timestamp()
