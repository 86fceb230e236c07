"""The `record` command (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("record")
    def _record() -> None:
        """Not implemented yet."""
        raise typer.Exit(2)
