"""The embedded backend: one SQLite file beside the archive, text search by FTS5.

Why SQLite: it ships with Python, needs no server and no set-up, and one file is easy to drop and
rebuild. FTS5 gives an inverted index with phrase queries. The words are cut in Python
(index.text) and stored as tokens of FTS5's `ascii` tokenizer that only hold `[a-z0-9_]`, so
SQLite's own idea of a word never matters and a user's query can never become FTS syntax.

The text index is an external-content FTS5 table over `messages.words` (a row's words never
change: a better version of a message has the same text). It is kept up to date by one statement
per write, not by triggers: new rows are the rows past the largest `seq` before the write, and rows
to delete are copied to the text index's `delete` command before they go. (A trigger runs once per
row inside a statement savepoint, and the FTS5 of SQLite 3.40 (this Python's) flushes its pending
terms to a new segment at every savepoint: a minute of 6,000 messages cost 450 ms in tiny segments
and merges, against 6 ms for one set-based insert.) A build fills the text index the same way, a
batch of rows at a time, with FTS5's merging held back, and merges it into one segment ('optimize')
at its end, so the first live minutes do not pay for merging the build's segments. A damaged file
(not a database, malformed pages, a failed integrity check) raises IndexDamaged; the callers
rebuild; a file another process holds locked (a build in its rollback journal) is busy,
IndexUnavailable.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from itertools import chain
from typing import Any

import orjson

from index.api import IndexDamaged, IndexUnavailable, Query, UpdateReport
from index.base import (
    BUILT_AT_END,
    MESSAGE_COLUMNS,
    SCHEMA_VERSION,
    SECONDARY_INDEXES,
    TIERS,
    USER_ROW_COLUMNS,
    SqlIndex,
    TableIndex,
    best_of_duplicates,
    index_name,
    scan_archive,
)
from index.extract import MessageRow
from index.text import Term, fts_document, fts_match, parse_query

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,"
    " batch_time INTEGER NOT NULL, message_keys BLOB NOT NULL, removal_keys BLOB NOT NULL)",
    # seq: the row's place, given in the order rows arrive (time order, for the archive's files),
    # so a live minute appends to the table and to the text index; id: the identity key
    "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, id INTEGER NOT NULL,"
    " refs INTEGER NOT NULL, channel TEXT NOT NULL,"
    " time REAL NOT NULL, time_range REAL NOT NULL, command TEXT NOT NULL, msg_id TEXT, user_id TEXT, login TEXT,"
    " recipient_id TEXT, words TEXT NOT NULL, line TEXT NOT NULL,"
    " tier INTEGER NOT NULL DEFAULT 0 CHECK (tier IN (0, 1)))",  # see index.base, Two tiers
    "CREATE TABLE IF NOT EXISTS removals (id INTEGER PRIMARY KEY, refs INTEGER NOT NULL, channel TEXT NOT NULL,"
    " time REAL NOT NULL, target_msg_id TEXT, target_user_id TEXT, target_login TEXT)",
    "CREATE TABLE IF NOT EXISTS channels (channel TEXT PRIMARY KEY, room_id TEXT)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(words, content='messages', content_rowid='seq',"
    " tokenize=\"ascii tokenchars '_'\", columnsize=0)",
)
# What a build makes at its end; the channel index is kept as it loads (its rows come in its order,
# files by minute: appended, not sorted; the other indexes are made by sorting)
_BUILT_AT_END = tuple(index for index in BUILT_AT_END if index.name != "messages_channel")
# Lines by user (`set_lines_by_user`): one more index, over the main tier's rows with a user, which
# carries every column a user's rows are read with (`SqlIndex.messages`), the line included, so that
# a user's month is read from it alone, a few pages one after the other. Through the table it is a
# page a row, each somewhere in the file: 2,000 pages for a user's month at 10M messages, 20-30 ms
# when they are in memory, 0.2-1 s when they are not (a host whose memory is smaller than its
# index). It costs the lines' size again. The recent tier is not in it (a live minute's lines
# would land on a page per user; they join it when settled), and is read as before.
_USER_INDEX = SECONDARY_INDEXES[1]
_USER_LINES_INDEX = TableIndex(
    "messages",
    "user_lines",
    # `tier` last, always 1: SQLite reads the query's `tier = 1` from the index too, not the table
    (*(c for c in _USER_INDEX.key if c != "tier"), *USER_ROW_COLUMNS, "tier"),
    "tier = 1 AND user_id IS NOT NULL",
)
# The sort of the lines by user (5 GB at 10M messages) in runs of 32 MB, not _SORT_CACHE_KIB's 1 MB:
# SQLite merges 16 runs at a time, each merge a pass over the lines; 5,000 runs of 1 MB take four,
# 160 of 32 MB two (as few as runs of 256 MB would, for an eighth of the memory)
_USER_LINES_SORT_KIB = -32768
# The identity key's index: its own statement (not `UNIQUE` in the table), so a build can drop it
# and make it at the end (an index file written before has the table's own, which a build replaces)
_ID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON messages (id)"
_TIMEOUT_S = 30  # how long a statement waits for another connection's lock
_FTS_AUTOMERGE, _FTS_CRISISMERGE = 4, 16  # FTS5's defaults
# 64 MB of page cache: a live minute's rows land at random places of the key index (keys are hashes)
_CACHE_KIB = -65536
# A build's cache while it appends rows; then, while it makes the indexes, a small one: SQLite's
# sorter sorts runs as large as the cache, in lists whose walk misses the CPU's caches when they are
# large (an index of 1M rows measured 2.3 s of CPU sorted in 128 MB runs, 1.25 s in 1 MB runs)
_BUILD_CACHE_KIB = -131072
_SORT_CACHE_KIB = -1024
# Sorter threads for the indexes a build makes at its end: a sort of 10M rows took 16.9 s in one
# thread, 9.7 s with two more on this 2-core machine with a core free (the readers are done then)
_SORT_THREADS = 2
# An index made by sorting has full pages, and a live minute's keys (hashes) land on random ones:
# on a fresh index each of them split a page, three pages dirtied instead of one, until most of its
# pages had split once (at 10M rows, 43,000 pages: tens of minutes, each 270-290 ms, not 180-210).
# So the identity index is made with a spacer row every _SPACING rows, evenly spread keys deleted
# once it is made, which leaves each page about 4% free: room for an hour of minutes before they split.
_SPACING = 25
_SPACERS = (
    "WITH RECURSIVE spacer (n, id) AS (SELECT 1, ? UNION ALL SELECT n + 1, id + ? FROM spacer WHERE n < ?)"
    " INSERT INTO messages (seq, id, refs, channel, time, time_range, command, words, line, tier)"
    " SELECT ? + n, id, 0, '', 0, 0, '', '', '', 1 FROM spacer"
)
# the keys a release may delete, for the set-based statements of `_release`
_RELEASE_TABLE = "CREATE TEMP TABLE IF NOT EXISTS released (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"


def fts5_available() -> bool:
    """Whether this Python's SQLite has FTS5 (Debian's and python.org's builds do)."""
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    return True


class SqliteIndex(SqlIndex):
    split_user_reads = True

    def __init__(self, root: str, path: str) -> None:
        super().__init__(root)
        if not fts5_available():
            raise IndexUnavailable(
                f"this Python's SQLite ({sqlite3.sqlite_version}) has no FTS5; use --db postgresql://... instead"
            )
        self.path = path
        self.description = f"sqlite:{path}"
        self._conn: sqlite3.Connection | None = None
        self._checkpointer = _Checkpointer(path)
        self._in_text = 0
        self._key_attempts = 0
        # whether a schema this connection makes (a new file, a build) has lines by user: an
        # existing file's own choice is read from it (`_open`, a build's start)
        self._lines_by_user = False
        self._open()

    def _open(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=_TIMEOUT_S)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size={_CACHE_KIB}")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
            self._conn = conn
            version = self._meta_version()
            self._drop_old_triggers()
        except sqlite3.DatabaseError as e:
            raise _busy(self.path, e) or IndexDamaged(f"{self.path}: not a usable index ({e}); rebuild it") from None
        if version is None:
            self._create_schema()
        elif version != str(SCHEMA_VERSION):
            raise IndexDamaged(f"{self.path}: index schema {version}, this version writes {SCHEMA_VERSION}")
        else:
            self._lines_by_user = self._has_lines_index()

    def _has_lines_index(self) -> bool:
        found = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
        return bool(self._fetch(found, (_USER_LINES_INDEX.name,)))

    @property
    def lines_by_user(self) -> bool:
        return self._has_lines_index()

    def set_lines_by_user(self, on: bool) -> None:
        """Make the index of lines by user (see _USER_LINES_INDEX), or drop it; kept by the file,
        and by a rebuild."""
        with self._lock:
            if on == self._has_lines_index():
                self._lines_by_user = on
                return
            with self._transaction():
                if on:
                    self._make_lines_index()
                    self._exec(f"ANALYZE {_USER_LINES_INDEX.name}")  # see _end_build
                else:
                    self._exec(f"DROP INDEX IF EXISTS {_USER_LINES_INDEX.name}")
            self._lines_by_user = on

    def _user_rows_sources(self) -> list[tuple[str, str]]:
        # by the user index, whatever the statistics say (on a small index they can make a walk of
        # the channel look cheaper); with lines by user, the main tier's from that index alone.
        # Whether the file has it is read each time: another process (`index --lines-by-user`
        # while `serve` runs) may have made or dropped it since this one opened the file
        by_user = f"messages m INDEXED BY {_USER_INDEX.name}"
        if not self._has_lines_index():
            return [(by_user, TIERS)]
        return [(f"messages m INDEXED BY {_USER_LINES_INDEX.name}", "tier = 1"), (by_user, "tier = 0")]

    def _make_lines_index(self) -> None:
        self._exec(f"PRAGMA cache_size={_USER_LINES_SORT_KIB}")
        self._exec(f"PRAGMA threads={_SORT_THREADS}")
        try:
            self._exec(_USER_LINES_INDEX.create())
        finally:
            self._exec(f"PRAGMA cache_size={_CACHE_KIB}")
            self._exec("PRAGMA threads=0")

    def _meta_version(self) -> str | None:
        assert self._conn is not None
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            if tables:
                raise sqlite3.DatabaseError("tables but no meta table")
            return None
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return None if row is None else str(row[0])

    def _drop_old_triggers(self) -> None:
        """An index written before the text index was kept by statements has triggers that would
        now index every row twice; they go (nothing else about the file changed)."""
        assert self._conn is not None
        old = [r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        for name in old:
            self._conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise IndexDamaged(f"{self.path}: the index is closed")
        return self._conn

    def _create_schema(self) -> None:
        with self._transaction():
            for statement in (*_TABLES, _ID_INDEX, *(index.create() for index in self._secondary_indexes())):
                self.conn.execute(statement)
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('version', ?)", (str(SCHEMA_VERSION),))

    def _drop_all(self) -> None:
        for name in ("fts", "messages", "removals", "files", "channels", "meta"):
            self.conn.execute(f"DROP TABLE IF EXISTS {name}")

    # -- building (index.base, Building) ------------------------------------------------------

    def _build_words(self) -> Callable[[Sequence[str]], Any]:
        return fts_document

    @contextmanager
    def _building(self) -> Iterator[None]:
        """A build's one transaction, in a rollback journal when no other connection has the file
        open: pages a transaction adds past the file's end are not journaled, so an empty index's
        journal holds its few pages of schema, and the rows and indexes are written once, into the
        file (through the log they were written twice: into the log, then copied by the checkpoint,
        a sixth of a build's time). Killed at any point, the journal takes the file back to the
        empty index; `synchronous=NORMAL` syncs the journal before the file is written, so a power
        cut does too. With readers there (`serve` opened it first) the log stays: one transaction
        in it is as atomic, and they read the empty index until it commits."""
        self._checkpointer.stop()
        rollback = self._journal("DELETE")
        self._exec(f"PRAGMA synchronous={'NORMAL' if rollback else 'OFF'}")
        self._exec(f"PRAGMA cache_size={_BUILD_CACHE_KIB}")
        try:
            with self._transaction(poke=False):
                yield
        finally:
            self._exec(f"PRAGMA cache_size={_CACHE_KIB}")
            self._exec("PRAGMA threads=0")
            self._exec("PRAGMA synchronous=NORMAL")
            # back to the log (a reader that came meanwhile may hold the file: then the next
            # opening switches, and until then the file works in its rollback journal)
            if rollback:
                self._journal("WAL")
        # in the log's case, the build's log (its whole index) into the file now, as part of the
        # build: left to the checkpointer, it would be copied under the first live minutes, which
        # would also read every page through a log of hundreds of MB (`main`: after a switch of the
        # journal, SQLite 3.40 refuses to checkpoint a temp schema used before, "table is locked")
        self._exec("PRAGMA main.wal_checkpoint(TRUNCATE)")

    def _journal(self, mode: str) -> bool:
        """Switch the journal to `mode` if no other connection holds the file (without waiting)."""
        self._exec("PRAGMA busy_timeout=0")
        try:
            return str(self._fetch(f"PRAGMA journal_mode={mode}")[0][0]).upper() == mode
        except IndexUnavailable:
            return False
        finally:
            self._exec(f"PRAGMA busy_timeout={_TIMEOUT_S * 1000}")

    def _begin_build(self) -> None:
        self._lines_by_user = self._has_lines_index()  # the file's choice, made again at the end
        if self._fetch("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_autoindex_messages_1'"):
            # an index file made before the key index had a name: its table is empty, made again
            self._exec("DROP TABLE messages")
            self._exec(_TABLES[2])
            for index in SECONDARY_INDEXES[3:5]:
                self._exec(index.create())
        for name in (index_name(_ID_INDEX), *(index.name for index in (*_BUILT_AT_END, _USER_LINES_INDEX))):
            self._exec("DROP INDEX IF EXISTS " + name)
        self._in_text = 0  # the rows up to this `seq` are in the text index (`_flush_built`)
        self._key_attempts = 0
        # the text index is written as the rows come, its segments merged once at the end
        # (`optimize`, to one segment: see the docstring), not level by level as they are written
        self._exec("INSERT INTO fts (fts, rank) VALUES ('automerge', 0)")
        self._exec("INSERT INTO fts (fts, rank) VALUES ('crisismerge', 64)")

    def _build_pack(self) -> Callable[[list[tuple[Any, ...]]], list[Any]]:
        return group_rows

    def _insert_built(self, packed: list[Any]) -> None:
        whole = [g for g in packed if len(g) == _COLUMNS * _GROUP]
        self._execmany(_insert_rows(_GROUP), whole)
        for g in packed:
            if len(g) != _COLUMNS * _GROUP:
                self._exec(_insert_rows(len(g) // _COLUMNS), g)

    def _flush_built(self) -> None:
        """The words of the rows inserted since into the text index (as a live minute's: the rows
        past the largest `seq` it holds): the writer waits for the readers while it loads, so the
        text index is made then rather than after, when nothing else runs."""
        self._exec("INSERT INTO fts (rowid, words) SELECT seq, words FROM messages WHERE seq > ?", (self._in_text,))
        self._in_text = self._fetch("SELECT coalesce(max(seq), 0) FROM messages")[0][0]

    def _unique_keys(self) -> bool:
        """The identity index, made by sorting with room left in its pages (see _SPACING); a
        second attempt (after merging the keys found twice) spaces its keys elsewhere, and a third
        makes it without room (a spacer can share a message's key: a chance in 10^7 a build)."""
        attempt, self._key_attempts = self._key_attempts, self._key_attempts + 1
        last = self._fetch("SELECT coalesce(max(seq), 0) FROM messages")[0][0]
        spacers = last // _SPACING
        if spacers >= 2:
            self._exec(_SPACERS, (*self._spacer_keys(spacers, attempt), spacers, last))
        made = self._id_index()
        if spacers >= 2:
            # in `seq` order, which is key order: the index's pages one after the other
            self._exec("DELETE FROM messages WHERE seq > ?", (last,))
            if not made and attempt > 0:
                made = self._id_index()
        return made

    @staticmethod
    def _spacer_keys(spacers: int, attempt: int) -> tuple[int, int]:
        """The first spacer's key and the step to the next: evenly over the 64-bit keys, from a
        place each attempt moves."""
        step = 2**64 // spacers
        return -(2**63) + step // (2 + attempt), step

    def _id_index(self) -> bool:
        try:
            self.conn.execute(_ID_INDEX)
        except sqlite3.IntegrityError:
            return False
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None
        return True

    def _merge_duplicates(self) -> None:
        best = best_of_duplicates("messages", "seq", self._order_text)
        self._exec("DROP TABLE IF EXISTS temp.build_best")
        self._exec(f"CREATE TEMP TABLE build_best AS {best}")
        self._exec("CREATE INDEX temp.build_best_id ON build_best (id)")
        others = "FROM build_best b JOIN messages m ON m.id = b.id WHERE m.seq <> b.ref"
        self._exec(f"INSERT INTO fts (fts, rowid, words) SELECT 'delete', m.seq, m.words {others}")
        self._exec(f"DELETE FROM messages WHERE seq IN (SELECT m.seq {others})")
        self._exec("UPDATE messages SET refs = b.total FROM build_best b WHERE messages.seq = b.ref")
        self._exec("DROP TABLE temp.build_best")

    def _loaded(self) -> None:
        self._exec(f"PRAGMA cache_size={_SORT_CACHE_KIB}")
        # the readers are done: the sorts of the indexes made next may use every core
        self._exec(f"PRAGMA threads={_SORT_THREADS}")

    def _secondary_indexes(self) -> tuple[TableIndex, ...]:
        return (*SECONDARY_INDEXES, _USER_LINES_INDEX) if self._lines_by_user else SECONDARY_INDEXES

    def _end_build(self) -> None:
        for index in _BUILT_AT_END:
            self._exec(index.create())
        if self._lines_by_user:
            self._make_lines_index()
            self._loaded()  # the settings of a build's sorts again
        # the text index's segments into one, then FTS5's defaults again for the live minutes
        self._exec("INSERT INTO fts (fts) VALUES ('optimize')")
        self._exec(f"INSERT INTO fts (fts, rank) VALUES ('automerge', {_FTS_AUTOMERGE})")
        self._exec(f"INSERT INTO fts (fts, rank) VALUES ('crisismerge', {_FTS_CRISISMERGE})")
        # without statistics a user's month is planned as a channel scan; a sample does not do
        # (`analysis_limit` reads an index's first rows: one tier and one user, and a user's month
        # was then planned as a walk of the channel, 0.7 s instead of 3 ms), so all of each index
        self._exec("ANALYZE")

    def _write_messages(self, rows: list[tuple[str, MessageRow, int]]) -> int:
        """The upsert, then the text index of the rows it added: those past the largest `seq` before
        it (a row's `seq` is given as max + 1; an upserted row keeps its own)."""
        last = self._fetch("SELECT coalesce(max(seq), 0) FROM messages")[0][0]
        written = super()._write_messages(rows)
        self._exec("INSERT INTO fts (rowid, words) SELECT seq, words FROM messages WHERE seq > ?", (last,))
        return written

    def _release(self, table: str, counts: dict[int, int]) -> int:
        """Take `n` references off each key's row; delete the rows left with none (and their words
        from the text index), in a few set-based statements over a temporary table of the keys."""
        if not counts:
            return 0
        self._exec(_RELEASE_TABLE)
        self._execmany("INSERT INTO released (id, n) VALUES (?, ?)", counts.items())
        self._exec(
            f"UPDATE {table} SET refs = refs - (SELECT n FROM released r WHERE r.id = {table}.id)"
            " WHERE id IN (SELECT id FROM released)"
        )
        gone = f"FROM {table} WHERE id IN (SELECT id FROM released) AND refs <= 0"
        if table == "messages":
            self._exec(f"INSERT INTO fts (fts, rowid, words) SELECT 'delete', seq, words {gone}")
        deleted = self._execmany(f"DELETE {gone}", [()])
        self._exec("DELETE FROM released")
        return deleted

    @contextmanager
    def _transaction(self, poke: bool = True) -> Iterator[None]:
        """A write transaction; after it commits, the checkpointer thread copies the log (`poke`)."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None
        if poke:
            self._checkpointer.poke()

    def _damaged(self, e: sqlite3.DatabaseError) -> Exception:
        return _busy(self.path, e) or IndexDamaged(f"{self.path}: {e}; rebuild the index")

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self.conn.execute(sql, params)
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None

    def _execmany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        try:
            return self.conn.executemany(sql, rows).rowcount
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None

    def _text_clause(self, terms: list[Term]) -> tuple[str, list[Any]]:
        return "m.seq IN (SELECT rowid FROM fts WHERE fts MATCH ?)", [fts_match(terms)]

    def _in_values(self, column: str, values: list[Any]) -> tuple[str, Any]:
        return f"{column} IN (SELECT value FROM json_each(?))", orjson.dumps(values).decode()

    def _page_keys(self, query: Query) -> list[int] | None:
        """A text search's page over one channel (the search box: newest 100), from the matches in
        `seq` order, which FTS5 walks from either end without reading a word's whole list (a common
        word matches millions of rows: reading and sorting them all took 350 ms at 10M messages).

        `seq` is the order rows were indexed, nearly time order, not exactly (a late file). So:
        R = the first `limit + offset` rows matching the query in `seq` order (from the newest end
        for newest first); every other match lies past R's last `seq`, and belongs in the page only
        if it is no further in time than R's furthest row. Those are read from the channel's time
        index (rows past R's last `seq` there: a late file's, usually none) and checked against the
        text index one by one. The page is the first `limit + offset` of R and them in the query's
        order, `offset` skipped. None (the plan of `_messages_source`) when the query is not such a
        search, when R is not found within _WALK_MATCHES matches (most are in other channels or
        outside the window), when R spans so many rows that walking them in time would cost more
        than reading every match (a rare word: few matches), or when more than _LATE_ROWS rows
        indexed out of order would need checking (an old file indexed lately, its rows among R)."""
        want = (query.limit or 0) + query.offset
        if query.text is None or query.limit is None or query.channel is None or not 0 < want <= _PAGE_MAX:
            return None
        if query.user_id is not None or query.login is not None:
            return None  # a user's rows: their own indexes are narrower
        terms = parse_query(query.text)
        if not terms:
            return None
        match = fts_match(terms)
        rest, params = self._where(replace(query, text=None))
        newest = not query.oldest_first
        order, past = ("DESC", "<") if newest else ("ASC", ">")
        found: list[tuple[int, float, int]] = []  # (seq, time, id) of R, in seq order
        walked, edge, chunk = 0, None, 2 * want
        while len(found) < want:
            bound = "" if edge is None else f" AND rowid {past} {int(edge)}"
            seqs = [r[0] for r in self._fetch(
                f"SELECT rowid FROM fts WHERE fts MATCH ?{bound} ORDER BY rowid {order} LIMIT ?", (match, chunk)
            )]  # fmt: skip
            if not seqs:
                break  # every match read: R is all of them
            walked += len(seqs)
            edge = seqs[-1]
            rows = self._fetch(
                f"SELECT m.seq, m.time, m.id FROM messages m WHERE m.seq IN (SELECT value FROM json_each(?))"
                f" AND {rest} ORDER BY m.seq {order}",
                [_json_list(seqs), *params],
            )
            found += rows[: want - len(found)]
            if len(seqs) < chunk:
                break
            if walked >= _WALK_MATCHES and len(found) < want:
                return None
            chunk = min(chunk * 2, _WALK_MATCHES)
        rows = list(found)
        if len(found) == want:
            last_seq = found[-1][0]
            far = min(found, key=lambda r: r[1]) if newest else max(found, key=lambda r: r[1])
            span = abs(int(self._fetch(f"SELECT {'max' if newest else 'min'}(seq) FROM messages")[0][0]) - last_seq)
            total = int(self._fetch("SELECT max(seq) FROM messages")[0][0])
            if span * span > want * total:
                return None  # a rare word: reading its every match is cheaper than walking the span
            reach = ">=" if newest else "<="
            late = self._fetch(
                f"SELECT m.seq, m.time, m.id FROM messages m INDEXED BY messages_channel WHERE m.channel = ?"
                f" AND m.time {reach} ? AND m.seq {past} ? AND {rest} LIMIT ?",
                [query.channel, far[1], last_seq, *params, _LATE_ROWS + 1],
            )
            if len(late) > _LATE_ROWS:
                return None  # R reaches far back in time (an old file indexed lately): the other plan
            if late:
                matched = {
                    r[0]
                    for r in self._fetch(
                        "SELECT rowid FROM fts WHERE fts MATCH ? AND rowid IN (SELECT value FROM json_each(?))",
                        (match, _json_list([r[0] for r in late])),
                    )
                }
                rows += [r for r in late if r[0] in matched]
        rows.sort(key=lambda r: (r[1], r[2]), reverse=newest)
        return [r[2] for r in rows[query.offset : want]]

    def _messages_source(self, query: Query) -> str:
        """A channel's text search with a limit (the search box: newest 100) walks the channel's rows
        in time order and stops at the limit when the words are common; the default plan reads every
        match and sorts them, which is right for rare words. Which is cheaper is read from the
        number of matches (one FTS count, which reads the words' lists): walking costs about limit * rows / matches
        steps, sorting about matches rows."""
        if query.text is None or query.limit is None or query.channel is None:
            return "messages m"
        if query.user_id is not None or query.login is not None:
            return "messages m"  # a user's rows: their own indexes are narrower
        terms = parse_query(query.text)
        if not terms:
            return "messages m"
        matches = int(self._fetch("SELECT count(*) FROM fts WHERE fts MATCH ?", (fts_match(terms),))[0][0])
        rows = self._fetch("SELECT max(seq) FROM messages")[0][0] or 0
        if matches * matches >= (query.limit + query.offset + 1) * rows:
            return "messages m INDEXED BY messages_channel"
        return "messages m"

    def _words_value(self, words: Sequence[str]) -> Any:
        return fts_document(list(words))

    def _day_expr(self) -> str:
        return "CAST(m.time / 86400 AS INTEGER)"

    def check(self) -> None:
        with self._lock:
            rows = self._fetch("PRAGMA quick_check")
            if rows != [("ok",)]:
                raise IndexDamaged(f"{self.path}: {'; '.join(str(r[0]) for r in rows[:3])}")
            try:
                self.conn.execute("INSERT INTO fts (fts, rank) VALUES ('integrity-check', 1)")
            except sqlite3.DatabaseError as e:
                raise IndexDamaged(f"{self.path}: text index: {e}") from None
            self._check_rows()

    def rebuild(self, lines_by_user: bool | None = None) -> UpdateReport:
        """Start from an empty file (a damaged one cannot be trusted to drop its tables), then index."""
        with self._lock:
            if lines_by_user is None:
                # the file's choice, if it can still say (a damaged one: this opening's)
                with suppress(IndexDamaged, IndexUnavailable):
                    lines_by_user = self._has_lines_index()
            if lines_by_user is not None:
                self._lines_by_user = lines_by_user
            self.close()
            remove_index_file(self.path)
            self._open()
            report = self._sync_files(scan_archive(self.root), {})
            return replace(report, rebuilt=True)

    def close(self) -> None:
        self._checkpointer.stop()
        if self._conn is not None:
            self._conn.close()  # the last connection to close checkpoints what is left
            self._conn = None


class _Checkpointer:
    """Copies the write-ahead log into the database file in a thread of its own, after each write.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold: a live minute
    (thousands of rows whose keys, being hashes, dirty pages all over the key and user indexes)
    then paid about 90 ms to copy pages that readers already see in the log. SQLite's documentation
    names this alternative: turn the automatic checkpoint off and run checkpoints in another thread.
    A PASSIVE checkpoint never blocks readers or the writer (it copies what it can and stops), and
    the sqlite3 module releases the GIL while it runs. A failed checkpoint is left for the next
    one: the log keeps the data, and a damaged file is found by the index's own checks.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="index-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA synchronous=NORMAL")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                with suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            return  # not openable: the writer's own connection reports what is wrong
        finally:
            if conn is not None:
                conn.close()


# A text search's page found from the matches in `seq` order (`_page_keys`): for pages up to
# _PAGE_MAX rows, reading at most _WALK_MATCHES matches
_PAGE_MAX = 1000
_WALK_MATCHES = 20_000
_LATE_ROWS = 20_000  # rows indexed out of time order a page looks through before the other plan


def _json_list(values: list[int]) -> str:
    """Integers as a JSON array, for `json_each` (a list of any length as one parameter)."""
    return "[" + ",".join(map(str, values)) + "]"


_COLUMNS = len(MESSAGE_COLUMNS.split(", "))
_GROUP = 100  # rows of `messages` a build inserts with one statement


def group_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A build's rows of `messages` in groups of _GROUP, each one tuple of their values in a row:
    one INSERT of a group is a step of SQLite's VM and a call of the driver for a hundred rows
    (a quarter of the insert's time). Made in the readers."""
    return [tuple(chain.from_iterable(rows[i : i + _GROUP])) for i in range(0, len(rows), _GROUP)]


@functools.cache
def _insert_rows(n: int) -> str:
    """An INSERT of `n` rows of `messages`, their values in a row."""
    row = "(" + ", ".join("?" * _COLUMNS) + ")"
    return f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES " + ", ".join([row] * n)


def _busy(path: str, e: sqlite3.DatabaseError) -> IndexUnavailable | None:
    """The error of a file another process holds (a build, which locks it until it commits), not a
    damaged one: rebuilding it would delete that process's work."""
    if isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e)):
        return IndexUnavailable(f"{path}: busy: another process is writing it ({e}); try again when it is done")
    return None


def remove_index_file(path: str) -> None:
    """Delete a SQLite index and its WAL files (to rebuild a damaged one)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with suppress(FileNotFoundError):
            os.unlink(path + suffix)
