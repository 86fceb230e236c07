"""The typer app. Each command lives in its own module and registers itself here."""

from __future__ import annotations

import functools
import importlib
import re
import sys
from typing import Any

import typer
import typer.main
from typer import _click as click
from typer._click import exceptions as click_errors
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
        "serve: share an archive over HTTP. sync: fetch what peers hold and this archive lacks. "
        "media: fetch the emotes (and linked media) chat showed. emotes: snapshot third-party emote sets. "
        "index: keep the search index. search: ask the archive who said what.\n\n"
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
    "media",
    "emotes",
    "index",
    "search",
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


# The library's wording of a bad value, in the CLI's (docs/cli.md: one line, no Python).
_PLAIN = (
    (re.compile(r"^Value error, "), ""),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"must be more than \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"Input should be less than (\S+)"), r"must be less than \1"),
    (re.compile(r"Input should be a valid integer.*"), "must be a whole number"),
    (re.compile(r"Input should be a valid number.*"), "must be a number"),
    (re.compile(r"Input should be a valid boolean.*"), "must be true or false"),
)


def _option_name(param: click.Parameter | None) -> str:
    if param is None:
        return "a value"
    if param.param_type_name == "argument":
        return param.metavar or str(param.name).upper()
    names = sorted(param.opts, key=lambda o: (not o.startswith("--"), o))
    return names[0] if names else str(param.name)


_show = click_errors.UsageError.show


def _usage_error_in_one_line(self: click_errors.UsageError, file: Any = None) -> None:
    """click's usage errors as every other error of the CLI: `error: WHAT` on one line, then where
    help is, instead of click's usage, hint and `Error:` lines and a validator's wording."""
    if isinstance(self, click_errors.NoArgsIsHelpError):
        _show(self, file)  # the help itself
        return
    if isinstance(self, click_errors.MissingParameter):
        what = f"{_option_name(self.param)} is required"
    elif isinstance(self, click_errors.BadParameter):
        message = self.message
        for pattern, plain in _PLAIN:
            message = pattern.sub(plain, message)
        what = f"{_option_name(self.param)}: {message.rstrip('.')}"
    else:
        message = self.format_message().rstrip(".")
        what = message[:1].lower() + message[1:]
        what = re.sub(r" \(Possible (?:options|commands): (.*)\)$", r"; did you mean \1?", what)
    where = self.ctx.command_path if self.ctx is not None else "chat-archiver"
    sys.stderr.write(f"error: {what} (see {where} -h)\n")


click_errors.UsageError.show = _usage_error_in_one_line  # type: ignore[method-assign]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
