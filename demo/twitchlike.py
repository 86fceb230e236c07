"""A scripted Twitch-like chat server over WebSocket, on loopback, for `make run` and the recorder's tests.

Small on purpose: an RFC 6455 server side (handshake, masked client frames in, unmasked text
frames out, close frames) and Twitch's chat behaviour as described in SERVERS.md: CAP ACK, the
welcome numerics, JOIN echo + NAMES + ROOMSTATE, PONG for a client's PING, a login check when a
token is expected. Each accepted connection runs a `script(conn)` in its own thread, which pushes
lines, PINGs, RECONNECT, closes or drops. Every line the server sends is logged in `conn.sent` in
send order (under the send lock), so tests can compare it with the recording exactly.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TWITCH_CAPS = "twitch.tv/tags twitch.tv/commands twitch.tv/membership"


class ServerConn:
    """The server side of one client connection."""

    def __init__(self, server: TwitchLikeServer, sock: socket.socket, index: int) -> None:
        self.server = server
        self.sock = sock
        self.index = index
        self.sent: list[str] = []
        self.received: list[str] = []
        self.nick: str | None = None
        self.password: str | None = None
        self.joined: list[str] = []
        self.closed = False
        self.answer_pings = True
        # called when the client's close frame arrives, before we answer it (a server with a backlog)
        self.on_client_close: Callable[[ServerConn], None] | None = None
        self.client_closed = False  # the client's close frame arrived
        self.ignore_joins: set[str] = set()  # channels ("#name") whose JOIN gets no answer at all
        self._buf = b""
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()

    # -- waiting -----------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate() or self.closed, timeout) and predicate()

    def wait_joined(self, channels: Iterable[str], timeout: float = 15.0) -> bool:
        wanted = [f"#{c}" for c in channels]
        return self.wait_for(lambda: all(c in self.joined for c in wanted), timeout)

    def wait_received(self, line: str, timeout: float = 15.0) -> bool:
        return self.wait_for(lambda: line in self.received, timeout)

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- sending -----------------------------------------------------------------------------------

    def send_frame(self, lines: list[str], crlf: bool = True) -> None:
        """Send `lines` in one text frame (CRLF-separated), logging them as sent."""
        text = "\r\n".join(lines) + ("\r\n" if crlf else "")
        with self._send_lock:
            if self.closed:
                return
            try:
                self.sock.sendall(_frame(0x1, text.encode("utf-8")))
            except OSError:
                self._mark_closed()
                return
            self.sent.extend(lines)
        self._notify()  # scripts may be waiting for "N lines sent"

    def send_awkwardly(self, line: str, pause: float = 0.6) -> None:
        """One line as a fragmented message (text frame + continuation), its first frame itself cut
        in two with a pause longer than the recorder's socket timeout in the middle: the recorder
        must resume the half-read frame, not lose or garble it."""
        data = (line + "\r\n").encode("utf-8")
        half = len(data) // 2
        first = _frame(0x1, data[:half], fin=False)
        second = _frame(0x0, data[half:])
        with self._send_lock:
            if self.closed:
                return
            try:
                self.sock.sendall(first[:5])
                time.sleep(pause)
                self.sock.sendall(first[5:] + second)
            except OSError:
                self._mark_closed()
                return
            self.sent.append(line)

    def send(self, *lines: str) -> None:
        for line in lines:
            self.send_frame([line])

    def close(self, code: int = 1000, reason: str = "") -> None:
        """A clean WebSocket close: close frame, then the socket once the client answered (or not)."""
        with self._send_lock:
            if self.closed:
                return
            with contextlib.suppress(OSError):
                self.sock.sendall(_frame(0x8, struct.pack("!H", code) + reason.encode()))
        self.wait_for(lambda: False, timeout=1.0)  # give the client a moment to answer the close
        self.drop()

    def drop(self) -> None:
        """An abrupt end: TCP FIN without a WebSocket close frame."""
        with self._send_lock:
            self._mark_closed()

    def _mark_closed(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
        self._notify()

    # -- reading -----------------------------------------------------------------------------------

    def _read(self, n: int) -> bytes | None:
        while len(self._buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return None
            if not chunk:
                return None
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _handshake(self) -> bool:
        while b"\r\n\r\n" not in self._buf:
            try:
                chunk = self.sock.recv(4096)
            except OSError:
                return False
            if not chunk:
                return False
            self._buf += chunk
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        key = ""
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        return True

    def _read_frame(self) -> tuple[int, bytes] | None:
        head = self._read(2)
        if head is None:
            return None
        opcode = head[0] & 0x0F
        length = head[1] & 0x7F
        if length == 126:
            ext = self._read(2)
            if ext is None:
                return None
            length = struct.unpack("!H", ext)[0]
        elif length == 127:
            ext = self._read(8)
            if ext is None:
                return None
            length = struct.unpack("!Q", ext)[0]
        mask = self._read(4) if head[1] & 0x80 else b"\0\0\0\0"
        payload = self._read(length)
        if mask is None or payload is None:
            return None
        if length:
            key = (mask * (length // 4 + 1))[:length]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
        return opcode, payload

    def serve(self) -> None:
        try:
            if self.server.tls is not None:
                try:
                    self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
                except (OSError, ssl.SSLError):
                    return  # the client refused our certificate: that is the point of the TLS test
            if not self._handshake():
                return
            while True:
                frame = self._read_frame()
                if frame is None:
                    return
                opcode, payload = frame
                if opcode == 0x8:  # close: answer it, then hang up
                    with self._cond:
                        self.client_closed = True
                        self._cond.notify_all()
                    if self.on_client_close is not None:
                        self.on_client_close(self)
                    with self._send_lock:
                        if not self.closed:
                            with contextlib.suppress(OSError):
                                self.sock.sendall(_frame(0x8, payload[:2]))
                    return
                if opcode == 0x9:
                    with self._send_lock:
                        if not self.closed:
                            self.sock.sendall(_frame(0xA, payload))
                    continue
                if opcode not in (0x1, 0x2):
                    continue
                for line in payload.decode("utf-8").split("\r\n"):
                    if line:
                        self._on_line(line)
        except OSError:
            return
        finally:
            with self._send_lock:
                self._mark_closed()

    def _on_line(self, line: str) -> None:
        with self._cond:
            self.received.append(line)
            self._cond.notify_all()
        words = line.split(" ")
        command = words[0].upper()
        arg = words[1] if len(words) > 1 else ""
        if command == "CAP" and arg == "REQ":
            self.send(f":tmi.twitch.tv CAP * ACK :{line.partition(':')[2]}")
        elif command == "PASS":
            self.password = arg
        elif command == "NICK":
            self.nick = arg
            expected = self.server.token
            if expected is not None and self.password != f"oauth:{expected}" and not arg.startswith("justinfan"):
                self.send(":tmi.twitch.tv NOTICE * :Login authentication failed")
                self.drop()
                return
            self.send(*welcome(arg))
        elif command == "JOIN":
            for channel in arg.split(","):
                if channel in self.ignore_joins:
                    continue
                self.send(*join_reply(self.nick or "justinfan0", channel))
                with self._cond:
                    self.joined.append(channel)
                    self._cond.notify_all()
        elif command == "PING" and self.answer_pings:
            self.send(f":tmi.twitch.tv PONG tmi.twitch.tv :{line.partition(':')[2]}")


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


def welcome(nick: str) -> list[str]:
    return [
        f":tmi.twitch.tv 001 {nick} :Welcome, GLHF!",
        f":tmi.twitch.tv 002 {nick} :Your host is tmi.twitch.tv",
        f":tmi.twitch.tv 003 {nick} :This server is rather new",
        f":tmi.twitch.tv 004 {nick} :-",
        f":tmi.twitch.tv 375 {nick} :-",
        f":tmi.twitch.tv 372 {nick} :You are in a maze of twisty passages, all alike.",
        f":tmi.twitch.tv 376 {nick} :>",
    ]


def join_reply(nick: str, channel: str) -> list[str]:
    return [
        f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN {channel}",
        f":{nick}.tmi.twitch.tv 353 {nick} = {channel} :{nick}",
        f":{nick}.tmi.twitch.tv 366 {nick} {channel} :End of /NAMES list",
        f"@emote-only=0;followers-only=-1;r9k=0;room-id=12345;slow=0;subs-only=0 :tmi.twitch.tv ROOMSTATE {channel}",
    ]


# -- realistic chat lines ------------------------------------------------------------------------

_TEXTS = [
    "hello chat",
    "PogChamp 🎉 nice",
    "line\u2028separator and \x85 next-line stay in one line",
    "\x01ACTION waves\x01",
    "spaces   inside  kept",
    "ünïcödé ✓ 日本語",
    "tab\there",
    "semi;colon=and\\backslash",
]


# Twitch's clock is near ours: a server time a day from the receive time is not archived (replay).
_BASE_MS = int(time.time()) * 1000


def chat_line(i: int, channel: str, base_ms: int = _BASE_MS) -> str:
    """The i-th line of a varied, realistic Twitch chat stream in `channel` (server times from
    when the process started, so near the receive times, as Twitch's are)."""
    user = f"user{i % 17}"
    ts = base_ms + i * 37
    kind = i % 11
    if kind == 7:
        return (
            f"@badge-info=;badges=;login={user};msg-id=sub;msg-param-cumulative-months=3;room-id=12345;"
            f"system-msg={user}\\ssubscribed\\sat\\sTier\\s1.;tmi-sent-ts={ts};id=un-{i:06d} "
            f":tmi.twitch.tv USERNOTICE #{channel} :great stream {i}"
        )
    if kind == 8:
        return (
            f"@ban-duration=10;room-id=12345;target-user-id=99{i};tmi-sent-ts={ts} "
            f":tmi.twitch.tv CLEARCHAT #{channel} :{user}"
        )
    if kind == 9:
        return (
            f"@login={user};room-id=;target-msg-id=m-{i - 1:06d};tmi-sent-ts={ts} "
            f":tmi.twitch.tv CLEARMSG #{channel} :oops"
        )
    if kind == 10:
        return f":{user}!{user}@{user}.tmi.twitch.tv {'JOIN' if i % 2 else 'PART'} #{channel}"
    text = _TEXTS[i % len(_TEXTS)]
    return (
        f"@badge-info=;badges=subscriber/12;color=#1E90FF;display-name={user.capitalize()};emotes=;"
        f"first-msg=0;flags=;id=m-{i:06d};mod=0;returning-chatter=0;room-id=12345;subscriber=1;"
        f"tmi-sent-ts={ts};turbo=0;user-id={1000 + i % 17};user-type= :{user}!{user}@{user}.tmi.twitch.tv "
        f"PRIVMSG #{channel} :{text} {i}"
    )


Script = Callable[[ServerConn], None]


class TwitchLikeServer:
    """Listens on 127.0.0.1 (a free port); runs `script` for each accepted connection."""

    def __init__(
        self,
        script: Script | None = None,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.script = script
        self.token = token
        self.tls = tls
        self.conns: list[ServerConn] = []
        self.script_errors: list[Exception] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._cond = threading.Condition()
        self._accepter = threading.Thread(target=self._accept_loop, name="twitchlike-accept", daemon=True)
        self._accepter.start()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, _addr = self._listener.accept()
            except OSError:
                return
            if self._stopping:
                sock.close()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._cond:
                conn = ServerConn(self, sock, len(self.conns))
                self.conns.append(conn)
                self._cond.notify_all()
            reader = threading.Thread(target=conn.serve, name=f"twitchlike-{conn.index}", daemon=True)
            reader.start()
            self._threads.append(reader)
            if self.script is not None:
                runner = threading.Thread(target=self._run_script, args=(conn,), daemon=True)
                runner.start()
                self._threads.append(runner)

    def _run_script(self, conn: ServerConn) -> None:
        assert self.script is not None
        try:
            self.script(conn)
        except Exception as e:  # reported through the test, not as a thread traceback
            self.script_errors.append(e)

    def wait_conns(self, n: int, timeout: float = 20.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.conns) >= n, timeout)

    def __enter__(self) -> TwitchLikeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stopping = True
        try:
            # wake accept() by connecting to ourselves, then close the listener
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
        except OSError:
            pass
        self._accepter.join(5)
        self._listener.close()
        for conn in list(self.conns):
            conn.drop()
        for t in self._threads:
            t.join(5)


def free_port() -> int:
    """A TCP port on loopback that nobody listened on a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
