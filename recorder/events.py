"""What a connection thread tells the supervisor: frozen events, one class per fact.

Connection threads put these on the supervisor's queue; the supervisor matches on the class (as
the session's actions are matched), so a new kind of event is a new class, not a new string that
an if/elif chain may forget. `conn` is the reporting connection (None only for the supervisor's
own fsync timer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recorder.connection import Connection


@dataclass(frozen=True)
class ConnectFailed:
    """The connection attempt failed (refused, timed out, TLS, HTTP status)."""

    conn: Connection
    reason: str


@dataclass(frozen=True)
class Opened:
    """The WebSocket is open and its `open` event is recorded."""

    conn: Connection


@dataclass(frozen=True)
class LoggedIn:
    """The server welcomed us (001) under `nick`."""

    conn: Connection
    nick: str


@dataclass(frozen=True)
class AllJoined:
    """Every channel is joined and ready on this connection: from here it records them all. (Also
    sent `silence_limit` seconds after the welcome if some channel never became ready, so that an
    older, stalled connection is not kept open forever for a channel that refuses us.)"""

    conn: Connection


@dataclass(frozen=True)
class Chatting:
    """The connection has joined every channel and received chat: it works (the backoff resets)."""

    conn: Connection


@dataclass(frozen=True)
class ReconnectAsked:
    """The server announced it will close this connection (Twitch RECONNECT)."""

    conn: Connection


@dataclass(frozen=True)
class Stalled:
    """The server stopped answering; the connection keeps reading in case the stall clears."""

    conn: Connection
    reason: str


@dataclass(frozen=True)
class Closed:
    """The connection ended (its `close` event, if it was open, is recorded)."""

    conn: Connection
    reason: str


@dataclass(frozen=True)
class LoginRefused:
    """The server refused our credentials; retrying cannot help."""

    conn: Connection
    reason: str


@dataclass(frozen=True)
class StorageFailed:
    """The recording cannot be written."""

    conn: Connection | None
    reason: str


@dataclass(frozen=True)
class Note:
    """Something worth an info line in the log."""

    conn: Connection
    message: str


@dataclass(frozen=True)
class Warned:
    """Something worth a warning in the log."""

    conn: Connection
    message: str


ConnEvent = (
    ConnectFailed
    | Opened
    | LoggedIn
    | AllJoined
    | Chatting
    | ReconnectAsked
    | Stalled
    | Closed
    | LoginRefused
    | StorageFailed
    | Note
    | Warned
)
