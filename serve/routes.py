"""Which answer a request gets, as data: wubloader's chat routes (WUBLOADER_HTTP.md), parsed.

Pure: a path and a query string in, a `Route` or a `Reject` out; no file is touched here. The
shell (`serve.app`) looks at disk only for a request that passed these checks.

Safety is decided here, once: every path segment that will name something on disk must match the
exact shape the archive writes (`formats.names`: a channel name as `check_channel_dirname` allows
it, `chat`, an hour `YYYY-MM-DDTHH`, a batch name `MM:SS-HASH.json`). So `..`, `%2e%2e` (a WSGI server decodes
it before we see it), `/` inside a segment (`%2f`), backslashes, NUL and absolute paths never reach
`os.path.join`. Upstream only refuses a leading `.`; refusing everything the archive cannot hold is
stricter and answers the same for every path a real client sends. Symlinks are the shell's job:
it checks that the resolved path is still under ROOT.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from export.window import ExportError, Window
from formats.names import Segment, batch_name_ok, channel_ok, hour_ok
from formats.times import TimeError, parse_time
from serve import extras

MAX_CHAT_JSON = 2 * 3600  # upstream's cap on /<ch>/chat.json (its merge was too slow beyond)
CAP_TEXT = "Cannot request more than 2h of chat"

MAX_QUERY = 4096  # a query string longer than this is not from any client of these routes


@dataclass(frozen=True)
class Reject:
    """An answer without a body of ours beyond one line: 400 (bad parameter), 403, 404, 405."""

    status: int
    reason: str


@dataclass(frozen=True)
class ListChannels:
    pass


@dataclass(frozen=True)
class ListQualities:
    channel: str


@dataclass(frozen=True)
class ListHours:
    channel: str


@dataclass(frozen=True)
class ListHour:
    channel: str
    hour: str


@dataclass(frozen=True)
class EmptyListing:
    """A listing of a folder this archive cannot hold (a video quality such as `source` or `480p`, a
    channel or hour name the archive never writes): `200 []`, as the restreamer answers for any
    folder it does not have. Nothing on disk is looked at, so no such name ever reaches a path."""


@dataclass(frozen=True)
class ChatWindow:
    """`/<ch>/chat.json` (capped, upstream's array) or `/<ch>/chat.jsonl` (uncapped, streamed)."""

    channel: str
    window: Window
    lines: bool


@dataclass(frozen=True)
class Metrics:
    pass


@dataclass(frozen=True)
class Health:
    pass


@dataclass(frozen=True)
class Player:
    """`/player/CH?start=&end=`: export's HTML chat player, fed from `/CH/chat.jsonl` (no cap).
    `/` and `/player`: the channel and hour browser that links to it."""

    channel: str | None
    window: Window | None = None


Route = (
    ListChannels
    | ListQualities
    | ListHours
    | ListHour
    | EmptyListing
    | Segment
    | ChatWindow
    | Metrics
    | Health
    | Player
    | extras.ExtrasListing
    | extras.ExtrasFile
)
NOT_FOUND = Reject(404, "Not found")


def _query(query: str) -> dict[str, list[str]] | Reject:
    if len(query) > MAX_QUERY:
        return Reject(400, "Query string too long")
    try:
        return parse_qs(query, keep_blank_values=True, strict_parsing=False, errors="strict", max_num_fields=32)
    except (ValueError, UnicodeDecodeError):
        return Reject(400, "Bad query string")


def parse_editor_time(text: str) -> float:
    """A time as the editor sends it (`2023-11-14T22:10:00.000`, UTC without an offset), or any
    form the one time parser (`formats.times`) reads. TimeError if it does not parse."""
    if "\x00" in text or len(text) > 64:
        raise TimeError("not a time")
    return parse_time(text)


def _window(query: dict[str, list[str]], capped: bool) -> Window | Reject:
    starts, ends = query.get("start", []), query.get("end", [])
    if len(starts) != 1 or len(ends) != 1:
        return Reject(400, "Params start and end are required, once each")
    try:
        start = parse_editor_time(starts[0])
        end = parse_editor_time(ends[0])
    except TimeError:
        return Reject(400, "Invalid timestamp")
    if end <= start:
        return Reject(400, "End must be after start")
    if capped and end - start > MAX_CHAT_JSON:
        return Reject(400, CAP_TEXT)
    try:
        return Window(start, end)
    except ExportError:
        return Reject(400, "Invalid timestamp")  # outside the years the archive can name


def route(method: str, path: str, query: str) -> Route | Reject:
    """The route a request names, or why it is refused. `path` is WSGI's PATH_INFO (decoded)."""
    if method not in ("GET", "HEAD"):
        return Reject(405, "Method not allowed")
    if "\x00" in path or "\\" in path or not path.startswith("/"):
        return Reject(400, "Bad path")
    if path == "/":
        return Player(None)
    parts = path[1:].split("/")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]  # a trailing slash names the same thing
    if any(p == "" or p.startswith(".") for p in parts):
        # upstream's rule (a leading period: hidden files and `..`) answers 403
        return Reject(403, "Bad path: a part may not be empty or start with a period")
    head, rest = parts[0], parts[1:]
    media = extras.route(head, rest)
    if media is not None:
        return media
    if head == "files":
        return _files(rest, query)
    if head == "segments":
        if len(rest) == 4 and rest[1] == "chat" and channel_ok(rest[0]) and batch_name_ok(rest[2], rest[3]):
            return Segment(rest[0], rest[2], rest[3])  # a batch name parses only with a real hour
        return NOT_FOUND
    if head == "metrics" and len(rest) <= 1:  # upstream also answers /metrics/<anything>
        return Metrics()
    if head == "healthz" and not rest:
        return Health()
    if head == "player" and len(rest) <= 1:
        if not rest:
            return Player(None)
        if not channel_ok(rest[0]):
            return NOT_FOUND
        parsed = _query(query)
        if isinstance(parsed, Reject):
            return parsed
        window = _window(parsed, capped=False)
        return window if isinstance(window, Reject) else Player(rest[0], window)
    if len(parts) == 2 and parts[1] in ("chat.json", "chat.jsonl") and channel_ok(head):
        parsed = _query(query)
        if isinstance(parsed, Reject):
            return parsed
        window = _window(parsed, capped=parts[1] == "chat.json")
        if isinstance(window, Reject):
            return window
        return ChatWindow(head, window, lines=parts[1] == "chat.jsonl")
    return NOT_FOUND


def _files(rest: list[str], query: str) -> Route | Reject:
    """The `/files` listings. Every listing of a folder that is not there answers `200 []` like the
    restreamer's (WUBLOADER_HTTP.md): a backfiller deployed with `--qualities source,480p,chat`
    reads each answer as JSON without looking at the status, so one 404 would end its whole pass."""
    if not rest:
        return ListChannels()
    if len(rest) > 3:
        return NOT_FOUND  # no such route upstream either
    if len(rest) == 3:
        bad = tombstones_param(query)  # checked first, for any quality, as upstream does
        if bad is not None:
            return bad
    ours = channel_ok(rest[0]) and (len(rest) == 1 or rest[1] == "chat")
    if not ours:
        return EmptyListing()
    if len(rest) == 1:
        return ListQualities(rest[0])
    if len(rest) == 2:
        return ListHours(rest[0])
    if hour_ok(rest[2]):
        return ListHour(rest[0], rest[2])
    return EmptyListing()


def tombstones_param(query: str) -> Reject | None:
    """Upstream's check of `?tombstones=`: `true` or `false`, any case; other values are 400."""
    parsed = _query(query)
    if isinstance(parsed, Reject):
        return parsed
    value = parsed.get("tombstones", ["false"])[-1].lower()
    if value not in ("true", "false"):
        return Reject(400, "tombstones must be one of: true, false")
    return None


def json_array(names: list[str]) -> bytes:
    """A list of names as upstream prints it: `json.dumps(list)` (`["a", "b"]`)."""
    import json  # noqa: PLC0415 (only the listings need it)

    return json.dumps(names).encode("ascii")
