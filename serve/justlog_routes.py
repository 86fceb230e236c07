"""Which justlog/rustlog API request a URL is, as data (shared/spec/JUSTLOG_API.md).

Pure: method, path, query string and the clock's reading in; a request, a `Redirect`, a
`Reject`, or None (not a justlog path: the wubloader routes answer it) out. Nothing here reads
the index; `serve.justlog` resolves logins and ids and answers.

Choices where justlog and rustlog differ (the spec's recommendations, and why where it gives none):

* A flag counts when its key is present, whatever its value (`?json=0` is JSON), as justlog.
  Format precedence: `json` (or `type=json`, or a `Content-Type: application/json` request), then
  `jsonBasic`, `ndjson`, `raw` (or `type=raw`), then text: justlog's order, with rustlog's extra
  formats between.
* `from`/`to` take both forms: all digits is Unix seconds, a closed range as justlog (so `to`
  counts its whole second); anything else is an RFC 3339 date-time, half-open as rustlog. One of
  the two alone means the other is "now", as justlog. They are honoured on every log route,
  dated or not; an undated route without them redirects (302, justlog's) to the newest month or
  day that has logs.
* A path with an upper-case letter is redirected (302) to its lower-case form with the query
  re-encoded and a `?` always appended, as justlog; trailing slashes are ignored, as both.
* Bad input is a 400 with one plain line (a date that does not exist, a non-number, a query
  string that is too long, not UTF-8, or holds NUL), never an exception.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from serve.routes import Reject

MAX_QUERY = 8192  # longer than any search a person types; anything past it is refused (400)
MAX_FIELDS = 64
MAX_LIMIT = 10_000_000
MAX_OFFSET = 100_000  # rows skipped are read and thrown away: one request must not scan a whole channel
WORD = re.compile(r"[A-Za-z0-9_]+")  # justlog's `\w+` for path segments (Go's \w is ASCII)
ID_PREFIX = "id:"  # the justlog frontend marks ids so in its own URLs; accepted on id parameters
TOP_LEVEL = ("channels", "list", "capabilities", "optout", "namehistory")

NOT_FOUND = Reject(404, "could not load logs")


@dataclass(frozen=True)
class Who:
    """A channel or a user as the request names it: by login (lower-cased) or by numeric id."""

    value: str
    by_id: bool

    @property
    def kind(self) -> str:
        return "id" if self.by_id else "login"


@dataclass(frozen=True)
class Span:
    """A half-open window `[since, until)` of Unix seconds."""

    since: float
    until: float


@dataclass(frozen=True)
class Options:
    """What the query string asks of a log answer."""

    fmt: str  # json, jsonBasic, ndjson, raw, text
    reverse: bool = False
    span: Span | None = None  # from/to, when given
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class Channels:
    pass


@dataclass(frozen=True)
class Capabilities:
    pass


@dataclass(frozen=True)
class OptOut:
    pass


@dataclass(frozen=True)
class Preflight:
    """An OPTIONS request: 200, empty, with justlog's CORS headers."""


@dataclass(frozen=True)
class ListLogs:
    channel: Who
    user: Who | None


@dataclass(frozen=True)
class NameHistory:
    user_id: str


@dataclass(frozen=True)
class Logs:
    """A log route: a user's month, a channel's day, random, or an undated route (`period` None,
    answered by a redirect unless `options.span` is given)."""

    channel: Who
    user: Who | None
    period: tuple[int, ...] | None  # (year, month) for a user, (year, month, day) for a channel
    options: Options
    random: bool = False
    path: str = ""  # the request's own path, for a redirect to a dated form of it
    query: str = ""  # the raw query string, kept on redirects


@dataclass(frozen=True)
class Search:
    channel: Who
    user: Who | None
    text: str
    options: Options


@dataclass(frozen=True)
class Stats:
    channel: Who
    user: Who | None
    span: Span | None


@dataclass(frozen=True)
class Redirect:
    location: str


Request = Channels | Capabilities | OptOut | Preflight | ListLogs | NameHistory | Logs | Search | Stats


def claims(path: str) -> bool:
    """Whether `path` (any case, trailing slashes allowed) is a justlog API path: those answer
    here, everything else falls through to the wubloader routes. A segment that is not a word
    (`chat.json`) is never claimed, so `/channel/chat.json` stays the chat of a channel named
    `channel`."""
    parts = path.lower().split("/")[1:]
    while parts and parts[-1] == "":
        parts.pop()
    if not parts or not all(WORD.fullmatch(p) for p in parts):
        return False
    head = parts[0]
    if head in ("channels", "list", "capabilities", "optout"):
        return len(parts) == 1
    if head == "namehistory":
        return len(parts) == 2
    return head in ("channel", "channelid") and len(parts) >= 2


def route(
    method: str, path: str, query: str, *, now: float, content_type: str = ""
) -> Request | Redirect | Reject | None:
    """The justlog request `method path?query` names, None when the path is not one of ours."""
    if not claims(path):
        return None
    if method == "OPTIONS":
        return Preflight()
    if path != path.lower():
        return _lower_redirect(path, query)
    parts = [p for p in path.split("/")[1:] if p]
    head = parts[0]
    if head == "optout":
        return OptOut() if method == "POST" else Reject(405, "Method not allowed: POST /optout")
    if method not in ("GET", "HEAD"):
        return Reject(405, "Method not allowed")
    params = parse_query(query)
    if isinstance(params, Reject):
        return params
    if head == "channels":
        return Channels()
    if head == "capabilities":
        return Capabilities()
    if head == "namehistory":
        user = _who(parts[1], by_id=True, what="user id")
        return user if isinstance(user, Reject) else NameHistory(user.value)
    if head == "list":
        return _list(params)
    return _log_route(parts, params, path=path.rstrip("/"), query=query, now=now, content_type=content_type)


def parse_query(query: str) -> list[tuple[str, str]] | Reject:
    """The query's pairs in order (blank values kept, so a bare `?json` is a key), or why not."""
    if len(query) > MAX_QUERY:
        return Reject(400, f"Invalid param: query string longer than {MAX_QUERY} characters")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        return Reject(400, "Invalid param: the query string is not UTF-8")
    except ValueError:
        return Reject(400, f"Invalid param: more than {MAX_FIELDS} query parameters")
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            return Reject(400, "Invalid param: a query parameter holds a NUL character")
    return pairs


def _get(params: list[tuple[str, str]], key: str) -> str | None:
    """The first value of `key`, as Go's `Query().Get` (None when absent)."""
    for k, v in params:
        if k == key:
            return v
    return None


def _has(params: list[tuple[str, str]], key: str) -> bool:
    return any(k == key for k, _ in params)


def _lower_redirect(path: str, query: str) -> Redirect | Reject:
    """justlog's 302 to the all-lower-case path, the query re-encoded (keys sorted, as Go's
    `url.Values.Encode`) after a `?` that is always there."""
    pairs = parse_query(query)
    if isinstance(pairs, Reject):
        return pairs
    pairs.sort(key=lambda kv: kv[0])
    return Redirect(path.lower() + "?" + urlencode(pairs))


def _who(text: str, *, by_id: bool, what: str) -> Who | Reject:
    """A login (`[A-Za-z0-9_]+`, lower-cased) or an id (digits, `id:` prefix allowed)."""
    if by_id:
        value = text.removeprefix(ID_PREFIX)
        if not value.isascii() or not value.isdigit() or len(value) > 32:
            return Reject(400, f"Invalid param: {what} must be a number")
        return Who(value, by_id=True)
    if not WORD.fullmatch(text) or len(text) > 64:
        return Reject(400, f"Invalid param: {what} must be a login (letters, digits, _)")
    return Who(text.lower(), by_id=False)


def _list(params: list[tuple[str, str]]) -> ListLogs | Reject:
    channel = _pick(params, "channel", "channelid")
    if channel is None:
        return Reject(400, "Invalid param: channel or channelid is required")
    user = _pick(params, "user", "userid")
    if isinstance(channel, Reject):
        return channel
    if isinstance(user, Reject):
        return user
    return ListLogs(channel, user)


def _pick(params: list[tuple[str, str]], login_key: str, id_key: str) -> Who | Reject | None:
    by_id = _get(params, id_key)
    if by_id:
        return _who(by_id, by_id=True, what=id_key)
    login = _get(params, login_key)
    if login:
        return _who(login, by_id=False, what=login_key)
    return None


def _log_route(
    parts: list[str], params: list[tuple[str, str]], *, path: str, query: str, now: float, content_type: str
) -> Request | Reject:
    """`/{C}[/{U}][/y/m[/d] | /random | /search | /stats | /range]` with `{C}` `channel/LOGIN` or
    `channelid/ID` and `{U}` `user/LOGIN` or `userid/ID`."""
    channel = _who(parts[1], by_id=parts[0] == "channelid", what=parts[0])
    if isinstance(channel, Reject):
        return channel
    rest = parts[2:]
    user: Who | None = None
    if len(rest) >= 2 and rest[0] in ("user", "userid"):
        found = _who(rest[1], by_id=rest[0] == "userid", what=rest[0])
        if isinstance(found, Reject):
            return found
        user, rest = found, rest[2:]
    span = parse_span(params, now=now)
    if isinstance(span, Reject):
        return span
    if rest == ["stats"]:
        return Stats(channel, user, span)
    options = _options(params, span, content_type)
    if isinstance(options, Reject):
        return options
    if rest == ["search"]:
        text = _get(params, "q")
        if not text or not text.strip():
            return Reject(400, "Invalid param: q (the search text) is required")
        return Search(channel, user, text, options)
    if rest == ["random"]:
        return Logs(channel, user, None, options, random=True)
    if not rest or rest == ["range"]:  # /range: justlog's older spelling of a from/to request
        return Logs(channel, user, None, options, path=path, query=query)
    digits = len(rest) == (2 if user else 3) and all(p.isascii() and p.isdigit() for p in rest)
    if not digits or len(rest[0]) != 4 or any(len(p) > 2 for p in rest[1:]):
        return NOT_FOUND  # a user route with a day, or any other shape, does not exist
    period = tuple(int(p) for p in rest)
    try:
        period_span(period)
    except ValueError:
        return Reject(400, "Invalid param: Invalid date")
    return Logs(channel, user, period, options)


def _options(params: list[tuple[str, str]], span: Span | None, content_type: str) -> Options | Reject:
    kind = _get(params, "type")
    if _has(params, "json") or kind == "json" or content_type.split(";", maxsplit=1)[0].strip() == "application/json":
        fmt = "json"
    elif _has(params, "jsonBasic"):
        fmt = "jsonBasic"
    elif _has(params, "ndjson"):
        fmt = "ndjson"
    elif _has(params, "raw") or kind == "raw":
        fmt = "raw"
    else:
        fmt = "text"
    limit = _int(params, "limit")
    offset = _int(params, "offset")
    if isinstance(limit, Reject):
        return limit
    if isinstance(offset, Reject):
        return offset
    if offset is not None and offset > MAX_OFFSET:
        return Reject(400, f"Invalid param: offset must be at most {MAX_OFFSET} (narrow the time with from/to)")
    return Options(fmt, reverse=_has(params, "reverse"), span=span, limit=limit, offset=offset or 0)


def _int(params: list[tuple[str, str]], key: str) -> int | Reject | None:
    text = _get(params, key)
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or int(text) > MAX_LIMIT:
        return Reject(400, f"Int parse error: {key} must be a whole number from 0 to {MAX_LIMIT}")
    return int(text)


def parse_span(params: list[tuple[str, str]], *, now: float) -> Span | Reject | None:
    """`from`/`to` as a half-open window, None when neither is given."""
    start, end = _get(params, "from"), _get(params, "to")
    if not start and not end:
        return None
    since = parse_instant(start, inclusive_end=False) if start else now
    until = parse_instant(end, inclusive_end=True) if end else now
    if since is None:
        return Reject(400, "Invalid param: from must be Unix seconds or an RFC 3339 date-time")
    if until is None:
        return Reject(400, "Invalid param: to must be Unix seconds or an RFC 3339 date-time")
    return Span(since, until)


def parse_instant(text: str, *, inclusive_end: bool) -> float | None:
    """Unix seconds (all digits; as an end, the whole second is included) or an RFC 3339
    date-time (a time without an offset is read as UTC); None if it is neither, or out of range."""
    if text.isascii() and text.isdigit():
        if len(text) > 12:  # past the year 5000: no chat there
            return None
        return int(text) + (1 if inclusive_end else 0)
    if len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        value = moment.timestamp()
    except (OverflowError, ValueError):
        return None
    return value if math.isfinite(value) else None


def period_span(period: tuple[int, ...]) -> Span:
    """The UTC calendar month `(y, m)` or day `(y, m, d)` as a window; ValueError if no such date."""
    if len(period) == 2:
        year, month = period
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC) if year < 9999 or month < 12 else None
    else:
        year, month, day = period
        start = datetime(year, month, day, tzinfo=UTC)
        end = datetime.fromtimestamp(start.timestamp() + 86400, UTC) if (year, month, day) != (9999, 12, 31) else None
    if end is None:
        raise ValueError("date out of range")
    return Span(start.timestamp(), end.timestamp())
