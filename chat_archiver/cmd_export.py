"""The `export` command: the chat of a time window, merged and sorted, in one of the formats."""

from __future__ import annotations

import enum
import os
import stat
import sys
import time
import uuid
from functools import partial

import typer

from chat_archiver import console
from export.emotes import ChatImages
from export.render import FORMATS, Playback
from export.shell import export
from export.window import ExportError, Filters, Window
from formats.errors import ArchiverError, InputError
from formats.times import parse_window

Format = enum.Enum("Format", {name: name for name in FORMATS}, type=str)  # type: ignore[misc]


def register(app: typer.Typer) -> None:
    @console.command(app, "export", interrupted="export stopped; with --out, the output file was not written.")
    def _export(
        root: str = typer.Argument(
            ..., metavar="ROOT", help="Archive root (holds CHANNEL/chat/...).", show_default=False
        ),
        channel: str = typer.Argument(
            ..., metavar="CHANNEL", help="Channel name, with or without '#'.", show_default=False
        ),
        since: str | None = typer.Option(
            None,
            "--since",
            metavar="TIME",
            help="Window start: Unix seconds or ISO 8601 (UTC unless an offset).  [required]",
        ),
        until: str | None = typer.Option(
            None, "--until", metavar="TIME", help="Window end (exclusive), same forms.  [required]"
        ),
        start: str | None = typer.Option(None, "--start", hidden=True),  # the old names, kept for scripts
        end: str | None = typer.Option(None, "--end", hidden=True),
        fmt: Format = typer.Option(
            "json",
            "--format",
            case_sensitive=False,
            metavar="|".join(FORMATS),
            help="Output format.",
        ),
        commands: list[str] = typer.Option(
            [],
            "--command",
            metavar="COMMAND",
            help="Keep only this IRC command (repeatable).",
            show_default=False,
        ),
        users: list[str] = typer.Option(
            [],
            "--user",
            metavar="USER",
            help="Keep only records about this user (repeatable).",
            show_default=False,
        ),
        out: str | None = typer.Option(
            None,
            "--out",
            "-o",
            metavar="FILE",
            help="Write to FILE (atomically) instead of stdout ('-': stdout).",
        ),
        hold: float = typer.Option(
            10.0,
            "--hold",
            min=0.1,
            metavar="SECONDS",
            help="ass: how long each message stays on screen.",
        ),
        images: bool = typer.Option(
            True,
            "--images/--no-images",
            help="html, twitchdownloader: embed the emote and badge images on disk (else words).",
        ),
        jobs: int | None = typer.Option(
            None,
            "--jobs",
            "-j",
            min=1,
            metavar="N",
            show_default=False,
            help="Worker processes for windows of two hours or more (default: the CPUs).",
        ),
    ) -> None:
        """Export the chat of a time window, merged and sorted.

        The records whose time range meets [--since, --until) (upstream's rule), merged,
        folded for reading and sorted by time. json is the
        array upstream's reader returns; jsonl one record per line; text a readable
        transcript; irc the IRC lines rebuilt from the records; ass subtitles timed from --since;
        html a self-contained page that replays the chat, with the emotes and badges the archive
        holds (see docs/media.md); twitchdownloader TwitchDownloader's chat JSON, for its
        renderer, with the same images embedded. A damaged line of a batch file is reported
        (FILE:LINE) and skipped; every readable line is exported.

        Exit status: 0 done, 1 done but damaged lines were skipped, 2 nothing could be done.

        \b
        Examples:
          chat-archiver export archive/ desertbus --since 2023-11-14T22:00Z \\
              --until 2023-11-14T22:30Z --format text
          chat-archiver export archive/ desertbus --since 2023-11-14 \\
              --until 2023-11-15 --format html --out chat.html
        """
        out = None if out == "-" else out  # the Unix convention: `-o -` is standard output
        since = _one_of(since, start, "--since", "--start")
        until = _one_of(until, end, "--until", "--end")
        if since is None or until is None:
            console.fail("export needs a window: --since TIME and --until TIME")
        problems: list[InputError] = []
        try:
            t_since, t_until = parse_window(since, until, now=time.time())
            assert t_since is not None and t_until is not None  # both given
            window = Window(t_since, t_until)
            filters = Filters.of(commands, users)
            if jobs is None:
                from verify.shell import default_jobs  # noqa: PLC0415 (it loads verify's modules)

                jobs = default_jobs()
            workers = jobs
            shown = None
            if images and fmt.value in ("html", "twitchdownloader"):
                shown = ChatImages.load(root, channel, since=window.start, until=window.end)
                for problem in shown.problems[:20]:
                    console.warn(problem)
            # no bar over chat being printed to the same terminal
            with console.progress(enabled=out is not None or not sys.stdout.isatty(), unit="minutes") as bar:
                task = bar.add_task("exporting", total=None)
                run = partial(
                    export,
                    root,
                    channel,
                    window,
                    str(fmt.value),
                    filters=filters,
                    jobs=workers,
                    problems=problems,
                    playback=Playback(window.start, window.end, hold, f"#{channel.lstrip('#').lower()}", shown),
                    on_plan=lambda n: bar.update(task, total=n),
                    on_chunk=lambda k: bar.advance(task, k),
                )
                if out is None:
                    count = run(sys.stdout.buffer)
                    sys.stdout.flush()
                else:
                    count = _to_file(run, out)
        except BrokenPipeError:
            raise
        except (ExportError, ArchiverError) as e:
            console.fail(str(e))
        except OSError as e:
            console.os_error(e, out or "<stdout>")
        for damaged in problems:
            console.warn(f"damaged batch file: {damaged}")
        if problems:
            console.note("damaged lines were skipped (see above); every readable line was exported")
            raise typer.Exit(console.EXIT_PROBLEMS)
        if not count:
            console.note(f"no records in the window --since {since} --until {until}")


def _one_of(new: str | None, old: str | None, new_name: str, old_name: str) -> str | None:
    if new is not None and old is not None:
        console.fail(f"{new_name} and {old_name} are the same option; give one")
    return new if new is not None else old


def _to_file(run: partial[int], out: str) -> int:
    """Write through a temporary file beside `out`, renamed over it when complete.

    `out` that exists and is not a regular file (`/dev/null`, a FIFO, a terminal) is written to
    directly: renaming over it would replace the device with a file (as root, /dev/null itself).
    """
    try:
        special = not stat.S_ISREG(os.stat(out).st_mode)
    except OSError:  # not there yet (or not reachable: the temporary file's open says why)
        special = False
    if special:
        with open(out, "wb") as f:
            return run(f)
    temp = f"{out}.{uuid.uuid4().hex}.partial"
    try:
        with open(temp, "wb") as f:
            count = run(f)
        os.replace(temp, out)
        return count
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
