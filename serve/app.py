"""The WSGI application: wubloader's chat routes over an archive folder, read-only (I/O shell).

`serve.routes` decides what a request names; this module reads the disk and answers. Rules kept
here, each for a reason:

* Nothing outside ROOT: the route only names shapes the archive writes, and every path is
  resolved (`os.path.realpath`) and must still be under ROOT's resolved path, so a symlink that
  points out of ROOT answers 404 like a missing file.
* Files vanish while a merge runs (the merge deletes its inputs after writing its output). A
  listing just lists what is there. A batch file that is gone is 404, which a backfiller takes as
  "merged away". A window read that meets a vanished file starts again from the chunk it was in
  (`_reading`): the merge wrote the vanished file's records to its output before deleting it, so
  reading the folder again finds them; a merge only moves records forward in time (a range's
  intersection never starts earlier), so chunks already sent cannot have lost one.
* Answers are never a 500 with a traceback: bad requests are 4xx with one line; a damaged file
  in the archive is a 503 naming it (the archive's owner must look), logged once.
* Batch files are named by their content's hash, so they never change: a strong ETag (the hash)
  and a year of caching, and `If-None-Match` answers 304.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from html import escape as html_escape
from http import HTTPStatus
from itertools import islice
from operator import itemgetter
from typing import Any, Protocol
from urllib.parse import quote

import prometheus_client as prom

from export.stream import iter_chunk_rows, next_file_finder, upstream_ties
from export.window import ExportError, Window, plan_chunks
from formats import speedups
from formats.canonical import batch_relpath, parse_batch_name
from formats.errors import InputError
from formats.names import Segment, channel_ok, hour_ok, hour_start
from formats.store import QUARANTINE
from serve import extras, routes
from serve.routes import ChatWindow, Reject

log = logging.getLogger("chat_archiver.serve")

StartResponse = Callable[..., Any]
PagePlayer = Callable[..., str]  # export.html.render_page(source_url=, title=, start=, end=) -> the page
Environ = dict[str, Any]


class ExtraRoutes(Protocol):
    """Routes asked before wubloader's (serve.justlog's API): the answer to a path of theirs as
    (status, headers, body, route name) with their own CORS headers, None for any other path.
    Never raises."""

    def answer(
        self, method: str, path: str, query: str, environ: Environ
    ) -> tuple[int, list[tuple[str, str]], Iterable[bytes], str] | None: ...


CACHE_FOREVER = "public, max-age=31536000, immutable"
# upstream's restreamer answers every request with these, so an editor page on another origin can
# read chat; everything here is public and read-only
CORS = [
    ("Access-Control-Allow-Credentials", "false"),
    ("Access-Control-Allow-Headers", "*"),
    ("Access-Control-Allow-Methods", "GET,HEAD"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Max-Age", "86400"),
]
# a window read holds a chunk of minutes whole, with the two after it (read ahead, each scanned
# once) and the four before it slimmed: one-minute chunks of a 100 msg/s channel seen by 3 receivers
# keep a reader near 42 MiB (export's 10-minute chunks, made for throughput, hold about 180 MB);
# bench serve's per_reader figure measures it
SERVE_CHUNK_MINUTES = 1
READ_RETRIES = 20  # window reads restarted after a vanished file, before giving up with a 503
JSON_TYPE = "application/json"
_LINE = itemgetter(2)  # the canonical line of an export row (export.stream.Row)
TEXT_TYPE = "text/plain; charset=utf-8"


# One registry per app, so several apps in one process (tests) do not collide.
class _Metrics:
    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        prom.ProcessCollector(registry=self.registry)  # memory, CPU, open files of the server
        self.requests = prom.Counter(
            "chat_serve_requests",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.seconds = prom.Histogram(
            "chat_serve_request_seconds",
            "Time to the last byte of an answer, by route",
            ["route"],
            registry=self.registry,
        )
        self.bytes = prom.Counter("chat_serve_bytes", "Body bytes sent, by route", ["route"], registry=self.registry)
        self.damaged = prom.Counter(
            "chat_serve_damaged_files",
            "Damaged batch files skipped in window reads (logged)",
            registry=self.registry,
        )
        self.retries = prom.Counter(
            "chat_serve_read_retries",
            "Window reads restarted because a merge removed a file meanwhile",
            registry=self.registry,
        )


class _Counted:
    """A response body that counts what it sends and, when the server closes it (sent whole or
    not, iterated or not), closes what it wraps (a file, a window read holding a slot)."""

    def __init__(
        self,
        body: Iterable[bytes],
        metrics: _Metrics,
        name: str,
        status: int,
        started: float,
        *,
        head: bool,
        done: Callable[[int, int], None] | None = None,
    ) -> None:
        self.done = done  # told (status, bytes sent) once the answer is over: the access log
        self.body = body
        self.metrics = metrics
        self.name = name
        self.status = status
        self.started = started
        self.head = head
        self.sent = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self.head:
            return
        for part in self.body:
            self.sent += len(part)
            yield part

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        close = getattr(self.body, "close", None)
        if close is not None:
            close()
        self.metrics.requests.labels(self.name, str(self.status)).inc()
        self.metrics.bytes.labels(self.name).inc(self.sent)
        self.metrics.seconds.labels(self.name).observe(time.monotonic() - self.started)
        if self.done is not None:
            self.done(self.status, self.sent)


class _Slot:
    """A streamed window answer holding one of the window-read slots until it is closed."""

    def __init__(self, body: Iterator[bytes], release: Callable[[], None]) -> None:
        self.body = body
        self.release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return self.body

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()
        if self.release is not None:
            self.release()
            self.release = None


class ServeError(Exception):
    """The archive cannot answer (a damaged file): 503 with this line."""


def access_line(environ: Environ, status: int, sent: int, when: float) -> str:
    """One request in the Common Log Format (what web servers write and log tools read):
    `HOST - - [07/Dec/2026:05:33:00 +0000] "GET /files HTTP/1.1" 200 1234`."""
    path = environ.get("PATH_INFO", "/") + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else "")
    request = f"{environ.get('REQUEST_METHOD', '-')} {path} {environ.get('SERVER_PROTOCOL', '-')}"
    request = request.replace("\\", "\\\\").replace('"', '\\"')  # the URL as sent, quotes escaped
    # PATH_INFO holds the URL's bytes as latin-1 characters: anything but printable ASCII as \xNN
    request = "".join(c if c.isascii() and c.isprintable() else f"\\x{ord(c) & 0xFF:02x}" for c in request)
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(when))
    return f'{environ.get("REMOTE_ADDR", "-")} - - [{stamp}] "{request}" {status} {sent or "-"}'


class ChatApp:
    """The WSGI callable serving `root`."""

    def __init__(
        self,
        root: str,
        *,
        chunk_minutes: int = SERVE_CHUNK_MINUTES,
        player: PagePlayer | None = None,
        window_reads: int = 2,
        access_log: Callable[[str], None] | None = None,
        extra: ExtraRoutes | None = None,
    ) -> None:
        self.access_log = access_log  # given one line per request (access_line), if at all
        self.root_there = True  # False while ROOT is gone: said once in the log when it goes and comes back
        self.root = os.path.realpath(root)
        # window reads are long and CPU-bound: a few at once, so that listings and batch files (what
        # backfillers ask for) always find a free thread
        self.window_slots = threading.BoundedSemaphore(window_reads)
        self.chunk_minutes = chunk_minutes
        self.metrics = _Metrics()
        self.player = player if player is not None else installed_player()
        self.extra = extra  # asked first; answers its own paths (serve.justlog: the justlog API)

    # -- WSGI entry ---------------------------------------------------------------------------
    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        method = environ.get("REQUEST_METHOD", "GET")
        path = str(environ.get("PATH_INFO", "/"))
        try:
            # WSGI hands PATH_INFO over as latin-1 text of the decoded bytes; the URL is UTF-8
            path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8")
            query = environ.get("QUERY_STRING", "").encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            answer: routes.Route | Reject = Reject(400, "Bad path: not UTF-8")
        else:
            extra = self.extra.answer(method, path, query, environ) if self.extra is not None else None
            if extra is not None:
                status, headers, body, name = extra
                start_response(f"{status} {HTTPStatus(status).phrase}", headers)
                done = self._logged(environ)
                return _Counted(body, self.metrics, name, status, started, head=method == "HEAD", done=done)
            answer = routes.route(method, path, query)
        name = type(answer).__name__
        try:
            status, headers, body = self._answer(answer, environ, query if not isinstance(answer, Reject) else "")
        except ServeError as e:
            log.warning("%s: %s", path, e)
            status, headers, body = _text(503, str(e))
        except Exception:  # a bug: log it, answer one line, keep serving
            log.exception("unexpected error answering %s", path)
            status, headers, body = _text(500, "Internal error")
        self._watch_root()
        start_response(_STATUS_LINES.get(status, f"{status} Status"), headers + CORS)
        return _Counted(body, self.metrics, name, status, started, head=method == "HEAD", done=self._logged(environ))

    def _logged(self, environ: Environ) -> Callable[[int, int], None] | None:
        """What writes the request's access-log line once its answer is sent (None: no log)."""
        if self.access_log is None:
            return None
        log_line, when = self.access_log, time.time()

        def done(status: int, sent: int) -> None:
            log_line(access_line(environ, status, sent, when))

        return done

    def _watch_root(self) -> None:
        """Say loudly when ROOT goes (a disk unmounted, a folder moved): listings then answer [] (as
        wubloader's restreamer does: a backfiller reads every listing as JSON) and /healthz 503."""
        there = os.path.isdir(self.root)
        if there != self.root_there:
            self.root_there = there
            if there:
                log.warning("the archive root %s is back", self.root)
            else:
                log.error(
                    "the archive root %s is gone: listings answer [] and /healthz 503 until it is back", self.root
                )

    # -- routes -------------------------------------------------------------------------------
    def _answer(
        self, answer: routes.Route | Reject, environ: Environ, query: str
    ) -> tuple[int, list[tuple[str, str]], Iterable[bytes]]:
        if isinstance(answer, Reject):
            return _text(answer.status, answer.reason)
        if isinstance(answer, routes.ListChannels):
            hidden = (QUARANTINE, *extras.FOLDERS)  # not channels, unless one holds chat
            names = [n for n in self._list(self.root) if n not in hidden or self._is_dir(n, "chat")]
            return _json(routes.json_array([n for n in names if channel_ok(n)]))
        if isinstance(answer, routes.ListQualities):
            return _json(routes.json_array(["chat"] if self._is_dir(answer.channel, "chat") else []))
        if isinstance(answer, routes.ListHours):
            hours = self._list(self._inside(answer.channel, "chat"))
            return _json(routes.json_array([h for h in hours if hour_ok(h)]))
        if isinstance(answer, routes.EmptyListing):
            return _json(routes.json_array([]))
        if isinstance(answer, routes.ListHour):
            names = self._list(self._inside(answer.channel, "chat", answer.hour))
            return _json(routes.json_array([n for n in names if parse_batch_name(answer.hour, n) is not None]))
        if isinstance(answer, Segment):
            return self._segment(answer, environ)
        if isinstance(answer, extras.ExtrasListing):
            return extras.listing(self.root, answer)
        if isinstance(answer, extras.ExtrasFile):
            return extras.file(self.root, answer)
        if isinstance(answer, ChatWindow):
            return self._window(answer)
        if isinstance(answer, routes.Metrics):
            return 200, [("Content-Type", prom.CONTENT_TYPE_LATEST)], [prom.generate_latest(self.metrics.registry)]
        if isinstance(answer, routes.Health):
            ok = os.path.isdir(self.root)
            return _text(200 if ok else 503, "ok" if ok else "archive root is missing")
        return self._player(answer)

    def _player(self, answer: routes.Player) -> tuple[int, list[tuple[str, str]], Iterable[bytes]]:
        if answer.channel is None or answer.window is None:
            channels = [c for c in self._list(self.root) if channel_ok(c) and self._is_dir(c, "chat")]
            hours = {c: [h for h in self._list(self._inside(c, "chat")) if hour_ok(h)] for c in channels}
            return _html(browser_page(hours, player=self.player is not None))
        if self.player is None:
            return _text(404, "Not found: no chat player page is installed")
        start, end = answer.window.start, answer.window.end
        source = f"/{quote(answer.channel)}/chat.jsonl?start={start}&end={end}"
        page = self.player(source_url=source, title=f"#{answer.channel}", start=start, end=end)
        return _html(page.encode("utf-8"))

    # -- disk ---------------------------------------------------------------------------------
    def _inside(self, *parts: str) -> str | None:
        """The path of `parts` under ROOT if it resolves inside ROOT (symlinks followed), else None."""
        path = os.path.realpath(os.path.join(self.root, *parts))
        if path != self.root and not path.startswith(self.root + os.sep):
            return None
        return path

    def _is_dir(self, *parts: str) -> bool:
        path = self._inside(*parts)
        return path is not None and os.path.isdir(path)

    def _list(self, path: str | None) -> list[str]:
        """Upstream's listing: names not starting with a period; a missing folder lists as []."""
        if path is None:
            return []
        try:
            return sorted(n for n in os.listdir(path) if not n.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise ServeError(f"cannot list a folder: {e.strerror}") from None

    def _segment(self, seg: Segment, environ: Environ) -> tuple[int, list[tuple[str, str]], Iterable[bytes]]:
        path = self._inside(seg.channel, "chat", seg.hour, seg.name)
        etag = f'"{seg.digest}"'
        cache = [("ETag", etag), ("Cache-Control", CACHE_FOREVER)]
        if path is None:
            return _text(404, "Not found")
        try:
            f = open(path, "rb")  # noqa: SIM115 (handed to the server, which closes it)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return _text(404, "Not found")  # merged away: the backfiller skips it
        except OSError as e:
            raise ServeError(f"cannot read {seg.hour}/{seg.name}: {e.strerror}") from None
        if _matches(environ.get("HTTP_IF_NONE_MATCH", ""), seg.digest):
            f.close()
            return 304, cache, []
        size = os.fstat(f.fileno()).st_size
        headers = [("Content-Type", JSON_TYPE), ("Content-Length", str(size)), *cache]
        wrapper = environ.get("wsgi.file_wrapper")
        return 200, headers, wrapper(f, 1 << 16) if wrapper else _FileBody(f)

    # -- windows ------------------------------------------------------------------------------
    def _window(self, req: ChatWindow) -> tuple[int, list[tuple[str, str]], Iterable[bytes]]:
        """Both answers stream from export's byte path (`export.stream.iter_chunk_rows`): the stored
        lines of records that pass through as they are, only what must be merged decoded; memory
        holds one chunk of minutes (`chunk_minutes`) and one write at a time, whatever the window
        (upstream builds chat.json whole; its 2 h cap is kept for compatibility, not for memory).
        The first chunk that has a record is read before answering, so a problem found there is
        still a status line of its own. At most `window_reads` at once: past that, 503 with
        Retry-After."""
        chat = self._inside(req.channel, "chat")
        if chat is None or not os.path.isdir(chat):
            return _text(404, f"Not found: no chat for channel {req.channel}")
        link = self._link_out(req.channel, req.window)
        if link is not None:
            raise ServeError(f"{link} leads outside the archive: refusing to read this window")
        if not self.window_slots.acquire(blocking=False):
            status, headers, body = _text(503, "Too many chat windows are being read at once: try again shortly")
            return status, [*headers, ("Retry-After", "5")], body
        try:
            chunks = self._reading(req.channel, req.window)
            first: list[list[bytes]] = []
            try:
                for lines in chunks:
                    if lines:
                        first.append(lines)
                        break
            except ExportError as e:
                raise ServeError(_relative(_one_line(e), self.root)) from None
            stream = _jsonl(first, chunks) if req.lines else _json_array(first, chunks)
        except BaseException:
            self.window_slots.release()
            raise
        ctype = "application/jsonl; charset=utf-8" if req.lines else JSON_TYPE
        return 200, [("Content-Type", ctype)], _Slot(stream, self.window_slots.release)

    def _link_out(self, channel: str, window: Window) -> str | None:
        """The first symlink among the hour folders a window read may open, or their files, that
        resolves outside ROOT (export's reader follows links; it must not be led out)."""
        chat = os.path.join(self.root, channel, "chat")
        minutes = window.file_minutes()
        first, last = batch_relpath(minutes.start - 3600, "")[0], batch_relpath(minutes.stop + 3600, "")[0]
        try:
            hours = [e for e in os.scandir(chat) if first <= e.name <= last]
        except OSError:
            return None
        for hour in hours:
            if hour.is_symlink() and self._inside(channel, "chat", hour.name) is None:
                return f"{channel}/chat/{hour.name}"
            try:
                with os.scandir(hour.path) as entries:
                    for entry in entries:
                        if entry.is_symlink() and self._inside(channel, "chat", hour.name, entry.name) is None:
                            return f"{channel}/chat/{hour.name}/{entry.name}"
            except OSError:
                continue
        return None

    def _reading(self, channel: str, window: Window) -> Iterator[list[bytes]]:
        """The canonical lines of the window's records, a chunk at a time (export's byte path),
        restarted from the current chunk whenever a file vanished under it (a merge); chunks
        already emitted are not emitted again. A damaged file is logged in one line and skipped,
        as `export` does: everything readable is answered."""
        done = 0
        retries = 0
        while True:
            plan = plan_chunks(window, self.chunk_minutes, next_file_finder(self.root, channel))
            chunks = islice(plan, done, None)

            def advanced(k: int) -> None:
                nonlocal done
                done += k

            problems = _Problems(self.root, self.metrics)
            try:
                for rows in iter_chunk_rows(
                    self.root, channel, window, chunks, on_chunk=advanced, problems=problems, lines=True
                ):
                    yield list(map(_LINE, upstream_ties(rows)))  # upstream's order at equal keys
                return
            except _Vanished:
                if retries >= READ_RETRIES:
                    raise ServeError("files keep vanishing under this read (merges running): try again") from None
                retries += 1
                self.metrics.retries.inc()


class _Vanished(Exception):
    """A file listed for a window read was gone when it was opened (a merge took it)."""


class _Problems(list[InputError]):
    """export's list of damaged files, watched as they come: a file that is gone is not damage but
    a merge at work, and restarts the read (`_Vanished`); real damage is logged once and skipped."""

    def __init__(self, root: str, metrics: _Metrics) -> None:
        super().__init__()
        self.root = root
        self.metrics = metrics

    def append(self, e: InputError) -> None:
        if e.source is not None and not os.path.exists(e.source):
            raise _Vanished()
        if str(e) not in map(str, self):
            log.warning("skipped a damaged batch file: %s", _relative(str(e), self.root))
            self.metrics.damaged.inc()
        super().append(e)


_STATUS_LINES = {
    200: "200 OK",
    304: "304 Not Modified",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


def _text(status: int, line: str) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    body = line.encode("utf-8")
    headers = [("Content-Type", TEXT_TYPE), ("Content-Length", str(len(body)))]
    if status == 405:
        headers.append(("Allow", "GET, HEAD"))
    return status, headers, [body]


def _html(body: bytes) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    return 200, [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))], [body]


def browser_page(hours: dict[str, list[str]], *, player: bool) -> bytes:
    """The channel and hour browser: each hour links to the player (when one is installed) and to
    its chat as JSON lines."""
    out = ["<!doctype html><meta charset=utf-8><title>chat archive</title><h1>chat archive</h1>"]
    if not hours:
        out.append("<p>No channels.</p>")
    for channel, names in hours.items():
        out.append(f"<h2>#{html_escape(channel)}</h2><ul>")
        for hour in names:
            start = hour_start(hour)
            query = f"start={start}&amp;end={start + 3600}"
            links = [f'<a href="/{quote(channel)}/chat.jsonl?{query}">jsonl</a>']
            if player:
                links.insert(0, f'<a href="/player/{quote(channel)}?{query}">play</a>')
            out.append(f"<li>{html_escape(hour)}:00 UTC {' '.join(links)}</li>")
        out.append("</ul>")
    return "".join(out).encode("utf-8")


def installed_player() -> PagePlayer | None:
    """export's HTML player, if this tree has it."""
    try:
        from export.html import render_page  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415
    except ImportError:
        return None
    return render_page  # type: ignore[no-any-return, unused-ignore]


def _json(body: bytes) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    return 200, [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body)))], [body]


def _one_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _relative(text: str, root: str) -> str:
    """Error text without the server's own folder names."""
    return text.replace(root + os.sep, "")


def _matches(header: str, digest: str) -> bool:
    """If-None-Match against our strong ETag (weak comparison, as RFC 9110 says for this header)."""
    for part in header.split(","):
        tag = part.strip()
        if tag == "*" or tag.removeprefix("W/") == f'"{digest}"':
            return True
    return False


class _FileBody:
    """A file as a WSGI body when the server has no `wsgi.file_wrapper`; closed by `close()`."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def __iter__(self) -> Iterator[bytes]:
        while data := self.f.read(1 << 16):
            yield data

    def close(self) -> None:
        self.f.close()


def upstream_joined_py(lines: list[bytes]) -> bytes:
    r"""Canonical lines (`formats.canonical.canonical_bytes`: json.dumps with `,` and `:`, keys
    sorted, ASCII) as the middle of upstream's `json.dumps(records)`: each record with json.dumps's
    default separators (`, ` and `: `), the records joined by `, `. That is a space after every `,`
    and `:` outside strings, the `,` between records included.

    Outside strings means between an even and an odd `"`, once escaped quotes are set aside: a
    canonical line holds no control byte, so `\\` and `\"` (read left to right, as JSON reads
    escapes) become NUL and SOH while the rest is done, then come back. The parts outside strings
    are joined around a byte no line holds (STX), edited in one pass and split again, so the work is
    a few passes of C over the bytes, not a Python step per string."""
    data = b",".join(lines)
    if len(data.translate(None, b"\x00\x01\x02")) != len(data):
        return spaced_slowly(data)  # never a canonical line: the placeholders cannot be used
    escaped = b"\\\\" in data or b'\\"' in data
    if escaped:
        data = data.replace(b"\\\\", b"\x00").replace(b'\\"', b"\x01")
    parts = data.split(b'"')
    parts[::2] = b"\x02".join(parts[::2]).replace(b",", b", ").replace(b":", b": ").split(b"\x02")
    out = b'"'.join(parts)
    if escaped:
        out = out.replace(b"\x01", b'\\"').replace(b"\x00", b"\\\\")
    return out


def spaced_slowly(data: bytes) -> bytes:
    """What `upstream_joined_py` does to the joined lines, a byte at a time: a backslash followed by
    a backslash or a quote is a pair read as one (left to right, as the replacements read them), a
    quote outside such a pair opens or closes a string, and `,` and `:` outside strings get their
    space. For bytes holding what the fast way uses as placeholders (no canonical line does)."""
    out = bytearray()
    in_string = False
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c == 0x5C and i + 1 < n and data[i + 1] in (0x5C, 0x22):
            out += data[i : i + 2]
            i += 2
            continue
        out.append(c)
        if c == 0x22:
            in_string = not in_string
        elif c in (0x2C, 0x3A) and not in_string:
            out.append(0x20)
        i += 1
    return bytes(out)


# the pure reference above, or its compiled twin (native/serve.c: one pass over the bytes)
upstream_joined = speedups.twin(upstream_joined_py, "upstream_joined")


WRITE_LINES = 256  # lines per write of a window answer (about 150 kB): the separators pass copies them a few times


def _stream(
    first: list[list[bytes]],
    rest: Iterator[list[bytes]],
    joined: Callable[[list[bytes]], bytes],
    *,
    sep: bytes,
    begin: bytes,
    end: bytes,
) -> Iterator[bytes]:
    """`begin`, the chunks' lines (`joined`, then joined by `sep`), `end`, at most `WRITE_LINES`
    lines per write. A damaged file mid-stream ends the answer early (logged), so the client sees
    a cut body rather than a silent gap."""
    started = False
    try:
        for lines in itertools.chain(first, rest):
            for at in range(0, len(lines), WRITE_LINES):
                data = joined(lines[at : at + WRITE_LINES])
                if started:
                    yield sep + data
                else:
                    yield begin + data
                    started = True
    except (ServeError, ExportError) as e:
        log.warning("window answer cut short: %s", e)
        raise CutShort() from None
    yield end if started else begin + end


def _json_array(first: list[list[bytes]], rest: Iterator[list[bytes]]) -> Iterator[bytes]:
    """`json.dumps(records)`, as upstream answers chat.json."""
    return _stream(first, rest, upstream_joined, sep=b", ", begin=b"[", end=b"]")


def _jsonl(first: list[list[bytes]], rest: Iterator[list[bytes]]) -> Iterator[bytes]:
    """Canonical lines, the archive's own line format (export's jsonl)."""
    return _stream(first, rest, _lines, sep=b"", begin=b"", end=b"")


def _lines(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


class CutShort(Exception):
    """Raised inside a streamed body so the server drops the connection (no final chunk)."""
