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

Data is embedded once, as one compact JSON array in a `<script type="application/json">` tag
(`chat-rows`), in time order, trailing empty strings left out. Two kinds of row:

- a user (an array starting with a string, the login): `[login, display-name, color, badges]`; users are
  numbered 0, 1, ... in the order they are defined, and a message names its user by that number;
- a message (starting with a number, `ms`: milliseconds from the window start):
  `[ms, "P", user, text, reply-parent-display-name, reply-parent-msg-body]` (PRIVMSG),
  `[ms, "U", user, text, system-msg or msg-id]` (USERNOTICE),
  `[ms, "M", user, text, target]` (CLEARMSG), `[ms, "C", user, target login]` (CLEARCHAT).
  Chat lines (P and U) are numbered 0, 1, ... in order; a CLEARMSG's `target` is the number of the
  line whose `id` is its `target-msg-id` (-1 when that line is not in the window).

With the window's images (`export.emotes.ChatImages`), a chat line that shows emotes gets one more
element at the end (after its other fields, kept even when those are empty): `[[start, end, image],
...]`, code point spans of the shown text (the action text of a `/me`) and the index of the image
that replaces them. A user row's badges are looked up by `set/version` (each resolved once, from
the badge snapshot in force at the first message that shows it). The images come once each,
after the rows, in a second JSON tag (`chat-images`): `{"e": [data URI, ...], "b": {"set/version":
index}}`. The page stays one file that loads nothing (the Content-Security-Policy allows images from
`data:` only); an image that is not on hand leaves the word as text.

So message ids (a third of a Twitch line) are resolved here and never written, and a user is
written once, before their first message. Memory is bounded: the ids of the last `RECENT_IDS`
lines (moderators delete within seconds, not hours) and the last `RECENT_USERS` users (one seen
again after that is defined again). Other commands (JOIN, PART, ROOMSTATE, ...) are left out:
the page shows chat. Only `<` is escaped in that JSON (as `\\u003c`), so no `</script>` can come
out of chat.

For `serve` (share engineer): `render_page(source_url=URL, title=..., start=..., end=...)` returns
the page without data; it fetches URL (same origin) expecting canonical records as JSON lines
(`/<channel>/chat.jsonl?since=&until=`, i.e. the `jsonl` export of that window) and turns them into
rows in the browser as `Slimmer` does here. `start`/`end` (Unix seconds) set the timeline; without
`start` it begins at the first record. `render_page(records, ...)` embeds records instead.
`HtmlRenderer` is the streaming form the export uses.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from html import escape as html_escape
from importlib import resources
from typing import Any

import orjson

from export.emotes import ChatImages, data_uri
from formats import speedups

RECENT_IDS = 200_000  # message ids a CLEARMSG can reach back to (33 minutes at 100 messages/s)
RECENT_USERS = 50_000  # distinct users (with their colour and badges) remembered
_CODES = {"PRIVMSG": "P", "USERNOTICE": "U", "CLEARMSG": "M", "CLEARCHAT": "C"}
_ASSETS = ("player.html", "player.css", "player.js")
_PLACEHOLDER = re.compile(r"\{\{(TITLE|CSS|META|JS)\}\}")
_ROW_FIELDS = {"P": 6, "U": 5}  # a chat line's fields before its emote spans
_NO_TAGS: dict[str, Any] = {}
_PAGE_COMMANDS = tuple(b'{"command":"%s",' % command.encode() for command in _CODES)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def page_json(value: object) -> str:
    """Compact JSON that is safe inside a `<script>` element (no `<` at all)."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # a lone surrogate, which orjson refuses: the standard library escapes it
        text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c")


def _trimmed(row: list[Any], keep: int) -> list[Any]:
    while len(row) > keep and row[-1] == "":
        row.pop()
    return row


class PageImages:
    """The page's image table: each image once, numbered in the order first used."""

    def __init__(self, images: ChatImages) -> None:
        self.images = images
        self.uris: list[str] = []
        self._index: dict[str, int] = {}
        self.badges: dict[str, int] = {}

    def index(self, key: str) -> int:
        """The image's number in the table, -1 when it cannot be embedded."""
        found = self._index.get(key)
        if found is None:
            data = self.images.image(key)
            uri = data_uri(data) if data is not None else None
            found = -1
            if uri is not None:
                found = len(self.uris)
                self.uris.append(uri)
            self._index[key] = found
        return found

    def spans(self, record: Mapping[str, Any]) -> list[list[int]]:
        out = []
        for start, end, key in self.images.spans(record):
            i = self.index(key)
            if i >= 0:
                out.append([start, end, i])
        return out

    def note_badges(self, badges: str, t: float) -> None:
        """Resolve the badges of a user row the first time each `set/version` is seen."""
        for badge in badges.split(",")[:50] if badges else ():
            if badge in self.badges:
                continue
            set_id, _, version = badge.partition("/")
            key = self.images.badge_key(set_id, version, t)
            i = self.index(key) if key else -1
            if i >= 0:
                self.badges[badge] = i
            elif len(self.badges) < 10_000:
                self.badges[badge] = -1

    def json(self) -> str:
        return page_json({"e": self.uris, "b": {k: v for k, v in self.badges.items() if v >= 0}})


# What the page makes of a record, without the state of the page (user and line numbers): the
# command's code, the user's row as page JSON (also the key the user is numbered by), the message
# id (a chat line: "" when none), the CLEARMSG target ("" when none) and the fields after the user
# number as page JSON (`page_json(fields)` without its brackets, trailing empty strings left out but
# the text). The row is then `[ms,code,user,` + fields + `]`, a CLEARMSG's with `,target number`.
PageFields = tuple[str, str, str, str, str]


def page_fields(record: Mapping[str, Any]) -> PageFields | None:
    """The page's fields of `record` (see `PageFields`), None for a command the page does not show.
    (Each field is `_str` of its value, written out: this runs once a message.)"""
    code = _CODES.get(record.get("command"))  # type: ignore[arg-type]
    if code is None:
        return None
    raw_tags = record.get("tags")
    tag = raw_tags.get if isinstance(raw_tags, dict) else _NO_TAGS.get
    params = record.get("params") or []
    login = record.get("user")
    if not (isinstance(login, str) and login):
        login = tag("login")
        if not isinstance(login, str):
            login = ""
    shown, color, badges = tag("display-name"), tag("color"), tag("badges")
    user = [
        login,
        shown if isinstance(shown, str) else "",
        color if isinstance(color, str) else "",
        badges if isinstance(badges, str) else "",
    ]
    text = params[1] if len(params) > 1 else ""
    fields = [text if isinstance(text, str) else ""]
    msg_id = target = ""
    if code == "P":
        name, body = tag("reply-parent-display-name"), tag("reply-parent-msg-body")
        fields.append(name if isinstance(name, str) else "")
        fields.append(body if isinstance(body, str) else "")
    elif code == "U":
        fields.append(_str(tag("system-msg")) or _str(tag("msg-id")))
    if code in ("P", "U"):
        msg_id = _str(tag("id"))
    elif code == "M":
        target = _str(tag("target-msg-id"))
    return code, page_json(_trimmed(user, 1)), msg_id, target, page_json(_trimmed(fields, 1))[1:-1]


def page_line_py(line: bytes) -> PageFields | None:
    """`page_fields` of the record whose canonical line is `line` (a stored line export passes
    through). The reference; `page_line` is its compiled twin (native/export.c) when built."""
    return page_fields(orjson.loads(line))


page_line = speedups.twin(page_line_py, "export_page_line")

_LIMITS = (RECENT_USERS, RECENT_IDS)
TextsFn = Callable[[Mapping[str, Any], list[str]], None]


def page_rows_py(  # noqa: PLR0917 (the compiled twin's argument list)
    rows: Iterable[Sequence[Any]],
    start_ms: float,
    users: OrderedDict[str, int],
    ids: OrderedDict[str, int],
    counts: list[int],
    texts: TextsFn,
    limits: tuple[int, int],
) -> list[str]:
    """The page JSON of the rows export's `rows` add (time, range, canonical line, place, and the
    record when the export built one), as `Slimmer.text` writes them, updating the page's state: the
    users by their row (`users`, at most `limits[0]`), the chat lines' ids (`ids`, at most
    `limits[1]`), `counts` (users and chat lines numbered so far). A row of five goes to
    `texts(record, out)`, unless its record is a dict of a command the page does not show; a
    stored line the page shows is read by `page_line_py` (and left out, as `Slimmer.rows` leaves
    it, when its time is no number of milliseconds). The reference;
    `page_rows` is its compiled twin (native/export.c) when built."""
    out: list[str] = []
    for row in rows:
        if len(row) == 5:
            record = row[4]
            if type(record) is dict:
                command = record.get("command")
                if command is None or (type(command) is str and command not in _CODES):
                    continue  # a command the page does not show (`page_fields` is None): not asked
            texts(record, out)
            continue
        line = row[2]
        if not line.startswith(_PAGE_COMMANDS):
            continue
        fields = page_line_py(line)
        if fields is None:  # pragma: no cover - the command is one the page shows
            continue
        code, user_json, msg_id, target, tail = fields
        try:  # Slimmer.ms
            ms = math.floor(float(row[0]) * 1000 - start_ms + 0.5)
        except (TypeError, ValueError, OverflowError):  # a time beyond a float's range (the parts' line_time)
            continue
        user = users.get(user_json)
        if user is None:  # Slimmer._user
            user = users[user_json] = counts[0]
            counts[0] += 1
            if len(users) > limits[0]:
                users.popitem(last=False)
            out.append(user_json)
        else:
            users.move_to_end(user_json)
        if code in {"P", "U"}:
            if msg_id:
                ids[msg_id] = counts[1]
                if len(ids) > limits[1]:
                    ids.popitem(last=False)
            counts[1] += 1
            out.append(f'[{ms},"{code}",{user},{tail}]')
        elif code == "M":
            out.append(f'[{ms},"M",{user},{tail},{ids.get(target, -1) if target else -1}]')
        else:
            out.append(f'[{ms},"C",{user},{tail}]')
    return out


page_rows = speedups.twin(page_rows_py, "export_page_rows")


class Slimmer:
    """Records to the page's rows (see the module docstring), one record at a time: `rows(record)`
    as arrays, or `text(fields, ms)` as page JSON (what the renderer writes)."""

    def __init__(self, start: float, images: ChatImages | None = None) -> None:
        self.start_ms = start * 1000
        self.images = PageImages(images) if images is not None else None
        self.users: OrderedDict[str, int] = OrderedDict()  # by the user's row as page JSON
        self.ids: OrderedDict[str, int] = OrderedDict()
        self.counts = [0, 0]  # users numbered, chat lines numbered

    def _user(self, user_json: str, out: list[str]) -> int:
        """The user's number; a user seen first (or again after `RECENT_USERS` others) gets a new
        one, and its row goes to `out`."""
        users = self.users
        index = users.get(user_json)
        if index is not None:
            users.move_to_end(user_json)
            return index
        index = users[user_json] = self.counts[0]
        self.counts[0] += 1
        if len(users) > RECENT_USERS:
            users.popitem(last=False)
        out.append(user_json)
        return index

    def _line(self, code: str, msg_id: str) -> None:
        """A chat line (P or U) numbered, its id remembered for a CLEARMSG."""
        if msg_id:
            ids = self.ids
            ids[msg_id] = self.counts[1]
            if len(ids) > RECENT_IDS:
                ids.popitem(last=False)
        self.counts[1] += 1

    def ms(self, time: Any) -> int | None:
        """Milliseconds from the window start, None when `time` is not a number."""
        try:
            return math.floor(float(time) * 1000 - self.start_ms + 0.5)
        except (TypeError, ValueError, OverflowError):
            return None

    def text(self, fields: PageFields, ms: int, out: list[str]) -> None:
        """The page JSON of the rows a record adds (its user's row when new, then its own) to
        `out`, from its `page_fields` and its `ms` (without images: a row with emote spans needs
        `rows`)."""
        code, user_json, msg_id, target, tail = fields
        user = self._user(user_json, out)
        if code == "M":
            out.append(f'[{ms},"M",{user},{tail},{self.ids.get(target, -1) if target else -1}]')
            return
        if code != "C":
            self._line(code, msg_id)
        out.append(f'[{ms},"{code}",{user},{tail}]')

    def rows(self, record: Mapping[str, Any]) -> list[list[Any]]:
        """The rows `record` adds, as arrays: none (a command the page does not show), or its
        user's row when that is new, then its own."""
        fields = page_fields(record)
        if fields is None:
            return []
        ms = self.ms(record.get("time"))
        if ms is None:
            return []
        code, user_json, msg_id, target, tail = fields
        if self.images is not None:
            badges = _tag_str(record, "badges")
            self.images.note_badges(badges, float(record["time"]))
        out: list[str] = []
        user = self._user(user_json, out)
        rows: list[list[Any]] = [json.loads(text) for text in out]
        row: list[Any] = [ms, code, user, *json.loads(f"[{tail}]")]
        if code in ("P", "U"):
            self._line(code, msg_id)
            spans = self.images.spans(record) if self.images is not None else []
            if spans:
                row += [""] * (_ROW_FIELDS[code] - len(row))
                row.append(spans)
        elif code == "M":
            row.append(self.ids.get(target, -1) if target else -1)
        rows.append(row)
        return rows


def _tag_str(record: Mapping[str, Any], key: str) -> str:
    tags = record.get("tags")
    return _str(tags.get(key)) if isinstance(tags, dict) else ""


@cache
def _assets() -> tuple[str, str, str]:
    folder = resources.files("export") / "player"
    html, css, js = ((folder / name).read_text(encoding="utf-8") for name in _ASSETS)
    return html, css, js


def _page_parts(title: str, meta: Mapping[str, Any]) -> tuple[str, str, str]:
    """The page cut where the rows go and where the images go."""
    html, css, js = _assets()
    values = {"TITLE": html_escape(title), "CSS": css, "META": page_json(dict(meta)), "JS": js}
    head, tail = html.split("{{ROWS}}")
    middle, tail = tail.split("{{IMAGES}}")

    def fill(part: str) -> str:  # one pass: what goes in (a title, say) is never read for placeholders
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], part)

    return fill(head), fill(middle), fill(tail)


class HtmlRenderer:
    """The page, streamed: `begin()`, `add(record)` per record (time order), `end()`."""

    def __init__(
        self, start: float, end: float | None = None, title: str = "chat", images: ChatImages | None = None
    ) -> None:
        self.slimmer = Slimmer(start, images)
        meta = {"title": title, "start": start, "end": end, "source": None}
        self._head, self._middle, self._tail = _page_parts(title, meta)
        self._first = True

    def begin(self) -> str:
        return self._head + "["

    def _joined(self, texts: list[str]) -> str:
        if not texts:
            return ""
        lead = "\n" if self._first else ",\n"
        self._first = False
        return lead + ",\n".join(texts)

    def add(self, record: Mapping[str, Any]) -> str:
        out: list[str] = []
        self._texts(record, out)
        return self._joined(out)

    def _texts(self, record: Mapping[str, Any], out: list[str]) -> None:
        """The page JSON of the rows `record` adds, to `out`."""
        slimmer = self.slimmer
        if slimmer.images is not None:  # emote spans: the rows as arrays
            out.extend([page_json(row) for row in slimmer.rows(record)])
            return
        fields = page_fields(record)
        if fields is None:
            return
        ms = slimmer.ms(record.get("time"))
        if ms is not None:
            slimmer.text(fields, ms, out)

    def add_stored(self, time: Any, line: bytes) -> str:
        """`add` of a record given as its time and canonical line, decoded only if the page shows
        it (its keys are sorted: the command comes first)."""
        return self.add_rows([(time, 0, line, 0)])

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> str:
        """`add(row[4])` of a row of five, else `add_stored(row[0], row[2])` (export's rows: time,
        range, canonical line, place, and the record when the export built one), in one loop: the
        same text as adding them one by one. A stored line the page shows is read by `page_line`
        (the compiled twin, without a dict), unless emote images need the record."""
        out: list[str] = []
        slimmer = self.slimmer
        if slimmer.images is not None:
            for row in rows:
                if len(row) == 5:
                    self._texts(row[4], out)
                elif row[2].startswith(_PAGE_COMMANDS):
                    self._texts(orjson.loads(row[2]), out)
            return self._joined(out)
        return self._joined(
            page_rows(rows, slimmer.start_ms, slimmer.users, slimmer.ids, slimmer.counts, self._texts, _LIMITS)
        )

    def end(self) -> str:
        images = self.slimmer.images.json() if self.slimmer.images is not None else page_json({"e": [], "b": {}})
        return ("]" if self._first else "\n]") + self._middle + images + self._tail


def render_page(
    records: Iterable[Mapping[str, Any]] | None = None,
    *,
    source_url: str | None = None,
    title: str = "chat",
    start: float | None = None,
    end: float | None = None,
    images: ChatImages | None = None,
) -> str:
    """The player page: with `records` (time order) embedded, or fed from `source_url` (JSON lines of
    canonical records, fetched by the page). `start` defaults to the first record's time."""
    if source_url is not None:
        if records is not None:
            raise ValueError("give records or a source URL, not both")
        head, middle, tail = _page_parts(title, {"title": title, "start": start, "end": end, "source": source_url})
        return head + "[]" + middle + page_json({"e": [], "b": {}}) + tail
    listed = list(records or [])
    if start is None:
        start = float(listed[0]["time"]) if listed else 0.0
    renderer = HtmlRenderer(start, end, title, images)
    return renderer.begin() + "".join(renderer.add(r) for r in listed) + renderer.end()
