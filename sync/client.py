"""Talking to a peer over HTTP (urllib3), with every limit a hostile or broken peer needs.

- Timeouts: to connect, between bytes (urllib3's read timeout), and one deadline for a whole
  answer, retries included (a peer that sends a byte every second never trips a read timeout, so
  the body is read in small pieces against the deadline, each wait for bytes no longer than what
  is left of it).
- A body larger than its limit is refused as soon as the limit is passed (Content-Length is only a
  hint); compressed answers are not asked for and not accepted (no zip bomb).
- URLs are parsed once (`formats.urls`): the parts the checks see are the parts the connection
  uses, and a URL two parsers could read differently (a backslash, a userinfo, an odd port, a
  percent-encoded host) is refused. Redirects are followed only to the peer's exact origin (same
  scheme, host spelling and port), at most three hops: a peer cannot send us to fetch from someone
  else ("redirect to another host refused").
- Failures that may pass (no connection, a timeout, 5xx, 429) are retried with exponential
  backoff and jitter; the rest fail at once. 404 is an answer, not a failure: a listed file that
  another merge removed meanwhile.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

import urllib3

from formats.errors import InputError, UsageError
from formats.urls import StrictUrl, UrlError, parse_url, resolve_location

USER_AGENT = "chat-archiver-sync"
MAX_REDIRECTS = 3


class PeerError(InputError):
    """A peer's answer we cannot use. `transient`: worth asking again later; `unreachable`: no
    connection could be made at all (so asking it for anything else this pass is wasted time)."""

    def __init__(
        self, message: str, source: str | None = None, *, transient: bool = False, unreachable: bool = False
    ) -> None:
        super().__init__(message, source)
        self.transient = transient
        self.unreachable = unreachable


def check_base_url(url: str) -> str:
    """A peer's base URL, without a trailing slash; UsageError if it is not http(s)://host[:port][/path]
    read the same by every parser (`formats.urls`)."""
    try:
        parsed = parse_url(url)
    except UrlError as e:
        raise UsageError(
            f"--from {_shown(url)}: {e}; give a peer as http://HOST:PORT (optionally with a path prefix)"
        ) from None
    if "?" in parsed.target:
        raise UsageError(f"--from {_shown(url)}: give a peer as http://HOST:PORT (optionally with a path prefix)")
    return str(parsed).rstrip("/")


def _shown(url: str) -> str:
    """A URL as an error shows it: ASCII, and without what could be a user name or password."""
    head, at, tail = url.rpartition("@")
    if at and "//" in head:
        url = head.split("//", 1)[0] + "//…@" + tail
    return ascii(url)


class Peer:
    """One peer (`base` like `http://host:8008`), sharing a connection pool with the others."""

    def __init__(
        self,
        base: str,
        pool: urllib3.PoolManager,
        *,
        timeout: float = 20.0,
        total: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = check_base_url(base)
        self.origin = parse_url(self.base)
        self.pool = pool
        self.timeout = timeout  # between bytes
        self.connect_timeout = min(timeout, 10.0)
        self.total = total
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, max_bytes: int) -> bytes | None:
        """The body at `path` (quoted already), None for a 404; PeerError after the retries, or
        once `total` seconds have passed since the first try, whichever comes first."""
        try:
            url = resolve_location(self.origin, self.origin.target.rstrip("/") + path)
        except UrlError as e:
            raise PeerError(f"cannot ask for {path!r}: {e}", self.url(path)) from None
        deadline = time.monotonic() + self.total
        for attempt in range(self.retries + 1):
            try:
                return self._get_once(url, max_bytes, deadline)
            except PeerError as e:
                if not e.transient or attempt == self.retries:
                    raise
                pause = self.backoff * (2**attempt) * (0.5 + random.random())
                if time.monotonic() + pause >= deadline:
                    raise
            self.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def _timeout(self, where: str, deadline: float) -> urllib3.Timeout:
        """The usual timeouts, none past the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise PeerError("answer too slow (over the time allowed for a whole answer)", where, transient=True)
        return urllib3.Timeout(connect=min(self.connect_timeout, left), read=min(self.timeout, left))

    def _get_once(self, url: StrictUrl, max_bytes: int, deadline: float) -> bytes | None:
        for _hop in range(MAX_REDIRECTS + 1):
            where = str(url)
            try:
                # the parsed parts, never the text again: what was checked is what is connected to
                connection = self.pool.connection_from_host(url.host, url.port, url.scheme)
                response = connection.urlopen(
                    "GET",
                    url.target,
                    headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
                    preload_content=False,
                    decode_content=False,
                    redirect=False,
                    retries=False,
                    timeout=self._timeout(where, deadline),
                )
            except urllib3.exceptions.HTTPError as e:
                raise PeerError(
                    f"cannot reach the peer: {_reason(e)}", where, transient=True, unreachable=True
                ) from None
            try:
                status = response.status
                if status in (301, 302, 303, 307, 308):
                    url = self._redirect(url, response.headers.get("Location", ""))
                    continue
                if status == 404:
                    return None
                if status >= 500 or status == 429:
                    raise PeerError(f"HTTP {status}", where, transient=True)
                if status != 200:
                    raise PeerError(f"HTTP {status}", where)
                encoding = response.headers.get("Content-Encoding", "identity").lower()
                if encoding not in ("", "identity"):
                    raise PeerError(f"compressed answer ({encoding}) though none was asked for", where)
                return _read_body(response, where, max_bytes, deadline, self.timeout)
            finally:
                response.close()
                response.release_conn()
        raise PeerError(f"more than {MAX_REDIRECTS} redirects", str(url))

    def _redirect(self, url: StrictUrl, location: str) -> StrictUrl:
        """Where a redirect from `url` goes: only to the peer's own origin, read one way."""
        try:
            target = resolve_location(url, location)
        except UrlError as e:
            raise PeerError(
                f"redirect to another host refused: Location {ascii(location)[:200]} {e}", str(url)
            ) from None
        if target.origin != self.origin.origin:
            raise PeerError(f"redirect to another host refused: Location {ascii(location)[:200]}", str(url))
        return target


def _read_body(response: urllib3.BaseHTTPResponse, url: str, max_bytes: int, deadline: float, wait: float) -> bytes:
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise PeerError(f"body of {int(length):,} bytes is over the limit of {max_bytes:,}", url)
    parts: list[bytes] = []
    size = 0
    sock = getattr(response.connection, "sock", None)
    too_slow = PeerError("answer too slow (over the time allowed for a whole answer)", url, transient=True)
    try:
        while True:
            if sock is not None:  # wait for bytes no longer than the deadline allows
                sock.settimeout(max(0.001, min(wait, deadline - time.monotonic())))
            piece = response.read1(1 << 16)
            if not piece:
                break
            size += len(piece)
            if size > max_bytes:
                raise PeerError(f"body is over the limit of {max_bytes:,} bytes", url)
            if time.monotonic() > deadline:
                raise too_slow
            parts.append(piece)
    except urllib3.exceptions.HTTPError as e:
        if time.monotonic() >= deadline:
            raise too_slow from None
        raise PeerError(f"answer cut short: {_reason(e)}", url, transient=True) from None
    except OSError as e:
        if time.monotonic() >= deadline:
            raise too_slow from None
        raise PeerError(f"answer cut short: {e.strerror or e}", url, transient=True) from None
    return b"".join(parts)


def _reason(e: Exception) -> str:
    reason = getattr(e, "reason", None)
    text = str(reason or e)
    if "timed out" in text.lower() or isinstance(reason, urllib3.exceptions.TimeoutError):
        return "timed out"
    if "refused" in text.lower():
        return "connection refused"
    if "failed to resolve" in text.lower() or "name or service not known" in text.lower():
        return "the host name does not resolve"
    text = re.sub(r"\[Errno -?\d+\] ", "", text)  # Python's wording, not the user's
    return text.splitlines()[0][:200] if text else type(e).__name__


def new_pool(connections: int) -> urllib3.PoolManager:
    return urllib3.PoolManager(num_pools=16, maxsize=connections, block=False, retries=False)
