"""The `verify` command: check an archive's integrity, coverage, redundancy and timing."""

from __future__ import annotations

import sys

import orjson
import typer

from chat_archiver import console
from verify.render import render, report_json
from verify.scan import VerifyError, verify_archive


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def _verify(
        root: str = typer.Argument(..., help="Archive root (holds CHANNEL/chat/...)."),
        raw: list[str] = typer.Option(
            [], "--raw", help="Raw recordings (files or folders), to tell true gaps from quiet minutes.",
        ),
        channel: str | None = typer.Option(None, "--channel", help="Check only this channel."),
        as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON instead of a report."),
        jobs: int | None = typer.Option(None, "--jobs", min=1, help="Worker processes (default: the CPUs)."),
    ) -> None:
        """Check an archive: exit 0 healthy, 1 problems found, 2 could not read.

        Integrity (hashes, canonical sorted lines, records in their minute, leftovers, unmerged
        minutes, foreign files), coverage per minute and hour (with --raw: gaps when no recorder was
        connected), per-receiver share of messages, and receive-delay spread per receiver.
        """
        with console.progress(enabled=not as_json) as bar:
            task = bar.add_task("verifying", total=None)
            try:
                report = verify_archive(
                    root, channel=channel.lstrip("#").lower() if channel else None, raw=raw or None, jobs=jobs,
                    on_listed=lambda n: bar.update(task, total=n),
                    on_file=lambda: bar.advance(task),
                )
            except VerifyError as e:
                console.fail(str(e))
        if as_json:
            sys.stdout.write(orjson.dumps(report_json(report), option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            render(report, console.out)
        raise typer.Exit(report.exit_status)
