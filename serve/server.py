"""Runs the WSGI app under waitress, with the guards waitress lacks (docs/serve-sync.md says why).

waitress parses HTTP, bounds what a client can make it hold (header size, body size, connections)
and writes answers from a pool of worker threads; when a slow client does not read, it holds at
most `outbuf_high_watermark` bytes of an answer and then blocks the worker producing it, so a
streamed `chat.jsonl` stays in bounded memory whatever the client does. It only passes a request
to a worker once its head is whole, so slow clients never hold a worker; what they can hold is
connections and window slots. Three guards, run by the server's own loop once a second
(`_Guarded.maintenance`) and at accept:

* Request head deadline: a connection must send a whole request head within `head_seconds` of
  opening, or of its previous answer (keep-alive). waitress's `channel_timeout` counts from the
  last byte received, so a client sending one byte every few seconds (slowloris) was never cut.
* Write deadline: an answer that the client has not read from for `write_seconds` while more is
  waiting to be sent is cut (the connection closed), which ends the worker's write and frees the
  window slot. Without it, a client that asks for a long window and stops reading holds a slot
  for as long as it keeps the connection open.
* Connections per client address: past `per_address`, a new connection from that address is
  closed at once, so one host cannot take the `connections` a server has. Behind a reverse proxy
  every connection comes from the proxy: `per_address=0` turns the cap off (the proxy caps).
"""

from __future__ import annotations

import contextlib
import logging
import resource
import select
import threading
import time
from typing import Any

from waitress import create_server, wasyncore
from waitress.channel import HTTPChannel

from serve.app import ChatApp, CutShort

log = logging.getLogger("chat_archiver.serve")

HEAD_SECONDS = 10.0  # to send a whole request head (a real client needs milliseconds)
WRITE_SECONDS = 60.0  # without reading anything of an answer that is waiting to be sent
PER_ADDRESS = 32  # connections at once from one client address (0: no cap)
CONNECTIONS = 1000  # connections at once in all


class _DropCutShort(logging.Filter):
    """waitress logs an exception raised by a streamed body with its traceback; ours (a stream cut
    short on purpose, already logged in one line) is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, CutShort)


class _Channel(HTTPChannel):  # type: ignore[misc]
    """waitress's connection with the two clocks the guards read, both set by the server loop
    itself (so they never race the worker threads): since when it has been waiting for a request
    head, and since when an answer has been waiting to be sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_since: float | None = time.monotonic()
        self.pending_since: float | None = None


def _client(addr: Any) -> str:
    return str(addr[0]) if isinstance(addr, tuple) else str(addr)


class _Guarded:
    """The guards, as a mixin over waitress's TCP server class (`make_server` builds the type)."""

    head_seconds = HEAD_SECONDS
    write_seconds = WRITE_SECONDS
    per_address = PER_ADDRESS
    active_channels: dict[int, Any]
    adj: Any

    def channel_class(self, server: Any, conn: Any, addr: Any, adj: Any, map: Any = None) -> Any:
        """A connection, or none when its address already holds `per_address` (closed at once)."""
        if self.per_address:
            host = _client(addr)
            held = sum(1 for c in list(self.active_channels.values()) if _client(c.addr) == host)
            if held >= self.per_address:
                conn.close()
                log.warning("refused a connection from %s: it holds %d already", host, held)
                return None
        return _Channel(server, conn, addr, adj, map=map)

    def maintenance(self, now: float) -> None:
        """Called by the server loop every `cleanup_interval` (1 s): close connections past a
        deadline. `now` is waitress's wall clock; the deadlines run on the monotonic one."""
        mono = time.monotonic()
        for channel in list(self.active_channels.values()):
            if channel.requests:  # a whole request is being answered
                channel.head_since = None
                if channel.total_outbufs_len < self.adj.send_bytes:
                    channel.pending_since = None  # nothing much waiting: the worker is producing
                    continue
                if channel.pending_since is None:
                    channel.pending_since = mono
                elif (
                    mono - channel.pending_since > self.write_seconds
                    and now - channel.last_activity > self.write_seconds
                ):
                    log.warning(
                        "cut an answer to %s: nothing read for %.0f s", _client(channel.addr), self.write_seconds
                    )
                    channel.handle_close()  # wakes the worker blocked writing to it
                continue
            channel.pending_since = None
            if channel.head_since is None:
                channel.head_since = mono  # an answer ended: the next head's clock starts
            elif mono - channel.head_since > self.head_seconds:
                if _head_waiting(channel):
                    channel.head_since = mono  # the head came in time, and is being answered
                else:
                    channel.handle_close()


def _head_waiting(channel: Any) -> bool:
    """Whether bytes the loop has not read yet complete the request head of a connection the head
    deadline is about to cut. On a loaded host the loop's turn comes late, so a client's whole head
    can wait unread past the deadline; it is read now and answered, where cutting it (with its
    bytes unread) resets a client that did nothing wrong. A trickle completes nothing and is cut."""
    poller = select.poll()
    poller.register(channel.socket.fileno(), select.POLLIN)
    if not poller.poll(0) or not channel.readable():
        return False
    channel.handle_read()
    # waitress's parser of the head in progress: None again once a whole head was read
    return bool(channel.connected) and channel.request is None


def make_server(
    app: ChatApp,
    host: str = "127.0.0.1",
    port: int = 8008,
    *,
    threads: int = 4,
    head_seconds: float = HEAD_SECONDS,
    write_seconds: float = WRITE_SECONDS,
    per_address: int = PER_ADDRESS,
    connections: int = CONNECTIONS,
) -> Any:
    """A bound waitress server for `app` with the guards of this module (port 0: any free port;
    `server.effective_port` says which). `server.run()` serves until `stop(server)` or a signal."""
    logging.getLogger("waitress").addFilter(_DropCutShort())
    _allow_files(connections + threads + 64)
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="chat-archiver",
        max_request_body_size=1 << 16,  # these routes take no body
        connection_limit=connections,
        channel_timeout=max(60.0, head_seconds),  # idle keep-alive: the head deadline comes first
        cleanup_interval=1,  # the guards' tick
        asyncore_use_poll=True,  # select() stops at 1024 descriptors
        clear_untrusted_proxy_headers=True,
        outbuf_high_watermark=1 << 22,
    )
    server.__class__ = type("GuardedServer", (_Guarded, type(server)), {})
    server.head_seconds = head_seconds
    server.write_seconds = write_seconds
    server.per_address = per_address
    return server


def _allow_files(wanted: int) -> None:
    """Raise this process's soft limit on open files towards `wanted` (never above the hard
    limit): each connection is one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def stop(server: Any) -> None:
    """Stop a server running in another thread: workers finish, then the loop's own thread closes
    every socket (closing them from here could pull a socket from under its select), so it ends.

    A trigger whose pipe is already gone (EBADF: seen once in a dozen loaded runs of the suite, the
    pipe closed before any stop, cause not found) cannot wake the loop: the sockets are closed from
    here instead, and the loop, if it still runs, ends on its next poll (`Running` expects that)."""
    server.task_dispatcher.shutdown(timeout=5)
    try:
        server.trigger.pull_trigger(lambda: close_all(server._map))
    except OSError:
        close_all(server._map)


def close_all(socket_map: dict[int, Any]) -> None:
    """Close every socket of a server's map. A connection is closed the way the loop closes it
    (`handle_close`): that also closes its unsent buffers and wakes a worker blocked writing to it,
    which then ends and closes the body it was sending (wasyncore's own `close_all` closes only the
    socket, and such a worker waited for ever with its batch file open)."""
    for dispatcher in list(socket_map.values()):
        try:
            if isinstance(dispatcher, HTTPChannel):
                dispatcher.handle_close()
            else:
                dispatcher.close()
        except OSError:
            # its own close stopped part way (the wake-up pipe's descriptors gone: EBADF): close what
            # the dispatcher holds, or the collector finds it open later and warns in another test
            with contextlib.suppress(OSError):
                wasyncore.dispatcher.close(dispatcher)
    socket_map.clear()


class Running:
    """A server on loopback in a background thread (tests and benchmarks): `with Running(app) as s:
    s.url`. Keyword arguments go to `make_server`."""

    def __init__(self, app: ChatApp, host: str = "127.0.0.1", port: int = 0, threads: int = 4, **guards: Any) -> None:
        self.server = make_server(app, host, port, threads=threads, **guards)
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
        if not self.thread.is_alive():  # a loop that ended before it ran stop's thunk left its sockets
            close_all(self.server._map)
