"""`chat-archiver replay`: raw recordings in, the wubloader-compatible archive out."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import typer
from rich.table import Table

from chat_archiver.cmd_archive import INDEX_DB_ENV, run_follow, warn_if_password
from chat_archiver.console import EXIT_PROBLEMS, command, err, fail, note, number, os_error, out, progress, warn
from chat_archiver.inputs import raw_files_or_fail
from formats.errors import ArchiverError, UsageError
from formats.times import parse_window
from merge.directory import MergeStats, merge_tree
from replay.engine import SKIP_BAD_CHANNEL, SKIP_UNPARSABLE
from replay.shell import ReplayReport, replay
from replay.timestamps import Timing

INTERRUPTED = (
    "replay stopped; the batch files written so far are complete. "
    "Run the same command again to finish: it writes only what is missing."
)


def _summary(report: ReplayReport, merge: MergeStats | None) -> dict[str, object]:
    s = report.stats
    merged = merge.as_dict() if merge is not None else None
    if merged is not None:
        # the records the merge folded into others: copies of one message that several receivers
        # (or connections) saw, and deliveries that came twice
        merged["copies_folded"] = merged["records_in"] - merged["records_out"]
    return {
        "files": report.files,
        "streams": report.streams,
        "connections": s.connections,
        "bytes_read": report.bytes_read,
        "events": s.events,
        "lines_read": s.lines,
        "records": s.records,
        "records_written": report.records_written,
        "batches_written": report.batches_written,
        "batches_already_present": report.batches_existing,
        "channels": sorted(report.channels),
        "skipped": dict(sorted(s.skipped.items())),
        "raw_problems": [str(p) for p in report.raw_problems],
        "line_problems": s.problems,
        "merge": merged,
    }


# The options that only `--follow` reads: given without it, they would be ignored.
_FOLLOW_ONLY = {
    "checkpoint": "--checkpoint",
    "idle": "--idle",
    "until_idle": "--until-idle",
    "poll": "--poll",
    "status_file": "--status-file",
}


def _timing(max_server_lag: int) -> Timing:
    try:
        return Timing(max_server_lag=max_server_lag)
    except UsageError:
        fail(f"--max-server-lag {max_server_lag} must exceed {Timing.max_delay} s (a JOIN/PART can arrive that late)")


def register(app: typer.Typer) -> None:
    @command(app, "replay", interrupted=INTERRUPTED)
    def replay_command(
        ctx: typer.Context,
        raw_paths: list[Path] = typer.Argument(
            ...,
            metavar="RAW...",
            help="Raw recording files or folders (searched recursively).",
            show_default=False,
        ),
        out_root: Path = typer.Option(
            ...,
            "--out",
            "-o",
            metavar="ROOT",
            help="Archive root to write (made if missing).",
            show_default=False,
        ),
        channel: list[str] = typer.Option(
            [],
            "--channel",
            "-c",
            metavar="CHANNEL",
            help="Only this channel (repeatable).",
            show_default=False,
        ),
        since: str = typer.Option(
            None,
            "--since",
            metavar="TIME",
            help="Only records whose range ends at or after TIME.",
        ),
        until: str = typer.Option(None, "--until", metavar="TIME", help="Only records that start before TIME."),
        jobs: int = typer.Option(
            1, "--jobs", "-j", min=1, metavar="N", help="Worker processes (one recorder process each)."
        ),
        no_merge: bool = typer.Option(
            False,
            "--no-merge",
            help="Leave one file per connection and minute, as upstream writes them.",
        ),
        max_server_lag: int = typer.Option(
            60,
            "--max-server-lag",
            metavar="SECONDS",
            help="How long a batch stays open past its minute (must exceed the 45 s JOIN/PART delay).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        follow: bool = typer.Option(
            False,
            "--follow",
            help="Keep following RAW as recorders write it, until SIGTERM or Ctrl-C (docs/live.md).",
        ),
        checkpoint: Path = typer.Option(
            None,
            "--checkpoint",
            metavar="FILE",
            help="With --follow: the checkpoint (default: next to ROOT).",
        ),
        idle: float = typer.Option(
            30.0,
            "--idle",
            metavar="SECONDS",
            min=0,
            help="With --follow: silence after which a stream has ended.",
        ),
        until_idle: bool = typer.Option(False, "--until-idle", help="With --follow: exit once caught up and idle."),
        poll: float = typer.Option(
            0.25,
            "--poll",
            metavar="SECONDS",
            min=0.01,
            help="With --follow: how often to look for news.",
        ),
        status_file: Path = typer.Option(
            None,
            "--status-file",
            metavar="FILE",
            help="With --follow: its status as JSON, after each pass.",
        ),
        index: bool = typer.Option(
            False, "--index/--no-index", help="With --follow: update the search index after each minute."
        ),
        db: str | None = typer.Option(
            None,
            "--index-db",
            metavar="URL",
            help="With --index: the search index (default ROOT/.index.sqlite; or CHAT_ARCHIVER_INDEX_DB, which "
            "`archive` sets). A PostgreSQL password belongs in PGPASSWORD or ~/.pgpass, not the URL.",
        ),
    ) -> None:
        """Turn raw recordings into the chat archive.

        The archive holds one file per channel and minute, ROOT/CHANNEL/chat/HOUR/MM:SS-HASH.json.
        The same recordings always give byte-identical files, whatever the order of the inputs
        or the number of jobs. Damaged lines are reported (FILE:LINE) and skipped; the rest is
        kept. TIME is Unix seconds or ISO 8601 (UTC unless an offset is given).

        Exit status: 0 done, 1 done but some input was damaged or a --channel matched nothing,
        2 nothing could be done, 130 interrupted (run it again to finish).

        \b
        Examples:
          chat-archiver replay raw/ --out archive/
          chat-archiver replay raw/ -o archive/ -c desertbus --since 2023-11-14
          chat-archiver replay raw/ --out archive/ --follow
        """
        if str(out_root) == "-":
            fail("replay writes an archive, a folder: --out - (standard output) is for export")
        timing = _timing(max_server_lag)
        if not follow:
            given = [
                option
                for name, option in _FOLLOW_ONLY.items()
                if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
            ]
            if given:
                fail(f"{', '.join(given)} go{'es' if len(given) == 1 else ''} with --follow only")
        if follow:
            if channel or since or until or jobs != 1 or no_merge:
                fail("--follow takes no --channel, --since, --until, --jobs or --no-merge")
        elif index or db:
            fail("--index and --index-db go with --follow (for an archive already written: chat-archiver index ROOT)")
        if follow and index:
            if db:
                warn_if_password("--index-db", db)
            else:
                db = os.environ.get(INDEX_DB_ENV) or None
        if follow:
            run_follow(
                raw_paths,
                out_root,
                timing=timing,
                checkpoint=checkpoint,
                idle=idle,
                poll=poll,
                until_idle=until_idle,
                status_file=status_file,
                as_json=as_json,
                index=index,
                db=db,
            )
            return
        try:
            t_since, t_until = parse_window(since, until, now=time.time())
        except ArchiverError as e:
            fail(str(e))
        paths = raw_files_or_fail([str(p) for p in raw_paths])
        try:
            with progress(not as_json, unit="bytes") as bar:
                sizes = {p: _size(p) for p in paths}
                task = bar.add_task("replaying", total=sum(sizes.values()))
                report = replay(
                    paths,
                    str(out_root),
                    channels=channel or None,
                    since=t_since,
                    until=t_until,
                    timing=timing,
                    jobs=jobs,
                    on_file_done=lambda path: bar.advance(task, sizes.get(path, 0)),
                )
                # the minutes that several connections covered become one file each: said on the bar,
                # which would otherwise sit at 100% for the merge's while
                if report.channels and not no_merge:
                    bar.update(task, description="merging")
                merge = (
                    merge_tree(str(out_root), channels=sorted(report.channels))
                    if report.channels and not no_merge
                    else None
                )
        except ArchiverError as e:
            fail(str(e))
        except OSError as e:
            os_error(e, out_root)
        summary = _summary(report, merge)
        bad_lines = report.stats.skipped[SKIP_UNPARSABLE] + report.stats.skipped[SKIP_BAD_CHANNEL]
        merge_problems = list(merge.problems) if merge is not None else []
        if as_json:
            out.print_json(json.dumps(summary))
        else:
            for p in report.raw_problems:
                warn(str(p))
            for line in report.stats.problems[:20]:
                warn(line)
            if bad_lines > 20:
                warn(f"... and {number(bad_lines - 20)} more unparsable lines")
            _print_table(summary)
        for problem in merge_problems:
            warn(f"merge: corrupt batch file skipped: {problem}")
        wanted = {c.lower().lstrip("#") for c in channel}
        missing = sorted(wanted - report.channels)
        for name in missing:
            warn(f"--channel {name}: no records for it in the recordings" + _window_words(since, until))
        if not report.records_written and not missing:
            note("no records were written" + (_window_words(since, until) or " (nothing archivable)"))
        if report.raw_problems or bad_lines or merge_problems:
            err.print("damaged input was skipped (see above); everything readable was replayed", markup=False)
            raise typer.Exit(EXIT_PROBLEMS)
        if missing:
            raise typer.Exit(EXIT_PROBLEMS)


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _window_words(since: str | None, until: str | None) -> str:
    if since is None and until is None:
        return ""
    parts = ([f"--since {since}"] if since is not None else []) + ([f"--until {until}"] if until is not None else [])
    return " in the window " + " ".join(parts)


def _print_table(summary: dict[str, object]) -> None:
    table = Table(title="replay summary", show_header=False)
    for key in (
        "files",
        "streams",
        "connections",
        "bytes_read",
        "lines_read",
        "records",
        "records_written",
        "batches_written",
        "batches_already_present",
    ):
        table.add_row(key.replace("_", " "), number(summary[key]))  # type: ignore[arg-type]
    table.add_row("channels", ", ".join(summary["channels"]) or "-")  # type: ignore[arg-type]
    for reason, count in summary["skipped"].items():  # type: ignore[attr-defined]
        table.add_row(f"skipped: {reason}", number(count))
    merge = summary.get("merge")
    if isinstance(merge, dict):
        for key, value in merge.items():
            if isinstance(value, int) and key != "copies_folded":
                table.add_row(f"merge: {key.replace('_', ' ')}", number(value))
        table.add_row("merge: copies of a message folded into one record", number(merge["copies_folded"]))
    out.print(table)
