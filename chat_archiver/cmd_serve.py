"""`chat-archiver serve`: the archive over HTTP, as a wubloader node serves chat (read-only)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import typer

from chat_archiver.console import command, fail, note


def register(app: typer.Typer) -> None:
    @command(app, "serve", interrupted="server stopped.")
    def serve_command(
        root: str = typer.Argument(
            ..., metavar="ROOT", help="Archive root (holds CHANNEL/chat/...).", show_default=False
        ),
        host: str = typer.Option(
            "127.0.0.1",
            "--host",
            metavar="ADDRESS",
            help="Address to listen on (0.0.0.0: every interface).",
        ),
        port: int = typer.Option(8008, "--port", min=0, max=65535, metavar="PORT", help="Port (0: any free port)."),
        threads: int = typer.Option(4, "--threads", min=1, max=64, metavar="N", help="Threads answering requests."),
        per_address: int = typer.Option(
            32,
            "--per-address",
            min=0,
            metavar="N",
            help="Connections at once from one client address; past it, new ones are closed (0: no cap, "
            "for a server behind a reverse proxy, whose connections all come from the proxy).",
        ),
        no_access_log: bool = typer.Option(
            False, "--no-access-log", help="Do not write the access log (one line per request on stdout)."
        ),
        index_url: str | None = typer.Option(
            None,
            "--index",
            "--db",
            metavar="DB",
            help="Search index for the justlog API (as `index --db`): a SQLite file (sqlite:PATH or PATH) or "
            "postgresql://... [default: ROOT/.index.sqlite when it exists]",
            show_default=False,
        ),
        optout_file: str | None = typer.Option(
            None,
            "--optout-file",
            metavar="FILE",
            help="Users and channels to hide from the justlog API: one user id or login a line (# comments). "
            "Read again when it changes.",
        ),
        web: str | None = typer.Option(
            None,
            "--justlog-web",
            metavar="DIR",
            help="The justlog web frontend, built (its web/dist folder): served at / beside the API.",
        ),
    ) -> None:
        """Serve an archive over HTTP as a wubloader node serves chat.

        wubloader's routes, so wubloader nodes and other hosts' chat-archiver sync can
        fetch from it and its editor can read chat: /files, /files/CHANNEL/chat,
        /files/CHANNEL/chat/HOUR, /segments/CHANNEL/chat/HOUR/FILE, /CHANNEL/chat.json
        (upstream's 2 hour cap) and /CHANNEL/chat.jsonl (no cap, streamed), with /metrics
        and /healthz; / browses channels and hours, and /player/CHANNEL plays a window
        when the chat player is installed. Read-only: nothing outside ROOT is ever served.

        Safe to face clients that misbehave: a request head must arrive whole within 10 s,
        an answer the client stops reading is cut after 60 s, and one address holds at most
        --per-address connections (docs/serve-sync.md; behind nginx: --per-address 0).

        With a search index (`chat-archiver index ROOT`), also the justlog/rustlog API
        that the justlog web frontend and its tools speak: /channels, /list,
        /channel/LOGIN/user/LOGIN/YEAR/MONTH, /channel/LOGIN/YEAR/MONTH/DAY, random,
        search, stats, /namehistory/ID (docs/justlog.md).

        Writes an access log on stdout, one line per request in the Common Log Format (as web
        servers do), and problems on stderr: a damaged file, and loudly, ROOT gone (then
        listings answer [] and /healthz 503). Runs until Ctrl-C (exit 130) or SIGTERM (exit 0).

        \b
        Examples:
          chat-archiver serve archive/ --host 0.0.0.0 --port 8008
          chat-archiver serve archive/ --port 8025 --optout-file optout.txt
        """
        from serve.app import ChatApp  # noqa: PLC0415 (keeps `chat-archiver --help` light)
        from serve.server import make_server  # noqa: PLC0415

        if not os.path.isdir(root):
            fail(f"{root}: no such archive folder")
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        if web is not None and not os.path.isfile(os.path.join(web, "index.html")):
            fail(f"{web}: no index.html there (give the frontend's built folder, web/dist)")
        justlog, notes = _justlog_api(root, index_url, optout_file, web)
        try:
            # half the threads at most read chat windows (long, CPU-bound); the rest stay free for
            # listings and batch files, which backfillers need answered quickly
            access = None if no_access_log else _access_log()
            app = ChatApp(root, window_reads=max(1, threads // 2), access_log=access, extra=justlog)
            server = make_server(app, host, port, threads=threads, per_address=per_address)
        except OSError as e:
            fail(f"cannot listen on {host}:{port}: {e.strerror or e}")
        except ValueError as e:
            fail(f"cannot listen on {host}:{port}: {e}")
        how: list[int] = []

        def stop(signum: int, _frame: Any) -> None:
            how.append(signum)
            raise SystemExit  # waitress's loop ends on it and lets its workers finish

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        note(f"serving {root} on http://{host}:{server.effective_port} (Ctrl-C stops)")
        for line in notes:
            note(line)
        try:
            server.run()
        finally:
            server.close()
            justlog.close()
        if how and how[0] == signal.SIGINT:
            raise KeyboardInterrupt  # the shared "interrupted" line and exit 130
        note("stopped")


def _access_log() -> Callable[[str], None]:
    """One line per request on stdout, as it is (a logger: the server's threads write at once)."""
    logger = logging.getLogger("chat_archiver.serve.access")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger.info


def _justlog_api(root: str, index_url: str | None, optout_file: str | None, web: str | None) -> tuple[Any, list[str]]:
    """The justlog API over the archive's index, or (no index) one that says so on its paths, and
    the lines to print once serving (which of the two, and the opt-out list). A named index that
    cannot be opened, or a bad opt-out file, ends the command (exit 2)."""
    from formats.errors import InputError  # noqa: PLC0415
    from index import ChatIndexError, default_url, open_index, safe_url, scrub_url  # noqa: PLC0415
    from serve.justlog import JustlogApi, OptOutList  # noqa: PLC0415

    notes: list[str] = []
    optout = None
    if optout_file is not None:
        try:
            optout = OptOutList.load(optout_file)
        except OSError as e:
            fail(f"{optout_file}: cannot read the opt-out file: {e.strerror}")
        except InputError as e:
            fail(str(e))
        notes.append(f"opt-out list {optout_file}: {len(optout.ids)} ids, {len(optout.logins)} logins")
    url = index_url
    if url is None:
        url = default_url(root)
        if not os.path.exists(url.removeprefix("sqlite:")):
            notes.append(
                f"justlog API off: no search index at {url.removeprefix('sqlite:')} "
                "(build one with `chat-archiver index ROOT`, or give --index)"
            )
            return JustlogApi(None, optout, web=web), notes
    elif not url.startswith(("postgresql://", "postgres://")) and not os.path.exists(url.removeprefix("sqlite:")):
        shown = safe_url(url)
        fail(f"{shown}: no such index (build it with `chat-archiver index {root} --db {shown}`)")
    try:
        first = open_index(root, url)
        first.check()
        channels = len(first.channels())
        description = first.description
    except ChatIndexError as e:
        fail(f"cannot use the index {safe_url(url)}: {scrub_url(str(e), url)}")
    notes.append(f"justlog API on: index {description} ({channels} channels)")
    opened = [first]

    def opener() -> Any:
        # one index per thread (SQLite connections are not shared); the first thread takes the one
        # opened here
        return opened.pop() if opened else open_index(root, url)

    return JustlogApi(opener, optout, web=web), notes
