"""`chat-archiver media`: fetch the emotes (and, opt-in, the linked media) an archive's records name."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from chat_archiver import media_options
from chat_archiver.console import EXIT_PROBLEMS, command, fail, note, number, os_error, out, warn
from formats.errors import ArchiverError, InputError

if TYPE_CHECKING:
    from media.keeper import Keeper, Options
    from media.shell import Tail

INTERRUPTED = "media stopped; every file it wrote is whole: run it again to fetch the rest."


def keeper_options(
    *, twitch_cdn: str | None, links: bool, allow_private: bool, workers: int, emotes: bool = True
) -> Options:
    """The keeper's options from the command line."""
    from media.keeper import Options  # noqa: PLC0415 (keeps `chat-archiver --help` light)

    media_options.check(twitch_cdn, allow_private)
    return Options(
        twitch_cdn=twitch_cdn or Options.twitch_cdn,
        emotes=emotes,
        links=links,
        allow_private=allow_private,
        workers=workers,
    )


def register(app: typer.Typer) -> None:
    @command(app, "media", interrupted=INTERRUPTED)
    def media_command(
        root: Path = typer.Argument(..., metavar="ROOT", help="The archive root.", show_default=False),
        channel: list[str] = typer.Option(
            [], "--channel", "-c", metavar="CHANNEL", show_default=False, help="Only this channel (repeatable)."
        ),
        since: str = typer.Option(None, "--since", metavar="TIME", help="Only minutes that end at or after TIME."),
        until: str = typer.Option(None, "--until", metavar="TIME", help="Only minutes that start before TIME."),
        no_emotes: bool = media_options.NO_EMOTES,
        media_links: bool = media_options.MEDIA_LINKS,
        twitch_cdn: str = media_options.TWITCH_CDN,
        allow_private: bool = media_options.ALLOW_PRIVATE,
        jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=64, metavar="N", help="Fetches at once."),
        follow: bool = typer.Option(
            False, "--follow", help="Keep watching the archive for new minutes, until SIGTERM or Ctrl-C."
        ),
        poll: float = typer.Option(2.0, "--poll", min=0.1, metavar="SECONDS", help="With --follow: look this often."),
        status_file: Path = typer.Option(
            None, "--status-file", metavar="FILE", help="With --follow: keep the counters here (JSON, each poll)."
        ),
        metrics_port: int = typer.Option(None, "--metrics-port", metavar="PORT", help="Serve Prometheus metrics here."),
        metrics_addr: str = typer.Option(
            "127.0.0.1", "--metrics-addr", metavar="ADDR", help="Address for --metrics-port."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Fetch the emotes and linked media an archive names.

        Files go into ROOT/emotes and ROOT/media, in wubloader's layout.
        Reads the batch files of ROOT (every channel, or -c), and for every emote id in a message's
        emotes tag fetches the six variants not yet on disk, each once, written atomically. With
        --media-links, also the images, videos and PDFs linked in messages, into ROOT/media, through
        the defences in docs/media.md (public addresses only, caps, one timeout).

        Exit status: 0 all fetched, 1 some fetches failed or were refused (run again later),
        2 unusable arguments, 130 interrupted.

        \b
        Examples:
          chat-archiver media /srv/chat/archive -c desertbus --since 2023-11-14
          chat-archiver media archive/ --media-links
        """
        from chat_archiver.inputs import archive_channels_or_fail  # noqa: PLC0415
        from formats.times import TimeError, parse_window  # noqa: PLC0415
        from media.keeper import Keeper  # noqa: PLC0415
        from media.shell import Tail, records  # noqa: PLC0415
        from media.workers import MediaStats  # noqa: PLC0415

        archive_channels_or_fail([str(root)], channel, allow_empty=True)
        try:
            start, end = parse_window(since, until)
        except TimeError as e:
            fail(str(e))
        if follow and (since or until):
            fail("--follow takes no --since or --until")
        opts = keeper_options(
            twitch_cdn=twitch_cdn, links=media_links, allow_private=allow_private, workers=jobs, emotes=not no_emotes
        )
        stats = MediaStats()
        problems: list[InputError] = []

        def problem(e: InputError) -> None:
            problems.append(e)
            warn(str(e))

        metrics_server = None
        keeper = Keeper(str(root), opts, stats=stats, log=note if not as_json else lambda line: None)
        if metrics_port is not None:
            from media.metrics import MediaCollector  # noqa: PLC0415
            from recorder.metrics import serve  # noqa: PLC0415

            try:
                metrics_server, _ = serve(MediaCollector(stats, keeper.store), metrics_port, metrics_addr)
            except OSError as e:
                fail(f"cannot serve metrics on {metrics_addr}:{metrics_port}: {e.strerror or e}")
        began = time.monotonic()
        try:
            with keeper:
                if follow:
                    _follow(keeper, Tail(str(root), channel or None), poll, problem, status_file)
                else:
                    for record in records(str(root), channel or None, start, end, problem):
                        keeper.offer_record(record, wait=True)
                    keeper.drain()
        except ArchiverError as e:
            fail(str(e))
        except OSError as e:
            os_error(e, root)
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
        counts = stats.snapshot()
        if as_json:
            summary = {**counts, "damaged_files": len(problems), "seconds": round(time.monotonic() - began, 3)}
            out.print_json(json.dumps(summary))
        else:
            fetched = counts["fetches"] | {f"written/{k}": v for k, v in counts["files_written"].items()}
            out.print(" ".join(f"{k}={number(v)}" for k, v in sorted(fetched.items())) or "nothing to fetch")
        if problems or counts["refusals"]:
            raise typer.Exit(EXIT_PROBLEMS)


def _follow(
    keeper: Keeper, tail: Tail, poll: float, problem: Callable[[InputError], None], status_file: Path | None
) -> None:
    """Read new minutes every `poll` seconds until SIGTERM or Ctrl-C."""
    from chat_archiver.cmd_archive import _stop_on_signals  # noqa: PLC0415 (the one place signals are wired)
    from formats.store import write_bytes_atomic  # noqa: PLC0415
    from media.metrics import StoreSize, status_bytes  # noqa: PLC0415

    size = StoreSize(keeper.store)
    with _stop_on_signals() as stop:
        while True:
            for record in tail.poll(problem):
                keeper.offer_record(record)
            keeper.retry_due()  # what a CDN outage failed, once its wait is over
            if status_file is not None:
                write_bytes_atomic(str(status_file), status_bytes(keeper.stats, size))
            if stop.wait(poll):
                return
