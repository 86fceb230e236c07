"""The typer app. Each command lives in its own module and registers itself here."""

from __future__ import annotations

import functools
import importlib
import sys

import typer
import typer.main
from typer import _click as click
from typer.core import TyperGroup

from chat_archiver import __version__

EXIT_INTERRUPTED = 128 + 2  # chat_archiver.console's, not imported here: it loads rich


class _Commands(TyperGroup):
    """The commands, each loaded only when it is asked for: `chat-archiver export ...` imports the
    export stage and none of the others, and `--version` none at all, so the CLI starts like a
    small tool. `--help` loads them all, for their summaries."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return _load(cmd_name) if cmd_name in COMMANDS else None


app = typer.Typer(
    name="chat-archiver",
    cls=_Commands,
    help=(
        "Archive Twitch (or any IRCv3) chat so that nothing is lost and nothing is duplicated.\n\n"
        "record: capture raw chat. replay: turn raw recordings into the archive. "
        "merge: combine archives (a CRDT). verify: check an archive's health. export: get chat out. "
        "archive: record and keep the archive current on one host (recorders + follower). "
        "serve: share an archive over HTTP. sync: fetch what peers hold and this archive lacks.\n\n"
        "Each command explains itself: chat-archiver COMMAND -h. Conventions: docs/cli.md."
    ),
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: paragraphs rewrap, user-facing metavars, no Python types
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chat-archiver {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Archive Twitch (or any IRCv3) chat so that nothing is lost and nothing is duplicated."""


# One line per command, in the order `--help` lists them: each module `chat_archiver/cmd_NAME.py`
# has `register(app)`, and is imported only when its command runs (`_Commands`). A new command is
# one new line here.
COMMANDS = (
    "record",
    "replay",
    "merge",
    "verify",
    "export",
    "archive",
    "serve",
    "sync",
)


@functools.cache
def _load(name: str) -> click.Command:
    """The command `name`, from `chat_archiver/cmd_NAME.py`'s `register(app)`."""
    try:
        module = importlib.import_module(f"chat_archiver.cmd_{name}")
    except KeyboardInterrupt:  # a Ctrl-C while it loads: as one in the command itself
        sys.stderr.write("interrupted: stopped\n")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    single = typer.Typer(add_completion=False, rich_markup_mode=None)
    module.register(single)
    command = typer.main.get_command(single)
    command.name = name
    return command


def main() -> None:
    app()


if __name__ == "__main__":
    main()
