"""Errors of the replay package, split by blame (as h11 does).

`InputError` means the data is bad: a malformed IRC line, a corrupt raw record, a damaged batch
file. It names where the bad data is (`source`, `line`) so the CLI can print one precise message.
`UsageError` means the caller asked for something impossible (a bad configuration, an unsafe
channel name as an output path).
"""

from __future__ import annotations


class ReplayError(Exception):
    """Root of every error this package raises on purpose."""


class UsageError(ReplayError):
    """The caller misused the API or gave an impossible setting."""


class InputError(ReplayError):
    """The input data is malformed. `source` and `line` say where, when known."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.source = source
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.source is not None:
            where = self.source if self.line is None else f"{self.source}:{self.line}"
            where += ": "
        return f"{where}{self.message}"

    def at(self, source: str, line: int | None = None) -> InputError:
        """The same error, located in `source` (and `line`)."""
        return InputError(self.message, source, line if line is not None else self.line)


class IRCParseError(InputError):
    """A line that is not a valid IRC message."""
