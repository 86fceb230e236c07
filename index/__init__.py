"""The index stage: a search index derived from the archive's batch files (SQLite FTS5 or PostgreSQL).

`open_index(root, url)` opens the index of an archive; `index.api` holds the interface and rows.
"""

from __future__ import annotations

import os

from index.api import ChatIndex, ChatIndexError, IndexDamaged, IndexUnavailable, Query, QueryError

DEFAULT_NAME = ".index.sqlite"

__all__ = [
    "DEFAULT_NAME",
    "ChatIndex",
    "ChatIndexError",
    "IndexDamaged",
    "IndexUnavailable",
    "Query",
    "QueryError",
    "default_url",
    "open_index",
]


def default_url(root: str) -> str:
    """The default index of an archive: a SQLite file beside its channels (a dot-name that the
    archive's readers skip, since only folders holding `chat/` are channels)."""
    return "sqlite:" + os.path.join(root, DEFAULT_NAME)


def open_index(root: str, url: str | None = None) -> ChatIndex:
    """Open (creating if needed) the index of the archive at `root`.

    `url` is `sqlite:PATH` (or a plain path), or `postgresql://...` / `postgres://...`; None
    means the default SQLite file. A damaged SQLite file is detected here (IndexDamaged) so the
    caller can rebuild; an unusable backend raises IndexUnavailable.
    """
    url = url or default_url(root)
    if url.startswith(("postgresql://", "postgres://")):
        from index.pg import PostgresIndex  # noqa: PLC0415 - psycopg is loaded only for PostgreSQL

        pg: ChatIndex = PostgresIndex(root, url)
        return pg
    from index.sqlite import SqliteIndex  # noqa: PLC0415 - the backends import this package's api

    path = url[len("sqlite:") :] if url.startswith("sqlite:") else url
    return SqliteIndex(root, path)
