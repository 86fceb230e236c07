"""The typer app. Each command lives in its own module and registers itself here."""

from __future__ import annotations

import typer

from chat_archiver import __version__

app = typer.Typer(
    name="chat-archiver",
    help=(
        "Archive Twitch (or any IRCv3) chat so that nothing is lost and nothing is duplicated.\n\n"
        "record: capture raw chat. replay: turn raw recordings into the archive. "
        "merge: combine archives (a CRDT). verify: check an archive's health. export: get chat out."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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


def _register() -> None:
    # Imported here so each command module stays independent and cheap to import.
    from chat_archiver import (  # noqa: PLC0415 (see above)
        cmd_export,
        cmd_merge,
        cmd_record,
        cmd_replay,
        cmd_verify,
    )

    for module in (cmd_record, cmd_replay, cmd_merge, cmd_verify, cmd_export):
        module.register(app)
    from chat_archiver import cmd_archive  # noqa: PLC0415 (live archive: recorders + follower)

    cmd_archive.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
