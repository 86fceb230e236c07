"""The index stage: a search index derived from the archive's batch files (SQLite FTS5 or PostgreSQL).

`open_index(root, url)` opens the index of an archive; `index.api` holds the interface and rows.
"""

from __future__ import annotations

import os
import re

from index.api import SETTLE_ROWS, ChatIndex, ChatIndexError, IndexDamaged, IndexUnavailable, Query, QueryError
from index.sqlite import SqliteIndex, remove_index_file

DEFAULT_NAME = ".index.sqlite"

__all__ = [
    "DEFAULT_NAME",
    "SETTLE_ROWS",
    "ChatIndex",
    "ChatIndexError",
    "IndexDamaged",
    "IndexUnavailable",
    "Query",
    "QueryError",
    "default_url",
    "has_password",
    "open_index",
    "safe_url",
    "scrub_url",
]


def _is_pg(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@]*@")


def safe_url(url: str) -> str:
    """`url` as it may be printed: a PostgreSQL URL without its password; any other `scheme://`
    URL (a mistyped scheme) without a `user:password@` part; a path as it is."""
    if not _is_pg(url):
        return _USERINFO.sub(r"\1:***@", url)
    from index.pg import safe_description  # noqa: PLC0415 - psycopg is loaded only for PostgreSQL

    return safe_description(url)


def has_password(url: str) -> bool:
    """Whether `url` holds a password (in `user:password@` or a `password=` parameter)."""
    if not _is_pg(url):
        return bool(_USERINFO.match(url))
    from index.pg import password_of  # noqa: PLC0415 - psycopg is loaded only for PostgreSQL

    return bool(password_of(url))


def scrub_url(text: str, url: str) -> str:
    """`text` (an error message) without `url`'s password, wherever it appears."""
    if not _is_pg(url):
        return text.replace(url, safe_url(url))
    from index.pg import scrub  # noqa: PLC0415 - psycopg is loaded only for PostgreSQL

    return scrub(text, url)


def default_url(root: str) -> str:
    """The default index of an archive: a SQLite file beside its channels (a dot-name that the
    archive's readers skip, since only folders holding `chat/` are channels)."""
    return "sqlite:" + os.path.join(root, DEFAULT_NAME)


def open_index(
    root: str, url: str | None = None, rebuild_if_damaged: bool = False, *, replace_other_version: bool = False
) -> ChatIndex:
    """Open (creating if needed) the index of the archive at `root`.

    `url` is `sqlite:PATH` (or a plain path), or `postgresql://...` / `postgres://...`; None
    means the default SQLite file. A damaged index raises IndexDamaged, unless
    `rebuild_if_damaged`: then it is checked (`check()`, which reads it all) and, if damaged,
    rebuilt from the archive before it is returned. An unusable backend raises IndexUnavailable.
    A PostgreSQL index of another schema version is damaged too, but its tables are dropped (to be
    built again) only with `replace_other_version`: the caller is about to rebuild (`index --rebuild`).
    """
    if not rebuild_if_damaged:
        return _open(root, url, replace_other_version)
    try:
        index = _open(root, url, replace_other_version)
    except IndexDamaged:
        if url is not None and url.startswith(("postgresql://", "postgres://")):
            raise  # a schema of another version in a shared database: not ours to drop
        remove_index_file(_sqlite_path(root, url))
        index = _open(root, url)
        index.rebuild()
        return index
    try:
        index.check()
    except IndexDamaged:
        index.rebuild()
    return index


def _sqlite_path(root: str, url: str | None) -> str:
    url = url or default_url(root)
    return url[len("sqlite:") :] if url.startswith("sqlite:") else url


def _open(root: str, url: str | None, replace_other_version: bool = False) -> ChatIndex:
    url = url or default_url(root)
    if url.startswith(("postgresql://", "postgres://")):
        from index.pg import PostgresIndex  # noqa: PLC0415 - psycopg is loaded only for PostgreSQL

        pg: ChatIndex = PostgresIndex(root, url, replace_other_version=replace_other_version)
        return pg
    return SqliteIndex(root, _sqlite_path(root, url))
