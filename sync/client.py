"""Talking to a peer over HTTP (urllib3), with every limit a hostile or broken peer needs.

- Timeouts: to connect, between bytes (urllib3's read timeout), and one deadline for a whole
  answer, retries included (a peer that sends a byte every second never trips a read timeout, so
  the body is read in small pieces against the deadline, each wait for bytes no longer than what
  is left of it).
- A body larger than its limit is refused as soon as the limit is passed (Content-Length is only a
  hint); compressed answers are not asked for and not accepted (no zip bomb).
- Redirects are followed only to the same scheme, host and port, at most three hops: a peer
  cannot send us to fetch from someone else.
- Failures that may pass (no connection, a timeout, 5xx, 429) are retried with exponential
  backoff and jitter; the rest fail at once. 404 is an answer, not a failure: a listed file that
  another merge removed meanwhile.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import urllib3

from formats.errors import InputError, UsageError

USER_AGENT = "chat-archiver-sync"
MAX_REDIRECTS = 3


class PeerError(InputError):
    """A peer's answer we cannot use. `transient`: worth asking again later."""

    def __init__(self, message: str, source: str | None = None, *, transient: bool = False) -> None:
        super().__init__(message, source)
        self.transient = transient


def check_base_url(url: str) -> str:
    """A peer's base URL, without a trailing slash; UsageError if it is not http(s)://host[:port][/path]."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UsageError(f"--from {url!r}: give a peer as http://HOST:PORT (optionally with a path prefix)")
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise UsageError(f"--from {url!r}: bad port") from None
    return url.rstrip("/")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


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
        url = self.url(path)
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

    def _timeout(self, url: str, deadline: float) -> urllib3.Timeout:
        """The usual timeouts, none past the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise PeerError("answer too slow (over the time allowed for a whole answer)", url, transient=True)
        return urllib3.Timeout(connect=min(self.connect_timeout, left), read=min(self.timeout, left))

    def _get_once(self, url: str, max_bytes: int, deadline: float) -> bytes | None:
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                response = self.pool.request(
                    "GET",
                    url,
                    headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
                    preload_content=False,
                    decode_content=False,
                    redirect=False,
                    retries=False,
                    timeout=self._timeout(url, deadline),
                )
            except urllib3.exceptions.HTTPError as e:
                raise PeerError(f"cannot reach the peer: {_reason(e)}", url, transient=True) from None
            try:
                status = response.status
                if status in (301, 302, 303, 307, 308):
                    target = urljoin(url, response.headers.get("Location", ""))
                    if _origin(target) != _origin(self.base):
                        raise PeerError(f"redirects to another host ({_origin(target)[1] or '?'}): not followed", url)
                    url = target
                    continue
                if status == 404:
                    return None
                if status >= 500 or status == 429:
                    raise PeerError(f"HTTP {status}", url, transient=True)
                if status != 200:
                    raise PeerError(f"HTTP {status}", url)
                encoding = response.headers.get("Content-Encoding", "identity").lower()
                if encoding not in ("", "identity"):
                    raise PeerError(f"compressed answer ({encoding}) though none was asked for", url)
                return _read_body(response, url, max_bytes, deadline, self.timeout)
            finally:
                response.close()
                response.release_conn()
        raise PeerError(f"more than {MAX_REDIRECTS} redirects", url)


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
