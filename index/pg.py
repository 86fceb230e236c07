"""The shared backend: PostgreSQL (psycopg 3), for hosts that outgrow one file or want one index
for many readers (wubloader nodes already run one).

Same tables and SQL as the SQLite backend (index.base); the words of a message are a `text[]` with
a GIN index. A word query is `words @> ARRAY[...]` (every word present) and a phrase is then
checked as a run of consecutive words inside the space-joined array (`position`, which has no
wildcards, on words that never hold a space). Values always travel as bound parameters.

The tables live in the schema the connection uses first (`search_path`); to keep several archives'
indexes in one database, give each its own schema in the URL (`?options=-csearch_path%3Dhost_a`).
Rows are bulk-loaded with COPY into a temporary table, then upserted in one statement.
"""

from __future__ import annotations

import re
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

import orjson

from formats import speedups
from index.api import IndexDamaged, IndexUnavailable, QueryError
from index.base import (
    BUILT_AT_END,
    MESSAGE_COLUMNS,
    SCHEMA_VERSION,
    SECONDARY_INDEXES,
    SqlIndex,
    TableIndex,
    best_of_duplicates,
    on_conflict_messages,
)
from index.extract import MESSAGE_VALUES, MessageRow
from index.text import Term, pg_words

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
except ImportError:  # pragma: no cover - psycopg is a declared dependency; said clearly if missing
    psycopg = None  # type: ignore[assignment]

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files (id BIGSERIAL PRIMARY KEY, path TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,"
    " batch_time BIGINT NOT NULL, message_keys BYTEA NOT NULL, removal_keys BYTEA NOT NULL)",
    "CREATE TABLE IF NOT EXISTS messages (id BIGINT PRIMARY KEY, refs INTEGER NOT NULL, channel TEXT NOT NULL,"
    " time DOUBLE PRECISION NOT NULL, time_range DOUBLE PRECISION NOT NULL, command TEXT NOT NULL, msg_id TEXT,"
    " user_id TEXT, login TEXT, recipient_id TEXT, words TEXT[] NOT NULL, line TEXT NOT NULL,"
    " tier INTEGER NOT NULL DEFAULT 0 CHECK (tier IN (0, 1)))",  # see index.base, Two tiers
    "CREATE TABLE IF NOT EXISTS removals (id BIGINT PRIMARY KEY, refs INTEGER NOT NULL, channel TEXT NOT NULL,"
    " time DOUBLE PRECISION NOT NULL, target_msg_id TEXT, target_user_id TEXT, target_login TEXT)",
    "CREATE TABLE IF NOT EXISTS channels (channel TEXT PRIMARY KEY, room_id TEXT)",
)
# the types of MESSAGE_COLUMNS, in order, for a binary COPY
_MESSAGE_TYPES = (
    *("int8", "int4", "text", "float8", "float8", "text", "text", "text", "text", "text", "text", "text"),
    "int4",
)
# Rows are staged with their words as one space-joined text (words never hold white space) and
# split by the server: psycopg dumps a list as an array in Python, 40% of a live minute's COPY.
_STAGE_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_words (id BIGINT, refs INTEGER, channel TEXT, time DOUBLE PRECISION,"
    " time_range DOUBLE PRECISION, command TEXT, msg_id TEXT, user_id TEXT, login TEXT, recipient_id TEXT,"
    " words TEXT, line TEXT, tier INTEGER) ON COMMIT DELETE ROWS"
)
_STAGED_COLUMNS = MESSAGE_COLUMNS.replace("words", "string_to_array(words, ' ')")
_WORDS_INDEX = TableIndex("messages", "words", ("words",), using="gin")


def _without_tier(index: TableIndex) -> TableIndex:
    """An index of SECONDARY_INDEXES without its leading `tier`: PostgreSQL writes one tier (see
    PostgresIndex), where the column made every key longer and each build's sort of a million of
    them compare past it (the user index 2.0-2.3 s, without it 1.5-1.6 s). Queries name the tier
    as before and read these as they read the others: an index file written with the column
    keeps it until it is built again, and answers the same."""
    return index._replace(key=tuple(column for column in index.key if column != "tier"))


_INDEXES = tuple(_without_tier(index) for index in SECONDARY_INDEXES)
_MESSAGE_INDEXES = (*(index for index in _INDEXES if index.table == "messages"), _WORDS_INDEX)
# A build fills a side table and swaps it in (PostgresIndex, building): `messages` keeps its name,
# indexes and key; the side table's are made under its name and take them over at the swap
_BUILD_TABLE = "messages_build"
# the indexes made at a build's end, by sorting; the others (partial, few rows) kept as rows come
_BUILT_AT_END = (*(_without_tier(index) for index in BUILT_AT_END), _WORDS_INDEX)
_KEPT_WHILE_LOADING = tuple(index for index in _MESSAGE_INDEXES if index not in _BUILT_AT_END)
# A build's rows go straight into its side table by COPY, made into its binary data by the readers
# (`copy_rows`), their words already in the binary form of a `text[]` (index.text.pg_words): a
# binary COPY carries no types, the server reads each field as its column's type
_BUILD_KINDS = tuple(
    "raw" if column == "words" else t for column, t in zip(MESSAGE_VALUES, _MESSAGE_TYPES, strict=True)
)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # the header of binary COPY data: no flags, no extension
_COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_FLOAT8 = struct.Struct("!id")


def copy_rows_py(rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows of `messages` (index.extract.MESSAGE_VALUES tuples, their words from pg_words) as the
    tuples of PostgreSQL's binary COPY data (without its header and trailer): for each row its
    count of fields, then each field's length (-1: NULL) and value, big-endian (int8, int4, float8),
    UTF-8 (text) or as it is (the words). The reference of the compiled `copy_rows`, which
    tests/test_index.py holds to it, and a real server to what psycopg writes for the same rows."""
    out = bytearray()
    head = len(_BUILD_KINDS).to_bytes(2, "big")
    for row in rows:
        out += head
        for kind, value in zip(_BUILD_KINDS, row, strict=True):
            if value is None:
                out += _NULL
            elif kind == "int8":
                out += b"\x00\x00\x00\x08" + int(value).to_bytes(8, "big", signed=True)
            elif kind == "int4":
                out += b"\x00\x00\x00\x04" + int(value).to_bytes(4, "big", signed=True)
            elif kind == "float8":
                out += _FLOAT8.pack(8, value)
            else:
                data = value.encode("utf-8") if kind == "text" else bytes(value)
                out += len(data).to_bytes(4, "big") + data
    return bytes(out)


copy_rows = speedups.twin(copy_rows_py, "index_copy_rows")


def copy_file(rows: list[tuple[Any, ...]]) -> list[Any]:
    """A build's rows of a file as `_insert_built` takes them: their COPY data, one bytes (made in
    the readers: the writer only passes it on, and one bytes crosses from a reader as it is)."""
    return [copy_rows(rows)] if rows else []


def safe_description(url: str) -> str:
    """The URL without its password (and without any other secret-looking parameter)."""
    try:
        info = conninfo_to_dict(url)
    except Exception:
        return "postgresql://(unparsable URL)"
    user = str(info.get("user") or "")
    host = str(info.get("host") or "")
    port = str(info.get("port") or "")
    db = str(info.get("dbname") or "")
    where = f"{host}:{port}" if port else host
    return f"postgresql://{user + '@' if user else ''}{where}/{db}"


def password_of(url: str) -> str:
    """The password `url` holds ("" for none): `user:password@` or a `password=` parameter."""
    try:
        return str(conninfo_to_dict(url).get("password") or "")
    except Exception:
        # an unparsable URL: take whatever sits between `user:` and `@`
        found = re.match(r"^[a-z]+://[^:/@]*:([^@]*)@", url)
        return found.group(1) if found else ""


def scrub(text: str, url: str) -> str:
    """`text` (an error message) with the URL and its password taken out: psycopg's errors can
    echo the connection string, and a message is printed and logged."""
    text = text.replace(url, safe_description(url))
    password = password_of(url)
    return text.replace(password, "***") if password else text


class PostgresIndex(SqlIndex):
    # No recent tier (index.base, Two tiers): PostgreSQL does not write the pages a commit dirtied
    # (its log holds the new entries, and the pages are written later, once however many rows
    # touched them), so a live row's random pages cost it little, while settling is an UPDATE that
    # writes every moved row again, with an entry in every index (measured: 2 s for 60,000 rows,
    # a minute no faster). Rows are written as tier 1; `settle` finds none to move.
    recent_tier = False

    def set_lines_by_user(self, on: bool) -> None:
        """Not here: PostgreSQL's index could carry the line (`INCLUDE`) only up to a third of a
        page, and a line can be longer; its heap is read in page order (a bitmap), not a row at a time."""
        if on:
            raise QueryError(f"{self.description}: lines by user are SQLite's; PostgreSQL reads them from its table")

    def __init__(self, root: str, url: str, *, replace_other_version: bool = False) -> None:
        super().__init__(root)
        self.description = safe_description(url) if psycopg is not None else "postgresql"
        self._url = url
        if psycopg is None:
            raise IndexUnavailable("PostgreSQL needs psycopg: pip install 'psycopg[binary]'")
        try:
            self._conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as e:
            raise IndexUnavailable(f"{self.description}: cannot connect: {scrub(_first_line(e), url)}") from None
        self._in_transaction = False
        self._copy: Any = None  # a build's COPY while it is open (`_insert_built`), and what closes it
        self._copy_stack: ExitStack | None = None
        self._side: Any = None  # a build's second connection (`_building`)
        self._words_index: threading.Thread | None = None
        self._words_error: BaseException | None = None
        try:
            self._open_schema(replace_other_version)
        except BaseException:
            self._conn.close()
            raise

    def _open_schema(self, replace_other_version: bool) -> None:
        version = self._version()
        if version is None:
            self._create_schema()
        elif version != str(SCHEMA_VERSION):
            if not replace_other_version:  # tables in a shared database: dropped only when asked
                raise IndexDamaged(
                    f"{self.description}: index schema {version}, this version writes {SCHEMA_VERSION};"
                    " `chat-archiver index ROOT --db URL --rebuild` replaces it"
                )
            with self._transaction():
                self._drop_all()
            self._create_schema()

    def _version(self) -> str | None:
        rows = self._fetch("SELECT to_regclass('meta') IS NOT NULL")
        if not rows[0][0]:
            return None
        found = self._fetch("SELECT value FROM meta WHERE key = 'version'")
        return str(found[0][0]) if found else None

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _fail(self, e: Exception) -> Exception:
        if isinstance(e, psycopg.OperationalError):  # the server, not the index: a connection lost
            return IndexUnavailable(f"{self.description}: {scrub(_first_line(e), self._url)}")
        return IndexDamaged(f"{self.description}: {scrub(_first_line(e), self._url)}")

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._conn.cursor() as cur:
                cur.execute(self._sql(sql), list(params))
                return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as e:
            raise self._fail(e) from None

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self._conn.execute(self._sql(sql), list(params))
        except psycopg.Error as e:
            raise self._fail(e) from None

    def _execmany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        batch = [list(r) for r in rows]
        if not batch:
            return 0
        try:
            with self._conn.cursor() as cur:
                cur.executemany(self._sql(sql), batch)
                return max(cur.rowcount, 0)
        except psycopg.Error as e:
            raise self._fail(e) from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._in_transaction:
            yield
            return
        try:
            with self._conn.transaction():
                # derived data: a crash may lose the last transactions, never leave half of one,
                # and a lost one leaves its files unindexed, so the next update reads them again;
                # the commit then does not wait for the log's flush (a live minute's is tens of MB)
                self._conn.execute("SET LOCAL synchronous_commit = off")
                self._in_transaction = True
                try:
                    yield
                finally:
                    self._in_transaction = False
        except psycopg.Error as e:
            raise self._fail(e) from None

    def _create_schema(self) -> None:
        with self._transaction():
            for statement in (*_TABLES, *(index.create() for index in (*_INDEXES, _WORDS_INDEX))):
                self._exec(statement)
            self._exec(
                "INSERT INTO meta (key, value) VALUES ('version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def _drop_all(self) -> None:
        for name in ("messages", _BUILD_TABLE, "removals", "files", "channels", "meta"):
            self._exec(f"DROP TABLE IF EXISTS {name}")

    # -- building (index.base, Building) ------------------------------------------------------
    #
    # A build writes a side table, `messages_build` (the columns and checks of `messages`, no
    # index, no key), and swaps it in at the end: `messages` dropped, the side table, its indexes
    # and its key renamed to theirs, changes of the catalog that take no time. Two connections do
    # it, so that the word index (a GIN, which PostgreSQL 15 makes in one process) is sorted while
    # the B-trees are, from the other connection:
    #
    # - the *side* connection makes the side table and loads it (COPY ... FREEZE, into a table of
    #   its own transaction: the rows written once, visible as they are, never revisited to mark
    #   them committed), and commits it, so the other connection can read it; merges the keys found
    #   twice, if any, and commits that; makes the word index and commits it;
    # - the *main* connection holds the build's one transaction (`_transaction`): the rows of
    #   `files`, `removals` and `channels`, the key and the B-trees of the side table, its
    #   statistics, and the swap. Its locks on the side table (SHARE, of CREATE INDEX) let the
    #   other connection make its index; it takes nothing stronger until the word index is made.
    #
    # Until the commit every other connection reads the index it had, without waiting: nothing of
    # the build locks `messages` before the swap, and the swap's lock lasts from the swap to the
    # commit. Killed at any point, the main transaction is rolled back: `messages`, `files` and the
    # others are the empty ones they were, and what the side connection committed is a side table
    # nobody reads, dropped by the next build (`_begin_build`) or rebuild (`_drop_all`).

    def _build_words(self) -> Callable[[Sequence[str]], Any]:
        return pg_words

    @contextmanager
    def _building(self) -> Iterator[None]:
        try:
            side = psycopg.connect(self._url, autocommit=False)
        except psycopg.Error as e:
            raise self._fail(e) from None
        self._side = side
        try:
            with self._transaction():
                # one build of this schema at a time: another would drop this one's side table
                self._exec("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.' || ?))", (_BUILD_TABLE,))
                for conn in (self._conn, side):
                    self._session(conn)
                try:
                    yield
                except BaseException as e:
                    with suppress(psycopg.Error):
                        self._end_copy(e)  # a COPY left open would keep the connection from rolling back
                    raise
                finally:
                    self._stop_words_index()
        finally:
            self._side = None
            side.close()

    def _session(self, conn: Any) -> None:
        """A build's settings, for its transaction (main) or the connection's life (side)."""
        scope = "LOCAL " if conn is self._conn else ""
        conn.execute(f"SET {scope}client_encoding = 'UTF8'")  # pg_words writes UTF-8
        conn.execute(f"SET {scope}synchronous_commit = off")
        # the indexes are made by sorting: in memory, when it can (the server's default is 64 MB;
        # at 10M messages a B-tree's sort is 300-400 MB: the key's took 12.8 s spilled, 4-5 s not)
        conn.execute(f"SET {scope}maintenance_work_mem = '1GB'")
        if conn.info.server_version >= 140000:
            # a build's client killed: its statement (a sort of a minute) ends within a second,
            # not when it would have, so the next build does not wait for its locks
            conn.execute(f"SET {scope}client_connection_check_interval = '1s'")

    def _side_exec(self, sql: str, *, commit: bool = False) -> None:
        """A statement in the side connection's transaction; `commit`: then commit it."""
        try:
            self._side.execute(sql)
            if commit:
                self._side.commit()
        except psycopg.Error as e:
            raise self._fail(e) from None

    def _side_commit(self) -> None:
        try:
            self._side.commit()
        except psycopg.Error as e:
            raise self._fail(e) from None

    def _begin_build(self) -> None:
        self._side_exec(f"DROP TABLE IF EXISTS {_BUILD_TABLE}")
        self._side_exec(f"CREATE TABLE {_BUILD_TABLE} (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        for index in _KEPT_WHILE_LOADING:
            self._side_exec(index.create(_BUILD_TABLE))
        self._words_index = None
        self._words_error = None

    def _build_pack(self) -> Callable[[list[tuple[Any, ...]]], list[Any]]:
        return copy_file

    def _insert_built(self, packed: list[Any]) -> None:
        """Into one COPY, open from the first file to the next `_flush_built`: the server takes
        the rows in while the readers read (a COPY per batch kept each waiting for the other)."""
        try:
            if self._copy is None:
                stack = ExitStack()
                cur = stack.enter_context(self._side.cursor())
                self._copy = stack.enter_context(
                    cur.copy(f"COPY {_BUILD_TABLE} ({MESSAGE_COLUMNS}) FROM STDIN (FORMAT BINARY, FREEZE)")
                )
                self._copy_stack = stack
                self._copy.write(_COPY_SIGNATURE)
            for data in packed:
                self._copy.write(data)
        except psycopg.Error as e:
            self._end_copy(e)
            raise self._fail(e) from None

    def _flush_built(self) -> None:
        try:
            self._end_copy(None)
        except psycopg.Error as e:
            raise self._fail(e) from None

    def _end_copy(self, error: BaseException | None) -> None:
        stack, copy, self._copy, self._copy_stack = self._copy_stack, self._copy, None, None
        if stack is not None:
            if error is None:
                copy.write(_COPY_TRAILER)  # data written whole (not by rows): its end is ours to write
                stack.close()
            else:
                stack.__exit__(type(error), error, error.__traceback__)

    def _loaded(self) -> None:
        """The side table's rows committed: the main connection reads them from here on."""
        self._side_commit()

    def _unique_keys(self) -> bool:
        """The key's index, made in the main transaction (a constraint's ALTER TABLE would lock the
        side table from the other connection to the commit); it becomes the key at the swap."""
        try:
            with self._conn.transaction():  # a savepoint: a key twice undoes this statement only
                self._conn.execute(f"CREATE UNIQUE INDEX {_BUILD_TABLE}_pkey ON {_BUILD_TABLE} (id)")
        except psycopg.errors.UniqueViolation:
            return False
        except psycopg.Error as e:
            raise self._fail(e) from None
        return True

    def _merge_duplicates(self) -> None:
        """In the side connection, committed: the main transaction holds no lock on the side table
        here (its attempt at the key was undone), and would otherwise hold one the word index waits for."""
        best = best_of_duplicates(_BUILD_TABLE, "ctid", self._order_text)
        self._side_exec(f"CREATE TEMP TABLE build_best ON COMMIT DROP AS {best}")
        self._side_exec(f"DELETE FROM {_BUILD_TABLE} m USING build_best b WHERE m.id = b.id AND m.ctid <> b.ref")
        self._side_exec(f"UPDATE {_BUILD_TABLE} m SET refs = b.total FROM build_best b WHERE m.ctid = b.ref")
        self._side_commit()

    def _end_build(self) -> None:
        thread = threading.Thread(target=self._words_in_thread, name="index-words", daemon=True)
        self._words_index = thread
        thread.start()
        for index in _BUILT_AT_END:
            if index is not _WORDS_INDEX:
                self._exec(index.create(_BUILD_TABLE))
        thread.join()
        self._words_index = None
        if self._words_error is not None:
            raise self._words_error
        # statistics before the swap (they belong to the table, whatever its name): the swap's
        # lock is held to the commit, so nothing slow comes after it
        self._exec(f"ANALYZE {_BUILD_TABLE}")
        self._exec("ANALYZE removals")
        self._swap_in()

    def _words_in_thread(self) -> None:
        try:
            self._make_words_index()
        except BaseException as e:  # raised by the main thread, after the join
            self._words_error = e

    def _make_words_index(self) -> None:
        """The word index of the side table, in the side connection, committed."""
        self._side_exec(_WORDS_INDEX.create(_BUILD_TABLE), commit=True)

    def _stop_words_index(self) -> None:
        """A build ending while the word index is made (an error in the main connection): its
        statement cancelled, its thread waited for."""
        thread, self._words_index = self._words_index, None
        if thread is not None:
            with suppress(psycopg.Error):
                self._side.cancel()
            thread.join()

    def _swap_in(self) -> None:
        """The built table becomes `messages`, with the names of its indexes and key."""
        self._exec("DROP TABLE messages")
        self._exec(f"ALTER TABLE {_BUILD_TABLE} RENAME TO messages")
        # the unique index becomes the key, named as the constraint (NOT NULL already: no scan)
        self._exec(f"ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY USING INDEX {_BUILD_TABLE}_pkey")
        for index in _MESSAGE_INDEXES:
            self._exec(f"ALTER INDEX {index.named(_BUILD_TABLE)} RENAME TO {index.name}")

    def _write_messages(self, rows: list[tuple[str, MessageRow, int]]) -> int:
        if not rows:
            return 0
        try:
            with self._conn.cursor() as cur:
                cur.execute(_STAGE_TABLE)
                # binary COPY with the types given: psycopg's C dumpers skip guessing each value's
                # type and quoting text, half the time of text COPY for these rows
                with cur.copy(f"COPY stage_words ({MESSAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(_MESSAGE_TYPES)
                    for channel, r, n in rows:
                        copy.write_row(self._message_values(channel, r, n))
                cur.execute(
                    f"INSERT INTO messages ({MESSAGE_COLUMNS}) SELECT {_STAGED_COLUMNS} FROM stage_words"
                    f" {on_conflict_messages(self._order_text)}"
                )
                written = max(cur.rowcount, 0)
                cur.execute("DELETE FROM stage_words")
                return written
        except psycopg.Error as e:
            raise self._fail(e) from None

    def _in_values(self, column: str, values: list[Any]) -> tuple[str, Any]:
        # the texts as one JSON text, split by the server: psycopg dumps a list as an array in
        # Python, 3.3 ms of the 5.7 ms the statement took for a user's month of 2,000 ids (2.9 ms
        # so); the values are the columns' own, cleaned of what JSON text cannot carry to PostgreSQL
        return f"{column} = ANY(ARRAY(SELECT json_array_elements_text(?::json)))", orjson.dumps(values).decode()

    def _text_clause(self, terms: list[Term]) -> tuple[str, list[Any]]:
        every = sorted({w for term in terms for w in term})
        sql = "m.words @> ?::text[]"
        params: list[Any] = [every]
        for term in terms:
            if len(term) > 1:
                sql += " AND position(? in (' ' || array_to_string(m.words, ' ') || ' ')) > 0"
                params.append(" " + " ".join(term) + " ")
        return sql, params

    def _words_value(self, words: Sequence[str]) -> Any:
        return " ".join(words)  # split into a text[] by the server (_STAGE_TABLE)

    def _day_expr(self) -> str:
        return "floor(m.time / 86400)::bigint"

    def _order_text(self, column: str) -> str:
        return f'{column} COLLATE "C"'

    def check(self) -> None:
        with self._lock:
            if self._version() is None:
                raise IndexDamaged(f"{self.description}: no index here")
            self._check_rows()

    def close(self) -> None:
        self._conn.close()


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
