"""`chat-archiver replay`: raw recordings in, the wubloader-compatible archive out."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from chat_archiver.cmd_archive import run_follow
from chat_archiver.console import EXIT_PROBLEMS, err, fail, out, progress, warn
from chat_archiver.timeparse import parse_time
from formats.errors import ArchiverError
from formats.rawfile import find_raw_files
from replay.api import ReplayReport, replay
from replay.engine import SKIP_BAD_CHANNEL, SKIP_UNPARSABLE
from replay.timestamps import Timing


def _summary(report: ReplayReport) -> dict[str, object]:
    s = report.stats
    merge = report.merge
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
        "merge": merge.as_dict() if hasattr(merge, "as_dict") else None,
    }


def register(app: typer.Typer) -> None:
    @app.command("replay")
    def replay_command(
        raw_paths: list[Path] = typer.Argument(..., help="Raw recording files or folders (searched recursively)."),
        out_root: Path = typer.Option(..., "--out", "-o", help="Archive root to write (created if missing)."),
        channel: list[str] = typer.Option(None, "--channel", "-c", help="Only these channels (repeatable)."),
        since: str = typer.Option(None, "--since", help="Only records whose range ends at or after this time."),
        until: str = typer.Option(None, "--until", help="Only records that start before this time."),
        jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes (one recorder process each)."),
        no_merge: bool = typer.Option(
            False, "--no-merge", help="Leave one file per connection and minute, as upstream's archiver writes them."
        ),
        max_server_lag: int = typer.Option(
            60, help="Seconds a batch stays open past its minute (must exceed the 45 s JOIN/PART delay)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        follow: bool = typer.Option(
            False, "--follow", help="Keep following the recordings as recorders write them (docs/live.md)."
        ),
        checkpoint: Path = typer.Option(None, "--checkpoint", help="--follow: checkpoint file (default next to ROOT)."),
        idle: float = typer.Option(30.0, "--idle", help="--follow: seconds of silence after which a stream ended."),
        until_idle: bool = typer.Option(False, "--until-idle", help="--follow: exit once caught up and idle."),
        poll: float = typer.Option(0.25, "--poll", hidden=True),
        status_file: Path = typer.Option(None, "--status-file", hidden=True),
    ) -> None:
        """Turn raw recordings into the chat archive (ROOT/CHANNEL/chat/HOUR/MM:SS-HASH.json).

        The same recordings always give byte-identical files, whatever the order of the inputs or
        the number of jobs. Damaged lines are reported (file:line) and skipped; the rest is kept.
        Exit status: 0 done, 1 done but some input was damaged, 2 nothing could be done.
        """
        if follow:
            if channel or since or until or jobs != 1 or no_merge:
                fail("--follow takes no --channel, --since, --until, --jobs or --no-merge")
            try:
                timing = Timing(max_server_lag=max_server_lag)
            except ArchiverError as e:
                fail(str(e))
            run_follow(raw_paths, out_root, timing=timing, checkpoint=checkpoint, idle=idle, poll=poll,
                       until_idle=until_idle, status_file=status_file, as_json=as_json)
            return
        try:
            timing = Timing(max_server_lag=max_server_lag)
            t_since = parse_time(since) if since else None
            t_until = parse_time(until) if until else None
            paths = find_raw_files(str(p) for p in raw_paths)
        except (ArchiverError, ValueError) as e:
            fail(str(e))
        if not paths:
            fail("no raw recordings (*.jsonl, *.jsonl.gz) found in " + ", ".join(map(str, raw_paths)))
        try:
            with progress(not as_json) as bar:
                task = bar.add_task("replaying", total=len(paths))
                report = replay(
                    paths, str(out_root), channels=channel or None, since=t_since, until=t_until,
                    timing=timing, jobs=jobs, merge=not no_merge,
                    on_file_done=lambda _path: bar.advance(task),
                )
        except ArchiverError as e:
            fail(str(e))
        except OSError as e:
            fail(f"{e.filename or out_root}: {e.strerror or e}")
        summary = _summary(report)
        bad_lines = report.stats.skipped[SKIP_UNPARSABLE] + report.stats.skipped[SKIP_BAD_CHANNEL]
        if as_json:
            out.print_json(json.dumps(summary))
        else:
            for p in report.raw_problems:
                warn(str(p))
            for line in report.stats.problems[:20]:
                warn(line)
            if bad_lines > 20:
                warn(f"... and {bad_lines - 20} more unparsable lines")
            _print_table(summary)
        if report.raw_problems or bad_lines:
            err.print("damaged input was skipped (see above); everything readable was replayed")
            raise typer.Exit(EXIT_PROBLEMS)


def _print_table(summary: dict[str, object]) -> None:
    table = Table(title="replay summary", show_header=False)
    for key in ("files", "streams", "connections", "lines_read", "records", "records_written",
                "batches_written", "batches_already_present"):
        table.add_row(key.replace("_", " "), f"{summary[key]:,}")
    table.add_row("channels", ", ".join(summary["channels"]) or "-")  # type: ignore[arg-type]
    for reason, count in summary["skipped"].items():  # type: ignore[attr-defined]
        table.add_row(f"skipped: {reason}", f"{count:,}")
    merge = summary.get("merge")
    if isinstance(merge, dict):
        for key, value in merge.items():
            if isinstance(value, int):
                table.add_row(f"merge: {key.replace('_', ' ')}", f"{value:,}")
    out.print(table)
