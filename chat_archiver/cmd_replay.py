"""The `replay` command (in progress)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("replay")
    def _replay() -> None:
        """Not implemented yet."""
        raise typer.Exit(2)
