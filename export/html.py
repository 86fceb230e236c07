"""`--format html`: one self-contained page that replays a window's chat, and the same page fed
from a URL (for `serve`).

The page (`export/player/`: player.html, player.css, player.js, shipped as package data) has a
play/pause button, a time slider and clock, a speed choice, a search box (user or text) and
keyboard control (space, arrows, Home/End, `/`); messages appear at their time with display name,
colour (the `color` tag, else the user's stable colour, as in the ass format), badges as text,
`/me` in italics, reply context and removed messages struck through from the moment a CLEARMSG or
CLEARCHAT removed them. Only the rows in view are in the DOM, so 100,000 messages stay smooth. It
loads nothing from anywhere (a Content-Security-Policy says so): CSS, script and data are inline.
`#t=SECONDS` in the page's address starts it that far into the window.

Data is embedded once, as compact JSON arrays in two `<script type="application/json">` tags:

- `chat-users`: `[[login, display-name, color, badges], ...]`, each distinct combination once;
- `chat-rows`: one array per record, time order, trailing empty strings left out:
  `[ms, "P", user, text, id, reply-parent-display-name, reply-parent-msg-body]` (PRIVMSG),
  `[ms, "U", user, text, id, system-msg or msg-id]` (USERNOTICE),
  `[ms, "M", user, text, target-msg-id]` (CLEARMSG), `[ms, "C", user, target login]` (CLEARCHAT);
  `ms` is milliseconds from the window start, `user` an index into chat-users. Other commands
  (JOIN, PART, ROOMSTATE, ...) are left out: the page shows chat.

Only `<` is escaped in that JSON (as `\\u003c`), so no `</script>` can come out of chat.

For `serve` (share engineer): `render_page(source_url=URL, title=..., start=..., end=...)` returns
the page without data; it fetches URL (same origin) expecting canonical records as JSON lines
(`/<channel>/chat.jsonl?since=&until=`, i.e. the `jsonl` export of that window) and slims them in the
browser exactly as `slim_row` does here. `start`/`end` (Unix seconds) set the timeline; without
`start` it begins at the first record. `render_page(records, ...)` embeds records instead.
`HtmlRenderer` is the streaming form the export uses (memory: the distinct users).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from functools import cache
from html import escape as html_escape
from importlib import resources
from typing import Any

import orjson

_CODES = {"PRIVMSG": "P", "USERNOTICE": "U", "CLEARMSG": "M", "CLEARCHAT": "C"}
_ASSETS = ("player.html", "player.css", "player.js")


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def page_json(value: object) -> str:
    """Compact JSON that is safe inside a `<script>` element (no `<` at all)."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # a lone surrogate, which orjson refuses: the standard library escapes it
        text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c")


class Slimmer:
    """Records to the page's rows (see the module docstring), collecting the users table."""

    def __init__(self, start: float) -> None:
        self.start_ms = start * 1000
        self.users: list[list[str]] = []
        self._index: dict[tuple[str, ...], int] = {}

    def slim_row(self, record: Mapping[str, Any]) -> list[Any] | None:
        code = _CODES.get(record.get("command"))  # type: ignore[arg-type]
        if code is None:
            return None
        try:
            ms = math.floor(float(record["time"]) * 1000 - self.start_ms + 0.5)
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        raw_tags = record.get("tags")
        tags: Mapping[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}
        params = record.get("params") or []
        login = _str(record.get("user")) or _str(tags.get("login"))
        user = (login, _str(tags.get("display-name")), _str(tags.get("color")), _str(tags.get("badges")))
        index = self._index.get(user)
        if index is None:
            index = self._index[user] = len(self.users)
            self.users.append(list(user))
        row: list[Any] = [ms, code, index, _str(params[1]) if len(params) > 1 else ""]
        if code == "P":
            row += [_str(tags.get("id")), _str(tags.get("reply-parent-display-name")),
                    _str(tags.get("reply-parent-msg-body"))]
        elif code == "U":
            row += [_str(tags.get("id")), _str(tags.get("system-msg")) or _str(tags.get("msg-id"))]
        elif code == "M":
            row.append(_str(tags.get("target-msg-id")))
        while len(row) > 4 and row[-1] == "":
            row.pop()
        return row


@cache
def _assets() -> tuple[str, str, str]:
    folder = resources.files("export") / "player"
    html, css, js = ((folder / name).read_text(encoding="utf-8") for name in _ASSETS)
    return html, css, js


def _page_parts(title: str, meta: Mapping[str, Any]) -> tuple[str, str, str]:
    """The page cut where the rows and the users go: (before rows, between, after users)."""
    html, css, js = _assets()
    page = (html.replace("{{TITLE}}", html_escape(title)).replace("{{CSS}}", css)
            .replace("{{META}}", page_json(dict(meta))))
    head, rest = page.split("{{ROWS}}")
    middle, tail = rest.split("{{USERS}}")
    return head, middle, tail.replace("{{JS}}", js)


class HtmlRenderer:
    """The page, streamed: `begin()`, `add(record)` per record (time order), `end()`."""

    def __init__(self, start: float, end: float | None = None, title: str = "chat") -> None:
        self.slimmer = Slimmer(start)
        self._head, self._middle, self._tail = _page_parts(
            title, {"title": title, "start": start, "end": end, "source": None})
        self._first = True

    def begin(self) -> str:
        return self._head + "["

    def add(self, record: Mapping[str, Any]) -> str:
        row = self.slimmer.slim_row(record)
        if row is None:
            return ""
        sep = "\n" if self._first else ",\n"
        self._first = False
        return sep + page_json(row)

    def end(self) -> str:
        return ("]" if self._first else "\n]") + self._middle + page_json(self.slimmer.users) + self._tail


def render_page(
    records: Iterable[Mapping[str, Any]] | None = None, *, source_url: str | None = None, title: str = "chat",
    start: float | None = None, end: float | None = None,
) -> str:
    """The player page: with `records` (time order) embedded, or fed from `source_url` (JSON lines of
    canonical records, fetched by the page). `start` defaults to the first record's time."""
    if source_url is not None:
        if records is not None:
            raise ValueError("give records or a source URL, not both")
        head, middle, tail = _page_parts(title, {"title": title, "start": start, "end": end, "source": source_url})
        return head + "[]" + middle + "[]" + tail
    listed = list(records or [])
    if start is None:
        start = float(listed[0]["time"]) if listed else 0.0
    renderer = HtmlRenderer(start, end, title)
    return renderer.begin() + "".join(renderer.add(r) for r in listed) + renderer.end()
