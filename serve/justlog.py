"""The justlog/rustlog read API over the archive's search index (I/O shell; JUSTLOG_API.md).

`serve.justlog_routes` decides what a request names and `serve.justlog_format` how a message
looks; this module asks the index (`index.api.ChatIndex`) and answers. `serve.app.ChatApp` hands
it every request first; it answers the paths that are its own and leaves the rest (None).

Rules kept here, each for a reason:

* Identity comes from the archive: a login is turned into the id that last used it (the `user-id`
  tags the index read), so a renamed user's months stay together; an archive without ids (plain
  IRC) is answered by login. No Twitch API is asked.
* The operator's opt-out list (ids or logins, one a line) makes those users and channels 403 on
  every read route, whatever name or id the request uses (a login listed also covers the names
  its id had before and after); their messages are left out of channel days, random lines,
  search and the top chatters, and an opted-out channel is not listed. The file is read again
  when it changes, so adding a user needs no restart.
* Answers stream from the index a page at a time (keyset paging on the index's order), so a busy
  channel's day is never held whole in memory. The first page is read before the status line,
  so "nothing there" is still a 404 of its own.
* Nothing raises out of here: a bad request is a 400 with one plain line, a damaged or missing
  index a 503 saying how to rebuild it, anything else a logged 500 with one line. A damage met
  mid-stream cuts the answer (the client sees a short body, not a silent gap).
* `web`, when given, is the justlog web frontend's built folder (`web/dist`): served at `/` on
  the same origin as the API, which is where the page looks for it.
* Log answers are gzipped as they stream when the client accepts it (browsers do), as rustlog.
* Caching: a log range that ended more than `SETTLE` ago may be cached for ten hours (rustlog's
  `public, max-age=36000`); anything still open, random lines and search are `no-cache`. justlog's
  year-long cache of past months would pin an answer that a later sync from another host still
  completes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import mimetypes
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from formats.errors import InputError
from index.api import Channel, ChatIndex, ChatIndexError, Message, Query, QueryError
from serve import justlog_format as fmt
from serve import justlog_routes as jr
from serve.app import CutShort
from serve.routes import Reject

log = logging.getLogger("chat_archiver.serve.justlog")

Answer = tuple[int, list[tuple[str, str]], Iterable[bytes], str]  # status, headers, body, route name

CAPABILITIES = ("arbitrary-range-query", "search", "stats", "namehistory")
PREFLIGHT = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET"),
    (
        "Access-Control-Allow-Headers",
        "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization",
    ),
]
COMMON = [
    ("Access-Control-Allow-Origin", "*"),
    ("X-Content-Type-Options", "nosniff"),
    ("x-rustlog-capabilities", ",".join(CAPABILITIES)),
]
NO_CACHE = "no-cache"
CACHE_ENDED = "public, max-age=36000"
CACHE_LIST = "public, max-age=600"
SETTLE = 600  # seconds after a range ends before its answer is cached: the live archive writes a
# minute about two minutes after it, and merges and syncs may still add to it for a while
BLOCKED_TTL = 30  # seconds a listed login's id is remembered (a login can change hands)
PAGE = 2000  # rows asked of the index at once
CHUNK = 1 << 16  # bytes of answer per write
# random picks that may land on an opted-out user before giving up (404): each is an OFFSET into
# the channel's rows, after one count of them per request
RANDOM_TRIES = 8
OPTOUT_GONE = "opt-out codes are not supported by this server: ask its operator to add you to its opt-out list"
NO_INDEX = (
    "the justlog API needs the archive's search index, and this server has none: "
    "build it with `chat-archiver index ROOT`, then restart serve"
)


class OptOutList:
    """The operator's opt-out file: one user id (digits) or login a line; `#` starts a comment.

    Read at start (a bad line is an error naming FILE:LINE) and again whenever the file's
    modification time changes (a bad line then keeps the previous list and is logged)."""

    def __init__(self, path: str | None, ids: frozenset[str] = frozenset(), logins: frozenset[str] = frozenset()):
        self.path = path
        self.ids = ids
        self.logins = logins
        self.stamp: float | None = None
        self.checked = 0.0
        self.lock = threading.Lock()

    @classmethod
    def load(cls, path: str) -> OptOutList:
        """Read `path`; InputError (FILE:LINE: what) for a line that is neither an id nor a login."""
        optout = cls(path)
        optout.stamp = os.stat(path).st_mtime
        optout.ids, optout.logins = parse_optout(path)
        return optout

    def refresh(self) -> None:
        """Read the file again if it changed (looked at no more than once a second)."""
        if self.path is None:
            return
        now = time.monotonic()
        with self.lock:
            if now - self.checked < 1:
                return
            self.checked = now
            try:
                stamp = os.stat(self.path).st_mtime
                if stamp == self.stamp:
                    return
                self.ids, self.logins = parse_optout(self.path)
                self.stamp = stamp
                log.info("opt-out list read again: %d ids, %d logins", len(self.ids), len(self.logins))
            except (OSError, InputError) as e:
                log.warning("opt-out list not read again, the previous one stays: %s", e)

    def __bool__(self) -> bool:
        return bool(self.ids or self.logins)


def parse_optout(path: str) -> tuple[frozenset[str], frozenset[str]]:
    """The ids and (lower-cased) logins of an opt-out file."""
    ids: set[str] = set()
    logins: set[str] = set()
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=path) from None
    for number, line in enumerate(lines, 1):
        word = line.split("#", 1)[0].strip()
        if not word:
            continue
        word = word.removeprefix(jr.ID_PREFIX)
        if word.isascii() and word.isdigit():
            ids.add(word)
        elif jr.WORD.fullmatch(word):
            logins.add(word.lower())
        else:
            raise InputError(f"{word!r} is neither a user id (digits) nor a login", source=path, line=number)
    return frozenset(ids), frozenset(logins)


@dataclasses.dataclass
class _Blocked:
    """The opt-out list as the messages of one request are filtered with it."""

    ids: frozenset[str]
    logins: frozenset[str]

    def message(self, m: Message) -> bool:
        if m.user_id is not None and m.user_id in self.ids:
            return True
        if m.login is not None and m.login.lower() in self.logins:
            return True
        recipient = m.tags.get("msg-param-recipient-id")
        return isinstance(recipient, str) and recipient in self.ids


class _Refused(Exception):
    """An answer decided deep in a route: its status and line."""

    def __init__(self, status: int, line: str) -> None:
        super().__init__(line)
        self.status = status
        self.line = line


class JustlogApi:
    """Answers the justlog API's paths. `opener` opens the index (once per thread: SQLite
    connections are not shared); None runs without an index (every API path says so)."""

    def __init__(
        self,
        opener: Callable[[], ChatIndex] | None,
        optout: OptOutList | None = None,
        *,
        clock: Callable[[], float] = time.time,
        page: int = PAGE,
        web: str | None = None,
    ) -> None:
        self.opener = opener
        self.web = os.path.realpath(web) if web is not None else None
        self.optout = optout if optout is not None else OptOutList(None)
        self.clock = clock
        self.page = page
        self.local = threading.local()
        self.opened: list[ChatIndex] = []  # every thread's index, closed by `close`
        self.opened_lock = threading.Lock()
        # the opt-out list with the ids of its logins, worked out again every BLOCKED_TTL seconds
        self.blocked: tuple[tuple[frozenset[str], frozenset[str], int], _Blocked] | None = None

    # -- entry ----------------------------------------------------------------------------------
    def answer(self, method: str, path: str, query: str, environ: dict[str, Any]) -> Answer | None:
        """The answer to a request on one of our paths, None for a path that is not ours."""
        now = self.clock()
        content_type = str(environ.get("CONTENT_TYPE", ""))
        try:
            request = jr.route(method, path, query, now=now, content_type=content_type)
        except Exception:  # a bug in parsing: never a traceback to the client
            log.exception("unexpected error parsing %s", path)
            return _text(500, "Internal error", "Justlog")
        if request is None:
            return self._static(method, path)
        name = type(request).__name__
        if isinstance(request, Reject):
            return _text(request.status, request.reason, name)
        if isinstance(request, jr.Redirect):
            return 302, [("Location", request.location), ("Cache-Control", NO_CACHE), *COMMON], [], name
        if isinstance(request, jr.Preflight):
            return 200, [*PREFLIGHT, ("Content-Length", "0")], [], name
        if isinstance(request, jr.OptOut):
            return _text(501, OPTOUT_GONE, name)
        if isinstance(request, jr.Capabilities):
            return _json(fmt.dumps(list(CAPABILITIES)), name, cache=CACHE_LIST)
        if self.opener is None:
            return _text(503, NO_INDEX, name)
        try:
            self.optout.refresh()
            answer = self._dispatch(request, now, name)
            if answer[0] == 200 and _streamed(answer[1]) and accepts_gzip(str(environ.get("HTTP_ACCEPT_ENCODING", ""))):
                status, headers, body, name = answer
                headers = [*headers, ("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
                answer = status, headers, _gzipped(body), name
            return answer
        except _Refused as e:
            return _text(e.status, e.line, name)
        except QueryError as e:
            return _text(400, f"Invalid param: {_one_line(e)}", name)
        except ChatIndexError as e:
            log.warning("index unusable answering %s: %s", path, e)
            return _text(
                503,
                f"the search index cannot answer ({_one_line(e)}): "
                "rebuild it with `chat-archiver index ROOT --rebuild`",
                name,
            )
        except Exception:
            log.exception("unexpected error answering %s", path)
            return _text(500, "Internal error", name)

    def _static(self, method: str, path: str) -> Answer | None:
        """A file of the built web frontend (`web`), as justlog serves its `web/dist`: `/` is
        index.html; any other path that is not a file there is not ours (wubloader's routes, or
        their 404). Hidden names and anything resolving outside the folder are never served."""
        if self.web is None or method not in ("GET", "HEAD"):
            return None
        relative = "index.html" if path == "/" else path.removeprefix("/")
        if any(not part or part.startswith(".") for part in relative.split("/")) or "\x00" in relative:
            return None
        full = os.path.realpath(os.path.join(self.web, relative))
        if not full.startswith(self.web + os.sep) or not os.path.isfile(full):
            return None
        try:
            with open(full, "rb") as f:
                body = f.read()
        except OSError:
            return None
        ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        cache = NO_CACHE if relative == "index.html" else "public, max-age=3600"
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", cache), *COMMON]
        return 200, headers, [body], "JustlogWeb"

    def index(self) -> ChatIndex:
        found: ChatIndex | None = getattr(self.local, "index", None)
        if found is None:
            assert self.opener is not None
            found = self.opener()
            self.local.index = found
            with self.opened_lock:
                self.opened.append(found)
        return found

    def close(self) -> None:
        """Close every thread's index (once the server has stopped)."""
        with self.opened_lock:
            opened, self.opened = self.opened, []
        for idx in opened:
            try:
                idx.close()
            except ChatIndexError as e:
                log.warning("closing the index: %s", e)

    # -- routes ---------------------------------------------------------------------------------
    def _dispatch(self, request: jr.Request, now: float, name: str) -> Answer:
        if isinstance(request, jr.Channels):
            return self._channels(name)
        if isinstance(request, jr.NameHistory):
            return self._name_history(request, name)
        if isinstance(request, jr.ListLogs):
            return self._list(request, name)
        if isinstance(request, jr.Stats):
            return self._stats(request, name)
        if isinstance(request, jr.Search):
            return self._search(request, now, name)
        assert isinstance(request, jr.Logs)
        return self._logs(request, now, name)

    def _channels(self, name: str) -> Answer:
        listed = [
            {"userID": c.room_id or "", "name": c.login}
            for c in self.index().channels()
            if not self._channel_blocked(c.login, c.room_id)
        ]
        return _json(fmt.dumps({"channels": listed}), name, cache=CACHE_LIST)

    def _name_history(self, request: jr.NameHistory, name: str) -> Answer:
        names = self.index().name_history(request.user_id)
        if request.user_id in self.optout.ids or any(n.login.lower() in self.optout.logins for n in names):
            raise _Refused(403, "User or channel has opted out")
        body = [
            {
                "user_login": n.login,
                "last_timestamp": fmt.rfc3339(n.last_seen, millis=True),
                "first_timestamp": fmt.rfc3339(n.first_seen, millis=True),
            }
            for n in names
        ]
        return _json(fmt.dumps(body), name, cache=NO_CACHE)

    def _list(self, request: jr.ListLogs, name: str) -> Answer:
        idx = self.index()
        channel = self._channel(request.channel, unknown_login=(422, "could not find users"))
        if request.user is None:
            days = idx.channel_days(channel)
            if not days:
                raise _Refused(404, "failed to get available channel logs: No logs file")
            listed = [{"year": str(d.year), "month": str(d.month), "day": str(d.day)} for d in days]
        else:
            user_id, login = self._user(request.user, unknown_login=(422, "could not find users"))
            months = idx.user_months(channel, user_id) if user_id else idx.user_months_by_login(channel, login or "")
            if not months:
                raise _Refused(404, "failed to get available user logs: No logs file")
            listed = [{"year": str(m.year), "month": str(m.month)} for m in months]
        return _json(fmt.dumps({"availableLogs": listed}), name, cache=CACHE_LIST)

    def _logs(self, request: jr.Logs, now: float, name: str) -> Answer:
        channel = self._channel(request.channel)
        user_id, login = self._user(request.user) if request.user else (None, None)
        options = request.options
        if request.random:
            return self._random(channel, user_id, login, options, name)
        if request.period is None and options.span is None:
            if request.path.endswith("/range"):
                raise _Refused(400, "Invalid param: from and to are required on /range")
            return self._latest(request, channel, user_id, login, name)
        span = options.span or jr.period_span(request.period or ())
        query = Query(
            channel=channel,
            user_id=user_id,
            login=None if user_id else login,
            since=span.since,
            until=span.until,
            oldest_first=not options.reverse,
        )
        blocked = self._blocked() if request.user is None else None
        rows = self._rows(query, blocked, options)
        first = next(rows, None)
        if first is None and options.span is None:
            raise _Refused(404, "could not load logs")
        cache = CACHE_ENDED if span.until + SETTLE <= now else NO_CACHE
        return self._stream(options.fmt, first, rows, name, cache)

    def _random(self, channel: str, user_id: str | None, login: str | None, options: jr.Options, name: str) -> Answer:
        idx = self.index()
        blocked = self._blocked()
        if user_id is None and login is not None:
            # an archive without user ids: a random pick among this login's rows
            total = idx.count(Query(channel=channel, login=login))
            if total == 0:
                raise _Refused(404, "could not load logs")
            seed = int.from_bytes(os.urandom(4), "big") % total
            picked = idx.messages(Query(channel=channel, login=login, oldest_first=True, offset=seed, limit=1))
            found = picked[0] if picked else None
        else:
            found = None
            total = idx.count(Query(channel=channel, user_id=user_id))
            for _ in range(RANDOM_TRIES if total else 0):
                candidate = idx.random_message(channel, user_id, total=total)
                if candidate is None or not blocked.message(candidate):
                    found = candidate
                    break
        if found is None:
            raise _Refused(404, "could not load logs")
        return self._stream(options.fmt, found, iter(()), name, NO_CACHE)

    def _latest(self, request: jr.Logs, channel: str, user_id: str | None, login: str | None, name: str) -> Answer:
        """justlog's redirect of an undated route to the newest month (user) or day (channel) that
        has logs; 404 when there is none."""
        idx = self.index()
        if request.user is None:
            days = idx.channel_days(channel)
            dated = f"{days[0].year}/{days[0].month}/{days[0].day}" if days else None
        else:
            months = idx.user_months(channel, user_id) if user_id else idx.user_months_by_login(channel, login or "")
            dated = f"{months[0].year}/{months[0].month}" if months else None
        if dated is None:
            raise _Refused(404, "could not load logs")
        location = f"{request.path}/{dated}" + (f"?{request.query}" if request.query else "")
        return 302, [("Location", location), ("Cache-Control", NO_CACHE), *COMMON], [], name

    def _search(self, request: jr.Search, now: float, name: str) -> Answer:
        channel = self._channel(request.channel)
        user_id, login = self._user(request.user) if request.user else (None, None)
        options = request.options
        span = options.span
        query = Query(
            channel=channel,
            user_id=user_id,
            login=None if user_id else login,
            text=request.text,
            since=span.since if span else None,
            until=span.until if span else None,
            oldest_first=not options.reverse,
        )
        rows = self._rows(query, self._blocked(), options)
        first = next(rows, None)
        return self._stream(options.fmt, first, rows, name, NO_CACHE)

    def _stats(self, request: jr.Stats, name: str) -> Answer:
        idx = self.index()
        channel = self._channel(request.channel)
        span = request.span
        since, until = (span.since, span.until) if span else (None, None)
        if request.user is not None:
            user_id, login = self._user(request.user)
            # messages the user sent: a user filter also matches the subs gifted to them, so their
            # USERNOTICEs (few) are looked at one by one
            mine = Query(channel=channel, user_id=user_id, login=None if user_id else login, since=since, until=until)
            count = idx.count(dataclasses.replace(mine, commands=frozenset(("PRIVMSG",))))
            notices = dataclasses.replace(mine, commands=frozenset(("USERNOTICE",)))
            count += sum(1 for m in keyset_pages(idx, notices, self.page) if user_id is None or m.user_id == user_id)
            body: Any = {"userId": user_id or "", "userLogin": login, "messageCount": count}
            return _json(fmt.dumps(body), name, cache=NO_CACHE)
        blocked = self._blocked()
        top = 10
        stats = idx.channel_stats(channel, since, until, top=top + len(blocked.ids) + len(blocked.logins))
        chatters = [
            c
            for c in stats.top_chatters
            if not (c.user_id in blocked.ids or (c.login is not None and c.login.lower() in blocked.logins))
        ][:top]
        body = {
            "messageCount": stats.total,
            "topChatters": [
                {"userId": c.user_id or "", "userLogin": c.login, "messageCount": c.messages} for c in chatters
            ],
            "messagesPerDay": [
                {"date": f"{d.day.year:04d}-{d.day.month:02d}-{d.day.day:02d}", "messageCount": d.messages}
                for d in stats.per_day
            ],
        }
        return _json(fmt.dumps(body), name, cache=NO_CACHE)

    # -- identities and the opt-out list -------------------------------------------------------
    def _channel(self, who: jr.Who, unknown_login: tuple[int, str] = (404, "could not load logs")) -> str:
        """The channel's folder name (its login) in the index; 404 (or `unknown_login` for a
        login) when the archive has no such channel, 403 when it opted out."""
        idx = self.index()
        found = None
        for c in idx.channels():
            if (c.room_id == who.value) if who.by_id else (c.login.lower() == who.value):
                found = c
                break
        if found is None and not who.by_id and idx.channel_days(who.value):
            found = Channel(who.value, None)  # a channel without a room id (plain IRC)
        if found is None:
            raise _Refused(404, "could not load logs") if who.by_id else _Refused(*unknown_login)
        if self._channel_blocked(found.login, found.room_id):
            raise _Refused(403, "User or channel has opted out")
        return found.login

    def _channel_blocked(self, login: str, room_id: str | None) -> bool:
        return login.lower() in self.optout.logins or (room_id is not None and room_id in self.optout.ids)

    def _user(
        self, who: jr.Who, unknown_login: tuple[int, str] = (404, "could not load logs")
    ) -> tuple[str | None, str | None]:
        """(user id, login) of the user a request names: a login becomes the id that last used it
        (None for an archive without ids); 403 for an opted-out user, by any of their names."""
        idx = self.index()
        if who.by_id:
            user_id: str | None = who.value
            login = idx.login_of(who.value)
        else:
            login = who.value
            user_id = idx.user_id_of(login)
            if user_id is None and not self._login_seen(login):
                raise _Refused(*unknown_login)
        if self.optout:
            names = {login} if login else set()
            if user_id is not None and self.optout.logins:  # only listed logins need the names it had
                names.update(n.login.lower() for n in idx.name_history(user_id))
            if (user_id is not None and user_id in self.optout.ids) or names & self.optout.logins:
                raise _Refused(403, "User or channel has opted out")
        return user_id, login

    def _login_seen(self, login: str) -> bool:
        """Whether any channel has rows of this login (archives without user ids)."""
        return self.index().count(Query(login=login, limit=1)) > 0

    def _blocked(self) -> _Blocked:
        """The opt-out list with each listed login's id added (the id that last used it)."""
        if not self.optout:
            return _Blocked(frozenset(), frozenset())
        key = (self.optout.ids, self.optout.logins, int(time.monotonic() // BLOCKED_TTL))
        cached = self.blocked
        if cached is not None and cached[0] == key:
            return cached[1]
        idx = self.index()
        ids = set(self.optout.ids)
        for login in self.optout.logins:
            found = idx.user_id_of(login)
            if found is not None:
                ids.add(found)
        blocked = _Blocked(frozenset(ids), self.optout.logins)
        self.blocked = (key, blocked)
        return blocked

    # -- reading and writing ---------------------------------------------------------------------
    def _rows(self, query: Query, blocked: _Blocked | None, options: jr.Options) -> Iterator[Message]:
        """The query's rows a page at a time, without opted-out users' rows, after the request's
        offset and up to its limit."""
        skip = options.offset
        left = options.limit
        if left == 0:
            return
        for row in keyset_pages(self.index(), query, self.page):
            if blocked is not None and blocked.message(row):
                continue
            if skip:
                skip -= 1
                continue
            yield row
            if left is not None:
                left -= 1
                if left == 0:
                    return

    def _stream(self, form: str, first: Message | None, rest: Iterator[Message], name: str, cache: str) -> Answer:
        headers = [("Content-Type", fmt.FORMATS[form]), ("Cache-Control", cache), *COMMON]
        return 200, headers, _body(form, first, rest), name


def keyset_pages(idx: ChatIndex, query: Query, size: int) -> Iterator[Message]:
    """Every row `query` selects, in its order, asking `size` at a time: each page starts where
    the last ended (at its last time, skipping the rows of that time already given), so no page
    costs more than its own rows plus the ties."""
    since, until = query.since, query.until
    last: float | None = None
    same = 0
    while True:
        page = idx.messages(dataclasses.replace(query, since=since, until=until, offset=same, limit=size))
        for row in page:
            yield row
            if row.time == last:
                same += 1
            else:
                last, same = row.time, 1
        if len(page) < size or last is None:
            return
        if query.oldest_first:
            since = last
        else:
            until = math.nextafter(last, math.inf)


def _body(form: str, first: Message | None, rest: Iterator[Message]) -> Iterator[bytes]:
    begin, sep, end = fmt.framing(form)
    buffer = [begin]
    size = 0
    count = 0
    try:
        rows = rest if first is None else _chain(first, rest)
        for row in rows:
            data = fmt.render(form, row)
            buffer.append(sep + data if count else data)
            count += 1
            size += len(data)
            if size >= CHUNK:
                yield b"".join(buffer)
                buffer.clear()
                size = 0
    except ChatIndexError as e:
        log.warning("answer cut short, the index failed: %s", e)
        raise CutShort() from None
    buffer.append(end)
    yield b"".join(buffer)


def _streamed(headers: list[tuple[str, str]]) -> bool:
    """A log answer, streamed (no length known in advance)."""
    return all(name != "Content-Length" for name, _ in headers)


def accepts_gzip(header: str) -> bool:
    """Whether an `Accept-Encoding` header takes gzip (not refused with `q=0`)."""
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            quality = params.replace(" ", "").lower()
            return quality not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _gzipped(body: Iterable[bytes]) -> Iterator[bytes]:
    """`body` gzipped as it streams (as rustlog compresses when asked: a busy user's month is
    megabytes of JSON that compress tenfold). Closing this closes `body`."""
    packer = zlib.compressobj(4, zlib.DEFLATED, 31)
    try:
        for part in body:
            packed = packer.compress(part)
            if packed:
                yield packed
        yield packer.flush()
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _chain(first: Message, rest: Iterator[Message]) -> Iterator[Message]:
    yield first
    yield from rest


def _text(status: int, line: str, name: str) -> Answer:
    body = (line + "\n").encode("utf-8")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *COMMON]
    if status == 405:
        headers.append(("Allow", "GET, HEAD, OPTIONS"))
    return status, headers, [body], name


def _json(body: bytes, name: str, *, cache: str) -> Answer:
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", cache),
        *COMMON,
    ]
    return 200, headers, [body], name


def _one_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
