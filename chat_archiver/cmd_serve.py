"""`chat-archiver serve`: the archive over HTTP, as a wubloader node serves chat (read-only)."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import typer

from chat_archiver.console import err, fail


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        root: str = typer.Argument(..., help="Archive root (holds CHANNEL/chat/HOUR/MM:SS-HASH.json)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
        port: int = typer.Option(8008, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
        threads: int = typer.Option(4, "--threads", min=1, max=64, help="Worker threads answering requests."),
    ) -> None:
        """Serve an archive over HTTP with wubloader's routes, so wubloader nodes and other hosts'
        `chat-archiver sync` can fetch from it, and its editor can read chat.

        Routes: /files, /files/CH, /files/CH/chat, /files/CH/chat/HOUR, /segments/CH/chat/HOUR/FILE,
        /CH/chat.json?start=&end= (upstream's 2 h cap), /CH/chat.jsonl?start=&end= (no cap, streamed),
        /metrics, /healthz. Read-only: nothing outside ROOT is ever served.

        Runs until Ctrl-C or SIGTERM.
        """
        from serve.app import ChatApp  # noqa: PLC0415 (keeps `chat-archiver --help` light)
        from serve.server import make_server  # noqa: PLC0415

        if not os.path.isdir(root):
            fail(f"{root}: no such archive folder")
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        try:
            server = make_server(ChatApp(root), host, port, threads=threads)
        except OSError as e:
            fail(f"cannot listen on {host}:{port}: {e.strerror or e}")
        except ValueError as e:
            fail(f"cannot listen on {host}:{port}: {e}")

        def stop(*_: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        err.print(f"serving {root} on http://{host}:{server.effective_port} (Ctrl-C stops)", soft_wrap=True)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
        err.print("stopped")
