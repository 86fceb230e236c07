"""`chat-archiver sync`: fetch from peers what this archive lacks, check it, merge it (a backfiller)."""

from __future__ import annotations

import json
import time
from functools import partial

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from chat_archiver.console import EXIT_OK, EXIT_PROBLEMS, err, fail, out, progress, warn
from formats.errors import ArchiverError

_COUNTS = ("peers", "channels", "hours_listed", "files_listed", "files_fetched", "bytes_fetched", "files_gone",
           "minutes_merged", "files_merged_away", "seconds")


def register(app: typer.Typer) -> None:
    @app.command("sync")
    def sync_command(
        root: str = typer.Argument(..., help="Archive root to fill (made if missing)."),
        peers: list[str] = typer.Option(..., "--from", metavar="URL", help="A peer, http://HOST:PORT (repeatable)."),
        channel: list[str] = typer.Option(
            None, "--channel", "-c", help="Only these channels (default: every channel a peer lists)."
        ),
        since: str = typer.Option("14d", "--since", help="Window start: a duration back from now (14d, 6h) or a time."),
        interval: float = typer.Option(None, "--interval", min=0.1, help="Keep running: sync again every SECONDS."),
        jobs: int = typer.Option(4, "--jobs", min=1, max=64, help="Requests in flight at once."),
        timeout: float = typer.Option(20.0, "--timeout", min=0.1, help="Seconds to wait for a peer before retrying."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (one object per pass)."),
        passes: int = typer.Option(None, "--passes", min=1, hidden=True, help="With --interval: stop after N passes."),
    ) -> None:
        """Fetch from peers (chat-archiver `serve` hosts or wubloader nodes) the batch files this
        archive lacks, as wubloader's backfiller does: list the peer's hours in the window, list each
        hour, fetch the missing names, keep a file only if its SHA-256 matches its name and its
        records are valid, write it atomically, then merge (a CRDT: hosts syncing from each other
        converge on identical archives).

        A bad peer cannot hurt the archive: wrong hashes, junk, huge or endless answers, hanging
        peers and redirects elsewhere are refused with one line each, and the sync goes on.

        Exit status: 0 done, 1 done but something was refused, 2 nothing could be done.
        """
        from sync.plan import parse_since  # noqa: PLC0415 (keeps `chat-archiver --help` light)
        from sync.run import Refusal, sync_once  # noqa: PLC0415

        if passes is not None and interval is None:
            fail("--passes only counts --interval passes")

        def refused(r: Refusal) -> None:
            warn(f"refused: {r}")

        worst = EXIT_OK
        done = 0
        try:
            while True:
                began = time.monotonic()
                now = time.time()
                start = parse_since(since, now)
                with progress(enabled=not as_json) as bar:
                    task = bar.add_task("fetching", total=0)
                    stats = sync_once(
                        root, peers, channels=channel or None, start=start, end=now, jobs=jobs, timeout=timeout,
                        on_refusal=refused, on_plan=partial(_grow, bar, task), on_file=partial(bar.advance, task),
                        on_problem=lambda p: warn(f"merge: {p}"),
                    )
                if as_json:
                    out.print_json(json.dumps(stats.as_dict()))
                else:
                    _print(stats, root)
                if stats.refused or stats.merge_problems:
                    worst = EXIT_PROBLEMS
                    err.print(f"{len(stats.refused)} item(s) refused, {len(stats.merge_problems)} merge problem(s)")
                done += 1
                if interval is None or (passes is not None and done >= passes):
                    break
                time.sleep(max(0.0, interval - (time.monotonic() - began)))
        except KeyboardInterrupt:
            err.print("stopped")
        except ArchiverError as e:
            fail(str(e))
        except OSError as e:
            fail(f"{e.filename or root}: {e.strerror or e}")
        raise typer.Exit(worst)


def _print(stats: object, root: str) -> None:
    table = Table(title=f"sync into {root}", show_header=False)
    for key in _COUNTS:
        value = getattr(stats, key)
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else f"{value}")
    out.print(table)


def _grow(bar: Progress, task: TaskID, more: int) -> None:
    """Each peer's plan adds its files to the bar's total."""
    bar.update(task, total=(bar.tasks[0].total or 0) + more)
