"""The index (index/), one suite run against both backends: SQLite FTS5 and a real PostgreSQL.

Every query is compared with a brute-force scan of the records (tests/index_model.py); updates
are compared with a rebuild; merges, syncs, removed and damaged files are exercised on disk.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from formats.canonical import batch_time_of, canonical_bytes, format_batch
from formats.errors import InputError
from formats.store import iter_batch_files, write_batch_bytes
from index import ChatIndex, IndexDamaged, IndexUnavailable, Query, QueryError, base, open_index
from index.api import Day, Month
from index.extract import (
    BatchRows,
    BuildRows,
    MessageRow,
    _BuildReader,
    _read_scanned,
    _Reader,
    message_row,
    privmsg_row_py,
    read_batch,
    read_batch_py,
    read_build,
    read_build_py,
)
from index.identity import id_key_scope
from index.pg import copy_rows_py
from index.sqlite import SqliteIndex
from index.text import fts_document, fts_match, parse_query, pg_words, text_words
from tests.compiled import Core, compiled_only, native, needs_native, same_as_reference
from tests.index_model import Model
from tests.pgserver import postgres_server, require_postgres
from tests.profiles import examples
from tests.strategies import (
    INDEX_T0,
    archive_records,
    index_archives,
    index_privmsgs,
    index_queries,
    index_record,
    odd_privmsgs,
)
from tests.test_merge_scan import _mutations

Factory = Callable[[str], ChatIndex]

_schemas = itertools.count()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    require_postgres()
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "sqlite-lines", pytest.param("postgres", marks=pytest.mark.integration)])
def make_index(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """A factory of fresh, empty indexes of an archive root, on the backend under test: SQLite,
    SQLite keeping lines by user (`set_lines_by_user`), a real PostgreSQL server."""
    opened: list[ChatIndex] = []
    if request.param == "postgres":
        import psycopg

        url = request.getfixturevalue("pg_url")

        def make(root: str) -> ChatIndex:
            schema = f"t{next(_schemas)}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            index = open_index(root, f"{url}&options=-csearch_path%3D{schema}")
            opened.append(index)
            while len(opened) > 4:  # a hypothesis test makes many; only the last few are still in use
                opened.pop(0).close()
            return index
    else:

        def make(root: str) -> ChatIndex:
            index = open_index(root, os.path.join(tempfile.mkdtemp(prefix="idx-"), "index.sqlite"))
            if request.param == "sqlite-lines":
                index.set_lines_by_user(True)
            opened.append(index)
            return index

    yield make
    for index in opened:
        index.close()


def write_archive(root: str, records: list[tuple[str, dict[str, Any]]], copies: int = 1) -> None:
    """One batch file per channel and minute (and `copies` more, each seen by another receiver)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for channel, record in records:
        groups.setdefault((channel, batch_time_of(record["time"])), []).append(record)
    for (channel, minute), recs in sorted(groups.items()):
        for n in range(copies):
            version = []
            for record in recs:
                r = copy.deepcopy(record)
                r["receivers"] = {f"host{n + 1}.Ab3dE.0": r["time"] + 0.25 + n}
                version.append(r)
            write_batch_bytes(root, channel, minute, format_batch(version))


def fresh_root() -> str:
    return tempfile.mkdtemp(prefix="archive-")


def answer(index: ChatIndex, q: Query) -> list[tuple[int, str, float, bool, float | None]]:
    return [(m.key, m.channel, m.time, m.removed, m.removed_at) for m in index.messages(q)]


def everything(index: ChatIndex) -> list[tuple[Any, ...]]:
    return [(m.key, m.line, m.removed_at) for m in index.messages(Query(oldest_first=True))]


# each example builds an index (and a PostgreSQL schema): a third of the profile's examples
SETTINGS = settings(
    max_examples=examples(1 / 3),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)


@SETTINGS
@given(
    records=index_archives(),
    queries=st.lists(index_queries, min_size=1, max_size=6),
    copies=st.integers(1, 2),
    cut=st.integers(0, 18),
)
def test_every_query_equals_a_brute_force_scan(
    make_index: Factory, records: list[tuple[str, dict[str, Any]]], queries: list[dict[str, Any]], copies: int, cut: int
) -> None:
    """The records before `cut` are built in bulk (the main tier), the rest come by an update (the
    recent tier, see index.base): every answer holds with rows in both tiers, and after `settle`."""
    root = fresh_root()
    try:
        write_archive(root, records[:cut], copies)
        index = make_index(root)
        index.update()
        write_archive(root, records[cut:], copies)
        index.update()
        model = Model(records)
        _every_answer_equals_the_model(index, model, queries)
        recent = index.recent_rows()
        if not records[:cut]:  # nothing before the cut: the second update was the bulk build
            assert recent == 0
        assert index.settle() == recent and index.recent_rows() == 0
        _every_answer_equals_the_model(index, model, queries)
    finally:
        shutil.rmtree(root)


def _every_answer_equals_the_model(index: ChatIndex, model: Model, queries: list[dict[str, Any]]) -> None:
    for fields in queries:
        q = Query(**fields)
        assert answer(index, q) == model.answer(q), fields
        assert index.count(Query(**{**fields, "limit": None, "offset": 0})) == len(
            model.select(Query(**{**fields, "limit": None, "offset": 0}))
        )
    for channel in ("chan", "other"):
        for user_id in ("1", "2", "3", "9"):
            assert index.user_months(channel, user_id) == model.user_months(channel, user_id)
        assert index.channel_days(channel) == model.channel_days(channel)
        days, top = model.stats(channel)
        stats = index.channel_stats(channel)
        assert [(d.day, d.messages) for d in stats.per_day] == days
        assert [(c.user_id, c.login, c.messages) for c in stats.top_chatters] == top
    assert [c.login for c in index.channels()] == model.channels()
    for user_id in ("1", "2", "3", "9"):
        assert index.name_history(user_id) == model.name_history(user_id)
        assert index.login_of(user_id) == model.login_of(user_id)
    for login in ("alice", "CAROL", "caroline", "dave", "zed"):
        assert index.user_id_of(login) == model.user_id_of(login)


def _msg(
    i: int, at: float, login: str, user_id: str, text: str, *, channel: str = "chan"
) -> tuple[str, dict[str, Any]]:
    tags = {"id": f"id{i}", "user-id": user_id, "room-id": "100", "tmi-sent-ts": str(int(at * 1000))}
    return channel, index_record("PRIVMSG", at, tags, [f"#{channel}", text], login)


@pytest.mark.parametrize("late_rows", [20_000, 2])
def test_a_search_page_holds_rows_indexed_out_of_time_order(
    make_index: Factory, monkeypatch: pytest.MonkeyPatch, late_rows: int
) -> None:
    """A file of older minutes indexed after newer ones (a late copy, a sync) comes last in the
    index's own order, yet a search's page is by time, from either end and past an offset (the
    SQLite index finds a page from the matches in its own order: the late rows must be looked
    for, or, past a number of them, the page comes from the other plan). Expected pages worked
    out by hand."""
    monkeypatch.setattr("index.sqlite._LATE_ROWS", late_rows)
    t = float(INDEX_T0)
    root = fresh_root()
    try:
        write_archive(root, [_msg(i, t + 600 + i, "alice", "1", f"hello {i}") for i in range(6)])
        index = make_index(root)
        index.update()
        write_archive(root, [_msg(100 + i, t + i, "bob", "2", f"hello old {i}") for i in range(6)])
        index.update()

        def ids(**fields: Any) -> list[str]:
            return [m.msg_id for m in index.messages(Query(channel="chan", **fields))]

        assert ids(text="hello", limit=3) == ["id5", "id4", "id3"]
        assert ids(text="hello", limit=2, offset=5) == ["id0", "id105"]
        assert ids(text="hello", limit=3, oldest_first=True) == ["id100", "id101", "id102"]
        assert ids(text="hello", limit=2, offset=5, oldest_first=True) == ["id105", "id0"]
        assert ids(text="old", limit=2) == ["id105", "id104"]
        assert ids(text="hello", limit=20) == [f"id{i}" for i in (5, 4, 3, 2, 1, 0, 105, 104, 103, 102, 101, 100)]
    finally:
        shutil.rmtree(root)


def test_a_search_whose_newest_matches_are_elsewhere_is_answered(
    make_index: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest matches of the words are in another channel or outside the window: past the
    matches a page may read in the index's order (made small here), the page comes from the other
    plan, and is the same."""
    monkeypatch.setattr("index.sqlite._WALK_MATCHES", 4)
    t = float(INDEX_T0)
    root = fresh_root()
    try:
        mine = [_msg(i, t + i, "alice", "1", f"hello {i}") for i in range(3)]
        others = [_msg(100 + i, t + 60 + i, "bob", "2", f"hello {i}", channel="other") for i in range(12)]
        write_archive(root, mine + others)
        index = make_index(root)
        index.update()

        def ids(**fields: Any) -> list[str]:
            return [m.msg_id for m in index.messages(Query(text="hello", **fields))]

        assert ids(channel="chan", limit=2) == ["id2", "id1"]
        assert ids(channel="other", limit=2, until=t + 62) == ["id101", "id100"]
        assert ids(channel="other", limit=2, oldest_first=True, since=t + 70) == ["id110", "id111"]
    finally:
        shutil.rmtree(root)


def test_a_worked_example(make_index: Factory) -> None:
    """Checked by hand: words, phrases, case, emotes, a removal by CLEARCHAT and one by CLEARMSG."""
    t = float(INDEX_T0)
    records = [
        _msg(1, t, "alice", "1", "hello Kappa world"),
        _msg(2, t + 1, "bob", "2", "Hello, there! <3"),
        _msg(3, t + 2, "alice", "1", "world hello"),
        _msg(4, t + 86400 * 40, "alice", "1", "later KAPPA"),
        (
            "chan",
            index_record(
                "CLEARCHAT",
                t + 3,
                {"room-id": "100", "target-user-id": "2", "tmi-sent-ts": str(int((t + 3) * 1000))},
                ["#chan", "bob"],
                "tmi.twitch.tv",
            ),
        ),
        (
            "chan",
            index_record(
                "CLEARMSG",
                t + 4,
                {"login": "alice", "target-msg-id": "id3", "tmi-sent-ts": str(int((t + 4) * 1000))},
                ["#chan", "world hello"],
                "tmi.twitch.tv",
            ),
        ),
    ]
    root = fresh_root()
    write_archive(root, records)
    index = make_index(root)
    index.update()
    texts = lambda **kw: [m.text for m in index.messages(Query(**kw))]  # noqa: E731
    assert texts(text="hello") == ["world hello", "Hello, there! <3", "hello Kappa world"]
    assert texts(text='"hello world"') == []
    assert texts(text='"world hello"') == ["world hello"]
    assert texts(text="kappa", oldest_first=True) == ["hello Kappa world", "later KAPPA"]
    assert texts(text="<3") == ["Hello, there! <3"]
    assert texts(text="there!") == ["Hello, there! <3"]
    assert texts(text="hello", include_removed=False) == ["hello Kappa world"]
    removed = {m.text: m.removed_at for m in index.messages(Query(commands=frozenset({"PRIVMSG"})))}
    assert removed == {"later KAPPA": None, "world hello": t + 4, "Hello, there! <3": t + 3, "hello Kappa world": None}
    assert index.user_months("chan", "1") == [Month(2023, 12), Month(2023, 11)]
    assert index.channel_days("chan") == [Day(2023, 12, 24), Day(2023, 11, 14)]
    assert index.user_id_of("BOB") == "2"
    bob = index.messages(Query(user_id="2"))
    assert [m.command for m in bob] == ["CLEARCHAT", "PRIVMSG"]
    assert bob[1].display_name == "bob" and bob[1].msg_id == "id2" and bob[1].room_id == "100"
    assert bob[1].record["params"] == ["#chan", "Hello, there! <3"]
    stats = index.channel_stats("chan")
    assert stats.total == 4 and [(c.login, c.messages) for c in stats.top_chatters] == [("alice", 3), ("bob", 1)]


def _gift(i: int, at: float, login: str, user_id: str, recipient_id: str) -> tuple[str, dict[str, Any]]:
    tags = {
        "id": f"g{i}",
        "user-id": user_id,
        "login": login,
        "room-id": "100",
        "msg-id": "subgift",
        "msg-param-recipient-id": recipient_id,
        "tmi-sent-ts": str(int(at * 1000)),
    }
    return "chan", index_record("USERNOTICE", at, tags, ["#chan"], "tmi.twitch.tv")


def test_a_users_rows_are_theirs_and_those_naming_them_each_once(make_index: Factory) -> None:
    """A user's rows: the lines they wrote, and the gifts naming them as recipient, a gift to
    themselves once (worked out by hand: the two ways a row is theirs meet in it)."""
    t = 1_700_000_000.0
    records = [
        _msg(1, t, "alice", "1", "hi"),
        _gift(2, t + 1, "alice", "1", "1"),  # alice to herself
        _gift(3, t + 2, "bob", "2", "1"),  # bob to alice
        _gift(4, t + 3, "alice", "1", "2"),  # alice to bob
        _msg(5, t + 4, "bob", "2", "thanks"),
    ]
    root = fresh_root()
    try:
        write_archive(root, records)
        index = make_index(root)
        index.update()
        for oldest_first in (True, False):
            alice = [m.msg_id for m in index.messages(Query(user_id="1", oldest_first=oldest_first))]
            bob = [m.msg_id for m in index.messages(Query(user_id="2", oldest_first=oldest_first))]
            step = 1 if oldest_first else -1
            assert alice == ["id1", "g2", "g3", "g4"][::step]
            assert bob == ["g3", "g4", "id5"][::step]
        assert [m.msg_id for m in index.messages(Query(user_id="1", since=t + 1, until=t + 3))] == ["g3", "g2"]
    finally:
        shutil.rmtree(root)


def test_removals_of_ids_json_must_escape_are_found(make_index: Factory) -> None:
    """A removal's target is looked up among a page's ids in one parameter (`_in_values`: JSON
    text on both backends); ids holding what JSON escapes, or what a list's text would split on,
    still match only themselves."""
    t = 1_700_000_000.0
    odd = ['a"b', "c\\d", "e f,g", "{h}", "caf\u00e9 \U0001f389", "i'j"]
    records = [_msg(i, t + i, "alice", "1", f"line {i}") for i in range(len(odd) + 1)]
    for i, mid in enumerate(odd):
        records[i][1]["tags"]["id"] = mid
    removed = odd[::2]
    records += [_removal("CLEARMSG", t + 20 + i, {"target-msg-id": mid}, ["x"]) for i, mid in enumerate(removed)]
    root = fresh_root()
    try:
        write_archive(root, records)
        index = make_index(root)
        index.update()
        got = {m.msg_id: m.removed_at for m in index.messages(Query(user_id="1"))}
        assert got == {**dict.fromkeys(odd), "id6": None, **{mid: t + 20 + i for i, mid in enumerate(removed)}}
    finally:
        shutil.rmtree(root)


def test_lines_by_user_are_read_from_the_user_index_and_kept(tmp_path: Any) -> None:
    """With lines by user, a user's rows are read from the user index alone (SQLite's plan says
    `COVERING INDEX`); the file keeps the choice when opened again and through a rebuild, and
    the answers are the same either way."""
    t = 1_700_000_000.0
    root = fresh_root()
    path = str(tmp_path / "index.sqlite")

    def plan(index: ChatIndex) -> str:
        """The plan of the statement that read a user's rows (`messages`), as SQLite ran it."""
        assert isinstance(index, SqliteIndex)
        ran: list[str] = []
        index.conn.set_trace_callback(ran.append)
        try:
            index.messages(Query(channel="chan", user_id="1"))
        finally:
            index.conn.set_trace_callback(None)
        (read,) = [sql for sql in ran if sql.startswith("SELECT m.id")]
        return " ".join(str(r[-1]) for r in index._fetch(f"EXPLAIN QUERY PLAN {read}"))

    try:
        write_archive(root, [_msg(i, t + i, "alice", "1", f"line {i}") for i in range(5)])
        index = open_index(root, path)
        index.update()
        before = [(m.key, m.line) for m in index.messages(Query(user_id="1"))]
        assert len(before) == 5 and not index.lines_by_user
        assert "COVERING INDEX messages_user_lines" not in plan(index)
        index.set_lines_by_user(True)
        assert "COVERING INDEX messages_user_lines" in plan(index)
        assert [(m.key, m.line) for m in index.messages(Query(user_id="1"))] == before
        index.close()
        index = open_index(root, path)
        assert index.lines_by_user and "COVERING INDEX messages_user_lines" in plan(index)
        index.rebuild()
        assert index.lines_by_user and "COVERING INDEX messages_user_lines" in plan(index)
        assert [(m.key, m.line) for m in index.messages(Query(user_id="1"))] == before
        index.rebuild(lines_by_user=False)
        assert not index.lines_by_user and "COVERING INDEX messages_user_lines" not in plan(index)
        assert [(m.key, m.line) for m in index.messages(Query(user_id="1"))] == before
        # another opening (`serve`) follows what this one does to the file, either way
        other = open_index(root, path)
        try:
            for on in (True, False, True, False):
                index.set_lines_by_user(on)
                assert ("COVERING INDEX messages_user_lines" in plan(other)) is on
                assert [(m.key, m.line) for m in other.messages(Query(user_id="1"))] == before
            # and a build there keeps the file's choice, made by the first since the second opened
            index.set_lines_by_user(True)
            index.close()
            other.update()
            other.rebuild()
            assert other.lines_by_user and "COVERING INDEX messages_user_lines" in plan(other)
            assert [(m.key, m.line) for m in other.messages(Query(user_id="1"))] == before
        finally:
            other.close()
    finally:
        shutil.rmtree(root)


def _removal(command: str, at: float, tags: dict[str, str], params: list[str]) -> tuple[str, dict[str, Any]]:
    tags = {"room-id": "100", "tmi-sent-ts": str(int(at * 1000)), **tags}
    return "chan", index_record(command, at, tags, ["#chan", *params], "tmi.twitch.tv")


def test_when_each_line_was_removed(make_index: Factory) -> None:
    """The three ways a line is struck, worked out by hand: a CLEARMSG of its id (whenever it
    came), a CLEARCHAT of its user id, and a CLEARCHAT naming only its login, each at or after
    the line (at the same time included, before it not); the first of them counts."""
    t = float(INDEX_T0)
    records = [
        _msg(1, t + 10, "alice", "1", "one"),
        _msg(2, t + 20, "alice", "1", "two"),
        _msg(3, t + 30, "alice", "1", "three"),
        _msg(4, t + 20, "bob", "2", "four"),
        _msg(5, t + 40, "bob", "2", "five"),
        _removal("CLEARMSG", t + 5, {"login": "alice", "target-msg-id": "id3"}, ["three"]),
        _removal("CLEARCHAT", t + 20, {"target-user-id": "1"}, ["alice"]),
        _removal("CLEARCHAT", t + 35, {"target-user-id": "1"}, ["alice"]),
        _removal("CLEARCHAT", t + 15, {}, ["bob"]),  # a ban naming no user id: bob's login
        _removal("CLEARCHAT", t + 50, {}, ["BOB"]),
        _removal("CLEARCHAT", t + 45, {}, []),  # the whole chat cleared: strikes no line
    ]
    root = fresh_root()
    try:
        write_archive(root, records)
        index = make_index(root)
        index.update()
        removed = {m.text: m.removed_at for m in index.messages(Query(commands=frozenset({"PRIVMSG"})))}
        assert removed == {"one": t + 20, "two": t + 20, "three": t + 5, "four": t + 50, "five": t + 50}
        kept = [m.text for m in index.messages(Query(include_removed=False, oldest_first=True))]
        assert "one" not in kept and "five" not in kept
    finally:
        shutil.rmtree(root)


HOSTILE = [
    '"',
    '""',
    "*",
    "a*",
    "NEAR(hello world)",
    "hello OR world",
    "hello AND NOT world",
    "-hello",
    "^hello",
    "col:hello",
    "words:hello",
    "'; DROP TABLE messages; --",
    "1=1) OR (1=1",
    "%_\\",
    "\x00",
    "hel\x00lo",
    "\udcff\udcfe",  # invalid UTF-8 as Python's surrogateescape gives it
    "\ud800hello",
    "x" * 100_000,
    " ".join(f"w{i}" for i in range(32)),
    "{}[]()",
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_never_fail_and_mean_their_words(make_index: Factory, query: str) -> None:
    records = [_msg(1, float(INDEX_T0), "alice", "1", "hello world"), _msg(2, INDEX_T0 + 1.0, "bob", "2", "w1 w2")]
    root = fresh_root()
    write_archive(root, records)
    index = make_index(root)
    index.update()
    q = Query(text=query)
    assert answer(index, q) == Model(records).answer(q)


def test_too_many_terms_is_a_query_error(make_index: Factory) -> None:
    index = make_index(fresh_root())
    with pytest.raises(QueryError, match="too many search terms"):
        index.messages(Query(text=" ".join(f"w{i}" for i in range(33))))


_versions = st.lists(
    st.tuples(
        st.sampled_from([0.5, 1.0, 2.5]),
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=4),
    ),
    min_size=1,
    max_size=6,
)


@given(_versions)
def test_the_version_rule_in_sql_is_better_version(versions: list[tuple[float, str]]) -> None:
    """The SQL forms of the rule (an upsert's condition, a build's merge of duplicates), run by
    SQLite, choose as extract.better_version does (PostgreSQL's, under a collation of its own:
    test_a_postgresql_upsert_orders_lines_by_code_point_under_any_collation)."""
    from index.extract import better_version

    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY, id INTEGER, refs INTEGER, time_range REAL, line TEXT)"
    )
    conn.executemany("INSERT INTO messages VALUES (?, 7, 2, ?, ?)", [(n, *v) for n, v in enumerate(versions)])
    beats = base.better_sql("a", "b", lambda column: column)
    for n, (a_range, a_line) in enumerate(versions):
        for m, (b_range, b_line) in enumerate(versions):
            found = conn.execute(f"SELECT {beats} FROM messages a, messages b WHERE a.seq = ? AND b.seq = ?", (n, m))
            assert bool(found.fetchone()[0]) == better_version(a_range, a_line, b_range, b_line), (n, m)
    best = 0
    for n, (a_range, a_line) in enumerate(versions):
        if better_version(a_range, a_line, *versions[best]):
            best = n
    chosen = conn.execute(base.best_of_duplicates("messages", "seq", lambda column: column)).fetchall()
    assert chosen == ([(7, best, 2 * len(versions))] if len(versions) > 1 else []), versions


def test_words_and_terms_by_hand() -> None:
    assert text_words("Hello, WORLD! :) <3 D: Straße") == ["hello", "world", ":)", "<3", "d:", "strasse"]
    assert text_words("a\u3000b\x00c\ud800d") == ["a", "b", "c", "d"]
    assert parse_query('kappa "Hello   World" kappa "unclosed phrase') == [
        ("kappa",),
        ("hello", "world"),
        ("unclosed", "phrase"),
    ]
    assert fts_match([("kappa",), (":)", "x")]) == '"kappa" AND "_3a29 x"'


def _merge_minute(root: str, channel: str) -> None:
    """Merge every minute's files into one, as `chat-archiver merge` does."""
    from merge.directory import merge_tree

    merge_tree(root, channels=[channel])


@SETTINGS
@given(records=index_archives(), cut=st.integers(0, 18), data=st.data())
def test_incremental_updates_equal_a_rebuild(
    make_index: Factory, records: list[tuple[str, dict[str, Any]]], cut: int, data: st.DataObject
) -> None:
    """Files arrive in two steps, copies come from a second recorder, a merge replaces them, some
    files are deleted: after each update the index equals one built from scratch."""
    root = fresh_root()
    try:
        index = make_index(root)
        write_archive(root, records[:cut])
        index.update()
        write_archive(root, records[cut:], copies=2)
        index.update()
        assert everything(index) == everything(_built(make_index, root))
        index.settle()  # the main tier holds both steps' rows now; the merge's come as recent
        for channel in ("chan", "other"):
            _merge_minute(root, channel)
        index.update()
        assert everything(index) == everything(_built(make_index, root))
        assert len({m.key for m in index.messages(Query())}) == index.count(Query())  # no duplicates
        files = [bf for ch in ("chan", "other") for bf in iter_batch_files(root, ch)]
        for bf in data.draw(st.lists(st.sampled_from(files), unique=True)) if files else []:
            os.unlink(bf.path)
        index.update()
        assert everything(index) == everything(_built(make_index, root))
    finally:
        shutil.rmtree(root)


def _built(make_index: Factory, root: str) -> ChatIndex:
    index = make_index(root)
    index.update()
    return index


def test_a_synced_copy_and_a_merge_never_duplicate(make_index: Factory) -> None:
    records = [_msg(i, INDEX_T0 + i * 7.0, "alice", "1", f"line {i}") for i in range(20)]
    root = fresh_root()
    write_archive(root, records)
    index = make_index(root)
    index.update()
    assert index.count(Query()) == 20
    write_archive(root, records, copies=2)  # what a sync from another host brings: other receivers
    report = index.update()
    assert report.files_added > 0 and index.count(Query()) == 20
    _merge_minute(root, "chan")
    report = index.update()
    assert report.files_removed > 0 and index.count(Query()) == 20
    assert all(len(m.record["receivers"]) == 2 for m in index.messages(Query()))  # the merged version
    for bf in iter_batch_files(root, "chan"):
        os.unlink(bf.path)
    report = index.update()
    assert index.count(Query()) == 0 and report.rows_removed == 20


def test_a_live_minute_update_sees_new_and_gone_files(make_index: Factory) -> None:
    root = fresh_root()
    index = make_index(root)
    index.update()
    first = [_msg(1, INDEX_T0 + 1.0, "alice", "1", "first")]
    write_archive(root, first)
    minute = batch_time_of(INDEX_T0 + 1.0)
    assert index.update_minutes("chan", [minute]).files_added == 1
    assert [m.text for m in index.messages(Query())] == ["first"]
    assert index.recent_rows() == 0  # the first rows of an empty index are built in bulk
    write_archive(root, [_msg(2, INDEX_T0 + 2.0, "bob", "2", "second")])
    _merge_minute(root, "chan")
    index.update_minutes("chan", [minute])
    assert [m.text for m in index.messages(Query())] == ["second", "first"]
    recent = 1 if isinstance(index, SqliteIndex) else 0  # PostgreSQL keeps no recent tier (index.pg)
    assert index.recent_rows() == recent  # "second": new, so recent until settled ("first" stays where it was)
    assert [m.text for m in index.messages(Query(user_id="2"))] == ["second"]
    assert index.user_id_of("bob") == "2" and index.login_of("2") == "bob"
    assert index.settle(recent + 1) == 0 and index.recent_rows() == recent  # fewer rows than asked for: left
    assert index.settle(1) == recent and index.recent_rows() == 0
    assert [m.text for m in index.messages(Query(user_id="2"))] == ["second"]
    assert index.user_id_of("bob") == "2" and index.login_of("2") == "bob"
    assert everything(index) == everything(_built(make_index, root))


def test_a_damaged_batch_file_is_reported_and_the_rest_indexed(make_index: Factory) -> None:
    root = fresh_root()
    write_archive(root, [_msg(1, float(INDEX_T0), "alice", "1", "kept")])
    bad = os.path.join(root, "chan", "chat", "2023-11-14T22", "14:00-" + "A" * 43 + ".json")
    with open(bad, "wb") as f:
        f.write(b'{"command":"PRIVMSG"\n')
    index = make_index(root)
    report = index.update()
    assert [m.text for m in index.messages(Query())] == ["kept"]
    assert len(report.problems) == 1 and bad in report.problems[0] and ":1:" in report.problems[0]


_ODD = {"id": "caf\u00e9", "user-id": "a\x00b"}


def _same_privmsg_row(core: Core, record: dict[str, Any], line: str, channel: str) -> None:
    """The row of a PRIVMSG and its stored line: `core`'s privmsg_row, the reference and message_row
    all agree."""
    scope = id_key_scope(channel)
    fast = core.twin(privmsg_row_py, "index_privmsg_row")(record, line, channel, scope)
    reference = privmsg_row_py(record, line, channel, scope)
    general = message_row(record, line, channel)
    assert fast == reference == general, (fast, reference, general)
    assert type(fast) is MessageRow and [type(v) for v in fast] == [type(v) for v in general], fast


@settings(max_examples=examples(8))  # cheap: no index is built
@given(record=odd_privmsgs(), channel=st.sampled_from(["chan", "caf\u00e9", "#x"]))
@example(record=index_record("PRIVMSG", INDEX_T0, _ODD, ["#chan", "Hi \x01"], "nul\x00x"), channel="chan")
@example(record=index_record("PRIVMSG", INDEX_T0, {"msgid": "m", "id": True}, ["#chan"], ""), channel="caf\u00e9")
@example(record=index_record("PRIVMSG", INDEX_T0, {"user-id": True}, [], "Stra\u00dfe"), channel="chan")
def test_the_privmsg_fast_path_equals_message_row(core: Core, record: dict[str, Any], channel: str) -> None:
    _same_privmsg_row(core, record, format_batch([record]).decode().removesuffix("\n"), channel)


@settings(max_examples=examples(8))
@given(record=index_privmsgs(), channel=st.sampled_from(["chan", "caf\u00e9"]), spaced=st.booleans())
@example(  # casefold grows (ß, ﬁ) and differs from lower (ς); a pair; NBSP and U+2028 cut words
    record=index_record(
        "PRIVMSG", INDEX_T0, {"id": "m1"}, ["#chan", "Stra\u00dfe\xa0\ufb01\u2028\u03c2\U0001f389"], "A"
    ),
    channel="chan",
    spaced=False,
)
@example(  # the /me wrapper, an escaped quote and backslash, a control
    record=index_record("PRIVMSG", INDEX_T0, {"id": "m1"}, ["#chan", '\x01ACTION Hi "you"\\x\x1cy\x01'], "A"),
    channel="chan",
    spaced=False,
)
@example(  # a lone surrogate: the reference's way
    record=index_record("PRIVMSG", INDEX_T0, {"id": "m1"}, ["#chan", "a\ud800b"], "a"), channel="chan", spaced=False
)
def test_the_compiled_privmsg_row_reads_the_stored_line(
    core: Core, record: dict[str, Any], channel: str, spaced: bool
) -> None:
    """The twin reads the canonical line; a line written otherwise (spaced JSON, which a hand-made
    file may hold) goes to the reference, with the same row."""
    line = json.dumps(record) if spaced else format_batch([record]).decode().removesuffix("\n")
    _same_privmsg_row(core, record, line, channel)


_FORMS = ((fts_document, 1), (pg_words, 2))  # the words of a build's rows the scan makes, by number


def _same_rows(data: bytes, channel: str) -> None:
    """The compiled scan's read of a file equals the reference's (or leaves the file to it): its
    rows, and a build's rows with the words in each form the scan makes."""
    try:
        expected: BatchRows | None = read_batch_py(data, "f.json", channel)
    except InputError:
        expected = None
    got = _read_scanned(native().index_scan_rows, data, "f.json", _Reader(channel))
    assert got is None or got == expected, (got, expected)
    if expected is not None:
        assert read_batch(data, "f.json", channel) == expected
    for words, form in _FORMS:
        try:
            expected_build: BuildRows | None = read_build_py(data, "f.json", channel, words)
        except InputError:
            expected_build = None
        built = _read_scanned(
            lambda d, scope, form=form: native().index_scan_rows(d, scope, form, channel),
            data,
            "f.json",
            _BuildReader(channel, words),
        )
        assert built is None or built == expected_build, (built, expected_build)
        assert (got is None) == (built is None)  # the same lines are read here, whatever the form
        if expected_build is not None:
            assert read_build(data, "f.json", channel, words) == expected_build
            assert [[type(v) for v in row] for row in (built or expected_build).messages] == [
                [type(v) for v in row] for row in expected_build.messages
            ]


_batch_records = st.lists(st.one_of(index_privmsgs(), odd_privmsgs(), archive_records()), max_size=8)


@needs_native
@settings(max_examples=examples(8))
@given(records=_batch_records, archive=index_archives(), channel=st.sampled_from(["chan", "caf\u00e9"]), data=st.data())
def test_the_compiled_scan_reads_a_file_as_the_reference_does(
    records: list[dict[str, Any]], archive: list[tuple[str, dict[str, Any]]], channel: str, data: st.DataObject
) -> None:
    """Whole files (PRIVMSGs read by the scan among lines it leaves to the decoder, room ids on
    either), and files with a damaged or odd line: the same rows, or the reference's error."""
    lines = format_batch([*records, *(r for _, r in archive)]).split(b"\n")[:-1]
    _same_rows(b"".join(line + b"\n" for line in lines), channel)
    if lines:
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i] = data.draw(st.one_of(_mutations(lines[i]), st.just(b""), st.just(lines[i] + b"\r")))
        _same_rows(b"".join(line + b"\n" for line in lines), channel)
        _same_rows(b"\n".join(lines), channel)  # no final newline


@needs_native
def test_the_room_id_is_the_first_lines_whichever_path_reads_it() -> None:
    msg = index_record("PRIVMSG", INDEX_T0, {"id": "m1", "room-id": "100"}, ["#chan", "hi"], "alice")
    ban = index_record("CLEARCHAT", INDEX_T0 + 1, {"room-id": "200", "target-user-id": "2"}, ["#chan", "bob"], None)
    noid = index_record("PRIVMSG", INDEX_T0 + 2, {"room-id": "300"}, ["#chan", "yo"], "carol")
    for records, room in (([msg, ban], "100"), ([ban, msg], "200"), ([noid, msg], "300"), ([msg, noid], "100")):
        data = b"".join(canonical_bytes(r) + b"\n" for r in records)
        rows = _read_scanned(native().index_scan_rows, data, "f.json", _Reader("chan"))
        assert rows is not None and rows.room_id == room == read_batch_py(data, "f.json", "chan").room_id, rows


@needs_native
def test_the_scan_makes_a_builds_rows_from_the_line() -> None:
    """Checked by hand: the words of a build's row in each form, from a file the scan reads whole
    (so this is the compiled path, not the reference it falls back to)."""
    text = "Kappa :) Stra\u00dfe \ufb01 caf\u00e9 \U0001f389 x_1"
    msg = index_record("PRIVMSG", INDEX_T0, {"id": "m1", "user-id": "7", "room-id": "100"}, ["#chan", text], "Al")
    data = canonical_bytes(msg) + b"\n"
    # casefold: ß -> ss and ﬁ -> fi (plain tokens), é and 🎉 stay (hex of their UTF-8), _ is not plain
    words = ["kappa", ":)", "strasse", "fi", "caf\u00e9", "\U0001f389", "x_1"]
    assert text_words(text) == words
    fts = "kappa _3a29 strasse fi _636166c3a9 _f09f8e89 _785f31"
    head = (1).to_bytes(4, "big") + (0).to_bytes(4, "big") + (25).to_bytes(4, "big") + (7).to_bytes(4, "big")
    pg = head + (1).to_bytes(4, "big") + b"".join(len(w.encode()).to_bytes(4, "big") + w.encode() for w in words)
    for form_words, form, stored in ((fts_document, 1, fts), (pg_words, 2, pg)):
        assert form_words(words) == stored
        built = _read_scanned(
            lambda d, scope, form=form: native().index_scan_rows(d, scope, form, "chan"),
            data,
            "f.json",
            _BuildReader("chan", form_words),
        )
        assert built is not None and built == read_build_py(data, "f.json", "chan", form_words), built
        (row,) = built.messages
        key = read_batch_py(data, "f.json", "chan").messages[0].key
        assert row == (key, 1, "chan", INDEX_T0, 0.0, "PRIVMSG", "m1", "7", "al", None, stored, data[:-1].decode(), 1)
    assert pg_words([]) == (0).to_bytes(4, "big") * 2 + (25).to_bytes(4, "big")  # no dimensions
    assert fts_document([]) == ""


# rows of `messages` as a build makes them, and now and then a value of another type (the compiled
# twin hands those to the reference), a text without UTF-8, a row of another length
_copy_values = (
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 3),
    st.text(),
    st.floats(allow_nan=False),
    st.floats(allow_nan=False),
    st.sampled_from(["PRIVMSG", "USERNOTICE", "CLEARCHAT"]),
    st.one_of(st.none(), st.text()),
    st.one_of(st.none(), st.text()),
    st.one_of(st.none(), st.text()),
    st.one_of(st.none(), st.text()),
    st.builds(pg_words, st.lists(st.text(min_size=1))),
    st.text(),
    st.integers(0, 1),
)
_odd_copy_values = st.one_of(
    st.none(), st.integers(-(2**70), 2**70), st.floats(), st.text(), st.binary(), st.just("\ud800")
)


@st.composite
def _copy_rows(draw: Any) -> list[Any]:
    rows: list[Any] = []
    for _ in range(draw(st.integers(0, 4))):
        row = [draw(v) for v in _copy_values]
        if draw(st.integers(0, 5)) == 0:
            row[draw(st.integers(0, 12))] = draw(_odd_copy_values)
        rows.append(tuple(row) if draw(st.integers(0, 9)) else tuple(row[: draw(st.integers(0, 12))]))
    return rows


@compiled_only
@settings(max_examples=examples(4))
@given(rows=_copy_rows())
@example(rows=[(1, 1, "c", 1.5, 0.0, "PRIVMSG", None, "7", "al", None, pg_words(["caf\u00e9"]), "{}", 1)])
def test_the_compiled_copy_rows_equals_the_reference(core: Core, rows: list[Any]) -> None:
    same_as_reference(core, copy_rows_py, "index_copy_rows", rows)


def test_copy_rows_by_hand() -> None:
    row = (-2, 1, "c\u00e9", 1.5, 0.0, "PRIVMSG", None, "7", "al", None, pg_words(["x"]), "{}", 1)
    words = pg_words(["x"])
    expected = (
        b"\x00\x0d"  # 13 fields
        + b"\x00\x00\x00\x08\xff\xff\xff\xff\xff\xff\xff\xfe"  # int8 -2
        + b"\x00\x00\x00\x04\x00\x00\x00\x01"  # int4 1
        + b"\x00\x00\x00\x03c\xc3\xa9"  # text, UTF-8
        + b"\x00\x00\x00\x08\x3f\xf8\x00\x00\x00\x00\x00\x00"  # float8 1.5
        + b"\x00\x00\x00\x08"
        + bytes(8)  # float8 0.0
        + b"\x00\x00\x00\x07PRIVMSG"
        + b"\xff\xff\xff\xff"  # NULL
        + b"\x00\x00\x00\x017\x00\x00\x00\x02al\xff\xff\xff\xff"
        + len(words).to_bytes(4, "big")
        + words  # the words as they are
        + b"\x00\x00\x00\x02{}\x00\x00\x00\x04\x00\x00\x00\x01"
    )
    assert copy_rows_py([row]) == expected and copy_rows_py([]) == b""


@pytest.mark.integration  # a real server
@pytest.mark.integration
def test_lines_by_user_on_postgresql_are_refused_in_one_line(pg_url: str) -> None:
    """`index --lines-by-user` is SQLite's: on PostgreSQL, one line and exit 2, with or without
    `--rebuild`, and the index is left as it was (the refusal comes before anything is dropped)."""
    from typer.testing import CliRunner

    from chat_archiver.cli import app

    root = fresh_root()
    try:
        write_archive(root, [_msg(1, 1_700_000_000.0, "alice", "1", "hello")])
        url = _pg_schema(pg_url)
        runner = CliRunner()
        assert runner.invoke(app, ["index", root, "--db", url]).exit_code == 0
        for args in (["--lines-by-user"], ["--rebuild", "--lines-by-user"]):
            result = runner.invoke(app, ["index", root, "--db", url, *args])
            assert result.exit_code == 2 and result.stdout == "", args
            assert result.stderr.count("\n") == 1 and "lines by user are SQLite's" in result.stderr, args
        index = open_index(root, url)
        try:
            assert [m.text for m in index.messages(Query())] == ["hello"] and not index.lines_by_user
        finally:
            index.close()
    finally:
        shutil.rmtree(root)


def test_a_builds_copy_data_is_what_psycopg_and_the_server_make_of_the_rows(pg_url: str) -> None:
    """The rows a build COPYs (copy_rows, the words from pg_words) read back as the same rows
    COPYed by psycopg from Python values, and their words as string_to_array makes them (the
    live path's way)."""
    import psycopg

    from index.pg import _COPY_SIGNATURE, _COPY_TRAILER, _MESSAGE_TYPES, _TABLES, copy_rows

    texts = ["Kappa :) caf\u00e9", "", "a  b", "\U0001f389 x_1 \u00df"]
    values = [
        (i - 2, 1 + i, "chan", INDEX_T0 + i / 8, 0.5 * i, "PRIVMSG", None if i % 2 else f"m{i}", "7", None, None,
         text_words(t), f'{{"n":{i}}}', i % 2)
        for i, t in enumerate(texts)
    ]  # fmt: skip
    schema = f"t{next(_schemas)}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path = {schema}")
        conn.execute(_TABLES[2])
        conn.execute(_TABLES[2].replace("messages", "expected"))
        with conn.cursor() as cur, cur.copy(f"COPY expected ({base.MESSAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as c:
            c.set_types([t if t != "text" or n != 10 else "text[]" for n, t in enumerate(_MESSAGE_TYPES)])
            for v in values:
                c.write_row([*v[:10], list(v[10]), *v[11:]])
        data = _COPY_SIGNATURE + copy_rows([(*v[:10], pg_words(v[10]), *v[11:]) for v in values]) + _COPY_TRAILER
        with conn.cursor() as cur, cur.copy(f"COPY messages ({base.MESSAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as c:
            c.write(data)
        got = conn.execute("SELECT * FROM messages ORDER BY id").fetchall()
        assert got == conn.execute("SELECT * FROM expected ORDER BY id").fetchall() and len(got) == 4, got
        joined = conn.execute(
            "SELECT string_to_array(%s, ' ') = ANY (SELECT words FROM messages)", [" ".join(values[3][10])]
        )
        assert joined.fetchall() == [(True,)]
        empty = conn.execute("SELECT words = string_to_array('', ' ') FROM messages WHERE id = -1").fetchall()
        assert empty == [(True,)]
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.integration  # starts worker processes
def test_files_read_by_worker_processes_give_the_same_index(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        _msg(i, INDEX_T0 + i * 13.0, "alice" if i % 3 else "bob", str(1 + i % 3), f"line {i}") for i in range(40)
    ]
    root = fresh_root()
    write_archive(root, records, copies=2)
    bad = os.path.join(root, "chan", "chat", "2023-11-14T22", "14:00-" + "A" * 43 + ".json")
    with open(bad, "wb") as f:
        f.write(b'{"command":"PRIVMSG"\n')
    serial = open_index(root, os.path.join(tempfile.mkdtemp(prefix="idx-"), "index.sqlite"))
    serial_report = serial.update()
    monkeypatch.setattr(base, "POOL_MIN_FILES", 2)
    monkeypatch.setattr(base, "extract_jobs", lambda: 2)
    monkeypatch.setattr(base, "build_jobs", lambda: 2)
    pooled = open_index(root, os.path.join(tempfile.mkdtemp(prefix="idx-"), "index.sqlite"))
    pooled_report = pooled.update()  # a build
    assert pooled_report == serial_report, (pooled_report, serial_report)
    assert pooled_report.files_added > 10 and len(pooled_report.problems) == 1
    assert everything(pooled) == everything(serial) and len(everything(serial)) == 40
    more = [_msg(i, INDEX_T0 + i * 13.0, "carol", "4", f"more {i}") for i in range(40, 80)]
    write_archive(root, more, copies=2)
    monkeypatch.setattr(base, "POOL_MIN_FILES", 10**9)
    serial_report = serial.update()
    monkeypatch.setattr(base, "POOL_MIN_FILES", 2)
    pooled_report = pooled.update()  # an update, its new files read by the workers too
    assert pooled_report == serial_report and pooled_report.files_added > 10, (pooled_report, serial_report)
    assert everything(pooled) == everything(serial) and len(everything(serial)) == 80
    serial.close()
    pooled.close()


def test_a_damaged_sqlite_file_is_detected_and_rebuilt() -> None:
    root = fresh_root()
    write_archive(root, [_msg(1, float(INDEX_T0), "alice", "1", "kept")])
    path = os.path.join(root, ".index.sqlite")
    index = open_index(root)
    index.update()
    index.close()
    with open(path, "r+b") as f:  # the header survives, the pages do not
        f.seek(100)
        f.write(os.urandom(4096))
    with pytest.raises(IndexDamaged):
        index = open_index(root)
        index.check()
        index.messages(Query())
    index = open_index(root, rebuild_if_damaged=True)
    assert [m.text for m in index.messages(Query())] == ["kept"]
    index.close()
    with open(path, "wb") as f:
        f.write(b"not a database at all" * 100)
    with pytest.raises(IndexDamaged):
        open_index(root)
    index = open_index(root, rebuild_if_damaged=True)
    index.update()
    assert [m.text for m in index.messages(Query())] == ["kept"]
    index.close()


# A build in another process that stops at `at` (the rows loaded; or every index made, just before
# its commit) and says so by creating the file `ready`, to be killed there
_BUILD_STOPPING = """
import os, sys, time
sys.path.insert(0, os.getcwd())
from index import base, open_index
root, url, at, ready = sys.argv[1:]
index = open_index(root, url)
cls = type(index)
done = getattr(cls, at)
def stop(self, *args):
    done(self, *args)
    open(ready, "w").close()
    time.sleep(120)
setattr(cls, at, stop)
index.update()
"""


def _kill_a_build(root: str, url: str, at: str) -> None:
    ready = os.path.join(tempfile.mkdtemp(prefix="ready-"), "ready")
    build = subprocess.Popen([sys.executable, "-c", _BUILD_STOPPING, root, url, at, ready], cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(ready):
            assert build.poll() is None, "the build ended before the point it was to be killed at"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait()


# Where a build is killed: its rows sent (PostgreSQL: not yet committed), its rows loaded
# (PostgreSQL: the side table committed), the keys found twice merged (PostgreSQL: committed in the
# side table), the word index made (PostgreSQL's side connection, committed, while the main one
# makes the B-trees), every index made and swapped in, just before the commit
_KILLED_AT = ["_flush_built", "_loaded", "_merge_duplicates", "_make_words_index", "_end_build"]
# ... and what the side connection left committed there: the side table, which no reader reads
_SIDE_TABLE_LEFT = {"_flush_built": False, "_loaded": True, "_merge_duplicates": True, "_make_words_index": True}


@pytest.mark.integration  # a process killed with SIGKILL
@pytest.mark.parametrize("at", _KILLED_AT)
@pytest.mark.parametrize("reader", [False, True])
def test_a_build_killed_leaves_the_empty_index_which_the_next_update_builds(
    make_index: Factory, at: str, reader: bool
) -> None:
    """A build killed with SIGKILL at each of its phases (at the last, the file holds all of it
    but the commit): the index is the empty one it started from, whole, never a part of the
    archive; the next update builds it. (SQLite: in its rollback journal; with a reader holding the
    file, in its log. PostgreSQL: its main transaction; what its side connection committed is a
    side table, dropped by the next build.)"""
    root = fresh_root()
    records = [_msg(i, INDEX_T0 + i * 2.0, "alice" if i % 2 else "bob", str(1 + i % 2), f"w{i} x") for i in range(90)]
    write_archive(root, records, copies=2)  # each key twice: the build merges them
    index = make_index(root)  # made (its schema) and left empty
    if not hasattr(index, at):
        index.close()
        pytest.skip(f"{type(index).__name__} has no phase {at}")
    url = index.path if isinstance(index, SqliteIndex) else index._url  # type: ignore[attr-defined]
    held = sqlite3.connect(url) if reader and isinstance(index, SqliteIndex) else None
    if held is not None:
        held.execute("SELECT count(*) FROM messages").fetchall()
    index.close()
    _kill_a_build(root, url, at)
    if isinstance(index, SqliteIndex):  # killed inside the build's transaction, its pages written
        log = url + ("-wal" if reader else "-journal")
        assert os.path.exists(log) and os.path.getsize(log) > 0, log
    if held is not None:
        held.close()
    index = open_index(root, url)
    side_table = "SELECT to_regclass('messages_build') IS NOT NULL"
    if not isinstance(index, SqliteIndex):
        assert index._fetch(side_table) == [(_SIDE_TABLE_LEFT.get(at, True),)], at  # type: ignore[attr-defined]
    index.check()
    assert index.count(Query()) == 0 and not index.messages(Query(text="x"))
    assert index.update().files_added > 0
    index.check()
    if not isinstance(index, SqliteIndex):
        assert index._fetch(side_table) == [(False,)]  # type: ignore[attr-defined]
    assert everything(index) == everything(_built(make_index, root)) and index.count(Query()) == 90
    assert [m.text for m in index.messages(Query(text="w7"))] == ["w7 x"]
    index.close()


def _pg_schema(pg_url: str) -> str:
    """The URL of a fresh schema of the test server's database."""
    import psycopg

    schema = f"t{next(_schemas)}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{pg_url}&options=-csearch_path%3D{schema}"


@pytest.mark.integration  # a real server
@pytest.mark.parametrize(
    "at", ["_flush_built", "_loaded", "_unique_keys", "_merge_duplicates", "_make_words_index", "_swap_in"]
)
def test_a_postgresql_reader_never_waits_for_a_build(pg_url: str, monkeypatch: pytest.MonkeyPatch, at: str) -> None:
    """A build held at `at` (its rows sent, not committed; its rows loaded, before or after the side
    connection commits them; its key made in the main transaction, or found twice and merged in the
    side connection; its word index made in the side connection while the main one makes the
    B-trees; every index made, just before the swap): another connection, opened before or during it, answers at once
    (waiting for a lock over a second is an error, `lock_timeout`) from the empty index, its
    statements prepared by then (psycopg prepares a statement run 5 times); after the commit, from
    the built one."""
    from index.pg import PostgresIndex

    root = fresh_root()
    records = [_msg(i, INDEX_T0 + i * 2.0, "alice" if i % 2 else "bob", str(1 + i % 2), f"w{i} x") for i in range(90)]
    write_archive(root, records, copies=2)  # each key twice: the build merges them
    url = _pg_schema(pg_url)
    builder = open_index(root, url)
    reader_url = url + "%20-clock_timeout%3D1000"
    before = open_index(root, reader_url)
    reached, release = threading.Event(), threading.Event()
    through = getattr(PostgresIndex, at)

    def held(self: PostgresIndex, *args: Any) -> Any:
        if self is builder and not reached.is_set():
            reached.set()
            assert release.wait(60)
        return through(self, *args)

    monkeypatch.setattr(PostgresIndex, at, held)
    outcome: list[Any] = []

    def build() -> None:
        try:
            outcome.append(builder.update())
        except BaseException as e:  # said by the main thread
            outcome.append(e)

    thread = threading.Thread(target=build)
    thread.start()
    try:
        while not reached.wait(0.05):
            assert thread.is_alive(), outcome
        during = open_index(root, reader_url)
        for _ in range(6):
            for reader in (before, during):
                assert reader.count(Query()) == 0
                assert reader.messages(Query(text="x", limit=10)) == []
                assert reader.channels() == []
                assert reader.user_id_of("alice") is None
    finally:
        release.set()
        thread.join(120)
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    assert outcome[0].files_added > 0
    for reader in (before, during):
        assert reader.count(Query()) == 90
        assert [m.text for m in reader.messages(Query(text="w7", limit=10))] == ["w7 x"]
        assert [c.login for c in reader.channels()] == ["chan"] and reader.user_id_of("alice") == "2"
        reader.check()
    builder.check()
    names = {r[0] for r in builder._fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'messages'")}  # type: ignore[attr-defined]
    assert names == {"messages_pkey"} | {
        f"messages_{s}" for s in ("channel", "user", "login", "recent", "recipient", "words")
    }
    for index in (builder, before, during):
        index.close()


@pytest.mark.integration  # a real server
def test_a_postgresql_upsert_orders_lines_by_code_point_under_any_collation(pg_url: str) -> None:
    """In a database whose default collation is not by code point (ICU's `en`: `a` before `B`),
    an update's upsert keeps the version of a message that extract.better_version (and a build)
    keeps, whichever file comes first: two versions of equal range and length whose lines differ
    in a receiver's name, `ax` or `Bx`."""
    import psycopg

    from index.extract import better_version

    with psycopg.connect(pg_url, autocommit=True) as conn:
        if not conn.execute("SELECT count(*) FROM pg_collation WHERE collprovider = 'i'").fetchone()[0]:  # type: ignore[index]
            pytest.skip("this PostgreSQL is built without ICU")
        db = f"icu{next(_schemas)}"
        conn.execute(f"CREATE DATABASE {db} TEMPLATE template0 LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en'")
    url = pg_url.replace("@/postgres?", f"@/{db}?")
    at = INDEX_T0 + 5.0
    tags = {"id": "one", "user-id": "1", "room-id": "100", "tmi-sent-ts": str(int(at * 1000))}
    versions = {
        name: format_batch([index_record("PRIVMSG", at, tags, ["#chan", "hello"], "alice", receiver=name)])
        for name in ("ax.Ab3dE.0", "Bx.Ab3dE.0")
    }
    lines = [data.decode().rstrip("\n") for data in versions.values()]
    assert len(lines[0]) == len(lines[1]) and better_version(0.0, lines[0], 0.0, lines[1])  # "a" > "B"
    with psycopg.connect(url, autocommit=True) as conn:  # the database orders them otherwise
        assert conn.execute("SELECT %s::text > %s::text", lines).fetchone() == (False,)
    for first, second in (("ax.Ab3dE.0", "Bx.Ab3dE.0"), ("Bx.Ab3dE.0", "ax.Ab3dE.0")):
        root = fresh_root()
        write_batch_bytes(root, "chan", batch_time_of(at), versions[first])
        index = open_index(root, _pg_schema(url))
        index.update()  # a build of the first
        write_batch_bytes(root, "chan", batch_time_of(at), versions[second])
        assert index.update().files_added == 1  # the second upserted
        assert [m.line for m in index.messages(Query())] == [lines[0]], (first, second)
        index.close()
        shutil.rmtree(root)


def test_a_file_another_process_is_writing_is_busy_not_damaged(monkeypatch: pytest.MonkeyPatch) -> None:
    """While a build holds the file (locked in its rollback journal), opening it says it is busy;
    treating that as damage would delete the file under the build."""
    root = fresh_root()
    write_archive(root, [_msg(1, float(INDEX_T0), "alice", "1", "kept")])
    path = os.path.join(tempfile.mkdtemp(prefix="idx-"), "index.sqlite")
    open_index(root, path).close()
    monkeypatch.setattr("index.sqlite._TIMEOUT_S", 0.1)
    build = sqlite3.connect(path, isolation_level=None)
    assert build.execute("PRAGMA journal_mode=DELETE").fetchall() == [("delete",)]
    build.execute("BEGIN EXCLUSIVE")
    for rebuild in (False, True):
        with pytest.raises(IndexUnavailable, match="busy"):
            open_index(root, path, rebuild_if_damaged=rebuild)
    build.execute("ROLLBACK")
    build.close()
    index = open_index(root, path, rebuild_if_damaged=True)
    index.update()
    assert [m.text for m in index.messages(Query())] == ["kept"]
    index.close()


def test_an_index_file_whose_key_index_is_the_tables_own_is_updated_and_built() -> None:
    """Files written before the key index had a name hold it in the table (`UNIQUE`): an update's
    upserts use it, and a build (which drops the named one) makes the table again with the named one."""
    root = fresh_root()
    write_archive(root, [_msg(1, float(INDEX_T0), "alice", "1", "first words")])
    path = os.path.join(tempfile.mkdtemp(prefix="idx-"), "index.sqlite")
    index = open_index(root, path)
    assert isinstance(index, SqliteIndex)
    conn = index.conn
    table = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages'").fetchone()[0]
    conn.execute("DROP TABLE messages")
    conn.execute(table.replace("id INTEGER NOT NULL,", "id INTEGER NOT NULL UNIQUE,"))
    for secondary in base.SECONDARY_INDEXES[:5]:
        conn.execute(secondary.create())
    index.close()
    index = open_index(root, path)
    index.update()  # a build: the table made again
    names = {r[0] for r in index.conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'messages'")}  # type: ignore[attr-defined]
    assert "messages_id" in names and "sqlite_autoindex_messages_1" not in names, names
    index.check()
    conn = index.conn  # type: ignore[attr-defined]
    conn.execute("DROP INDEX messages_id")  # the earlier layout again, with rows: updates upsert through it
    rows = conn.execute(f"SELECT {base.MESSAGE_COLUMNS} FROM messages").fetchall()
    conn.execute("DELETE FROM messages")
    conn.execute("INSERT INTO fts (fts) VALUES ('delete-all')")
    conn.execute("DROP TABLE messages")
    conn.execute(table.replace("id INTEGER NOT NULL,", "id INTEGER NOT NULL UNIQUE,"))
    conn.executemany(f"INSERT INTO messages ({base.MESSAGE_COLUMNS}) VALUES ({', '.join('?' * 13)})", rows)
    conn.execute("INSERT INTO fts (fts) VALUES ('rebuild')")
    for secondary in base.SECONDARY_INDEXES[:5]:
        conn.execute(secondary.create())
    write_archive(root, [_msg(1, float(INDEX_T0), "alice", "1", "first words")], copies=2)  # a second file: upserted
    write_archive(root, [_msg(2, INDEX_T0 + 61.0, "bob", "2", "more words")])
    index.update()
    index.check()
    assert [m.text for m in index.messages(Query(text="words"))] == ["more words", "first words"]
    assert everything(index) == everything(
        _built(lambda r: open_index(r, os.path.join(tempfile.mkdtemp(), "i.sqlite")), root)
    )
    index.close()


def test_an_index_written_with_text_triggers_loses_them_and_stays_whole() -> None:
    """Files written when triggers kept the text index: opened now, a live minute and a release
    must index each row's words once (FTS5's integrity check compares the index with the rows)."""
    root = fresh_root()
    write_archive(root, [_msg(1, float(INDEX_T0), "alice", "1", "kept words")])
    path = os.path.join(tempfile.mkdtemp(prefix="idx-"), "index.sqlite")
    index = open_index(root, path)
    index.update()
    assert isinstance(index, SqliteIndex)
    index.conn.execute(
        "CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN"
        " INSERT INTO fts (rowid, words) VALUES (new.seq, new.words); END"
    )
    index.close()
    index = open_index(root, path)
    write_archive(root, [_msg(2, INDEX_T0 + 61.0, "bob", "2", "more words")])
    index.update_minutes("chan", [batch_time_of(INDEX_T0 + 61.0)])
    _merge_minute(root, "chan")
    index.update()
    index.check()
    assert [m.text for m in index.messages(Query(text="words"))] == ["more words", "kept words"]
    index.close()


def test_closing_a_sqlite_index_stops_its_checkpointer() -> None:
    root = fresh_root()
    write_archive(root, [_msg(1, float(INDEX_T0), "alice", "1", "kept")])
    index = open_index(root, os.path.join(tempfile.mkdtemp(prefix="idx-"), "index.sqlite"))
    index.update()  # a build checkpoints as its last step; a live minute after it hands it to the thread
    write_archive(root, [_msg(2, INDEX_T0 + 61.0, "bob", "2", "more")])
    index.update_minutes("chan", [batch_time_of(INDEX_T0 + 61.0)])
    assert any(t.name == "index-checkpoint" for t in threading.enumerate())
    index.close()
    assert not any(t.name == "index-checkpoint" for t in threading.enumerate())


def test_a_damaged_index_is_detected_by_check_and_rebuilt(make_index: Factory) -> None:
    root = fresh_root()
    write_archive(root, [_msg(1, float(INDEX_T0), "alice", "1", "kept")])
    index = make_index(root)
    index.update()
    index.check()
    index._exec("UPDATE messages SET refs = 0")  # type: ignore[attr-defined]
    index._exec("DELETE FROM meta")  # type: ignore[attr-defined]
    with pytest.raises(IndexDamaged):
        index.check()
    assert index.rebuild().rebuilt
    index.check()
    assert [m.text for m in index.messages(Query())] == ["kept"]


@example(seed=0)
@given(seed=st.integers(0, 2**32))
def test_random_message_is_one_of_the_rows(seed: int) -> None:
    root = fresh_root()
    write_archive(root, [_msg(i, INDEX_T0 + i * 1.0, "alice", "1", f"n{i}") for i in range(5)])
    index = open_index(root, os.path.join(tempfile.mkdtemp(), "i.sqlite"))
    index.update()
    chosen = index.random_message("chan", seed=seed)
    assert chosen is not None and chosen.text in {f"n{i}" for i in range(5)}
    assert index.random_message("chan", user_id="9", seed=seed) is None
    index.close()
    shutil.rmtree(root)


def test_a_common_word_gives_every_page_in_time_order(make_index: Factory) -> None:
    """A word in most of a channel's messages: SQLite then walks the channel's time index instead of
    sorting the matches (a plan, chosen by the match count); every page, both ways, with ties in
    time, other channels and removals, must still be the model's."""
    t = float(INDEX_T0)
    records = []
    for i in range(60):
        text = "kappa pog" if i % 4 else "hello there"
        at = t + (i // 3) * 7.5  # three messages share each time: ties broken by key
        records.append(_msg(i, at, f"user{i % 5}", str(i % 5 + 1), text))
        records.append(_msg(1000 + i, at, "other", "9", "kappa", channel="other"))
    records.append(
        (
            "chan",
            index_record(
                "CLEARMSG",
                t + 100,
                {"login": "user1", "target-msg-id": "id6", "tmi-sent-ts": str(int((t + 100) * 1000))},
                ["#chan", "kappa pog"],
                "tmi.twitch.tv",
            ),
        )
    )
    root = fresh_root()
    try:
        write_archive(root, records)
        index = make_index(root)
        index.update()
        model = Model(records)
        if isinstance(index, SqliteIndex):
            assert "INDEXED BY" in index._messages_source(Query(channel="chan", text="kappa", limit=5))
            assert "INDEXED BY" not in index._messages_source(Query(channel="chan", text="hello", limit=5))
        for text in ("kappa", '"kappa pog"', "hello"):
            for oldest_first in (False, True):
                for include_removed in (False, True):
                    for limit, offset in ((5, 0), (5, 7), (1, 44), (100, 0), (0, 0)):
                        q = Query(
                            channel="chan",
                            text=text,
                            limit=limit,
                            offset=offset,
                            oldest_first=oldest_first,
                            include_removed=include_removed,
                        )
                        assert answer(index, q) == model.answer(q), q
    finally:
        shutil.rmtree(root)


@pytest.mark.integration
def test_a_postgresql_index_of_an_older_schema_is_replaced_by_index_rebuild_only(pg_url: str) -> None:
    """Tables in a shared database are not dropped behind the operator's back: opening an index an
    older version wrote says what to run, and `index --rebuild` replaces it."""
    import psycopg
    from typer.testing import CliRunner

    from chat_archiver.cli import app

    root = fresh_root()
    try:
        write_archive(root, [_msg(1, INDEX_T0 + 1.0, "alice", "1", "hello")])
        schema = f"t{next(_schemas)}"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{pg_url}&options=-csearch_path%3D{schema}"
        index = open_index(root, url)
        index.update()
        index.close()
        with psycopg.connect(url, autocommit=True) as conn:  # what schema version 2 held: no tier
            conn.execute("DROP INDEX messages_user, messages_login, messages_recent")
            conn.execute("ALTER TABLE messages DROP COLUMN tier")
            conn.execute("UPDATE meta SET value = '2' WHERE key = 'version'")
        with pytest.raises(IndexDamaged, match=r"index schema 2, this version writes 3; .* --rebuild"):
            open_index(root, url, rebuild_if_damaged=True)
        searched = CliRunner().invoke(app, ["search", root, "--db", url, "--text", "hello"])
        assert searched.exit_code == 2 and "--rebuild" in searched.output
        result = CliRunner().invoke(app, ["index", root, "--db", url, "--rebuild"])
        assert result.exit_code == 0, result.output
        index = open_index(root, url)
        assert [m.text for m in index.messages(Query(text="hello"))] == ["hello"]
        index.close()
    finally:
        shutil.rmtree(root)


def _key_index_pages(path: str) -> tuple[int, int]:
    """(bytes, bytes unused) of the SQLite identity index's pages (the `dbstat` table)."""
    with sqlite3.connect(path) as conn:
        try:
            size, unused = conn.execute(
                "SELECT sum(pgsize), sum(unused) FROM dbstat WHERE name = 'messages_id'"
            ).fetchone()
        except sqlite3.OperationalError:
            pytest.skip("this SQLite has no dbstat table")
    return int(size), int(unused)


def test_a_sqlite_build_leaves_room_in_its_key_index_and_no_spacer() -> None:
    """A build makes the identity index with spacer rows among the keys and deletes them: its
    pages keep room for live keys (an index sorted whole has full pages), and no spacer is left:
    the index answers as one built without them."""
    root = fresh_root()
    try:
        records = [_msg(i, INDEX_T0 + i * 0.05, f"u{i % 7}", str(i % 7), f"w{i % 13} line {i}") for i in range(4000)]
        write_archive(root, records)
        packed = _built_with_spacing(root, 10**9)
        index = _built_with_spacing(root)
        assert index.count(Query()) == 4000
        assert everything(index) == everything(packed)
        index.check()
        for built in (index, packed):
            built.close()
        with sqlite3.connect(os.path.join(root, "index-None.sqlite")) as conn:
            assert conn.execute("SELECT count(*) FROM messages WHERE refs <= 0 OR channel = ''").fetchone() == (0,)
        size, unused = _key_index_pages(os.path.join(root, "index-None.sqlite"))
        # sorted whole without spacers, the pages are full (but the last)
        packed_size, packed_unused = _key_index_pages(os.path.join(root, f"index-{10**9}.sqlite"))
        assert unused - packed_unused > 0.025 * size > 0, (size, unused, packed_size, packed_unused)
    finally:
        shutil.rmtree(root)


@pytest.mark.parametrize("collide", [1, 2])
def test_a_spacer_sharing_a_messages_key_never_merges_with_it(monkeypatch: pytest.MonkeyPatch, collide: int) -> None:
    """A spacer whose key is a message's (a chance in 10^7 a build) makes the identity index fail
    as keys found twice would: the keys are merged (none of the messages' is twice), spaced elsewhere
    and, if that fails too, made without spacers: every message is there once, unchanged."""
    root = fresh_root()
    try:
        records = [_msg(i, INDEX_T0 + i * 0.5, "alice", "1", f"line {i}") for i in range(300)]
        write_archive(root, records, copies=2)  # keys twice as well: each file's rows are inserted
        expected = everything(_built_with_spacing(root, 10**9))
        key = expected[17][0]
        tried = []

        def spacer_keys(spacers: int, attempt: int) -> tuple[int, int]:
            tried.append(attempt)
            return (key, 1) if attempt < collide else (-(2**63) + 12345, 2**64 // spacers)

        monkeypatch.setattr(SqliteIndex, "_spacer_keys", staticmethod(spacer_keys))
        index = _built_with_spacing(root)
        assert everything(index) == expected
        assert len(expected) == 300 and len({k for k, _, _ in expected}) == 300
        assert tried == [0, 1]  # keys twice in the files: merged after the first attempt
        index.check()
    finally:
        shutil.rmtree(root)


def _built_with_spacing(root: str, spacing: int | None = None) -> ChatIndex:
    import index.sqlite as sqlite_backend

    saved = sqlite_backend._SPACING
    if spacing is not None:
        sqlite_backend._SPACING = spacing
    try:
        path = os.path.join(root, f"index-{spacing}.sqlite")
        index = open_index(root, path)
        index.update()
        return index
    finally:
        sqlite_backend._SPACING = saved
