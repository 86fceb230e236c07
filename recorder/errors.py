"""Errors of the recorder package, split by blame (as h11 does).

`UsageError`: the caller asked for something impossible (a channel name that is not a channel, a
token without a nick). `LoginFailed`: the server refused our credentials; retrying would not help.
`StorageError`: the recording cannot be written (unwritable folder, full disk). The CLI turns each
into one line on stderr and a non-zero exit; none of them ever carries the token.
"""

from __future__ import annotations


class RecorderError(Exception):
    """Root of every error this package raises on purpose."""


class UsageError(RecorderError):
    """A bad setting: the recorder refuses to start."""


class LoginFailed(RecorderError):
    """The server rejected the login. The message quotes the server, never the token."""


class StorageError(RecorderError):
    """Writing the recording failed. What was written before stays on disk."""
