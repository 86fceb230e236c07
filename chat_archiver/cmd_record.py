"""The `record` command: the CLI shell around `recorder.Recorder`.

Only here do recorder errors become exit codes, and only here are signals wired: SIGTERM and
Ctrl-C ask the recorder to stop, which flushes, fsyncs and closes before `record` exits 0.
The token is read from a file or the environment, never from the command line, so it cannot show
up in `ps` or in shell history.
"""

from __future__ import annotations

import math
import os
import signal
import threading
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse

import typer

from chat_archiver.console import err, exit_interrupted, fail, note, warn
from formats.errors import ArchiverError, InputError, UsageError
from formats.rawcodec import DIALECT_IRCV3, DIALECT_TWITCH, check_recorder_name
from recorder.channels import normalise_channels
from recorder.metrics import serve
from recorder.recorder import DEFAULT_SERVER, Recorder, RecorderConfig, check_login, check_server_url, default_name

TOKEN_ENV = "CHAT_ARCHIVER_TOKEN"


def _read_token(token_file: Path | None) -> str | None:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            # the reason only: never the content
            fail(f"cannot read the token file {token_file}: {getattr(e, 'strerror', None) or type(e).__name__}")
        if not token:
            fail(f"the token file {token_file} is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def _dialect_for(server: str, dialect: str | None) -> str:
    if dialect is not None:
        return dialect
    host = urlparse(server).hostname or ""
    return DIALECT_TWITCH if host == "twitch.tv" or host.endswith(".twitch.tv") else DIALECT_IRCV3


def _log(level: str, message: str) -> None:
    # verbatim: the recorder's messages quote servers and user input (no markup, no emoji codes)
    (warn if level == "warn" else note)(message)


# One string per paragraph, so the help rewraps to any terminal width.
HELP = (
    "Record chat into raw recordings until stopped.\n\n"
    "Connects to Twitch chat (or any IRCv3 server over WebSocket), joins the channels and appends every "
    "line received to hourly raw recordings in RAW_DIR/NAME/. A connection that stops answering gets a "
    "new one at once while it keeps reading, so a stall that clears loses nothing.\n\n"
    "SIGTERM stops it cleanly (exit 0), and so does Ctrl-C (exit 130); bad options, a refused login "
    "or an unwritable RAW_DIR exit 2. See docs/recorder.md.\n\n"
    "\b\nExamples:\n"
    "  chat-archiver record desertbus --out raw/\n"
    "  chat-archiver record chan --server ws://irc.example.net:8080 --out raw/"
)


class DialectChoice(StrEnum):
    """How to log in, and what the replay will assume about the lines."""

    twitch = DIALECT_TWITCH
    ircv3 = DIALECT_IRCV3


def _check_port(option: str, port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        fail(f"{option} must be a port number from 1 to 65535, not {port}")


def _check_seconds(option: str, value: float, least: float) -> None:
    if not (math.isfinite(value) and value >= least):
        fail(f"{option} must be a number of seconds, at least {least:g}, not {value:g}")


def check_connection(
    channels: list[str],
    *,
    server: str,
    dialect: DialectChoice | None,
    names: list[str],
    nick: str | None,
    token_file: Path | None,
    ca_file: Path | None,
    seconds: dict[str, float],
) -> tuple[list[str], str, str | None]:
    """What a recorder checks before it connects, for `record` and up front for `archive` (whose
    recorders would otherwise fail one by one, again and again): exit 2 with one line on a bad
    option. Returns the channels normalised, the dialect and the token (None: anonymous)."""
    for option, value in seconds.items():
        _check_seconds(option, value, 0.1)
    try:
        check_server_url(server)
    except UsageError as e:
        fail(str(e))
    chosen = _dialect_for(server, dialect.value if dialect is not None else None)
    try:
        checked = normalise_channels(channels, chosen)
        for recorder_name in names:
            check_recorder_name(recorder_name)
    except ArchiverError as e:
        fail(e.message if isinstance(e, InputError) else str(e))
    token = _read_token(token_file)
    if token is not None and nick is None:
        source = f"--token-file {token_file}" if token_file is not None else TOKEN_ENV
        fail(f"a token needs --nick (the login the token belongs to); the token is from {source}")
    try:
        check_login(nick, token)
    except UsageError as e:
        fail(str(e))
    if ca_file is not None and not ca_file.is_file():
        fail(f"--ca-file {ca_file}: no such file")
    return checked, chosen, token


def register(app: typer.Typer) -> None:
    @app.command("record", help=HELP)
    def _record(
        channels: list[str] = typer.Argument(
            ...,
            metavar="CHANNEL...",
            help="Channels to record (with or without '#').",
            show_default=False,
        ),
        out: Path = typer.Option(
            ...,
            "--out",
            "-o",
            metavar="RAW_DIR",
            help="Folder for raw recordings.",
            show_default=False,
        ),
        server: str = typer.Option(DEFAULT_SERVER, "--server", metavar="URL", help="ws:// or wss:// IRC endpoint."),
        dialect: DialectChoice | None = typer.Option(
            None,
            "--dialect",
            case_sensitive=False,
            show_default=False,
            help="twitch or ircv3 (default: twitch for *.twitch.tv, else ircv3).",
        ),
        nick: str | None = typer.Option(
            None,
            "--nick",
            metavar="NICK",
            help="Login name (default: anonymous justinfanNNNNN).",
            show_default=False,
        ),
        token_file: Path | None = typer.Option(
            None,
            "--token-file",
            metavar="FILE",
            show_default=False,
            help=f"File holding the OAuth token or server password (or set {TOKEN_ENV}).",
        ),
        name: str | None = typer.Option(
            None,
            "--name",
            metavar="NAME",
            help="Recorder name (default: the host name).",
            show_default=False,
        ),
        gzip_finished: bool = typer.Option(False, "--gzip", help="gzip each hour's file once it is finished."),
        metrics_port: int | None = typer.Option(
            None,
            "--metrics-port",
            metavar="PORT",
            help="Serve Prometheus metrics on this port (1-65535).",
            show_default=False,
        ),
        metrics_addr: str = typer.Option(
            "127.0.0.1",
            "--metrics-addr",
            metavar="ADDR",
            help="Address for --metrics-port.",
        ),
        ca_file: Path | None = typer.Option(
            None,
            "--ca-file",
            metavar="PEM",
            show_default=False,
            help="Trust this CA bundle for wss:// instead of the system's.",
        ),
        ping_after: float = typer.Option(
            3.0,
            "--ping-after",
            metavar="SECONDS",
            help="Silence after which we PING the server to check the connection.",
        ),
        ping_timeout: float = typer.Option(
            3.0,
            "--ping-timeout",
            metavar="SECONDS",
            help="No answer to that PING within this: the connection is stalled; a new one opens at once "
            "while the stalled one keeps reading.",
        ),
        silence_limit: float = typer.Option(
            30.0,
            "--silence-limit",
            metavar="SECONDS",
            help="Close a stalled connection once the new one has joined and the old one has been silent this long.",
        ),
    ) -> None:
        """Record chat into raw recordings until stopped (the help text is HELP)."""
        if str(out) == "-":
            fail("record writes raw recordings into a folder: --out - (standard output) is for export")
        _check_port("--metrics-port", metrics_port)
        checked_channels, chosen, token = check_connection(
            channels,
            server=server,
            dialect=dialect,
            names=[name or default_name()],
            nick=nick,
            token_file=token_file,
            ca_file=ca_file,
            seconds={"--ping-after": ping_after, "--ping-timeout": ping_timeout, "--silence-limit": silence_limit},
        )
        sslopt: dict[str, Any] | None = {"ca_certs": str(ca_file)} if ca_file is not None else None
        try:
            config = RecorderConfig(
                channels=tuple(checked_channels),
                out_dir=str(out),
                server=server,
                dialect=chosen,
                name=name or "",
                nick=nick,
                token=token,
                gzip_finished=gzip_finished,
                ping_after=ping_after,
                ping_timeout=ping_timeout,
                silence_limit=silence_limit,
                sslopt=sslopt,
            )
            recorder = Recorder(config, log=_log)
        except ArchiverError as e:
            fail(str(e))

        metrics_server = None
        if metrics_port is not None:
            try:
                metrics_server, _thread = serve(recorder.collector, metrics_port, metrics_addr)
            except (OSError, ValueError) as e:  # ValueError: an address idna cannot encode
                fail(f"cannot serve metrics on {metrics_addr}:{metrics_port}: {getattr(e, 'strerror', None) or e}")

        signals: list[int] = []

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            signals.append(signum)
            recorder.stop()

        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, _on_signal)
        try:
            recorder.run()
        except ArchiverError as e:
            fail(str(e))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
        if signals and signals[0] == signal.SIGINT:
            exit_interrupted("recording stopped; it is flushed and closed")
        err.print("[dim]stopped; the recording is flushed and closed[/]")
