"""Links in a message's text, found as wubloader finds them (pure).

The pattern (WUBLOADER_MEDIA.md): an optional `http://` or `https://`, a host name with at least
one dot whose last label starts with a letter (so `1.5/10` and bare IP addresses are not links),
an optional port and an optional path. A match with neither a scheme nor a path (`fart.wav`) is
ignored, and a match directly after a letter, digit, `_` or `/` is not a link (it is part of a
longer word or path).
"""

from __future__ import annotations

import re

_LINK = re.compile(
    r"(?<![\w/])"  # not inside a word or a path
    r"(?P<scheme>https?://)?"
    r"(?P<host>(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*)"
    r"(?P<port>:[0-9]{1,5})?"
    r"(?P<path>/\S*)?",
    re.IGNORECASE,
)
MAX_LINKS = 16  # per message: a wall of links is spam, not media worth a fetch each
_TRAILING = re.compile(r"(\.\.\.|[^A-Za-z0-9])$")


def find_links(text: str) -> list[str]:
    """The links in `text`, as found (not normalised), in order, once each."""
    out: dict[str, None] = {}
    for m in _LINK.finditer(text):
        if not m.group("scheme") and not m.group("path"):
            continue
        out[m.group(0)] = None
        if len(out) >= MAX_LINKS:
            break
    return list(out)


def strip_trailing(url: str) -> str | None:
    """The link without its trailing punctuation (`...` or one non-alphanumeric character), for
    the one retry after a 4xx; None when nothing would be stripped."""
    m = _TRAILING.search(url)
    if m is None:
        return None
    stripped = url[: m.start()]
    return stripped or None
