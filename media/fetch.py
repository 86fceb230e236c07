"""Fetching one URL from a host nobody vouches for: every rule here is a defence (WUBLOADER_MEDIA.md).

Chat links and CDN answers are hostile input. A link may name an internal address (`localhost`,
`10.0.0.5`, the cloud's metadata service), a name whose DNS answer changes between the check and
the connection (DNS rebinding), a redirect to either, an endless or enormous body, a body that
drips one byte a minute, or a content type that lies. So:

- Planning is pure (`plan`): the URL is parsed, its scheme checked (`http`, `https`; none means
  `http`), its host name resolved ONCE with the resolver the caller passes in, and every address
  checked by the policy (global addresses only unless `allow_private`). The plan names the
  address; the connection is made to that address and no other, with the original name in the
  Host header and in TLS's SNI and certificate check. A second DNS answer is never asked for.
- Redirects (at most 5) are planned again by the same rules: a redirect to a private address is
  refused like a link to one.
- A declared length over the cap is refused before a byte of the body is read; reading stops at the
  cap; the whole fetch (every step, every retry) has one deadline, checked between reads and set as
  each socket read's timeout, so a slow drip ends at the deadline.
- The content type must be present and allowed (the caller's predicate); an `image/*` answer whose
  bytes are an HTML page is refused (a lying type).
- Each step is retried (up to 3 times) only for failures that may pass (a refused connection, a
  reset, a 5xx, a truncated body): never for a refusal of ours or a 4xx.

`Refused(reason)` and `Failed(reason)` carry a short reason used as a metric label.
"""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from formats.errors import ArchiverError

Resolver = Callable[[str, int], list[str]]
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

MAX_REDIRECTS = 5
TRIES = 4  # the first try and up to 3 retries, as wubloader
TIMEOUT = 60.0  # s, the whole fetch
MAX_BYTES = 128 << 20  # the body cap (wubloader's 128 MiB)
CHUNK = 64 << 10
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
ACCEPT = "image/avif,image/webp,image/png,image/*;q=0.9,video/*;q=0.8,*/*;q=0.5"


class FetchError(ArchiverError):
    """A fetch that gave nothing to keep. `reason` is short and fixed (a metric label)."""

    retryable = False

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class Refused(FetchError):
    """One of our defences said no (a private address, a body too big, a wrong type)."""


class Failed(FetchError):
    """The other side failed (a 4xx, a 5xx, a reset, a timeout); `retryable` says if a retry may help."""

    def __init__(self, reason: str, detail: str = "", *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(reason, detail)
        self.retryable = retryable
        self.status = status


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (the system's resolver, TCP)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise Failed("dns", f"{host}: {e}", retryable=True) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Our own table of IPv4 ranges that are never a public web server, so the answer does not hang
# on which patch release of Python holds which `is_global` table (the stdlib's answer must agree
# too).
_DENIED_V4 = tuple(
    _V4(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (the cloud's metadata service)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)

# Native IPv6 is judged only inside global unicast 2000::/3; these are its parts that are not.
_GLOBAL_V6 = _V6("2000::/3")
_DENIED_V6 = tuple(
    _V6(n)
    for n in (
        "2001::/23",  # IETF protocol assignments (Teredo 2001::/32 is unwrapped first)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)

# IPv6 forms that carry an IPv4 address in their last 32 bits: it is that address that is reached.
_EMBEDDING_V6 = tuple(
    _V6(n)
    for n in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # SIIT (IPv4-translated)
        "64:ff9b::/96",  # NAT64 well-known prefix
        "::/96",  # IPv4-compatible (deprecated; also :: and ::1)
    )
)


def _v4_ok(addr: ipaddress.IPv4Address) -> bool:
    return not any(addr in net for net in _DENIED_V4) and addr.is_global and not addr.is_multicast


def address_is_global(ip: str) -> bool:
    """Whether `ip` is a public unicast address (not loopback, private, link-local, multicast,
    reserved, shared, documentation, benchmarking ...). An IPv6 address that carries an IPv4 one
    (IPv4-mapped or -compatible, SIIT, NAT64, 6to4, Teredo) is judged by the IPv4 address it
    carries, since a relay or translator would deliver the request there; site-local fec0::/10,
    unique-local, link-local, multicast and every other range outside 2000::/3 are refused."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_ok(addr)
    if any(addr in net for net in _EMBEDDING_V6):
        return _v4_ok(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if addr.sixtofour is not None:
        return _v4_ok(addr.sixtofour)
    if addr.teredo is not None:
        server, client = addr.teredo
        return _v4_ok(server) and _v4_ok(client)
    return addr in _GLOBAL_V6 and not any(addr in net for net in _DENIED_V6)


@dataclass(frozen=True)
class Policy:
    """What a fetch may do. `allow_private` lets loopback and private mirrors through (tests,
    a mirror on the LAN); `address_ok` replaces the address check entirely (tests only)."""

    allow_private: bool = False
    timeout: float = TIMEOUT
    max_bytes: int = MAX_BYTES
    max_redirects: int = MAX_REDIRECTS
    tries: int = TRIES
    content_type_ok: Callable[[str], bool] = field(default=lambda ct: True)
    address_ok: Callable[[str], bool] | None = None
    retry_wait: float = 0.5

    def allows(self, ip: str) -> bool:
        if self.address_ok is not None:
            return self.address_ok(ip)
        return self.allow_private or address_is_global(ip)


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL's parts and the checked address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    ip: str  # the first checked address
    path: str  # path and query, as sent in the request line
    others: tuple[str, ...] = ()  # the name's other checked addresses, tried in turn if `ip` fails


def plan(url: str, resolve: Resolver, policy: Policy) -> Target:
    """The request `url` names, with the one address to connect to (pure but for `resolve`).
    Refused for a scheme other than http(s), a malformed URL, or an address the policy forbids."""
    if _SCHEME.match(url) is None:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise Refused("bad-url", str(e)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused("scheme", scheme)
    host = parts.hostname
    if not host or any(c in host for c in "\x00\r\n \t"):
        raise Refused("bad-url", "no host")
    if port is None:
        port = 443 if scheme == "https" else 80
    addresses = resolve(host, port)
    if not addresses:
        raise Failed("dns", f"{host}: no address")
    bad = [ip for ip in addresses if not policy.allows(ip)]
    if bad:
        raise Refused("private-address", f"{host} is {bad[0]}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if any(c in path for c in "\x00\r\n "):
        raise Refused("bad-url", "control characters in the path")
    return Target(url, scheme, host, port, addresses[0], path, tuple(addresses[1:]))


@dataclass(frozen=True)
class Fetched:
    url: str  # as asked for
    redirects: tuple[str, ...]  # the URLs redirected to, in order
    content_type: str
    body: bytes


class _DeadlineReader(io.RawIOBase):
    """A socket's reader (`raw`, from socket.makefile) that gives each read only the time left
    until `deadline`, so a server dripping its status line and headers a byte at a time cannot
    outlast the fetch."""

    def __init__(self, sock: socket.socket, raw: io.RawIOBase, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = raw
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int | None:  # type: ignore[override]
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the fetch's time ran out")
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()  # lets the socket close once the connection has let it go too
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """A response whose every read, the head's as the body's, ends at the fetch's deadline."""

    def __init__(self, sock: socket.socket, *args: object, deadline: float, **kwargs: object) -> None:
        super().__init__(sock, *args, **kwargs)  # type: ignore[arg-type]
        own = io.BufferedReader(_DeadlineReader(sock, sock.makefile("rb", buffering=0), deadline))
        self.fp.close()  # the plain reader http.client made; `own` keeps the socket open
        self.fp = own  # type: ignore[assignment]


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a checked address; Host is the name (http.client sends self.host).
    Its response reads, head and body, end at `deadline` (time.monotonic)."""

    def __init__(self, target: Target, timeout: float, deadline: float | None = None) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._ips = (target.ip, *target.others)
        if deadline is not None:
            self.response_class = functools.partial(_DeadlineResponse, deadline=deadline)  # type: ignore[assignment]

    def connect(self) -> None:
        """Connect to the first checked address that answers (a name with IPv6 and IPv4 addresses
        on a host without IPv6), never to an address that was not checked."""
        error: OSError | None = None
        for ip in self._ips:
            try:
                self.sock = socket.create_connection((ip, self.port), self.timeout)
            except OSError as e:
                error = e
                continue
            return
        assert error is not None
        raise error


class _PinnedHTTPS(_PinnedHTTP):
    """HTTPS to a checked address; SNI and the certificate check use the name."""

    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext, deadline: float | None = None) -> None:
        super().__init__(target, timeout, deadline)
        self._context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Failed("timeout", "the fetch's time ran out")
    return left


def _looks_like_html(body: bytes) -> bool:
    head = body[:256].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<!--"))


class Fetcher:
    """Fetches URLs under one policy. `resolve` is the resolver (injected for tests); `clock` the
    monotonic clock the deadline is measured with."""

    def __init__(
        self,
        policy: Policy,
        resolve: Resolver = system_resolver,
        *,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy
        self.resolve = resolve
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.sleep = sleep

    def fetch(self, url: str) -> Fetched:
        """The body at `url` after at most `max_redirects` redirects. Raises Refused or Failed."""
        deadline = time.monotonic() + self.policy.timeout
        redirects: list[str] = []
        current = url
        while True:
            status, headers, body = self._step_with_retries(current, deadline)
            if status in (301, 302, 303, 307, 308):
                location = headers.get("location")
                if not location:
                    raise Failed("bad-redirect", f"{status} without Location")
                if len(redirects) >= self.policy.max_redirects:
                    raise Refused("too-many-redirects", str(len(redirects) + 1))
                current = urljoin(current, location)
                redirects.append(current)
                continue
            content_type = headers.get("content-type", "")
            return Fetched(url, tuple(redirects), content_type, body)

    def _step_with_retries(self, url: str, deadline: float) -> tuple[int, dict[str, str], bytes]:
        tries = max(1, self.policy.tries)
        for attempt in range(1, tries + 1):
            try:
                return self._step(url, deadline)
            except Failed as e:
                if not e.retryable or attempt == tries:
                    raise
                wait = min(self.policy.retry_wait * attempt, max(0.0, deadline - time.monotonic()))
                self.sleep(wait)
                _remaining(deadline)
        raise AssertionError("unreachable")

    def _step(self, url: str, deadline: float) -> tuple[int, dict[str, str], bytes]:
        target = plan(url, self.resolve, self.policy)
        timeout = _remaining(deadline)
        conn: _PinnedHTTP
        if target.scheme == "https":
            conn = _PinnedHTTPS(target, timeout, self.ssl_context, deadline)
        else:
            conn = _PinnedHTTP(target, timeout, deadline)
        response: http.client.HTTPResponse | None = None
        try:
            try:
                conn.request(
                    "GET",
                    target.path,
                    headers={"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "identity"},
                )
                response = conn.getresponse()
            except TimeoutError:
                raise Failed("timeout", target.host, retryable=True) from None
            except ssl.SSLError as e:
                raise Failed("tls", str(e)) from None
            except (OSError, http.client.HTTPException) as e:
                raise Failed("connection", f"{target.host}: {e}", retryable=True) from None
            headers = {k.lower(): v for k, v in response.getheaders()}
            status = response.status
            if status in (301, 302, 303, 307, 308):
                return status, headers, b""
            if 400 <= status < 500:
                raise Failed("http-4xx", f"{status} from {target.host}", status=status)
            if status >= 500 or status < 200 or status >= 300:
                raise Failed("http-status", f"{status} from {target.host}", retryable=status >= 500, status=status)
            content_type = headers.get("content-type", "")
            if not content_type or not self.policy.content_type_ok(content_type):
                raise Refused("content-type", repr(content_type[:80]))
            declared = headers.get("content-length")
            length = None
            if declared is not None and "chunked" not in headers.get("transfer-encoding", "").lower():
                try:
                    length = int(declared)
                except ValueError:
                    raise Failed("bad-length", repr(declared[:40])) from None
                if length > self.policy.max_bytes:
                    raise Refused("too-large", f"{length} bytes declared")
            body = self._read(conn, response, deadline)
            if length is not None and len(body) != length:
                raise Failed("truncated", f"{len(body)} of {length} bytes", retryable=True)
            lowered = content_type.lower()
            if lowered.startswith("image/") and "svg" not in lowered and _looks_like_html(body):
                raise Refused("not-an-image", f"{content_type} but the body is markup")
            return status, headers, body
        finally:
            if response is not None:
                response.close()
            conn.close()

    def _read(self, conn: _PinnedHTTP, response: http.client.HTTPResponse, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            left = _remaining(deadline)
            if conn.sock is not None:
                conn.sock.settimeout(left)
            try:
                chunk = response.read1(CHUNK)
            except TimeoutError:
                raise Failed("timeout", "reading the body") from None
            except http.client.IncompleteRead:
                raise Failed("truncated", "the body ended early", retryable=True) from None
            except (OSError, http.client.HTTPException) as e:
                raise Failed("connection", str(e), retryable=True) from None
            if not chunk:
                break
            size += len(chunk)
            if size > self.policy.max_bytes:
                raise Refused("too-large", f"over {self.policy.max_bytes} bytes read")
            chunks.append(chunk)
        _remaining(deadline)
        return b"".join(chunks)


def link_content_type_ok(content_type: str) -> bool:
    """Linked media wubloader keeps: an image, a video or a PDF."""
    ct = content_type.split(";", 1)[0].strip().lower()
    return ct.startswith(("image/", "video/")) or ct == "application/pdf"
