"""The typer app. Each command lives in its own module and registers itself here."""

from __future__ import annotations

import importlib

import typer

from chat_archiver import __version__

app = typer.Typer(
    name="chat-archiver",
    help=(
        "Archive Twitch (or any IRCv3) chat so that nothing is lost and nothing is duplicated.\n\n"
        "record: capture raw chat. replay: turn raw recordings into the archive. "
        "merge: combine archives (a CRDT). verify: check an archive's health. export: get chat out. "
        "archive: record and keep the archive current on one host (recorders + follower). "
        "index and search: ask the archive who said what."
    ),
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
# has `register(app)`. A new command is one new line here.
COMMANDS = (
    "record",
    "replay",
    "merge",
    "verify",
    "export",
    "archive",
    "serve",
    "sync",
    "media",
    "emotes",
    "index",
    "search",
)


def _register() -> None:
    # Imported here so each command module stays independent and cheap to import.
    for name in COMMANDS:
        importlib.import_module(f"chat_archiver.cmd_{name}").register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
