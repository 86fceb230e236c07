"""Errors of the merge package, split by blame (as h11 splits local and remote protocol errors).

`InputError`: the data is bad (a corrupt batch file, a record whose numbers break the merge's
preconditions). It says where: `source` (a path) and `line`, when known.
`UsageError`: the caller asked for something impossible (a missing root, an unsafe channel name).
Both derive from `MergeError`, so a caller can catch everything this package raises on purpose
with one clause; anything else escaping is a bug.
"""

from __future__ import annotations


class MergeError(Exception):
    """Root of every error the merge package raises on purpose."""


class UsageError(MergeError):
    """The caller misused the API or gave an impossible setting."""


class InputError(MergeError):
    """The input is malformed. `source` and `line` say where, when known."""

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
