"""The `index` command: bring the archive's search index up to date (or rebuild it)."""

from __future__ import annotations

import os
import time

import typer

from chat_archiver import console
from index import ChatIndex, ChatIndexError, IndexDamaged, Query, open_index

DB_HELP = (
    "The index: a SQLite file (sqlite:PATH or a path; default ROOT/.index.sqlite) or a PostgreSQL URL "
    "(postgresql://USER@HOST/DB; a password there is never printed, but belongs in PGPASSWORD or ~/.pgpass)."
)


def register(app: typer.Typer) -> None:
    @console.command(
        app,
        "index",
        interrupted="index stopped; run it again to finish (an update keeps what it indexed; a build starts over).",
    )
    def _index(
        root: str = typer.Argument(
            ..., metavar="ROOT", help="Archive root (holds CHANNEL/chat/...).", show_default=False
        ),
        db: str = typer.Option(None, "--db", metavar="URL", help=DB_HELP, show_default=False),
        rebuild: bool = typer.Option(False, "--rebuild", help="Drop the index and build it again from the archive."),
        lines_by_user: bool = typer.Option(
            None,
            "--lines-by-user/--no-lines-by-user",
            help="Keep (or stop keeping) a copy of the lines ordered by user: a user's month reads a few pages, not"
            " one a line, which matters when the index is larger than the host's memory; it costs about the"
            " lines' size on disk and a slower build. SQLite only; the index remembers the choice.",
            show_default=False,
        ),
    ) -> None:
        """Bring the search index of an archive up to date.

        Reads the batch files the index has not seen and forgets the ones gone (a merge or a
        sync replaces files; a message is one entry whatever the number of files holding it).
        The index is derived data: --rebuild, or deleting it, is always safe. A damaged index
        is detected and rebuilt.

        Exit status: 0 done, 1 done but damaged batch files were skipped, 2 nothing could be done.

        \b
        Examples:
          chat-archiver index archive/
          chat-archiver index archive/ --rebuild
          chat-archiver index archive/ --lines-by-user
          chat-archiver index archive/ --db postgresql://chat@db.example.net/chat
        """
        index = index_or_fail(root, db, check=not rebuild, replace=rebuild)
        started = time.monotonic()
        try:
            if rebuild:
                report = index.rebuild(lines_by_user)
            else:
                if lines_by_user is not None:
                    index.set_lines_by_user(lines_by_user)
                report = index.update()
            index.settle()  # the rows this update wrote join the main tier (a quiet moment)
            total = index.count(Query())
            kept = ", lines by user" if index.lines_by_user else ""
        except ChatIndexError as e:
            console.fail(str(e))
        finally:
            index.close()
        for problem in report.problems:
            console.warn(f"damaged batch file skipped: {problem}")
        elapsed = time.monotonic() - started
        console.note(
            f"{'rebuilt' if rebuild else 'updated'} {index.description}: {console.number(report.files_added)} files"
            f" read ({console.number(report.records_read)} records), {console.number(report.files_removed)} gone,"
            f" {console.number(total)} messages indexed{kept}, in {elapsed:.1f} s"
        )
        if report.problems:
            raise typer.Exit(console.EXIT_PROBLEMS)


def index_or_fail(root: str, db: str | None, *, check: bool = False, replace: bool = False) -> ChatIndex:
    """Open the archive's index (`--db`; default: ROOT/.index.sqlite); exit 2 with one line if it
    cannot be used (the URL's password is never printed). A damaged SQLite index is said and
    rebuilt from the archive; `check` reads it all to look for damage first (the `index` command);
    `replace` drops a PostgreSQL index of another schema version (`index --rebuild` builds it again)."""
    if not os.path.isdir(root):
        console.fail(f"{root}: no such folder")
    try:
        try:
            return open_index(root, db, rebuild_if_damaged=check, replace_other_version=replace)
        except IndexDamaged as e:
            if db is not None and db.startswith(("postgresql://", "postgres://")):
                raise
            console.warn(f"{e}; rebuilding it from the archive")
            return open_index(root, db, rebuild_if_damaged=True)
    except ChatIndexError as e:
        console.fail(str(e))
