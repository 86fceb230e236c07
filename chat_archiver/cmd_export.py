"""The `export` command: the chat of a time window, merged and sorted, in one of four formats."""

from __future__ import annotations

import os
import sys
import uuid
from functools import partial

import typer

from chat_archiver import console
from export.formats import FORMATS, Playback
from export.stream import export
from export.window import ExportError, Filters, Window, parse_time
from formats.errors import ArchiverError
from verify.scan import default_jobs


def register(app: typer.Typer) -> None:
    @app.command("export")
    def _export(
        root: str = typer.Argument(..., help="Archive root (holds CHANNEL/chat/...)."),
        channel: str = typer.Argument(..., help="Channel name, with or without '#'."),
        start: str = typer.Option(..., "--start", help="Window start: ISO 8601 (UTC if no offset) or Unix seconds."),
        end: str = typer.Option(..., "--end", help="Window end (exclusive), same forms as --start."),
        fmt: str = typer.Option("json", "--format", help=f"Output format: {', '.join(FORMATS)}."),
        commands: list[str] = typer.Option([], "--command", help="Keep only this IRC command (repeatable)."),
        users: list[str] = typer.Option([], "--user", help="Keep only records about this user (repeatable)."),
        out: str | None = typer.Option(None, "--out", help="Write to this file (atomically) instead of stdout."),
        hold: float = typer.Option(10.0, "--hold", min=0.1, help="ass: seconds each message stays on screen."),
        jobs: int | None = typer.Option(
            None, "--jobs", min=1, help="Worker processes for windows of two hours or more (default: the CPUs).",
        ),
    ) -> None:
        """Export the chat of [START, END): the records whose time range meets the window (upstream's
        rule), merged, folded for reading and sorted by time.

        json is the array upstream's reader returns; jsonl one record per line; text a readable
        transcript; irc the IRC lines rebuilt from the records; ass subtitles timed from START; html
        a self-contained page that replays the chat.
        """
        if fmt not in FORMATS:
            console.fail(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
        try:
            window = Window(parse_time(start), parse_time(end))
            filters = Filters.of(commands, users)
            workers = jobs if jobs is not None else default_jobs()
            # no bar over chat being printed to the same terminal
            with console.progress(enabled=out is not None or not sys.stdout.isatty()) as bar:
                task = bar.add_task("exporting", total=None)
                run = partial(
                    export, root, channel, window, fmt, filters=filters, jobs=workers,
                    playback=Playback(window.start, window.end, hold, f"#{channel.lstrip('#').lower()}"),
                    on_plan=lambda n: bar.update(task, total=n), on_chunk=lambda k: bar.advance(task, k),
                )
                if out is None:
                    run(sys.stdout.buffer)
                    sys.stdout.flush()
                    return
                temp = f"{out}.{uuid.uuid4().hex}.partial"
                try:
                    with open(temp, "wb") as f:
                        run(f)
                    os.replace(temp, out)
                finally:
                    if os.path.exists(temp):
                        os.unlink(temp)
        except (ExportError, ArchiverError) as e:
            console.fail(str(e))
        except OSError as e:
            console.fail(f"{e.filename or out}: {e.strerror}")
