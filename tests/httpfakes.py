"""HTTP peers for the serve and sync tests, on loopback: a fake wubloader node and hostile peers.

`FakeNode` is a wubloader node's restreamer as WUBLOADER_HTTP.md states it, and no more: listings
are `json.dumps(os.listdir(...))` of its base folder (names starting with a period hidden, a
missing folder lists as `[]`), `/segments/...` are the files' bytes, a file that is gone is 404.
It is built from the spec, not from our server, so a sync that reads it proves we speak the
protocol rather than agree with ourselves. `overrides` replace the answer for one path (a hostile
peer): a callable gets the request handler and writes whatever it likes.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

Behaviour = Callable[[BaseHTTPRequestHandler], None]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        node = self.server.node
        path = urlsplit(self.path).path
        node.requests.append(self.path)
        override = node.overrides.get(path) or node.overrides.get(path.rsplit("/", 1)[0] + "/*")
        if override is not None:
            override(self)
            return
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts and parts[0] == "files" and len(parts) <= 4:
            folder = os.path.join(node.base, *parts[1:])
            try:
                names = [n for n in os.listdir(folder) if not n.startswith(".")]
            except OSError:
                names = []
            send(self, 200, json.dumps(names).encode())
            return
        if parts and parts[0] == "segments" and len(parts) == 5:
            try:
                with open(os.path.join(node.base, *parts[1:]), "rb") as f:
                    send(self, 200, f.read(), "application/json")
            except OSError:
                send(self, 404, b"Not found")
            return
        send(self, 404, b"Not found")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    node: FakeNode

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that closes its connection (a pooled keep-alive connection dropped, a fetch cut
        at its deadline) is normal for a server; anything else is still printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    ctype: str = "text/plain",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


class FakeNode:
    """`with FakeNode(base) as node: node.url` serves `base` as a wubloader node does."""

    def __init__(self, base: str, overrides: dict[str, Behaviour] | None = None) -> None:
        self.base = base
        self.overrides = dict(overrides or {})
        self.requests: list[str] = []
        self.stop = threading.Event()  # hanging behaviours wait on it, so the test can end them
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.node = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeNode:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
