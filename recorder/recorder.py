"""The supervisor: one process, one raw recording, a succession of overlapping connections.

The main thread never touches a socket. It starts `Connection` threads and reacts to the frozen
events they report (recorder/events.py): a server's RECONNECT starts the next connection at once
while the old one reads on until the server closes it (the overlap means no line falls between the
two; the replay removes the duplicates). A stalled connection (no answer to the watchdog PING) is
treated the same way: the next connection starts at once and the stalled one keeps reading, so if
the stall clears its backlog is recorded; once the new connection has joined every channel, the
old one is handed over (a last PING; its PONG closes it) or closed after `silence_limit` seconds
of silence. A connection that ends on its own is replaced after a backoff delay; the backoff resets
when a connection has joined every channel and received chat. A refused login or a failed write
stops everything, because retrying cannot fix either. A timer thread fsyncs the recording at least
once per `fsync_interval`, so quiet periods are durable too.

Shutdown (`stop()`, wired to SIGTERM and Ctrl-C by the CLI): stop reading, close every connection
(each records its `close` event), then fsync and close the recording.
"""

from __future__ import annotations

import os
import queue
import random
import socket
import string
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from formats import __version__
from formats.errors import InputError
from formats.rawcodec import DIALECT_TWITCH, check_recorder_name
from formats.urls import UrlError, parse_url
from recorder import events
from recorder.connection import Connection
from recorder.errors import LoginFailed, StorageError, UsageError
from recorder.events import ConnEvent
from recorder.limits import Backoff
from recorder.metrics import RecorderCollector, RecorderStats
from recorder.rawwriter import RawWriter
from recorder.session import SessionConfig, anonymous_nick

DEFAULT_SERVER = "wss://irc-ws.chat.twitch.tv:443"
SOFTWARE = f"chat-archiver {__version__}"  # the raw header's `software` field
Log = Callable[[str, str], None]  # (level: "info" | "warn", message)


@dataclass(frozen=True)
class RecorderConfig:
    """Everything a recorder run needs. The token is kept out of repr()."""

    channels: tuple[str, ...]
    out_dir: str
    server: str = DEFAULT_SERVER
    dialect: str = DIALECT_TWITCH
    name: str = ""
    nick: str | None = None
    token: str | None = field(default=None, repr=False)
    gzip_finished: bool = False
    fsync_interval: float = 1.0
    connect_timeout: float = 10.0
    ping_after: float = 3.0
    ping_timeout: float = 3.0
    silence_limit: float = 30.0
    register_timeout: float = 30.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    overlap_max: float = 120.0
    join_limit: int = 20
    join_window: float = 10.0
    rejoin_after: float = 30.0
    sslopt: dict[str, object] | None = None


def default_name() -> str:
    """The host name, made into a valid recorder name (letters, digits, '.', '_', '-')."""
    raw = socket.gethostname()
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in raw)
    cleaned = cleaned.lstrip(".")[:100]
    return cleaned or "recorder"


def new_slug() -> str:
    """5 random letters or digits: two processes with the same name still write apart."""
    r = random.SystemRandom()
    return "".join(r.choice(string.ascii_letters + string.digits) for _ in range(5))


def check_writable(folder: str) -> None:
    """Refuse to start when the recording folder cannot be created or written (StorageError)."""
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        try:
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise StorageError(f"cannot write the recording in {folder}: {e.strerror or e}") from None


def check_server_url(url: str) -> str:
    """`url` if it is a plain ws:// or wss:// endpoint; UsageError otherwise. The URL goes into every
    raw file's `open` event, the log and (for `archive`) a child's command line, so one holding a
    user name, password or query (where a token would hide) is refused, and the error never
    repeats the URL."""
    if "@" in url.partition("//")[2].partition("/")[0] or "?" in url or "#" in url:
        raise UsageError(
            "--server must not hold a user name, password, token or query: it is written into every"
            " raw recording; give a token with --token-file"
        )
    try:
        parse_url(url, ("ws", "wss"))
    except UrlError as e:
        raise UsageError(f"--server must be a ws:// or wss:// URL (this one {e})") from None
    return url


def check_login(nick: str | None, token: str | None) -> None:
    """UsageError if the nick or the token holds a space or a control character (a line break
    would end our command and start another: `PASS x\r\nPRIVMSG ...`). Checked before anything is
    sent; the error never repeats the token."""
    if token is not None and any(c <= " " or c == "\x7f" for c in token):
        raise UsageError("the token holds a space, a line break or another control character: refused")
    if nick is not None and (not nick or any(c <= " " or c == "\x7f" for c in nick) or nick.startswith(":")):
        raise UsageError(f"--nick {nick!a} holds a space, a control character or a leading ':': refused")


class Recorder:
    """Records until `stop()`; `run()` raises LoginFailed or StorageError when it cannot go on."""

    def __init__(self, config: RecorderConfig, log: Log | None = None, slug: str | None = None) -> None:
        self.config = config
        self.log: Log = log or (lambda level, message: None)
        try:
            self.name = check_recorder_name(config.name or default_name())
        except InputError as e:
            raise UsageError(e.message) from None
        if config.token is not None and config.nick is None:
            raise UsageError("a token needs --nick (the login the token belongs to)")
        check_server_url(config.server)
        check_login(config.nick, config.token)
        self.slug = slug or new_slug()
        self.nick = config.nick or anonymous_nick()
        self.stats = RecorderStats()
        self.writer = RawWriter(
            config.out_dir,
            self.name,
            self.slug,
            socket.gethostname(),
            SOFTWARE,
            fsync_interval=config.fsync_interval,
            gzip_finished=config.gzip_finished,
        )
        self.collector = RecorderCollector(
            self.stats,
            lambda: self.writer.bytes_written,
            lambda: (self.writer.fsync_count, self.writer.fsync_seconds_total),
        )
        self._events: queue.Queue[ConnEvent] = queue.Queue()
        self._stop = threading.Event()
        self._index_lock = threading.Lock()
        self._next_index = 0
        self._live: list[Connection] = []
        self._current: Connection | None = None
        self._backoff = Backoff(config.backoff_base, config.backoff_cap)
        self.connections_started = 0

    @property
    def session_config(self) -> SessionConfig:
        c = self.config
        return SessionConfig(
            dialect=c.dialect,
            channels=c.channels,
            nick=self.nick,
            token=c.token,
            ping_after=c.ping_after,
            ping_timeout=c.ping_timeout,
            silence_limit=c.silence_limit,
            register_timeout=c.register_timeout,
            join_limit=c.join_limit,
            join_window=c.join_window,
            rejoin_after=c.rejoin_after,
        )

    def stop(self) -> None:
        """Ask `run()` to shut down cleanly. Safe from a signal handler or another thread."""
        self._stop.set()

    def _take_index(self) -> int:
        with self._index_lock:
            index = self._next_index
            self._next_index += 1
            return index

    def _count_sent(self, command: str) -> None:
        with self.stats.lock:
            self.stats.sent[command] = self.stats.sent.get(command, 0) + 1

    def _on_line(self, now: float) -> None:
        self.stats.last_line_monotonic = now

    def _start_connection(self) -> None:
        c = self.config
        counts: dict[tuple[str, str], int] = {}
        self.stats.add_live(counts)
        conn = Connection(
            url=c.server,
            dialect=c.dialect,
            session_config=self.session_config,
            writer=self.writer,
            report=self._events.put,
            next_index=self._take_index,
            counts=counts,
            count_sent=self._count_sent,
            on_line=self._on_line,
            connect_timeout=c.connect_timeout,
            overlap_max=c.overlap_max,
            sslopt=c.sslopt,
        )
        self._live.append(conn)
        self._current = conn
        self.connections_started += 1
        conn.start()

    def _fsync_loop(self, failed: list[OSError]) -> None:
        """fsync at least once per interval (the writer also does it inline when lines flow)."""
        while not self._stop.wait(self.config.fsync_interval / 2):
            try:
                self.writer.sync()
            except OSError as e:
                failed.append(e)
                self._events.put(events.StorageFailed(None, str(e)))
                return

    def run(self) -> None:
        """Record until stopped. Raises StorageError or LoginFailed (after a clean shutdown)."""
        c = self.config
        check_writable(os.path.join(c.out_dir, self.name))
        self.log(
            "info",
            (
                f"recording {len(c.channels)} channel{'' if len(c.channels) == 1 else 's'} "
                f"from {c.server} ({c.dialect}) into "
                f"{os.path.join(c.out_dir, self.name)} as {self.name}.{self.slug}, nick {self.nick}"
            ),
        )
        fsync_failed: list[OSError] = []
        syncer = threading.Thread(target=self._fsync_loop, args=(fsync_failed,), name="recorder-fsync", daemon=True)
        syncer.start()
        reconnect_at: float | None = None
        error: Exception | None = None
        try:
            self._start_connection()
            while not self._stop.is_set():
                now = time.monotonic()
                if reconnect_at is not None and now >= reconnect_at:
                    reconnect_at = None
                    self._start_connection()
                    continue
                wait = 0.2 if reconnect_at is None else min(0.2, max(0.0, reconnect_at - now))
                try:
                    event = self._events.get(timeout=wait)
                except queue.Empty:
                    continue
                error = self._dispatch(event)
                if error is not None:
                    break
                if isinstance(event, events.Closed | events.ConnectFailed) and event.conn is self._current:
                    reconnect_at = self._schedule_reconnect(event)
        finally:
            self._stop.set()
            self._shutdown(syncer)
        if error is not None:
            raise error
        if fsync_failed:
            raise StorageError(f"cannot fsync the recording: {fsync_failed[0]}")

    def _forget(self, conn: Connection) -> None:
        if conn in self._live:
            self._live.remove(conn)
            self.stats.retire(conn.counts)
            if conn.open_reported:
                self.stats.connections_open -= 1

    def _dispatch(self, event: ConnEvent) -> Exception | None:
        """Log and count what a connection reported; an exception means: stop recording."""
        conn = event.conn
        label = f"connection {conn.index}" if conn is not None and conn.index is not None else "connection"
        match event:
            case events.Opened():
                self.stats.connections_opened += 1
                self.stats.connections_open += 1
                self.log("info", f"{label}: open")
            case events.LoggedIn(nick=nick):
                n = len(self.config.channels)
                self.log("info", f"{label}: logged in as {nick}, joining {n} channel{'' if n == 1 else 's'}")
            case events.AllJoined(conn=joined) if joined is self._current:
                for old in self._live:
                    if old is not joined and old.stalled:
                        old.successor_joined()
            case events.Chatting():
                self._backoff.reset()
            case events.Note(message=message):
                self.log("info", f"{label}: {message}")
            case events.Warned(message=message):
                self.log("warn", f"{label}: {message}")
            case events.ReconnectAsked(conn=asked) if asked is self._current:
                self.log("info", f"{label}: the server asked us to reconnect; opening a new connection now")
                self.stats.count_reconnect("reconnect")
                self._start_connection()
            case events.Stalled(conn=stalled, reason=reason):
                if stalled is self._current:
                    self.log("warn", f"{label}: {reason}; opening a new connection now, still reading this one")
                    self.stats.count_reconnect("stall")
                    self._start_connection()
                else:
                    self.log("info", f"{label}: {reason} (a newer connection already records)")
            case events.Closed(conn=closed, reason=reason):
                self._forget(closed)
                if closed is not self._current and closed.index is not None:
                    self.log("info", f"{label}: closed ({reason})")
            case events.ConnectFailed(conn=failed):
                self.stats.connect_failures += 1
                self._forget(failed)
            case events.LoginRefused(reason=reason):
                return LoginFailed(f"{reason} (nick {self.nick}); not retrying")
            case events.StorageFailed(reason=reason):
                return StorageError(
                    f"cannot write the recording in {os.path.join(self.config.out_dir, self.name)}: {reason}; "
                    f"everything written before is kept ({self.writer.bytes_written} bytes)"
                )
        return None

    def _schedule_reconnect(self, event: events.Closed | events.ConnectFailed) -> float:
        conn, backoff = event.conn, self._backoff
        delay = backoff.next_delay()
        if isinstance(event, events.ConnectFailed):
            self.log(
                "warn",
                (
                    f"cannot connect to {self.config.server}: {event.reason}; "
                    f"retrying in {delay:.1f} s (attempt {backoff.failures})"
                ),
            )
        else:
            self.log("warn", f"connection {conn.index}: closed ({event.reason}); reconnecting in {delay:.1f} s")
            self.stats.count_reconnect("drop")
        return time.monotonic() + delay

    def _shutdown(self, syncer: threading.Thread) -> None:
        for conn in list(self._live):
            conn.request_stop()
        deadline = time.monotonic() + self.config.connect_timeout + 3.0
        for conn in list(self._live):
            conn.join(max(0.0, deadline - time.monotonic()))
        try:
            self.writer.close()
        except OSError as e:
            self.log("warn", f"closing the recording failed: {e}; what was written before is kept")
        syncer.join(timeout=5.0)
        self.stats.connections_open = 0
