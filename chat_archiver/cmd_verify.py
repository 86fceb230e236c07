"""The `verify` command: check an archive's integrity, coverage, redundancy and timing."""

from __future__ import annotations

import json
import sys

import orjson
import typer

from chat_archiver import console
from chat_archiver.inputs import archive_channels_or_fail, raw_files_or_fail
from verify.render import render, report_json
from verify.shell import VerifyError, default_jobs, verify_archive


def register(app: typer.Typer) -> None:
    @console.command(app, "verify", interrupted="verify stopped before its report; nothing was changed.")
    def _verify(
        root: str = typer.Argument(
            ..., metavar="ROOT", help="Archive root (holds CHANNEL/chat/...).", show_default=False
        ),
        raw: list[str] = typer.Option(
            [],
            "--raw",
            metavar="RAW",
            show_default=False,
            help="Raw recordings (a file or folder; repeat for several), to tell true gaps from quiet minutes.",
        ),
        channel: list[str] = typer.Option(
            [],
            "--channel",
            "-c",
            metavar="CHANNEL",
            help="Check only this channel (repeatable).",
            show_default=False,
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON instead of a report."),
        jobs: int = typer.Option(
            None,
            "--jobs",
            "-j",
            min=1,
            metavar="N",
            help="Worker processes (default: the CPUs).",
            show_default=False,
        ),
    ) -> None:
        """Check an archive's integrity, coverage, redundancy and timing.

        Integrity (hashes, canonical sorted lines, records in their minute, leftovers, unmerged
        minutes, foreign files), coverage per minute and hour (with --raw: gaps when no recorder
        was connected), per-receiver share of messages, and receive-delay spread per receiver.

        Exit status: 0 healthy, 1 problems found, 2 could not read.

        \b
        Examples:
          chat-archiver verify archive/
          chat-archiver verify archive/ --raw raw/ --json
        """
        archive_channels_or_fail([root], [])  # a folder that is not an archive says what it holds
        if raw:
            raw_files_or_fail(raw)
        with console.progress(enabled=not as_json, unit="files") as bar:
            task = bar.add_task("verifying", total=None)
            try:
                report = verify_archive(
                    root,
                    channel=[c.lstrip("#").lower() for c in channel] or None,
                    raw=raw or None,
                    jobs=jobs if jobs is not None else default_jobs(),
                    on_listed=lambda n: bar.update(task, total=n),
                    on_file=lambda: bar.advance(task),
                )
            except VerifyError as e:
                console.fail(str(e))
        if as_json:
            data = report_json(report)
            try:
                text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
            except TypeError:  # a path that is not UTF-8 (undecodable bytes): escaped, as JSON allows
                text = json.dumps(data, indent=2)
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        else:
            render(report, console.out)
        raise typer.Exit(report.exit_status)
