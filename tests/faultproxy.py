"""A fault-injecting TCP proxy on loopback, between the recorder and a chat server, for tests.

Each accepted client connection becomes a `Pipe` with its own upstream connection (made at once,
in accept order, so pipe k is the server's connection k). Two threads pump the bytes. A test can:
- `stall()` a pipe (both directions stop; the bytes wait in the kernel buffers and the proxy, as
  on a network that has gone quiet) and `resume()` it, or stall it for a while on a timer;
- `cut("fin")` it (an orderly TCP close both ways) or `cut("rst")` it (a reset: SO_LINGER 0);
- fragment what the server sends into random 1-100 byte pieces, each its own `send`;
- read slowly from the server (small reads with pauses), so the server's buffers fill.

What the proxy knows is what the test asserts against: `received` holds every byte the server
sent this pipe, `delivered` every byte that was written into the recorder's socket (a piece is
counted once `sendall` returned). `lines(delivered=True)` parses those bytes as the server's
WebSocket frames and returns the lines of the complete messages: exactly what reached the
recorder. `dropped()` is what the server sent but the recorder never got.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time

from recorder.wire import split_frame

_CHUNK = 65536


class Pipe:
    """One proxied connection: the recorder's socket, the server's socket, and the faults."""

    def __init__(self, proxy: FaultProxy, index: int, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.index = index
        self.client = client
        self.upstream = upstream
        self.received = bytearray()  # from the server
        self.delivered = bytearray()  # into the recorder's socket
        self.closed = threading.Event()
        self.cut_how: str | None = None
        self._running = threading.Event()
        self._running.set()
        self._lock = threading.Lock()
        self._rand = random.Random(proxy.seed * 1000 + index)
        self._threads = [
            threading.Thread(target=self._down, name=f"proxy-{index}-down", daemon=True),
            threading.Thread(target=self._up, name=f"proxy-{index}-up", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- faults ------------------------------------------------------------------------------------

    def stall(self, seconds: float | None = None) -> None:
        """Stop moving bytes both ways (for `seconds`, or until `resume()`)."""
        self._running.clear()
        if seconds is not None:
            timer = threading.Timer(seconds, self.resume)
            timer.daemon = True
            timer.start()

    def resume(self) -> None:
        self._running.set()

    @property
    def stalled(self) -> bool:
        return not self._running.is_set()

    def cut(self, how: str = "fin") -> None:
        """End the connection: "fin" closes both sides in order, "rst" resets the recorder's side."""
        with self._lock:
            if self.closed.is_set():
                return
            self.cut_how = how
            self.closed.set()
            self._running.set()  # wake a stalled pump so it sees the end
            if how == "rst":
                with contextlib.suppress(OSError):
                    self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            for sock in (self.client, self.upstream):
                if how == "fin":
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    # -- what happened -----------------------------------------------------------------------------

    def lines(self, delivered: bool = True) -> list[str]:
        """The lines of every complete WebSocket message the server sent (or that reached the recorder)."""
        with self._lock:
            data = bytes(self.delivered if delivered else self.received)
        return ws_lines(data)

    def dropped(self) -> list[str]:
        """Lines the server sent on this connection that never reached the recorder."""
        got = self.lines(delivered=True)
        sent = self.lines(delivered=False)
        assert sent[: len(got)] == got, "the proxy delivered something the server did not send"
        return sent[len(got) :]

    # -- pumps -------------------------------------------------------------------------------------

    def _wait_running(self) -> bool:
        while not self._running.wait(0.05):
            if self.closed.is_set():
                return False
        return not self.closed.is_set()

    def _down(self) -> None:
        """Server -> recorder, with fragmentation and slow reads."""
        proxy = self.proxy
        try:
            while self._wait_running():
                size = self._rand.randint(1, 100) if proxy.slow_read else _CHUNK
                try:
                    data = self.upstream.recv(size)
                except TimeoutError:
                    continue
                if not data:
                    break
                with self._lock:
                    self.received += data
                if proxy.slow_read:
                    time.sleep(0.002)
                pos = 0
                while pos < len(data):
                    if not self._wait_running():
                        return
                    step = self._rand.randint(1, 100) if proxy.fragment else len(data)
                    piece = data[pos : pos + step]
                    self.client.sendall(piece)
                    with self._lock:
                        self.delivered += piece
                    pos += step
        except OSError:
            pass
        finally:
            self._end_quietly()

    def _up(self) -> None:
        """Recorder -> server (the recorder's PONGs, PINGs, JOINs and close frames)."""
        try:
            while self._wait_running():
                try:
                    data = self.client.recv(_CHUNK)
                except TimeoutError:
                    continue
                if not data:
                    break
                if not self._wait_running():
                    return
                self.upstream.sendall(data)
        except OSError:
            pass
        finally:
            self._end_quietly()

    def _end_quietly(self) -> None:
        """One side ended on its own: pass the end on (FIN) as a real network path would."""
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
            for sock in (self.client, self.upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) and proxies each connection to 127.0.0.1:`upstream_port`."""

    def __init__(self, upstream_port: int, *, fragment: bool = False, slow_read: bool = False, seed: int = 0) -> None:
        self.upstream_port = upstream_port
        self.fragment = fragment
        self.slow_read = slow_read
        self.seed = seed
        self.pipes: list[Pipe] = []
        self._cond = threading.Condition()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self._stopping = False
        self._accepter = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)
        self._accepter.start()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._stopping:
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(0.1)  # pumps wake up to notice stalls and cuts
            with self._cond:
                self.pipes.append(Pipe(self, len(self.pipes), client, upstream))
                self._cond.notify_all()

    def wait_pipes(self, n: int, timeout: float = 20.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.pipes) >= n, timeout)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass
        self._accepter.join(5)
        self._listener.close()
        for pipe in list(self.pipes):
            pipe.cut("fin")
        for pipe in list(self.pipes):
            for t in pipe._threads:
                t.join(5)


def ws_lines(data: bytes) -> list[str]:
    """The lines of the complete messages in a server-to-client WebSocket byte stream (after the
    HTTP upgrade response). A message cut off by the end of the data is not counted."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return []
    pos = head_end + 4
    lines: list[str] = []
    message = bytearray()
    n = len(data)
    while pos + 2 <= n:
        first, second = data[pos], data[pos + 1]
        fin, opcode, length = first & 0x80, first & 0x0F, second & 0x7F
        pos += 2
        if length == 126:
            if pos + 2 > n:
                break
            length = struct.unpack("!H", data[pos : pos + 2])[0]
            pos += 2
        elif length == 127:
            if pos + 8 > n:
                break
            length = struct.unpack("!Q", data[pos : pos + 8])[0]
            pos += 8
        if second & 0x80:
            pos += 4  # a masked frame would be the client's; servers never mask
        if pos + length > n:
            break
        payload = data[pos : pos + length]
        pos += length
        if opcode == 0x8:
            break
        if opcode in (0x0, 0x1, 0x2):
            message += payload
            if fin:
                lines.extend(split_frame(message.decode("utf-8", "replace")))
                message.clear()
    return lines
