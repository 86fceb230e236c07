"""`chat-archiver archive` (one host's live archive) and the shell of `replay --follow`.

Signals are wired only here: SIGTERM and Ctrl-C set a stop event; the follower then reads what is
complete, writes what closed, saves its checkpoint and exits; the supervisor stops its recorders
first, then the follower.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import typer
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from chat_archiver import media_options
from chat_archiver.cmd_record import TOKEN_ENV, DialectChoice, _check_port, check_connection
from chat_archiver.console import EXIT_PROBLEMS, command, exit_interrupted, fail, note, os_error, out, warn
from formats.errors import ArchiverError
from formats.rawcodec import DIALECT_TWITCH
from live.follow import FollowOptions, default_checkpoint_path, follow
from live.supervisor import ArchiveCollector, ChildSpec, Supervisor
from recorder.recorder import DEFAULT_SERVER
from replay.timestamps import Timing

INDEX_RETRY_AFTER = 10.0  # seconds before a failed index pass is tried again
INDEX_DB_ENV = "CHAT_ARCHIVER_INDEX_DB"  # the follower's index URL, from `archive` (see follower_spec)


def _log(level: str, message: str) -> None:
    (warn if level == "warn" else note)(message)


class _Stop(threading.Event):
    """Set by SIGTERM or Ctrl-C; `signum` says which (Ctrl-C ends the command with 130)."""

    signum: int | None = None


@contextmanager
def _stop_on_signals() -> Iterator[_Stop]:
    stop = _Stop()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.signum is None:
            stop.signum = signum
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _on_signal)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_follow(
    raw_paths: list[Path],
    out_root: Path,
    *,
    timing: Timing,
    checkpoint: Path | None,
    idle: float,
    poll: float,
    until_idle: bool,
    status_file: Path | None,
    as_json: bool,
    index: bool = False,
    db: str | None = None,
) -> None:
    """`replay --follow`: follow until SIGTERM / Ctrl-C (or caught up, with --until-idle). With
    `index`, the search index (`db`, default ROOT/.index.sqlite) is updated after each merge."""
    missing = [str(p) for p in raw_paths if not p.exists()]
    if missing:
        fail(f"{missing[0]}: no such file or folder")
    try:
        os.makedirs(out_root, exist_ok=True)
    except OSError as e:
        os_error(e, out_root)
    updater = IndexUpdater(str(out_root), db) if index else None
    opts = FollowOptions(
        raw_paths=tuple(str(p) for p in raw_paths),
        out_root=str(out_root),
        checkpoint_path=str(checkpoint) if checkpoint else default_checkpoint_path(str(out_root)),
        timing=timing,
        idle=idle,
        poll=poll,
        until_idle=until_idle,
        status_path=str(status_file) if status_file else None,
        after_merge=updater.after_merge if updater else None,
    )
    try:
        os.makedirs(out_root, exist_ok=True)
        with _stop_on_signals() as stop:
            if not as_json:
                note(
                    f"following {', '.join(opts.raw_paths)} into {out_root} "
                    f"(checkpoint {opts.checkpoint_path}); SIGTERM or Ctrl-C stops"
                )
            try:
                status = follow(opts, stop, _log)
            finally:
                if updater is not None:
                    updater.close()
        interrupted = stop.signum == signal.SIGINT
    except ArchiverError as e:
        fail(str(e))
    except OSError as e:
        os_error(e, out_root)
    summary = status.as_dict()
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        keys = ("events", "batches_written", "records_written", "merge_passes", "checkpoints", "streams")
        # one line, however narrow the terminal or the log: one stop, one line to grep
        out.print(" ".join(f"{k}={summary[k]}" for k in keys), soft_wrap=True)
    if status.raw_problems or status.line_problems:
        note("damaged input was skipped (see above); everything readable was archived")
    if interrupted:
        exit_interrupted("the follower stopped; its checkpoint is saved: run it again to go on")
    if status.raw_problems or status.line_problems:
        raise typer.Exit(EXIT_PROBLEMS)


class _Collectors(Collector):
    """Several Prometheus collectors served as one (the archive's and its media child's)."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for c in self.collectors:
            yield from c.collect()


class IndexUpdater:
    """The follower's index hook, run beside it: `after_merge` only notes the minutes, and a thread
    updates the index, so a slow index (the first catch-up of a big archive, a busy PostgreSQL)
    never delays the archive. Its first pass brings the whole index up to date; later ones re-read
    the minutes merged since (and their neighbours). `close` finishes what is noted, then stops."""

    def __init__(self, root: str, db: str | None) -> None:
        from chat_archiver.cmd_index import index_or_fail  # noqa: PLC0415 - only with --index

        self.index = index_or_fail(root, db)
        self._pending: dict[str, set[int]] = {}
        self._wake = threading.Condition()
        self._closing = False
        self.retry_after = INDEX_RETRY_AFTER
        self._thread = threading.Thread(target=self._run, name="index", daemon=True)
        self._thread.start()

    def after_merge(self, channel: str, minutes: set[int]) -> None:
        with self._wake:
            self._pending.setdefault(channel, set()).update(minutes)
            self._wake.notify()

    def _run(self) -> None:
        from index import SETTLE_ROWS, ChatIndexError  # noqa: PLC0415 - only with --index

        caught_up = False
        while True:
            with self._wake:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending and self._closing:
                    return
                pending, self._pending = self._pending, {}
            try:
                if not caught_up:
                    reports = [self.index.update()]
                    caught_up = True
                else:
                    reports = [self.index.update_minutes(ch, ms) for ch, ms in sorted(pending.items())]
                # the minutes are searchable now; moving the recent tier's rows (every few thousand)
                # is done after, in the pause before the next minute
                self.index.settle(SETTLE_ROWS)
            except Exception as e:  # derived data: said, and the minutes are tried again
                if isinstance(e, ChatIndexError):
                    _log("warn", f"index: {e}")
                else:  # a bug: its traceback belongs in the log
                    _log("warn", f"index: unexpected {type(e).__name__}: {e}\n{traceback.format_exc().rstrip()}")
                if not self._retry_later(pending):
                    return
                continue
            for report in reports:
                for problem in report.problems:
                    _log("warn", f"index: damaged batch file skipped: {problem}")

    def _retry_later(self, pending: dict[str, set[int]]) -> bool:
        """Put the minutes of a failed pass back and wait `retry_after` (or until closing); False
        when closing: the minutes are left for `chat-archiver index`, which always catches up."""
        with self._wake:
            for channel, minutes in pending.items():
                self._pending.setdefault(channel, set()).update(minutes)
            if not self._closing:
                self._wake.wait_for(lambda: self._closing, timeout=self.retry_after)
            if self._closing:
                _log("warn", "index: not up to date; `chat-archiver index` brings it up to date")
                return False
        return True

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join()
        self.index.close()


def follower_spec(
    cli: list[str], raw: Path, archive: Path, state: Path, *, idle: float, index: bool, db: str | None
) -> ChildSpec:
    """The follower child of `archive`. The index URL travels in its environment (INDEX_DB_ENV),
    never on its command line, which every user of the host sees in `ps`: it may hold a password."""
    argv = [*cli, "replay", str(raw), "--out", str(archive), "--follow", "--idle", str(idle)]
    argv += ["--checkpoint", str(state / "follow-checkpoint.json")]
    argv += ["--status-file", str(state / "follow-status.json")]
    argv += ["--index"] if index else []
    env = {k: v for k, v in os.environ.items() if k != INDEX_DB_ENV}  # not one left over from outside
    if index and db:
        env[INDEX_DB_ENV] = db
    return ChildSpec("follower", argv, "follower", env=env)


def emote_sets_spec(
    cli: list[str],
    archive: Path,
    channels: list[str],
    every: float,
    *,
    token_file: Path | None,
    dialect: str,
    allow_private: bool,
) -> ChildSpec:
    """The emote-sets child of `archive`. It sends its token to Twitch (to check it and fetch
    badges), so it gets one only when the recorders log in to Twitch (the twitch dialect): the
    password of another IRC server must never reach Twitch, from --token-file or CHAT_ARCHIVER_TOKEN."""
    argv = [*cli, "emotes", str(archive), *channels, "--every", str(every)]
    twitch = dialect == DIALECT_TWITCH
    argv += ["--token-file", str(token_file)] if token_file and twitch else []
    argv += ["--allow-private-addresses"] if allow_private else []
    env = None if twitch else {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    return ChildSpec("emote-sets", argv, "media", env=env)


def warn_if_password(option: str, url: str) -> None:
    """Say once (without the password) that an index URL holds a password: it is never printed,
    but a command line is visible to every user of the host."""
    from index import has_password  # noqa: PLC0415 (the index stage loads only when it is used)

    if has_password(url):
        warn(
            f"{option}: the URL holds a password, which every user of this host can see in `ps`; "
            "put it in PGPASSWORD or ~/.pgpass instead"
        )


def register(app: typer.Typer) -> None:
    @command(app, "archive")
    def archive_command(
        channels: list[str] = typer.Argument(
            ...,
            metavar="CHANNEL...",
            help="Channels to record and archive (with or without '#').",
            show_default=False,
        ),
        folder: Path = typer.Option(
            ...,
            "--dir",
            "-d",
            metavar="DIR",
            help="The host's folder: DIR/raw, DIR/archive, DIR/state.",
            show_default=False,
        ),
        server: str = typer.Option(
            None,
            "--server",
            metavar="URL",
            help="ws:// or wss:// IRC endpoint (default: Twitch).",
        ),
        dialect: DialectChoice | None = typer.Option(
            None,
            "--dialect",
            case_sensitive=False,
            show_default=False,
            help="The server's kind (default: from the server's name).",
        ),
        recorders: int = typer.Option(
            1,
            "--recorders",
            metavar="N",
            min=1,
            max=8,
            help="Recorder processes (redundancy).",
        ),
        name: str = typer.Option(None, "--name", metavar="NAME", help="Recorder name (default: the host name)."),
        nick: str = typer.Option(
            None,
            "--nick",
            metavar="NICK",
            help="Login name (default: anonymous justinfanNNNNN); a token needs it.",
            show_default=False,
        ),
        token_file: Path = typer.Option(
            None,
            "--token-file",
            metavar="FILE",
            help=f"File holding the OAuth token or server password (or set {TOKEN_ENV}).",
            show_default=False,
        ),
        ca_file: Path = typer.Option(
            None,
            "--ca-file",
            metavar="PEM",
            help="Trust this CA bundle for wss:// instead of the system's.",
            show_default=False,
        ),
        ping_after: float = typer.Option(
            3.0, "--ping-after", metavar="SECONDS", help="Silence after which a recorder PINGs the server."
        ),
        ping_timeout: float = typer.Option(
            3.0,
            "--ping-timeout",
            metavar="SECONDS",
            help="No answer to that PING within this: the connection is stalled.",
        ),
        silence_limit: float = typer.Option(
            30.0,
            "--silence-limit",
            metavar="SECONDS",
            help="Close a stalled connection once the new one has joined and the old one was silent this long.",
        ),
        gzip_finished: bool = typer.Option(False, "--gzip", help="Recorders gzip each finished hour."),
        index: bool = typer.Option(
            True,
            "--index/--no-index",
            help="Keep the search index up to date after each minute (docs/index-search.md).",
        ),
        db: str = typer.Option(
            None,
            "--index-db",
            metavar="URL",
            help="The search index (default DIR/archive/.index.sqlite): index's --db. A PostgreSQL password "
            "belongs in PGPASSWORD or ~/.pgpass, not the URL.",
        ),
        metrics_port: int = typer.Option(None, "--metrics-port", metavar="PORT", help="Serve Prometheus metrics here."),
        metrics_addr: str = typer.Option(
            "127.0.0.1",
            "--metrics-addr",
            metavar="ADDR",
            help="Address for --metrics-port.",
        ),
        idle: float = typer.Option(
            30.0,
            "--idle",
            metavar="SECONDS",
            min=0,
            help="Silence after which a raw stream has ended (docs/live.md).",
        ),
        emote_sets: float = typer.Option(
            0.0,
            "--emote-sets",
            metavar="HOURS",
            min=0.0,
            max=8760.0,  # a year: beyond it the wait overflows
            help="Snapshot the channels' third-party emote sets now and every HOURS hours (0: off; 6 is plenty).",
        ),
        restart_backoff: float = typer.Option(
            30.0,
            "--restart-backoff",
            metavar="SECONDS",
            min=0.1,
            help="Longest wait before a crashed child restarts.",
        ),
        no_emotes: bool = media_options.NO_EMOTES,
        media_links: bool = media_options.MEDIA_LINKS,
        twitch_cdn: str = media_options.TWITCH_CDN,
        allow_private: bool = media_options.ALLOW_PRIVATE,
    ) -> None:
        """Record channels and keep their archive current, live.

        Recorders write DIR/raw; a follower writes DIR/archive (each minute about two minutes
        after it, merged: one file per minute) and keeps its checkpoint and status in DIR/state.
        A child that exits is started again (one that keeps exiting with status 2 stops the
        host, exit 2); SIGTERM stops the recorders, then the follower, and exits 0 (Ctrl-C: 130).
        With --metrics-port, Prometheus metrics: lines and seconds behind, batches written, last
        batch time per channel, merge passes, restarts, media fetches.

        A media child fetches the Twitch emotes the archived messages use into DIR/archive/emotes
        (wubloader's layout) a few seconds after each minute is written, in its own process so
        recording never waits for a CDN; --no-emotes turns it off, --media-links adds linked
        images and videos (docs/media.md). With --emote-sets HOURS, another child snapshots the
        channels' BetterTTV, FrankerFaceZ and 7TV emote sets (and, with a token, the badges)
        when the host starts and every HOURS hours.

        \b
        Examples:
          chat-archiver archive desertbus --dir /srv/chat --metrics-port 9108
          chat-archiver archive chan --dir /srv/chat --nick bot --token-file tok
        """
        base = name or socket.gethostname().split(".")[0] or "recorder"
        names = [base] if recorders == 1 else [f"{base}-{i}" for i in range(1, recorders + 1)]
        _check_port("--metrics-port", metrics_port)
        _checked, chosen, _token = check_connection(
            channels,
            server=server or DEFAULT_SERVER,
            dialect=dialect,
            names=names,
            nick=nick,
            token_file=token_file,
            ca_file=ca_file,
            seconds={"--ping-after": ping_after, "--ping-timeout": ping_timeout, "--silence-limit": silence_limit},
        )
        raw, archive, state = folder / "raw", folder / "archive", folder / "state"
        for path in (raw, archive, state):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                os_error(e, path)
        cli = [sys.executable, "-m", "chat_archiver.cli"]
        children = []
        for i, recorder_name in enumerate(names, 1):
            argv = [*cli, "record", *channels, "--out", str(raw), "--name", recorder_name]
            argv += ["--server", server] if server else []
            argv += ["--dialect", dialect.value] if dialect else []
            argv += ["--nick", nick] if nick else []
            argv += ["--token-file", str(token_file)] if token_file else []
            argv += ["--ca-file", str(ca_file)] if ca_file else []
            argv += ["--ping-after", str(ping_after), "--ping-timeout", str(ping_timeout)]
            argv += ["--silence-limit", str(silence_limit)]
            argv += ["--gzip"] if gzip_finished else []
            children.append(ChildSpec(f"recorder-{i}", argv, "recorder"))
        status_path = state / "follow-status.json"
        if index and db:
            warn_if_password("--index-db", db)
        children.append(follower_spec(cli, raw, archive, state, idle=idle, index=index, db=db))
        media_status = state / "media-status.json"
        if not no_emotes or media_links:
            media_options.check(twitch_cdn, allow_private)
            argv = [*cli, "media", str(archive), "--follow", "--poll", "2", "--status-file", str(media_status)]
            argv += media_options.as_arguments(
                no_emotes=no_emotes, media_links=media_links, twitch_cdn=twitch_cdn, allow_private=allow_private
            )
            children.append(ChildSpec("media", argv, "media"))
        if emote_sets > 0:  # a child like the others: restarted if it dies, stopped with them
            children.append(
                emote_sets_spec(
                    cli,
                    archive,
                    channels,
                    emote_sets,
                    token_file=token_file,
                    dialect=chosen,
                    allow_private=allow_private,
                )
            )
        supervisor = Supervisor(
            children, log=_log, state_path=str(state / "supervisor.json"), backoff_max=max(restart_backoff, 0.1)
        )
        metrics_server = None
        if metrics_port is not None:
            from media.metrics import StatusCollector  # noqa: PLC0415 (only with --metrics-port)
            from recorder.metrics import serve  # noqa: PLC0415

            try:
                metrics_server, _thread = serve(
                    _Collectors(ArchiveCollector(supervisor, str(status_path)), StatusCollector(str(media_status))),
                    metrics_port,
                    metrics_addr,
                )
            except OSError as e:
                fail(f"cannot serve metrics on {metrics_addr}:{metrics_port}: {e.strerror or e}")
        stop = _Stop()
        try:
            with _stop_on_signals() as stop:
                supervisor.run(stop)
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
        if supervisor.gave_up is not None:
            fail(supervisor.gave_up)
        if stop.signum == signal.SIGINT:
            exit_interrupted("the recorders closed their recordings, the follower saved its checkpoint")
        note("stopped: the recorders closed their recordings, the follower saved its checkpoint")
