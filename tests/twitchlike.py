"""Helpers for the recorder's tests around the Twitch-like server (demo/twitchlike.py).

The server itself lives in `demo/` because `make run` plays it too; here are what only tests use: a
channel that pushes lines to its joined connections, a recorder run in a thread, a fast recorder
configuration, and waits with a timeout instead of sleeps.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from demo.twitchlike import ServerConn, TwitchLikeServer, chat_line

__all__ = [
    "LiveChannel",
    "Recording",
    "RunningRecorder",
    "ServerConn",
    "TwitchLikeServer",
    "caught_up",
    "chat_line",
    "fast_config",
    "wait_until",
]


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Poll until `predicate()` holds (no timed assertions: a generous timeout, then a clear failure)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class LiveChannel:
    """A live channel: one message stream, delivered to every connection joined at that moment,
    as Twitch does. Publishing and leaving share a lock, so each message reaches at least one
    connection as long as one is joined. `interval` seconds between messages. With `always`, the
    channel talks even when no connection is joined (as a real one does: those messages are lost)."""

    def __init__(self, name: str = "alpha", interval: float = 0.001, always: bool = False) -> None:
        self.name = name
        self.interval = interval
        self.always = always
        self.lock = threading.Lock()
        self.members: list[ServerConn] = []
        self.published: list[str] = []
        self.stop = threading.Event()
        self._thread: threading.Thread | None = None

    def join(self, conn: ServerConn) -> None:
        with self.lock:
            self.members.append(conn)

    def leave(self, conn: ServerConn) -> None:
        with self.lock:
            if conn in self.members:
                self.members.remove(conn)

    def publish_until_stopped(self) -> None:
        i = 0
        while not self.stop.is_set():
            with self.lock:
                self.members = [c for c in self.members if not c.closed]
                if self.members or self.always:
                    line = chat_line(i, self.name)
                    self.published.append(line)
                    for conn in self.members:
                        conn.send(line)
                    i += 1
            time.sleep(self.interval)

    def start(self) -> LiveChannel:
        self._thread = threading.Thread(target=self.publish_until_stopped, name="live-channel", daemon=True)
        self._thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(10)


# -- reading a recording back, running a recorder in-process ------------------------------------


class Recording:
    """A raw recording folder read back with the replay's own reader."""

    def __init__(self, out_dir: str) -> None:
        from formats.rawfile import find_raw_files, group_streams, iter_stream_events

        self.problems: list[Any] = []
        # a recorder that has not written yet has not made its folder yet either
        self.paths = find_raw_files([out_dir]) if os.path.isdir(out_dir) else []
        self.streams = group_streams(self.paths, self.problems)
        self.by_slug = {s.header.slug: list(iter_stream_events(s, self.problems)) for s in self.streams}
        self.events = [e for s in self.streams for e in self.by_slug[s.header.slug]]

    def by_conn(self, kind: str) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for e in self.events:
            if e.kind == kind:
                out.setdefault(e.conn, []).append(e.text)
        return out

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]


class RunningRecorder:
    """A Recorder on a thread; `stop()` stops it and re-raises what `run()` raised."""

    def __init__(self, config: Any, slug: str | None = None) -> None:
        from recorder.recorder import Recorder

        self.logs: list[tuple[str, str]] = []
        self.recorder = Recorder(config, log=lambda level, msg: self.logs.append((level, msg)), slug=slug)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-recorder")
        self._thread.start()

    def _run(self) -> None:
        try:
            self.recorder.run()
        except BaseException as e:  # handed to the test by stop()
            self.error = e

    def finished(self) -> bool:
        return not self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self.recorder.stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "recorder did not stop"
        if self.error is not None:
            raise self.error

    def __enter__(self) -> RunningRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.recorder.stop()
        self._thread.join(30)


def fast_config(server: str, out_dir: str, channels: tuple[str, ...] = ("alpha", "beta"), **kw: Any) -> Any:
    """A RecorderConfig with quick backoff for tests (everything else as in production)."""
    from recorder.recorder import RecorderConfig

    defaults: dict[str, Any] = {
        "name": "test",
        "dialect": "twitch",
        "backoff_base": 0.1,
        "backoff_cap": 0.5,
        "connect_timeout": 5.0,
    }
    defaults.update(kw)
    return RecorderConfig(channels=channels, out_dir=out_dir, server=server, **defaults)


def caught_up(out_dir: str, conn: ServerConn, at_least: int = 0) -> bool:
    """The recording's connection `conn.index` holds exactly what the server sent it (and enough)."""
    return len(conn.sent) >= at_least and Recording(out_dir).by_conn("recv").get(conn.index) == conn.sent
