"""One WebSocket connection: a thread that reads frames, records lines and drives a `Session`.

Everything about one connection happens on its own thread: receiving, recording, answering PINGs,
joining, the watchdog. The socket has a short timeout (at most `POLL` seconds, less when a session
timer is due) so the thread notices timers and a stop request without another thread touching its
socket; websocket-client keeps a partly received frame across such timeouts.

Each line is written to the recording before the session sees it, so even the line that makes us
act (a PING, a RECONNECT) is on disk first. Sent lines are recorded after the send returned; the
writer redacts credentials.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import websocket

from recorder.rawwriter import RawWriter
from recorder.session import Action, Close, Fail, Ready, Reconnect, Send, Session, SessionConfig, Warn, Welcomed
from recorder.wire import peek, split_frame

POLL = 0.25


@dataclass(frozen=True)
class ConnEvent:
    """What a connection tells the supervisor. `kind` is one of the constants below."""

    kind: str
    conn: Connection | None  # None for the supervisor's own fsync timer
    detail: str = ""


CONNECT_FAILED = "connect_failed"
OPENED = "opened"
WELCOMED = "welcomed"
RECONNECT = "reconnect"
CLOSED = "closed"
LOGIN_FAILED = "login_failed"
STORAGE_FAILED = "storage_failed"
INFO = "info"
WARN = "warn"


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
    text = str(e) or type(e).__name__
    return text.splitlines()[0] if text else type(e).__name__


class Connection(threading.Thread):
    """A connection attempt and, if it opens, its whole life."""

    def __init__(
        self, *, url: str, dialect: str, session_config: SessionConfig, writer: RawWriter,
        report: Callable[[ConnEvent], None], next_index: Callable[[], int],
        counts: dict[tuple[str, str], int], count_sent: Callable[[str], None],
        on_line: Callable[[float], None], connect_timeout: float = 10.0, overlap_max: float = 120.0,
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
        self.open_reported = False  # counted as open by the supervisor (so CLOSED uncounts it)
        self.opened_at: float | None = None  # monotonic
        self._stop_requested = threading.Event()
        self._retire_at: float | None = None
        self._ws: websocket.WebSocket | None = None

    def request_stop(self) -> None:
        """Ask the thread to close the connection (it notices within POLL seconds)."""
        self._stop_requested.set()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # a thread must not die with a traceback on stderr
            self.report(ConnEvent(CLOSED, self, f"internal error: {e!r}"))

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
            self.report(ConnEvent(CONNECT_FAILED, self, describe_error(e)))
            return
        self._ws = ws
        reason = "shutdown"
        try:
            self.index = self.next_index()
            self.opened_at = time.monotonic()
            try:
                self.writer.write_open(self.index, self.url, _now_us(), self.dialect)
            except (OSError, ValueError) as e:
                self.report(ConnEvent(STORAGE_FAILED, self, str(e)))
                return
            self.open_reported = True
            self.report(ConnEvent(OPENED, self))
            reason = self._loop(ws)
        finally:
            try:
                ws.close(timeout=1.0)
            except Exception:
                pass  # the peer is gone; nothing more to say to it
            finally:
                # close() returns early, leaving the socket open, once a close frame has been
                # received; shutdown() always releases it.
                ws.shutdown()  # type: ignore[no-untyped-call]
            if self.index is not None:
                # a failure here was already reported by whoever hit it first
                with contextlib.suppress(OSError, ValueError):
                    self.writer.write_close(self.index, reason, _now_us())
            self.report(ConnEvent(CLOSED, self, reason))

    def _loop(self, ws: websocket.WebSocket) -> str:
        """Read until the connection ends; return why it ended."""
        assert self.index is not None
        session = Session(self.session_config, time.monotonic())
        stop = self._handle(ws, session, session.start())
        if stop is not None:
            return stop
        writer, index, counts = self.writer, self.index, self.counts
        sock_timeout = -1.0
        while True:
            now = time.monotonic()
            if self._stop_requested.is_set():
                return "shutdown"
            if self._retire_at is not None and now >= self._retire_at:
                return f"closed by us {self.overlap_max:g} s after RECONNECT"
            wait = min(POLL, max(0.001, session.next_deadline(now) - now))
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
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return _close_reason(data)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            for line in split_frame(text):
                try:
                    writer.write_recv(index, line, at)
                except (OSError, ValueError) as e:
                    self.report(ConnEvent(STORAGE_FAILED, self, str(e)))
                    return f"cannot write the recording: {e}"
                command, channel = peek(line)
                key = (channel, command)
                counts[key] = counts.get(key, 0) + 1
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
                    self.writer.write_send(self.index, action.line, _now_us())
                except (OSError, ValueError) as e:
                    self.report(ConnEvent(STORAGE_FAILED, self, str(e)))
                    return f"cannot write the recording: {e}"
                self.count_sent(action.line.partition(" ")[0])
            elif isinstance(action, Welcomed):
                self.welcomed = True
                self.report(ConnEvent(WELCOMED, self, action.nick))
            elif isinstance(action, Reconnect):
                if self._retire_at is None:
                    self._retire_at = time.monotonic() + self.overlap_max
                    self.report(ConnEvent(RECONNECT, self))
            elif isinstance(action, Close):
                return action.reason
            elif isinstance(action, Fail):
                self.report(ConnEvent(LOGIN_FAILED, self, action.reason))
                return action.reason
            elif isinstance(action, Warn):
                self.report(ConnEvent(WARN, self, action.message))
            elif isinstance(action, Ready):
                # (Joined is not reported: with many channels and weeks of reconnects, one line per
                # channel and connection is plenty)
                self.report(ConnEvent(INFO, self, f"#{action.channel} joined and ready"))
        return None


def _close_reason(data: object) -> str:
    """'server closed (code N: reason)' from a close frame's payload."""
    payload = data if isinstance(data, bytes) else b""
    if len(payload) >= 2:
        code = int.from_bytes(payload[:2], "big")
        text = payload[2:].decode("utf-8", "replace")
        return f"server closed (code {code}{': ' + text if text else ''})"
    return "server closed"
