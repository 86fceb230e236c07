"""The `record` command: the CLI shell around `recorder.Recorder`.

Only here do recorder errors become exit codes, and only here are signals wired: SIGTERM and
Ctrl-C ask the recorder to stop, which flushes, fsyncs and closes before `record` exits 0.
The token is read from a file or the environment, never from the command line, so it cannot show
up in `ps` or in shell history.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse

import typer
from rich.markup import escape

from chat_archiver.console import err, fail, warn
from formats.errors import ArchiverError
from recorder.channels import normalise_channels
from recorder.metrics import serve
from recorder.recorder import DEFAULT_SERVER, Recorder, RecorderConfig

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
    return "twitch" if host == "twitch.tv" or host.endswith(".twitch.tv") else "ircv3"


def _log(level: str, message: str) -> None:
    if level == "warn":
        warn(escape(message))
    else:
        err.print(f"[dim]{escape(message)}[/]", soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("record")
    def _record(
        channels: list[str] = typer.Argument(..., help="Channels to record (with or without '#')."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for raw recordings (RAW_DIR)."),
        server: str = typer.Option(DEFAULT_SERVER, "--server", help="ws:// or wss:// IRC endpoint."),
        dialect: str | None = typer.Option(
            None, "--dialect", help="twitch or ircv3 (default: twitch for *.twitch.tv, else ircv3).",
        ),
        nick: str | None = typer.Option(None, "--nick", help="Login name (default: anonymous justinfanNNNNN)."),
        token_file: Path | None = typer.Option(
            None, "--token-file", help=f"File holding the OAuth token or server password (or set {TOKEN_ENV}).",
        ),
        name: str | None = typer.Option(None, "--name", help="Recorder name (default: the host name)."),
        gzip_finished: bool = typer.Option(False, "--gzip", help="gzip each hour's file once it is finished."),
        metrics_port: int | None = typer.Option(None, "--metrics-port", help="Serve Prometheus metrics here."),
        metrics_addr: str = typer.Option("127.0.0.1", "--metrics-addr", help="Address for --metrics-port."),
        ca_file: Path | None = typer.Option(
            None, "--ca-file", help="Trust this CA bundle for wss:// instead of the system's.",
        ),
        ping_after: float = typer.Option(60.0, "--ping-after", hidden=True),
        ping_timeout: float = typer.Option(30.0, "--ping-timeout", hidden=True),
        backoff_max: float = typer.Option(60.0, "--backoff-max", hidden=True),
    ) -> None:
        """Record chat into raw recordings until stopped (SIGTERM or Ctrl-C stop it cleanly)."""
        if dialect is not None and dialect not in ("twitch", "ircv3"):
            fail(f"--dialect must be twitch or ircv3, not {dialect!r}")
        if urlparse(server).scheme not in ("ws", "wss"):
            fail(f"--server must be a ws:// or wss:// URL, not {server!r}")
        chosen = _dialect_for(server, dialect)
        token = _read_token(token_file)
        sslopt: dict[str, Any] | None = {"ca_certs": str(ca_file)} if ca_file is not None else None
        try:
            config = RecorderConfig(
                channels=tuple(normalise_channels(channels, chosen)), out_dir=str(out), server=server,
                dialect=chosen, name=name or "", nick=nick, token=token, gzip_finished=gzip_finished,
                ping_after=ping_after, ping_timeout=ping_timeout, backoff_cap=max(backoff_max, 1.0),
                sslopt=sslopt,
            )
            recorder = Recorder(config, log=_log)
        except ArchiverError as e:
            fail(str(e))

        metrics_server = None
        if metrics_port is not None:
            try:
                metrics_server, _thread = serve(recorder.collector, metrics_port, metrics_addr)
            except OSError as e:
                fail(f"cannot serve metrics on {metrics_addr}:{metrics_port}: {e.strerror or e}")

        def _on_signal(signum: int, frame: FrameType | None) -> None:
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
        err.print("[dim]stopped; the recording is flushed and closed[/]")
