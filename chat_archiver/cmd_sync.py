"""`chat-archiver sync`: fetch from peers what this archive lacks, check it, merge it (a backfiller)."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from functools import partial
from typing import Any

import orjson
import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from chat_archiver.console import (
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
    progress,
    sigterm_stops,
    warn,
)
from formats.errors import ArchiverError

_COUNTS = (
    "peers",
    "channels",
    "hours_listed",
    "files_listed",
    "files_fetched",
    "bytes_fetched",
    "files_gone",
    "minutes_merged",
    "files_merged_away",
    "seconds",
)
INTERRUPTED = "sync stopped; every file it kept is whole: run it again to fetch the rest."


def register(app: typer.Typer) -> None:
    @command(app, "sync", interrupted=INTERRUPTED)
    def sync_command(
        root: str = typer.Argument(
            ..., metavar="ROOT", help="Archive root to fill (made if missing).", show_default=False
        ),
        peers: list[str] = typer.Option(
            ...,
            "--from",
            metavar="URL",
            help="A peer, http://HOST:PORT (repeatable).",
            show_default=False,
        ),
        channel: list[str] = typer.Option(
            [],
            "--channel",
            "-c",
            metavar="CHANNEL",
            show_default=False,
            help="Only this channel (repeatable; default: every channel a peer lists).",
        ),
        since: str = typer.Option(
            "14d",
            "--since",
            metavar="TIME|DURATION",
            help="Window start: a time, or a duration back from now (6h).",
        ),
        interval: float = typer.Option(
            None,
            "--interval",
            min=0.1,
            metavar="SECONDS",
            help="Keep running: sync again every SECONDS.",
        ),
        jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=64, metavar="N", help="Requests in flight at once."),
        timeout: float = typer.Option(
            20.0,
            "--timeout",
            min=0.1,
            metavar="SECONDS",
            help="How long one file or listing may take from a peer, retries included (so also the longest silence).",
        ),
        max_file: int = typer.Option(
            16,
            "--max-file",
            min=1,
            max=4096,
            metavar="MIB",
            help="The largest batch file taken from a peer, in MiB (a busier channel's minute is a few "
            "MiB); a larger answer is refused at the limit.",
        ),
        extras: str = typer.Option(
            "emotes,media,images,thirdparty,badges",
            "--extras",
            metavar="LIST",
            help="Media folders to fetch too, checked (docs/media.md); 'none' for none.",
        ),
        extras_timeout: float = typer.Option(
            300.0,
            "--extras-timeout",
            min=0.1,
            max=86400.0,
            metavar="SECONDS",
            help="How long one peer's media folders may take in a pass; the rest waits for the next pass.",
        ),
        as_json: bool = typer.Option(
            False,
            "--json",
            help="Print the summary as JSON (with --interval: one line per pass).",
        ),
    ) -> None:
        """Fetch what peers hold and this archive lacks, check it, merge it.

        Does what wubloader's backfiller does for chat, from chat-archiver serve hosts or
        wubloader nodes: lists a peer's hours in the window, lists each hour, fetches the
        missing batch files, keeps a file only if its SHA-256 matches its name and its
        records are valid, writes it atomically, then merges. Hosts that sync from each
        other converge on identical archives.

        A bad peer cannot hurt the archive: wrong hashes, junk, huge or endless answers,
        silent peers and redirects elsewhere are refused with one line each, and the sync
        goes on. A name in a peer's top folder that cannot be a channel (a stray file such as
        `x_source_0.mkv`: any dotted name) is skipped with one `skipped:` line, and does not
        change the exit status.

        Peers are synced at once, each with --jobs fetches in flight, so a slow peer
        delays no other; memory does not grow with what a peer lists.

        Exit status: 0 done, 1 done but something was refused, 2 nothing could be done,
        130 interrupted (run it again to finish).

        \b
        Examples:
          chat-archiver sync archive/ --from http://hostB:8008
          chat-archiver sync archive/ --from http://hostB:8008 --interval 60
          chat-archiver sync archive/ --from http://hostB:8008 --extras-timeout 60
        """
        from formats.times import TimeError, parse_since  # noqa: PLC0415 (keeps `chat-archiver --help` light)
        from sync.shell import Refusal, SyncStats, sync_once  # noqa: PLC0415

        def refused(r: Refusal) -> None:
            warn(f"refused: {r}")

        from sync.client import check_base_url  # noqa: PLC0415
        from sync.extras import parse_folders, sync_extras_from  # noqa: PLC0415

        worst = 0
        done = 0
        total = SyncStats()
        try:
            parse_since(since, time.time())  # a bad --since fails before anything is fetched
        except TimeError as e:
            fail(f"--since: {e}")
        try:
            folders = parse_folders(extras)
        except ValueError as e:
            fail(f"--extras: {e}")
        media_total = 0
        try:
            with sigterm_stops() if interval is not None else contextlib.nullcontext():
                while True:
                    began = time.monotonic()
                    now = time.time()
                    with progress(enabled=not as_json, unit="files") as bar:
                        task = bar.add_task("fetching", total=0)
                        stats = sync_once(
                            root,
                            peers,
                            channels=channel or None,
                            start=parse_since(since, now),
                            end=now,
                            jobs=jobs,
                            timeout=timeout,
                            max_file=max_file << 20,
                            on_refusal=refused,
                            on_skip=lambda r: warn(f"skipped: {r}"),
                            on_plan=partial(_grow, bar, task),
                            on_file=partial(bar.advance, task),
                            on_problem=lambda p: warn(f"merge: {p}"),
                        )
                        # the media folders after the chat: a slow or hostile media peer never delays chat,
                        # and a peer whose /files the chat pass could not reach is not asked again this pass
                        unreached = [r for r in stats.refused if r.reason.startswith("cannot reach the peer")]
                        unreachable = {r.peer for r in unreached}
                        no_top = {r.peer for r in unreached if r.what == "/files"}
                        media = sync_extras_from(
                            root,
                            [p for p in peers if check_base_url(p) not in no_top],
                            folders,
                            timeout=timeout,
                            peer_deadline=extras_timeout,
                            on_refusal=lambda line: warn(f"refused: {line}"),
                        )
                    done += 1
                    _add(total, stats)
                    media_total += media.fetched
                    summary = {
                        **stats.as_dict(),
                        "media_files_fetched": media.fetched,
                        "media_bytes_fetched": media.bytes,
                    }
                    if as_json and interval is not None:
                        _json_line({"pass": done, **summary})
                    elif as_json:
                        out.print_json(json.dumps(summary))
                    elif interval is not None:
                        note(_pass_line(done, stats, media.fetched))  # one line per pass, as merge --interval
                    else:
                        _print(stats, root, media_files=media.fetched)
                    if not stats.hours_listed and stats.hours_older and (interval is None or done == 1):
                        warn(
                            f"the window (--since {since}) holds nothing the peers have; they hold "
                            f"{plural(stats.hours_older, 'older hour')}, the newest {stats.newest_older}: "
                            f"to fetch them, --since {stats.newest_older[:10]} (or earlier)"
                        )
                    if interval is None and len(unreachable) >= len(set(peers)):
                        fail(f"no peer could be reached ({', '.join(sorted(unreachable))}): nothing was fetched")
                    if stats.refused or stats.merge_problems or media.refusals:
                        worst = 1
                        if interval is None:
                            err.print(
                                f"{plural(len(stats.refused) + media.refusals, 'item')} refused, "
                                f"{plural(len(stats.merge_problems), 'merge problem')}",
                                markup=False,
                            )
                    if interval is None:
                        break
                    time.sleep(max(0.0, interval - (time.monotonic() - began)))
        except KeyboardInterrupt as stopped:
            if interval is None:
                raise
            note(f"stopped after {plural(done, 'full pass', 'full passes')}")
            if as_json:
                _json_line({"total": True, "passes": done, **total.as_dict(), "media_files_fetched": media_total})
            else:
                _print(total, root, f"sync into {root}: totals of {plural(done, 'pass', 'passes')}", media_total)
            if not isinstance(stopped, Terminated):  # Ctrl-C: interrupted; SIGTERM: a service asked to stop
                exit_interrupted(INTERRUPTED)
        except ArchiverError as e:
            fail(str(e))
        except OSError as e:
            os_error(e, root)
        raise typer.Exit(worst)


def _json_line(value: dict[str, object]) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def _pass_line(done: int, stats: Any, media_files: int = 0) -> str:
    return (
        f"pass {done}: {plural(stats.files_fetched, 'file')} fetched ({number(stats.bytes_fetched)} bytes) "
        f"and {plural(media_files, 'media file')} "
        f"from {plural(stats.peers, 'peer')}, {plural(stats.minutes_merged, 'minute')} merged, "
        f"{plural(len(stats.refused), 'item')} refused, {stats.seconds:.1f} s"
    )


def _add(total: Any, stats: Any) -> None:
    """Add one pass's counts to `total` (peers and channels: the most any pass saw)."""
    for key in _COUNTS:
        if key in ("peers", "channels"):
            setattr(total, key, max(getattr(total, key), getattr(stats, key)))
        else:
            setattr(total, key, getattr(total, key) + getattr(stats, key))
    total.refused.extend(stats.refused)
    total.skipped.extend(stats.skipped)
    total.merge_problems.extend(stats.merge_problems)


def _grow(bar: Progress, task: TaskID, more: int) -> None:
    """Each peer's plan adds its files to the bar's total."""
    bar.update(task, total=(bar.tasks[0].total or 0) + more)


def _print(stats: object, root: str, title: str | None = None, media_files: int = 0) -> None:
    table = Table(title=title or f"sync into {root}", show_header=False)
    for key in _COUNTS:
        value = getattr(stats, key)
        table.add_row(key.replace("_", " "), number(value))
    table.add_row("media files fetched", number(media_files))
    out.print(table)
