"""`chat-archiver merge`: combine archives so that nothing is lost and nothing is doubled.

Three forms, one command (as upstream ships a merger, a backfiller and a merge tool):
  merge ROOT                  merge the minutes of one archive that hold several files
  merge SRC... --into DEST    bring several archives together in DEST, then merge it
  merge FILE... --stdout      print the canonical merge of some batch files
The library raises; this shell turns errors into one line on stderr and an exit status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import orjson
import typer
from rich.table import Table

from chat_archiver.console import (
    EXIT_PROBLEMS,
    Terminated,
    command,
    err,
    exit_interrupted,
    fail,
    note,
    number,
    os_error,
    out,
    plural,
    settings,
    sigterm_stops,
    warn,
)
from chat_archiver.inputs import archive_channels_or_fail
from formats.errors import ArchiverError
from merge.combine import merge_files, merge_into
from merge.directory import MergeProblem, MergeStats, merge_tree, watch

_COUNTS = (
    "channels",
    "minutes_merged",
    "files_read",
    "files_copied",
    "files_written",
    "files_deleted",
    "records_in",
    "records_out",
    "duplicate_deliveries",
    "id_conflicts",
    "range_conflicts",
)

INTERRUPTED = (
    "merge stopped; every file is either merged or left as it was (nothing is lost). "
    "Run the same command again to finish."
)


def _print_table(stats: MergeStats, title: str) -> None:
    table = Table(title=title, show_header=False)
    for key in _COUNTS:
        table.add_row(key.replace("_", " "), number(getattr(stats, key)))
    table.add_row("corrupt inputs", number(len(stats.problems)))
    out.print(table)


def _finish(stats: MergeStats, as_json: bool, title: str) -> None:
    if as_json:
        out.print_json(json.dumps(stats.as_dict()))
    else:
        _print_table(stats, title)
    if stats.problems:
        moved = sum(1 for p in stats.problems if p.quarantined_to)
        where = f", {moved} moved under the archive's quarantine/ folder" if moved else ""
        err.print(f"{plural(len(stats.problems), 'corrupt input file')} skipped{where}", markup=False)
        raise typer.Exit(EXIT_PROBLEMS)


def register(app: typer.Typer) -> None:
    @command(app, "merge", interrupted=INTERRUPTED)
    def merge_command(
        ctx: typer.Context,
        paths: list[Path] = typer.Argument(
            ...,
            metavar="PATH...",
            show_default=False,
            help="One archive ROOT; or source archives SRC... with --into DEST; or batch FILE... with --stdout.",
        ),
        into: Path = typer.Option(
            None,
            "--into",
            metavar="DEST",
            help="Copy the source archives into DEST (made if missing), then merge it.",
        ),
        stdout: bool = typer.Option(False, "--stdout", help="Print the canonical merge of the given batch FILEs."),
        interval: float = typer.Option(
            None,
            "--interval",
            min=0.1,
            metavar="SECONDS",
            help="Keep running: merge ROOT again every SECONDS (SIGTERM or Ctrl-C stops and prints the totals).",
        ),
        channel: list[str] = typer.Option(
            [],
            "--channel",
            "-c",
            metavar="CHANNEL",
            help="Only this channel (repeatable).",
            show_default=False,
        ),
        full: bool = typer.Option(
            False,
            "--full",
            help="Visit every minute, single files too (reads everything): the exact merge of it all.",
        ),
        no_quarantine: bool = typer.Option(
            False,
            "--no-quarantine",
            help="Leave corrupt files in place instead of moving them to ROOT/quarantine/.",
        ),
        as_json: bool = typer.Option(
            False,
            "--json",
            help="Print the summary as JSON (with --interval: one line per pass, then the totals).",
        ),
    ) -> None:
        """Merge chat archives so that nothing is lost or doubled.

        Merge is a CRDT: any order or grouping of merges gives the same bytes.

        merge ROOT: each minute with several batch files becomes one file holding all they
        observed.

        merge SRC... --into DEST: brings archives together in DEST; a second run changes
        nothing.

        merge FILE... --stdout: prints the canonical merge of the given batch files.

        Inputs are deleted only after the merged file is fsynced: a kill at any point loses
        nothing. Corrupt files are reported (FILE:LINE) and moved to
        ROOT/quarantine/CHANNEL/chat/..., never deleted.

        Exit status: 0 done, 1 done but corrupt inputs were skipped, 2 nothing could be done,
        130 interrupted (run it again to finish).

        \b
        Examples:
          chat-archiver merge archive/
          chat-archiver merge hostA/archive hostB/archive --into archive/
          chat-archiver merge archive/ --interval 60
          chat-archiver merge FILE.json FILE2.json --stdout
        """
        if stdout and into is not None:
            fail("--stdout and --into do not go together: --stdout prints, --into writes an archive")
        if interval is not None and (stdout or into is not None):
            fail("--interval watches one ROOT; it does not go with --stdout or --into")
        if full and (stdout or interval is not None):
            fail("--full is a one-off pass over an archive; it does not go with --stdout or --interval")
        if stdout and channel:
            fail("--channel selects folders of an archive; with --stdout, name the files instead")
        interrupted = False
        try:
            if stdout:
                folders = [p for p in paths if p.is_dir()]
                if folders:
                    fail(
                        f"--stdout takes batch files (FILE.json ...), and {folders[0]} is a folder; "
                        f"to merge an archive in place: chat-archiver merge {folders[0]}"
                    )
                merged, problems = merge_files(str(p) for p in paths)
                sys.stdout.buffer.write(merged.to_bytes())
                sys.stdout.buffer.flush()
                for problem in problems:
                    _warn(problem)
                if problems:  # everything readable was merged and printed
                    raise typer.Exit(EXIT_PROBLEMS)
                return
            if into is not None:
                archive_channels_or_fail([str(p) for p in paths], channel)
                stats = merge_into(
                    [str(p) for p in paths], str(into), channels=channel or None, on_problem=_warn, full=full
                )
                _finish(stats, as_json, f"merge into {into}")
                return
            if len(paths) != 1:
                fail(f"merge ROOT takes one archive root (got {len(paths)}); to combine archives use --into DEST")
            root = str(paths[0])
            archive_channels_or_fail([root], channel, allow_empty=interval is not None)
            if interval is None:
                stats = merge_tree(
                    root, channels=channel or None, on_problem=_warn, quarantine=not no_quarantine, full=full
                )
            else:
                stats, interrupted = _watch(
                    root, interval, channel or None, not no_quarantine, settings(ctx).merge_passes, as_json
                )
        except ArchiverError as e:
            fail(str(e))
        except OSError as e:
            os_error(e, into if into is not None else paths[0])
        if interrupted:
            if as_json:
                _json_line({"total": True, **stats.as_dict()})
            else:
                _print_table(stats, f"merge {root}")
            exit_interrupted(INTERRUPTED)
        if interval is not None and as_json:
            _json_line({"total": True, **stats.as_dict()})
            if stats.problems:
                raise typer.Exit(EXIT_PROBLEMS)
            return
        _finish(stats, as_json, f"merge {root}")


def _warn(problem: MergeProblem) -> None:
    warn(f"corrupt input: {problem}")


def _json_line(value: dict[str, object]) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def _watch(
    root: str, interval: float, channels: list[str] | None, quarantine: bool, passes: int | None, as_json: bool
) -> tuple[MergeStats, bool]:
    """`watch`, with totals that survive Ctrl-C: every pass is added up here as it ends. Returns
    them, and whether Ctrl-C stopped it."""
    total = MergeStats()
    interrupted = False
    done = 0
    problems: list[MergeProblem] = []  # from the hook, so that a pass cut short by Ctrl-C counts too

    def problem(p: MergeProblem) -> None:
        problems.append(p)
        _warn(p)

    def each(stats: MergeStats) -> None:
        nonlocal done
        done += 1
        channels_seen = max(total.channels, stats.channels)  # the same channels each pass, not more
        total.add(stats)
        total.channels = channels_seen
        if as_json:
            _json_line({"pass": done, **stats.as_dict()})
        else:
            note(
                f"pass {done}: {plural(stats.minutes_merged, 'minute')} merged, "
                f"{plural(stats.files_deleted, 'file')} replaced, {number(len(stats.problems))} corrupt"
            )

    try:
        with sigterm_stops():
            watch(
                root,
                interval,
                channels=channels,
                quarantine=quarantine,
                on_problem=problem,
                on_pass=each,
                passes=passes,
            )
    except KeyboardInterrupt as stopped:
        note(f"stopped after {plural(done, 'full pass', 'full passes')}")
        interrupted = not isinstance(stopped, Terminated)  # Ctrl-C; SIGTERM is a service's stop
    total.problems = problems
    return total, interrupted
