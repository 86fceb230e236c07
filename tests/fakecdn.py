"""A CDN on loopback for the media tests and bench: Twitch's emote paths, and hostile answers.

Real HTTP (the stdlib server on a real socket), so the fetcher's sockets, timeouts and caps are
exercised for real. `/emoticons/v2/<id>/default/<theme>/<scale>` answers a small PNG (a GIF for ids
starting with `anim`) whose bytes name the variant, and counts each request; `mode` turns the
whole CDN `slow` (each answer waits `delay`) or `down` (503). The hostile paths are listed in
`HOSTILE` and each does one bad thing.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PNG_HEAD = b"\x89PNG\r\n\x1a\n"
GIF_HEAD = b"GIF89a"


def emote_bytes(emote_id: str, theme: str, scale: str) -> bytes:
    head = GIF_HEAD if emote_id.startswith("anim") else PNG_HEAD
    return head + f"emote {emote_id} {theme} {scale}".encode() + b"\x00" * 64


HTML = b"<!DOCTYPE html><html><body>Not the image you are looking for</body></html>"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str | None = "image/png", **extra: str) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        cdn = self.server.cdn
        path = urlsplit(self.path).path
        with cdn.lock:
            cdn.hits[path] += 1
            cdn.hosts.append(self.headers.get("Host", ""))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(cdn, path)

    def _answer(self, cdn: FakeCDN, path: str) -> None:
        parts = path.strip("/").split("/")
        if len(parts) == 6 and parts[:2] == ["emoticons", "v2"] and parts[3] == "default":
            if cdn.mode == "down":
                self._send(503, b"down", "text/plain")
                return
            if cdn.mode == "slow":
                time.sleep(cdn.delay)
            emote_id, theme, scale = parts[2], parts[4], parts[5]
            if emote_id.startswith("missing"):
                self._send(404, b"no such emote", "text/plain")
                return
            body = emote_bytes(emote_id, theme, scale)
            self._send(200, body, "image/gif" if body.startswith(GIF_HEAD) else "image/png")
            return
        handler = getattr(self, "h_" + path.strip("/").replace("-", "_").replace(".", "_").replace("/", "__"), None)
        if handler is None:
            self._send(404, b"not found", "text/plain")
            return
        handler(cdn)

    # -- ordinary answers
    def h_image_png(self, cdn: FakeCDN) -> None:
        self._send(200, PNG_HEAD + b"an image" + bytes(100))

    def h_secret(self, cdn: FakeCDN) -> None:
        self._send(200, PNG_HEAD + b"the internal secret")

    def h_clip_mp4(self, cdn: FakeCDN) -> None:
        self._send(200, b"\x00\x00\x00\x18ftypmp42" + bytes(64), "video/mp4")

    # -- hostile answers
    def h_redirect_private(self, cdn: FakeCDN) -> None:
        self._send(302, b"", None, Location=f"http://internal.test:{cdn.port}/secret")

    def h_redirect_good(self, cdn: FakeCDN) -> None:
        self._send(302, b"", None, Location="/image.png")

    def h_redirect_loop(self, cdn: FakeCDN) -> None:
        self._send(302, b"", None, Location="/redirect-loop")

    def h_endless(self, cdn: FakeCDN) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Connection", "close")
        self.end_headers()  # no length: the body ends when the connection closes, i.e. never
        self.wfile.write(PNG_HEAD)
        chunk = bytes(64 << 10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not cdn.closed.is_set():
            self.wfile.write(chunk)

    def h_chunked_endless(self, cdn: FakeCDN) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = bytes(64 << 10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not cdn.closed.is_set():
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def h_huge_claim(self, cdn: FakeCDN) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(1 << 30))  # 1 GiB claimed
        self.end_headers()
        self.wfile.write(PNG_HEAD + bytes(1000))
        cdn.closed.wait(5)

    def h_short_body(self, cdn: FakeCDN) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "5000")  # claims more than it sends, then hangs up
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(PNG_HEAD + bytes(100))
        self.close_connection = True

    def h_lying_type(self, cdn: FakeCDN) -> None:
        self._send(200, HTML, "image/png")

    def h_html_page(self, cdn: FakeCDN) -> None:
        self._send(200, HTML, "text/html; charset=utf-8")

    def h_no_type(self, cdn: FakeCDN) -> None:
        self._send(200, PNG_HEAD + b"typeless", None)

    def h_drip(self, cdn: FakeCDN) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):  # one byte every 0.1 s: each read is quick, the whole never ends
            if cdn.closed.is_set():
                return
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.1)

    def h_drip_head(self, cdn: FakeCDN) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n" + b"X-Pad: " + b"p" * 990 + b"\r\n\r\n"
        for byte in head:  # the status line and headers, one byte every 0.1 s
            if cdn.closed.is_set():
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.1)
        self.close_connection = True

    def h_flaky(self, cdn: FakeCDN) -> None:
        with cdn.lock:
            cdn.flaky_left -= 1
            fail = cdn.flaky_left >= 0
        if fail:
            self._send(503, b"try again", "text/plain")
        else:
            self._send(200, PNG_HEAD + b"after a while")

    def h_gone(self, cdn: FakeCDN) -> None:
        self._send(404, b"gone", "text/plain")


HOSTILE = (
    "/redirect-private",
    "/redirect-loop",
    "/endless",
    "/chunked-endless",
    "/huge-claim",
    "/short-body",
    "/lying-type",
    "/html-page",
    "/no-type",
    "/drip",
    "/drip-head",
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    cdn: FakeCDN


class FakeCDN:
    """The server, started on `host` (a loopback address) at a free port; a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.hits: Counter[str] = Counter()
        self.hosts: list[str] = []
        self.lock = threading.Lock()
        self.mode = "ok"  # "ok", "slow" or "down"
        self.delay = 0.5
        self.flaky_left = 0
        self.closed = threading.Event()
        self.server = _Server((host, port), _Handler)
        self.server.cdn = self
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.host = host
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def emote_hits(self) -> Counter[str]:
        with self.lock:
            return Counter({p: n for p, n in self.hits.items() if p.startswith("/emoticons/")})

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeCDN:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
