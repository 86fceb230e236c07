"""One WebSocket connection: a thread that reads frames, records lines and drives a `Session`.

Everything about one connection happens on its own thread: receiving, recording, answering PINGs,
joining, the watchdog. The socket has a short timeout (at most `POLL` seconds, less when a session
timer is due) so the thread notices timers and a stop request without another thread touching its
socket; websocket-client keeps a partly received frame across such timeouts.

Each line is written to the recording before the session sees it, so even the line that makes us
act (a PING, a RECONNECT) is on disk first. Sent lines are recorded after the send returned; the
writer redacts credentials.

Ticks (raw format version 2): while the connection is quiet, a `tick` event is written at least
once per `TICK_INTERVAL`, from this same thread, so a connection's ticks and lines are in `at`
order and a tick at `at` means every line received before `at` is already recorded.

Closing is ours to do, not websocket-client's: its `close()` reads and throws away every frame
until the peer's close frame, and a server that had a backlog for us sends exactly then. So we send
our close frame and keep recording every data frame until the peer's close frame or `CLOSE_WAIT`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence

import websocket

from recorder import events
from recorder.events import ConnEvent
from recorder.rawwriter import RawWriter
from recorder.session import (
    Action,
    Close,
    Fail,
    HandedOver,
    Ready,
    Reconnect,
    Send,
    Session,
    SessionConfig,
    Stalled,
    Warn,
    Welcomed,
)
from recorder.wire import peek, split_frame

POLL = 0.25
TICK_INTERVAL = 1.0
CLOSE_WAIT = 1.0
# Lines that are chat (not protocol chatter): receiving one on a fully joined connection proves it works.
_CHAT = frozenset(("PRIVMSG", "USERNOTICE", "CLEARCHAT", "CLEARMSG", "NOTICE", "JOIN", "PART"))
_DATA_OPCODES = (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_CONT)


def _now_us() -> int:
    return time.time_ns() // 1000


def describe_error(e: BaseException) -> str:
    """A one-line reason for a connection error, without a traceback."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({e.verify_message})"
    if isinstance(e, websocket.WebSocketBadStatusException):
        return f"the server refused the WebSocket upgrade (HTTP {e.status_code})"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, TimeoutError | websocket.WebSocketTimeoutException):
        return "timed out"
    if isinstance(e, socket.gaierror):
        return f"the host name does not resolve ({e.strerror})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror  # without Python's "[Errno N]"
    text = str(e) or type(e).__name__
    return text.splitlines()[0] if text else type(e).__name__


class Connection(threading.Thread):
    """A connection attempt and, if it opens, its whole life."""

    def __init__(
        self,
        *,
        url: str,
        dialect: str,
        session_config: SessionConfig,
        writer: RawWriter,
        report: Callable[[ConnEvent], None],
        next_index: Callable[[], int],
        counts: dict[tuple[str, str], int],
        count_sent: Callable[[str], None],
        on_line: Callable[[float], None],
        connect_timeout: float = 10.0,
        overlap_max: float = 120.0,
        sslopt: dict[str, object] | None = None,
    ) -> None:
        super().__init__(name="recorder-connection", daemon=True)
        self.url = url
        self.dialect = dialect
        self.session_config = session_config
        self.writer = writer
        self.report = report
        self.next_index = next_index
        self.counts = counts
        self.count_sent = count_sent
        self.on_line = on_line
        self.connect_timeout = connect_timeout
        self.overlap_max = overlap_max
        self.sslopt = sslopt
        self.index: int | None = None
        self.welcomed = False
        self.stalled = False  # reported Stalled: retired once a newer connection has joined
        self.open_reported = False  # counted as open by the supervisor (so CLOSED uncounts it)
        self.opened_at: float | None = None  # monotonic
        self._stop_requested = threading.Event()
        self._successor_joined = threading.Event()
        self._retire_at: float | None = None
        self._all_joined = False
        self._welcomed_at: float | None = None
        self._chatting = False
        self._last_at = 0  # the `at` of the last event written for this connection (ticks never go below)

    def request_stop(self) -> None:
        """Ask the thread to close the connection (it notices within POLL seconds)."""
        self._stop_requested.set()

    def successor_joined(self) -> None:
        """A newer connection has joined every channel: hand over, then close (thread-safe)."""
        self._successor_joined.set()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # a thread must not die with a traceback on stderr
            self.report(events.Closed(self, f"internal error: {e!r}"))

    def _run(self) -> None:
        # Verification is websocket-client's default too; spelled out so no option can turn it off.
        sslopt = {**(self.sslopt or {}), "cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
        # UTF-8 is decoded here (with replacement), not validated byte by byte in Python by the library.
        ws = websocket.WebSocket(skip_utf8_validation=True, sslopt=sslopt)
        try:
            # No subprotocol: InspIRCd does not speak text.ircv3.net, Twitch does not need it.
            ws.connect(self.url, timeout=self.connect_timeout)  # type: ignore[no-untyped-call]
        except Exception as e:
            ws.shutdown()  # type: ignore[no-untyped-call]
            self.report(events.ConnectFailed(self, describe_error(e)))
            return
        reason = "shutdown"
        try:
            self.index = self.next_index()
            self.opened_at = time.monotonic()
            try:
                self._last_at = _now_us()
                self.writer.write_open(self.index, self.url, self._last_at, self.dialect)
            except (OSError, ValueError) as e:
                self.report(events.StorageFailed(self, str(e)))
                return
            self.open_reported = True
            self.report(events.Opened(self))
            reason = self._loop(ws)
        finally:
            try:
                if ws.connected:  # False once the peer's close frame was read (and answered)
                    self._close_and_drain(ws)
            except Exception:
                pass  # the peer is gone (or broke the protocol); nothing more to say to it or read from it
            finally:
                ws.shutdown()  # type: ignore[no-untyped-call]
            if self.index is not None:
                # a failure here was already reported by whoever hit it first
                with contextlib.suppress(OSError, ValueError):
                    self.writer.write_close(self.index, reason, max(_now_us(), self._last_at))
            self.report(events.Closed(self, reason))

    def _record(self, lines: list[str], at: int) -> None:
        assert self.index is not None
        writer, index, counts = self.writer, self.index, self.counts
        for line in lines:
            writer.write_recv(index, line, at)
            command, channel = peek(line)
            key = (channel, command)
            counts[key] = counts.get(key, 0) + 1

    def _close_and_drain(self, ws: websocket.WebSocket) -> None:
        """Send our close frame, then record every data frame until the peer's close frame or
        CLOSE_WAIT seconds (what websocket-client's `close()` would read and throw away)."""
        ws.send_close()
        deadline = time.monotonic() + CLOSE_WAIT
        while (left := deadline - time.monotonic()) > 0:
            ws.settimeout(left)
            try:
                frame = ws.recv_frame()  # type: ignore[no-untyped-call]
            except websocket.WebSocketTimeoutException:
                return
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                return
            if frame.opcode not in _DATA_OPCODES:
                continue
            ws.cont_frame.validate(frame)
            ws.cont_frame.add(frame)
            if not ws.cont_frame.is_fire(frame):
                continue
            _opcode, whole = ws.cont_frame.extract(frame)
            data = whole.data
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            if self.index is not None:
                at = max(_now_us(), self._last_at)
                self._last_at = at
                try:
                    self._record(split_frame(text), at)
                except (OSError, ValueError) as e:
                    self.report(events.StorageFailed(self, str(e)))
                    return
                self.on_line(time.monotonic())

    def _loop(self, ws: websocket.WebSocket) -> str:
        """Read until the connection ends; return why it ended."""
        assert self.index is not None
        session = Session(self.session_config, time.monotonic())
        stop = self._handle(ws, session, session.start())
        if stop is not None:
            return stop
        writer, index, counts = self.writer, self.index, self.counts
        channels = self.session_config.channels
        sock_timeout = -1.0
        last_write = time.monotonic()  # of a recv or a tick on this connection
        while True:
            now = time.monotonic()
            if self._stop_requested.is_set():
                return "shutdown"
            if self._retire_at is not None and now >= self._retire_at:
                return f"closed by us {self.overlap_max:g} s after RECONNECT"
            if (
                not self._all_joined
                and self._welcomed_at is not None
                and now - self._welcomed_at >= self.session_config.silence_limit
            ):
                # A channel that never becomes ready (refused, banned) must not keep an older,
                # stalled connection open forever: after this long we count as joined anyway.
                self._all_joined = True
                self.report(events.AllJoined(self))
            if self._successor_joined.is_set() and not session.handing_over:
                stop = self._handle(ws, session, session.handover(now))
                if stop is not None:
                    return stop
            if now - last_write >= TICK_INTERVAL:
                try:
                    self._last_at = max(_now_us(), self._last_at)
                    writer.write_tick(index, self._last_at)
                except (OSError, ValueError) as e:
                    self.report(events.StorageFailed(self, str(e)))
                    return f"cannot write the recording: {e}"
                last_write = now
            due = min(session.next_deadline(now), last_write + TICK_INTERVAL)
            wait = min(POLL, max(0.001, due - now))
            if wait != sock_timeout:
                ws.settimeout(wait)
                sock_timeout = wait
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                stop = self._handle(ws, session, session.tick(time.monotonic()))
                if stop is not None:
                    return stop
                continue
            except (websocket.WebSocketException, OSError) as e:
                return f"connection lost: {describe_error(e)}"
            at = _now_us()
            now = time.monotonic()
            last_write = now
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return _close_reason(data)
            at = max(at, self._last_at)  # a wall clock stepping back never puts a line before a tick
            self._last_at = at
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            for line in split_frame(text):
                try:
                    writer.write_recv(index, line, at)
                except (OSError, ValueError) as e:
                    self.report(events.StorageFailed(self, str(e)))
                    return f"cannot write the recording: {e}"
                command, channel = peek(line)
                key = (channel, command)
                counts[key] = counts.get(key, 0) + 1
                if not self._chatting and self._all_joined and command in _CHAT and channel in channels:
                    self._chatting = True
                    self.report(events.Chatting(self))
                actions = session.receive_peeked(line, command, channel, now)
                if actions:
                    stop = self._handle(ws, session, actions)
                    if stop is not None:
                        return stop
            self.on_line(now)
            if now >= session.next_deadline(now):
                stop = self._handle(ws, session, session.tick(now))
                if stop is not None:
                    return stop

    def _handle(self, ws: websocket.WebSocket, session: Session, actions: Sequence[Action]) -> str | None:
        """Carry out a session's actions; a reason string means: end this connection."""
        assert self.index is not None
        for action in actions:
            if isinstance(action, Send):
                try:
                    ws.send(action.line)
                except (websocket.WebSocketException, OSError) as e:
                    return f"connection lost while sending: {describe_error(e)}"
                try:
                    at = max(_now_us(), self._last_at)
                    self._last_at = at
                    self.writer.write_send(self.index, action.line, at)
                except (OSError, ValueError) as e:
                    self.report(events.StorageFailed(self, str(e)))
                    return f"cannot write the recording: {e}"
                self.count_sent(action.line.partition(" ")[0])
            elif isinstance(action, Welcomed):
                self.welcomed = True
                self._welcomed_at = time.monotonic()
                self.report(events.LoggedIn(self, action.nick))
            elif isinstance(action, Reconnect):
                if self._retire_at is None:
                    self._retire_at = time.monotonic() + self.overlap_max
                    self.report(events.ReconnectAsked(self))
            elif isinstance(action, Stalled):
                self.stalled = True
                self.report(events.Stalled(self, action.reason))
            elif isinstance(action, HandedOver):
                return "closed by us: a newer connection records everything from here"
            elif isinstance(action, Close):
                return action.reason
            elif isinstance(action, Fail):
                self.report(events.LoginRefused(self, action.reason))
                return action.reason
            elif isinstance(action, Warn):
                self.report(events.Warned(self, action.message))
            elif isinstance(action, Ready):
                # (Joined is not reported: with many channels and weeks of reconnects, one line per
                # channel and connection is plenty)
                self.report(events.Note(self, f"#{action.channel} joined and ready"))
                if not self._all_joined and session.all_ready:
                    self._all_joined = True
                    self.report(events.AllJoined(self))
        return None


def _close_reason(data: object) -> str:
    """'server closed (code N: reason)' from a close frame's payload."""
    payload = data if isinstance(data, bytes) else b""
    if len(payload) >= 2:
        code = int.from_bytes(payload[:2], "big")
        text = payload[2:].decode("utf-8", "replace")
        return f"server closed (code {code}{': ' + text if text else ''})"
    return "server closed"
