"""The `export` command (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def _export() -> None:
        """Not implemented yet."""
        raise typer.Exit(2)
