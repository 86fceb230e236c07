"""Shared bits of the CLI shell: consoles, the one-line error exit, progress bars."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

out = Console()
err = Console(stderr=True, highlight=False)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_ERROR = 2


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print one clear line to stderr and exit non-zero. Library errors become exit codes here only."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}", soft_wrap=True)


def progress(enabled: bool = True) -> Progress:
    """A progress bar on stderr, shown only on a terminal (scripts and CI get clean output)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not (enabled and sys.stderr.isatty()),
        transient=True,
    )
