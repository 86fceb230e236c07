"""URLs parsed once, strictly: the one reading of a URL that decides where a request goes.

Two parsers that read one URL differently are a way to send a client somewhere its checks never
saw: `http://localhost:2\\x@peer:1/` is `peer:1` to RFC 3986 (`urlsplit`) but `localhost:2` to the
WHATWG parser (browsers, and urllib3's connection), since WHATWG reads a backslash as a slash. So a
URL from outside (a peer's base URL, a redirect's Location, a recorder's `--server`) is parsed here
into its parts, refused if any parser could read it another way, and the client then connects to
exactly these parts, never to the text again.

Refused: anything but printable ASCII (control bytes, spaces, tabs, non-ASCII), a backslash, a
userinfo (`user@`, where secrets and disguises hide), a host in percent-encoding or any but plain
letters, digits, dots and hyphens (an IPv6 literal in brackets without a zone id is allowed), a
port that is empty, has a leading zero or is out of range, a scheme not in the allowed list, and
a scheme without `//`. What is left reads the same to both parsers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from formats.errors import UsageError

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):", re.ASCII)
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\Z", re.ASCII)
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z", re.ASCII)
_PORT = re.compile(r"[1-9][0-9]{0,4}\Z", re.ASCII)
# path, query: RFC 3986 pchar, '/', '?', with well-formed percent escapes only; and '[' ']', which
# RFC 3986 keeps for hosts but every parser reads as part of a path (after the host, they move nothing)
_TARGET = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?\[\]]|%[0-9A-Fa-f]{2})*\Z", re.ASCII)


class UrlError(UsageError):
    """A URL this program will not use: which part is wrong, never the URL's secrets."""


@dataclass(frozen=True)
class StrictUrl:
    """A URL's parts as the client uses them: it connects to `host`:`port` and asks for `target`."""

    scheme: str
    host: str  # lower case; an IPv6 literal keeps its brackets
    port: int
    target: str  # path and query, starting with '/'

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def base(self) -> str:
        """`scheme://host[:port]`, the port shown only when it is not the scheme's default."""
        port = "" if DEFAULT_PORTS.get(self.scheme) == self.port else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"

    def __str__(self) -> str:
        return self.base + self.target


def _check_chars(url: str) -> None:
    if not url.isascii() or any(not "\x21" <= c <= "\x7e" for c in url):
        raise UrlError("holds a space, a control byte or a non-ASCII character")
    if "\\" in url:
        raise UrlError("holds a backslash (read as a slash by some parsers)")


def parse_url(url: str, schemes: tuple[str, ...] = ("http", "https")) -> StrictUrl:
    """The parts of an absolute URL `scheme://host[:port][/path][?query]`; UrlError if any parser
    could read it differently, or it has a userinfo or a fragment."""
    _check_chars(url)
    m = _SCHEME.match(url)
    if m is None or m.group(1) not in schemes:  # `HTTP:` too: one spelling, the one we compare
        raise UrlError(f"has a scheme other than {', '.join(s + '://' for s in schemes)} (lower case)")
    rest = url[m.end() :]
    if not rest.startswith("//"):
        raise UrlError(f"needs {m.group(1)}:// before the host")
    rest = rest[2:]
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if at != -1:
            end = min(end, at)
    authority, target = rest[:end], rest[end:]
    if "#" in target:
        raise UrlError("holds a fragment (#)")
    if "@" in authority:
        raise UrlError("holds a user name or password before the host (user@): give none")
    if "%" in authority:
        raise UrlError("holds a percent-encoded host or an IPv6 zone id")
    if authority.startswith("["):
        close = authority.find("]")
        host, port_text = authority[: close + 1], authority[close + 1 :]
        if close == -1 or not _IPV6.match(host):
            raise UrlError("holds a malformed IPv6 address")
    else:
        host, _colon, port_text = authority.partition(":")
        port_text = ":" + port_text if _colon else ""
        if not _HOST_NAME.match(host) or ".." in host:
            raise UrlError("holds no host, or a host that is not letters, digits, dots and hyphens")
    port = DEFAULT_PORTS[m.group(1)]
    if port_text:
        if not port_text.startswith(":") or not _PORT.match(port_text[1:]) or int(port_text[1:]) > 65535:
            raise UrlError("holds a port that is not a number from 1 to 65535 without leading zeros")
        port = int(port_text[1:])
    if target and not target.startswith("/"):
        target = "/" + target  # `http://host?q`: the path is empty
    if not _TARGET.match(target):
        raise UrlError("holds a malformed percent escape or a character a path cannot hold")
    return StrictUrl(m.group(1), host.lower(), port, target or "/")


def resolve_location(current: StrictUrl, location: str) -> StrictUrl:
    """The URL a redirect's `Location` names, from `current`; UrlError if it is one any parser
    could read differently. An absolute path stays on `current`'s origin; a relative one with
    no slash first is taken against the current path's folder."""
    _check_chars(location)
    if location.startswith("//") or _SCHEME.match(location):
        return parse_url(location if not location.startswith("//") else f"{current.scheme}:{location}")
    if location.startswith("/"):
        target = location
    else:
        folder = current.target.split("?", 1)[0].rsplit("/", 1)[0]
        target = f"{folder}/{location}"
    if "#" in target:
        target = target.split("#", 1)[0]
    if not _TARGET.match(target):
        raise UrlError("holds a malformed percent escape or a character a path cannot hold")
    return StrictUrl(current.scheme, current.host, current.port, target)
