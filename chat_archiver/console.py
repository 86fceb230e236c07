"""Shared bits of the CLI shell: consoles, the one-line error exit, progress bars, and what every
command does the same way (broken pipes, Ctrl-C, numbers, text from outside printed verbatim).

Text that comes from outside (paths, channel names, messages, file content) is never read as Rich
markup or emoji codes: `host1 [copy].jsonl` and `a:smile:b` print as they are. The consoles have
emoji codes off and `out` has markup off; `fail`, `warn` and `note` take plain text (styles are
applied around it, never parsed from it). `err` keeps markup for the rare styled literal.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich's own answer is exit 1, which `verify` defines as "problems found"
        _pipe_closed()


out = _Console(emoji=False, markup=False, highlight=False)
err = _Console(stderr=True, emoji=False, highlight=False)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_ERROR = 2
EXIT_PIPE = 128 + 13  # what a shell reports for a tool that SIGPIPE ended (`yes | head -1`)
EXIT_INTERRUPTED = 128 + 2  # what a shell reports for a tool that Ctrl-C (SIGINT) ended


@dataclass(frozen=True)
class Settings:
    """Knobs for tests, not for users: pass one as typer's `obj` (`CliRunner().invoke(app, args,
    obj=Settings(merge_passes=2))`). The product's CLI has no hidden switches."""

    merge_passes: int | None = None  # `merge --interval` stops after this many passes


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print one clear line to stderr and exit non-zero. Library errors become exit codes here only."""
    err.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
    raise typer.Exit(code)


_TEMP_NAME = re.compile(r"\.[0-9a-f]{32}\.(partial|temp)$")


def os_error(e: OSError, fallback: object) -> NoReturn:
    """Fail with an OS error, naming the file the user knows: the file a temporary name
    (`x.json.0a17....partial`, `.temp`) stands for, else `fallback` (what the user gave)."""
    name = e.filename if isinstance(e.filename, str) else None
    fail(f"{_TEMP_NAME.sub('', name) if name else fallback}: {e.strerror or e}")


def warn(message: str) -> None:
    err.print(Text.assemble(("warning:", "yellow"), " ", message), soft_wrap=True)


def note(message: str) -> None:
    """A line of progress or explanation on stderr, verbatim."""
    err.print(Text(message, style="dim"), soft_wrap=True)


def number(n: float) -> str:
    """Every count the CLI prints for people, one way: thousands separated by commas."""
    return f"{n:,}" if isinstance(n, int) else f"{n:,.1f}"


def plural(n: int, thing: str, things: str | None = None) -> str:
    """A count and its noun, agreeing: `1 file`, `2 files`, `3 passes` (plural(3, "pass", "passes"))."""
    return f"{number(n)} {thing if n == 1 else things or thing + 's'}"


class _RateColumn(ProgressColumn):
    """Things per second, for counted work (bytes have rich's own TransferSpeedColumn)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s", style="progress.data.speed")


def progress(enabled: bool = True, unit: str = "files") -> Progress:
    """A progress bar on stderr, shown only on a terminal (scripts and CI get clean output).

    `unit` is "bytes" (size done and total, rate, ETA) or a word for counted things ("lines",
    "files", "minutes"): done/total, the rate and an ETA.
    """
    columns: list[str | ProgressColumn] = [TextColumn("[progress.description]{task.description}"), BarColumn()]
    if unit == "bytes":
        columns += [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    else:
        columns += [MofNCompleteColumn(), TextColumn(unit), _RateColumn(unit), TimeRemainingColumn()]
    return Progress(
        *columns,
        console=err,
        disable=not (enabled and sys.stderr.isatty()),
        transient=True,
    )


def _pipe_closed() -> NoReturn:
    # The reader went away (`... | head -1`): stop quietly, as Unix tools do. Point stdout at
    # /dev/null so that Python's own flush at exit does not fail a second time.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    raise typer.Exit(EXIT_PIPE)


class Terminated(KeyboardInterrupt):
    """SIGTERM, read as Ctrl-C is (see `sigterm_stops`), so that the code that stops cleanly on
    one stops cleanly on the other; the command can tell them apart for its exit status."""


@contextlib.contextmanager
def sigterm_stops() -> Iterator[None]:
    """Within it, SIGTERM (systemd's and docker's "stop") interrupts as Ctrl-C does, raising
    `Terminated`: long-running commands stop cleanly with their totals instead of being killed."""

    def _raise(signum: int, frame: object) -> None:
        raise Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_interrupted(message: str) -> NoReturn:
    """Ctrl-C's end of every command: one line saying what to do next, exit 130 (a command that
    stops cleanly on Ctrl-C, as a recorder does, still ends this way: SIGTERM is its exit 0)."""
    err.print(Text.assemble(("interrupted:", "yellow"), " ", message), soft_wrap=True)
    raise typer.Exit(EXIT_INTERRUPTED)


F = TypeVar("F", bound=Callable[..., Any])


def command(app: typer.Typer, name: str, interrupted: str | None = None) -> Callable[[F], F]:
    """Register `name` on `app` with what every command shares: a closed stdout ends it quietly
    (exit 141), and Ctrl-C ends it with one line (`interrupted`, saying what to do next) and exit
    130 instead of a traceback or click's "Aborted!"."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except BrokenPipeError:
                _pipe_closed()
            except KeyboardInterrupt:
                exit_interrupted(interrupted or "stopped")

        app.command(name)(run)
        return function

    return decorate


def _arguments_by_their_metavar() -> None:
    # typer (0.2x) prints an argument's Python type beside it in help (`RAW... <list[Path]>`) and
    # wraps it in braces in the usage line (`{ROOT}`). Our arguments say what they are in their
    # metavar (`RAW...`, `ROOT`), so print that alone, as click does. Help is read by people; it
    # is not the place for Python's type names.
    # Options without a metavar get their name (`--server SERVER`), or their choices (`a|b`).
    from typer.core import TyperArgument, TyperOption  # noqa: PLC0415 (only this patch needs it)

    def display_name(self: TyperArgument) -> str:
        if self.metavar is not None:
            return self.metavar
        return (self.name or "").upper() + ("..." if self.nargs != 1 else "")

    def usage_pieces(self: TyperArgument, ctx: Any) -> list[str]:
        name = display_name(self)
        return [name if self.required else f"[{name}]"]

    def option_metavar(self: TyperOption, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        # typer 0.2x keeps the choices in a descriptor, older typer in click's Choice type
        holder = getattr(self, "type_descriptor", None) or getattr(self, "type", None)
        choices = getattr(holder, "choices", None)
        if choices:
            return "|".join(str(c.value if isinstance(c, enum.Enum) else c) for c in choices)
        return (self.name or "value").upper()

    def no_type(self: TyperArgument, ctx: Any) -> str | None:
        return None

    # Replacing methods of a class we do not own is what this patch is; setattr says so, and each
    # replacement above keeps the signature of the method it replaces.
    patches: list[tuple[type, str, Callable[..., Any]]] = [
        (TyperArgument, "display_type_rich", no_type),
        (TyperArgument, "get_usage_pieces", usage_pieces),
        (TyperArgument, "_rich_display_name", display_name),
        (TyperOption, "display_type_rich", option_metavar),
    ]
    for cls, name, replacement in patches:
        setattr(cls, name, replacement)


_arguments_by_their_metavar()
