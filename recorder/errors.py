"""Errors of the recorder beyond the shared ones (formats.errors), split by blame.

`UsageError` (shared): the caller asked for something impossible (a channel name that is not a
channel, a token without a nick). `LoginFailed`: the server refused our credentials; retrying would
not help. `StorageError`: the recording cannot be written (unwritable folder, full disk). The CLI
turns each into one line on stderr and a non-zero exit; none of them ever carries the token.
"""

from __future__ import annotations

from formats.errors import ArchiverError, UsageError

__all__ = ["LoginFailed", "StorageError", "UsageError"]


class LoginFailed(ArchiverError):
    """The server rejected the login. The message quotes the server, never the token."""


class StorageError(ArchiverError):
    """Writing the recording failed. What was written before stays on disk."""
