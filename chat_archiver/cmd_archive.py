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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import typer

from chat_archiver.cmd_record import DialectChoice
from chat_archiver.console import EXIT_PROBLEMS, command, fail, note, os_error, out, warn
from formats.errors import ArchiverError, UsageError
from live.follow import FollowOptions, default_checkpoint_path, follow
from live.supervisor import ArchiveCollector, ChildSpec, Supervisor
from recorder.recorder import check_server_url
from replay.timestamps import Timing


def _log(level: str, message: str) -> None:
    (warn if level == "warn" else note)(message)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
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
) -> None:
    """`replay --follow`: follow until SIGTERM / Ctrl-C (or caught up, with --until-idle)."""
    missing = [str(p) for p in raw_paths if not p.exists()]
    if missing:
        fail(f"{missing[0]}: no such file or folder")
    opts = FollowOptions(
        raw_paths=tuple(str(p) for p in raw_paths),
        out_root=str(out_root),
        checkpoint_path=str(checkpoint) if checkpoint else default_checkpoint_path(str(out_root)),
        timing=timing,
        idle=idle,
        poll=poll,
        until_idle=until_idle,
        status_path=str(status_file) if status_file else None,
    )
    try:
        os.makedirs(out_root, exist_ok=True)
        with _stop_on_signals() as stop:
            if not as_json:
                note(
                    f"following {', '.join(opts.raw_paths)} into {out_root} "
                    f"(checkpoint {opts.checkpoint_path}); SIGTERM or Ctrl-C stops"
                )
            status = follow(opts, stop, _log)
    except ArchiverError as e:
        fail(str(e))
    except OSError as e:
        os_error(e, out_root)
    summary = status.as_dict()
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        out.print(
            " ".join(
                f"{k}={summary[k]}"
                for k in (
                    "events",
                    "batches_written",
                    "records_written",
                    "merge_passes",
                    "checkpoints",
                    "streams",
                )
            )
        )
    if status.raw_problems or status.line_problems:
        note("damaged input was skipped (see above); everything readable was archived")
        raise typer.Exit(EXIT_PROBLEMS)


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
        token_file: Path = typer.Option(None, "--token-file", metavar="FILE", help="Passed to each recorder."),
        gzip_finished: bool = typer.Option(False, "--gzip", help="Recorders gzip each finished hour."),
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
        restart_backoff: float = typer.Option(
            30.0,
            "--restart-backoff",
            metavar="SECONDS",
            min=0.1,
            help="Longest wait before a crashed child restarts.",
        ),
    ) -> None:
        """Record channels and keep their archive current, live.

        Recorders write DIR/raw; a follower writes DIR/archive (each minute about two minutes
        after it, merged: one file per minute) and keeps its checkpoint and status in DIR/state.
        A child that exits is started again; SIGTERM or Ctrl-C stops the recorders, then the
        follower, and exits 0. With --metrics-port, Prometheus metrics: lines and seconds behind,
        batches written, last batch time per channel, merge passes, restarts.
        """
        if server is not None:
            try:
                check_server_url(server)
            except UsageError as e:
                fail(str(e))
        raw, archive, state = folder / "raw", folder / "archive", folder / "state"
        for path in (raw, archive, state):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                os_error(e, path)
        cli = [sys.executable, "-m", "chat_archiver.cli"]
        base = name or socket.gethostname().split(".")[0] or "recorder"
        children = []
        for i in range(1, recorders + 1):
            argv = [*cli, "record", *channels, "--out", str(raw), "--name", base if recorders == 1 else f"{base}-{i}"]
            argv += ["--server", server] if server else []
            argv += ["--dialect", dialect.value] if dialect else []
            argv += ["--token-file", str(token_file)] if token_file else []
            argv += ["--gzip"] if gzip_finished else []
            children.append(ChildSpec(f"recorder-{i}", argv, "recorder"))
        status_path = state / "follow-status.json"
        children.append(
            ChildSpec(
                "follower",
                [
                    *cli,
                    "replay",
                    str(raw),
                    "--out",
                    str(archive),
                    "--follow",
                    "--idle",
                    str(idle),
                    "--checkpoint",
                    str(state / "follow-checkpoint.json"),
                    "--status-file",
                    str(status_path),
                ],
                "follower",
            )
        )
        supervisor = Supervisor(
            children, log=_log, state_path=str(state / "supervisor.json"), backoff_max=max(restart_backoff, 0.1)
        )
        metrics_server = None
        if metrics_port is not None:
            from recorder.metrics import serve  # noqa: PLC0415 (only with --metrics-port)

            try:
                metrics_server, _thread = serve(
                    ArchiveCollector(supervisor, str(status_path)), metrics_port, metrics_addr
                )
            except OSError as e:
                fail(f"cannot serve metrics on {metrics_addr}:{metrics_port}: {e.strerror or e}")
        try:
            with _stop_on_signals() as stop:
                supervisor.run(stop)
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
        note("stopped: the recorders closed their recordings, the follower saved its checkpoint")
