"""Runs the WSGI app under waitress (docs/serve-sync.md says why waitress).

waitress parses HTTP, bounds what a client can make it hold (header size, body size, connections,
idle time) and writes answers from a pool of worker threads; when a slow client does not read,
it holds at most `outbuf_high_watermark` bytes of an answer and then blocks the worker producing
it, so a streamed `chat.jsonl` stays in bounded memory whatever the client does.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from waitress import create_server, wasyncore

from serve.app import ChatApp, CutShort


class _DropCutShort(logging.Filter):
    """waitress logs an exception raised by a streamed body with its traceback; ours (a stream cut
    short on purpose, already logged in one line) is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, CutShort)


def make_server(app: ChatApp, host: str = "127.0.0.1", port: int = 8008, *, threads: int = 4) -> Any:
    """A bound waitress server for `app` (port 0: any free port; `server.effective_port` says
    which). `server.run()` serves until `stop(server)` or a signal."""
    logging.getLogger("waitress").addFilter(_DropCutShort())
    return create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="chat-archiver",
        max_request_body_size=1 << 16,  # these routes take no body
        connection_limit=200,
        channel_timeout=60,
        clear_untrusted_proxy_headers=True,
        outbuf_high_watermark=1 << 22,
    )


def stop(server: Any) -> None:
    """Stop a server running in another thread: workers finish, then the loop's own thread closes
    every socket (closing them from here could pull a socket from under its select), so it ends."""
    server.task_dispatcher.shutdown(timeout=5)
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))


class Running:
    """A server on loopback in a background thread (tests and benchmarks): `with Running(app) as s:
    s.url`."""

    def __init__(self, app: ChatApp, host: str = "127.0.0.1", port: int = 0, threads: int = 4) -> None:
        self.server = make_server(app, host, port, threads=threads)
        self.url = f"http://{host}:{self.server.effective_port}"
        self.thread = threading.Thread(target=self._run, name="chat-serve", daemon=True)
        self.stopping = False

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):
            if not self.stopping:  # a socket closed under select while stopping is not news
                raise

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping = True
        stop(self.server)
        self.thread.join(10)
