"""The one error hierarchy of chat-archiver, split by blame (as h11 splits Local/Remote errors).

`InputError` means the data is bad: a malformed IRC line, a corrupt raw record, a damaged batch
file. It names where the bad data is (`source`, `line`) so the CLI can print one precise message.
`UsageError` means the caller asked for something impossible (a bad setting, an unsafe channel
name as an output path). Both derive from `ArchiverError`, so a shell catches everything the
library raises on purpose with one clause; anything else escaping is a bug.
"""

from __future__ import annotations


class ArchiverError(Exception):
    """Root of every error chat-archiver's packages raise on purpose."""


class UsageError(ArchiverError):
    """The caller misused the API or gave an impossible setting."""


class InputError(ArchiverError):
    """The input data is malformed. `source` and `line` say where, when known."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.source = source
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.source is None:
            return self.message
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.message}"

    def at(self, source: str, line: int | None = None) -> InputError:
        """The same error, located in `source` (and `line`)."""
        return InputError(self.message, source, line if line is not None else self.line)


class IRCParseError(InputError):
    """A line that is not a valid IRC message."""
