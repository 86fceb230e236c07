"""A wubloader node's extras, modelled from WUBLOADER_MEDIA.md and WUBLOADER_HTTP.md (not from our code).

`ExtrasNode` is the restreamer's side: `GET /extras/<dir>` answers `json.dumps` of every file under
`<base>/<dir>`, recursively, relative to it (a missing folder: `[]`, 200), and
`GET /segments/<dir>/<path>` the file's bytes. `backfill_extras` is the backfiller's side with
`--extras emotes,media`: it lists a peer's extras, fetches each path it lacks and writes it
atomically (a temporary name, then a rename), checking nothing: a peer is trusted.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        node = self.server.node
        parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
        override = node.overrides.get("/" + "/".join(parts))
        if override is not None:
            self._send(200, override, "application/octet-stream")
            return
        if len(parts) == 2 and parts[0] == "extras":
            top = os.path.join(node.base, parts[1])
            names = []
            for folder, _dirs, files in os.walk(top):
                for name in files:
                    names.append(os.path.relpath(os.path.join(folder, name), top))
            self._send(200, json.dumps(names).encode())
            return
        if len(parts) >= 3 and parts[0] == "segments":
            try:
                with open(os.path.join(node.base, *parts[1:]), "rb") as f:
                    self._send(200, f.read(), "application/octet-stream")
            except OSError:
                self._send(404, b"Not found", "text/plain")
            return
        self._send(404, b"Not found", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    node: ExtrasNode


class ExtrasNode:
    """A wubloader node serving `base`'s extras; `overrides` maps a path to raw bytes (a liar)."""

    def __init__(self, base: str, overrides: dict[str, bytes] | None = None) -> None:
        self.base = base
        self.overrides = overrides or {}
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.node = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> ExtrasNode:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def backfill_extras(peer: str, base: str, extras: tuple[str, ...] = ("emotes", "media")) -> int:
    """The backfiller's extras pass from `peer` into `base`; returns the files written."""
    written = 0
    for folder in extras:
        with urllib.request.urlopen(f"{peer}/extras/{folder}", timeout=10) as r:
            names = json.loads(r.read())  # the status is not looked at: a 404 here would raise
        for name in names:
            path = os.path.join(base, folder, name)
            if os.path.exists(path):
                continue
            try:
                with urllib.request.urlopen(f"{peer}/segments/{folder}/{quote(name)}", timeout=10) as r:
                    data = r.read()
            except urllib.error.HTTPError:
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temp = f"{path}.temp"
            with open(temp, "wb") as f:
                f.write(data)
            os.rename(temp, path)
            written += 1
    return written
