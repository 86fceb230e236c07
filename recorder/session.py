"""One IRC connection's protocol state, without I/O (in the manner of h11).

Theory of operation
-------------------
The shell owns a socket; this module owns the rules. The shell calls `start()` once the WebSocket is
open, then `receive_peeked()` for every line (in order, with what `recorder.wire.peek` read of it)
and `tick()` whenever `next_deadline()` has passed, always passing the monotonic time. Each call
returns actions: lines to `Send` (in order, at once), and facts the shell acts on: `Welcomed`,
`Reconnect` (the server will close this connection soon; open another now), `Stalled` (the server
stopped answering: open another now, but keep reading this one), `HandedOver` (a newer connection
records everything this one would: close it), `Close` (this connection is useless: give up on it),
`Fail` (the login was refused; retrying will not help), plus informational `Joined`, `Ready` and
`Warn`.

The rules, in one place:
- Handshake. Twitch: `CAP REQ` for tags, commands and membership, `PASS oauth:...` only when a
  token is given (anonymous `justinfanNNNN` otherwise), `NICK`. Generic IRCv3: `CAP LS 302`, then
  `CAP REQ` for whichever of server-time and message-tags the server offers, `CAP END` after the
  ACK or NAK (a NAK is a warning, not an error: we record what the server sends either way), `PASS`
  if a token is given, `NICK` and `USER`. A nick in use before the welcome gets a new suffix.
- No JOIN before the welcome (001): servers refuse it (451) and Twitch ignores it.
- Joins are paced by `JoinLimiter` (20 per 10 s per connection). A channel that parts or kicks us
  without being asked, or refuses the join, is joined again after `rejoin_after` seconds.
- A channel counts as ready at its first ROOMSTATE (Twitch) or its end of NAMES, 366 (IRCv3):
  the same points at which the replay starts keeping its lines.
- Every PING is answered with a PONG of the same argument, before anything else in that call.
- Watchdog (once welcomed): any line is proof of life. After `ping_after` seconds of silence we
  send our own PING; if still nothing has arrived `ping_timeout` seconds later, `Stalled`, once. A
  stalled connection is not closed: its server may only be slow, and whatever it has buffered for
  us is delivered when the stall clears. The shell opens a newer connection at once and, when that
  one has joined every channel, calls `handover()`: we send a last PING, and its PONG (which the
  server sends after everything it sent us before) is `HandedOver`. A connection that stays silent
  for `silence_limit` seconds after the handover began gets `Close`. A server that never welcomes
  us within `register_timeout` gets `Close` too.
- A NOTICE to `*` before the welcome on Twitch, or 464/465/904 anywhere before it, is a refused
  login: `Fail`, quoting the server's words (which never contain the token).

`receive_peeked()` is the hot path: lines whose command needs no action (PRIVMSG and friends, the
vast majority) cost the shell's one `peek` and one set lookup here; only the rare lines are parsed
properly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from formats.errors import IRCParseError
from formats.irc import Message, parse
from formats.rawcodec import DIALECT_TWITCH
from recorder.limits import JoinLimiter

TWITCH_CAPS = "twitch.tv/tags twitch.tv/commands twitch.tv/membership"
IRCV3_WANTED_CAPS = ("server-time", "message-tags")
WATCHDOG_TOKEN = "chat-archiver"
HANDOVER_TOKEN = "chat-archiver-handover"

# Commands that never need an answer or a state change: skipped without parsing.
_PASSIVE = frozenset(
    (
        "PRIVMSG",
        "USERNOTICE",
        "CLEARCHAT",
        "CLEARMSG",
        "USERSTATE",
        "HOSTTARGET",
        "WHISPER",
        "GLOBALUSERSTATE",
        "PONG",
        "TOPIC",
        "MODE",
        "TAGMSG",
        "353",
        "002",
        "003",
        "004",
        "005",
        "372",
        "375",
        "376",
        "332",
        "333",
    )
)
_LOGIN_FAILED_NUMERICS = frozenset(("464", "465", "904", "902"))
_JOIN_REFUSED_NUMERICS = frozenset(("403", "405", "471", "473", "474", "475", "477"))


@dataclass(frozen=True)
class Send:
    line: str


@dataclass(frozen=True)
class Welcomed:
    nick: str


@dataclass(frozen=True)
class Joined:
    channel: str


@dataclass(frozen=True)
class Ready:
    channel: str


@dataclass(frozen=True)
class Reconnect:
    """The server announced it will close this connection (Twitch RECONNECT)."""


@dataclass(frozen=True)
class Stalled:
    """No answer to our watchdog PING: open another connection now, keep reading this one."""

    reason: str


@dataclass(frozen=True)
class HandedOver:
    """The answer to the handover PING arrived: a newer connection records everything from here."""


@dataclass(frozen=True)
class Close:
    reason: str


@dataclass(frozen=True)
class Fail:
    reason: str


@dataclass(frozen=True)
class Warn:
    message: str


Action = Send | Welcomed | Joined | Ready | Reconnect | Stalled | HandedOver | Close | Fail | Warn
_NOTHING: tuple[Action, ...] = ()


@dataclass(frozen=True)
class SessionConfig:
    """What one connection needs to know. The token is kept out of repr() so it cannot leak via logs."""

    dialect: str
    channels: tuple[str, ...]
    nick: str
    token: str | None = field(default=None, repr=False)
    ping_after: float = 3.0
    ping_timeout: float = 3.0
    silence_limit: float = 30.0
    register_timeout: float = 30.0
    join_limit: int = 20
    join_window: float = 10.0
    rejoin_after: float = 30.0


def anonymous_nick() -> str:
    """Twitch's anonymous read-only login: `justinfan` and digits."""
    return f"justinfan{random.randint(10000, 99999)}"


class Session:
    """Protocol state of one connection. Not thread-safe: one connection thread drives it."""

    def __init__(self, config: SessionConfig, now: float) -> None:
        self.config = config
        self.twitch = config.dialect == DIALECT_TWITCH
        self.nick = config.nick
        self.welcomed = False
        self.started_at = now
        self.last_line_at = now
        self.ping_sent_at: float | None = None
        self.stalled = False
        self.handing_over = False
        self.joined: set[str] = set()
        self.ready: set[str] = set()
        self._pending: dict[str, float] = {}  # channel -> not before (monotonic)
        self._limiter = JoinLimiter(config.join_limit, config.join_window)
        self._offered_caps: list[str] = []
        self._cap_done = self.twitch
        self._nick_tries = 0

    # -- handshake -------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        c = self.config
        out: list[Action] = []
        if self.twitch:
            out.append(Send(f"CAP REQ :{TWITCH_CAPS}"))
            if c.token is not None:
                token = c.token if c.token.startswith("oauth:") else f"oauth:{c.token}"
                out.append(Send(f"PASS {token}"))
            out.append(Send(f"NICK {self.nick}"))
        else:
            out.append(Send("CAP LS 302"))
            if c.token is not None:
                out.append(Send(f"PASS {c.token}"))
            out.append(Send(f"NICK {self.nick}"))
            out.append(Send(f"USER {self.nick} 0 * :chat-archiver recorder"))
        return out

    # -- lines from the server -------------------------------------------------------------------

    def receive_peeked(self, line: str, command: str, channel: str, now: float) -> Sequence[Action]:
        """A line from the server, with its command and channel as `recorder.wire.peek` read them (the
        shell peeks once, for its metrics too)."""
        self.last_line_at = now
        self.ping_sent_at = None
        if self.handing_over and command == "PONG" and line.endswith(HANDOVER_TOKEN):
            return (HandedOver(),)
        if command in _PASSIVE:
            return _NOTHING
        if command == "ROOMSTATE":
            return self._mark_ready(channel.lower()) if self.twitch else _NOTHING
        if command == "RECONNECT":
            return (Reconnect(),)
        try:
            msg = parse(line)
        except IRCParseError:
            return _NOTHING  # recorded as received; nothing for us to act on
        handler = _HANDLERS.get(msg.command)
        if handler is None:
            return _NOTHING
        return handler(self, msg, now)

    def _on_ping(self, msg: Message, now: float) -> Sequence[Action]:
        return (Send(f"PONG :{msg.params[-1]}" if msg.params else "PONG"),)

    def _on_cap(self, msg: Message, now: float) -> Sequence[Action]:
        if len(msg.params) < 2:
            return _NOTHING
        sub = msg.params[1].upper()
        caps = msg.params[-1].split()
        if self.twitch:
            if sub == "NAK":
                return (Warn(f"server refused capabilities {msg.params[-1]!r}; lines will lack tags"),)
            return _NOTHING
        if self._cap_done:
            return _NOTHING
        if sub == "LS":
            self._offered_caps.extend(c.partition("=")[0] for c in caps)
            if len(msg.params) >= 4 and msg.params[2] == "*":
                return _NOTHING  # more LS lines follow
            wanted = [c for c in IRCV3_WANTED_CAPS if c in self._offered_caps]
            if wanted:
                return (Send(f"CAP REQ :{' '.join(wanted)}"),)
            missing = " ".join(IRCV3_WANTED_CAPS)
            self._cap_done = True
            return (Warn(f"server offers none of {missing}; recording without server times"), Send("CAP END"))
        if sub in ("ACK", "NAK"):
            self._cap_done = True
            if sub == "NAK":
                return (Warn(f"server refused capabilities {msg.params[-1]!r}"), Send("CAP END"))
            return (Send("CAP END"),)
        return _NOTHING

    def _on_welcome(self, msg: Message, now: float) -> Sequence[Action]:
        if self.welcomed:
            return _NOTHING
        self.welcomed = True
        if msg.params:
            self.nick = msg.params[0]
        for channel in self.config.channels:
            self._pending.setdefault(channel, now)
        return (Welcomed(self.nick), *self.tick(now))

    def _on_nick_in_use(self, msg: Message, now: float) -> Sequence[Action]:
        if self.welcomed:
            return _NOTHING
        self._nick_tries += 1
        self.nick = f"{self.config.nick[:12]}_{self._nick_tries}"
        return (Warn(f"nick in use; trying {self.nick}"), Send(f"NICK {self.nick}"))

    def _on_login_numeric(self, msg: Message, now: float) -> Sequence[Action]:
        if self.welcomed:
            return _NOTHING
        said = msg.params[-1] if msg.params else msg.command
        return (Fail(f"login failed: the server said {said!r} ({msg.command})"),)

    def _on_notice(self, msg: Message, now: float) -> Sequence[Action]:
        if self.twitch and not self.welcomed and msg.params and msg.params[0] == "*":
            return (Fail(f"login failed: the server said {msg.params[-1]!r}"),)
        return _NOTHING

    def _on_error(self, msg: Message, now: float) -> Sequence[Action]:
        said = msg.params[-1] if msg.params else ""
        return (Close(f"server error: {said}"),)

    def _is_us(self, msg: Message) -> bool:
        source = msg.source or ""
        return source.partition("!")[0].lower() == self.nick.lower()

    def _channel_of(self, param: str) -> str | None:
        name = param[1:].lower() if param.startswith("#") else None
        return name if name in self.config.channels else None

    def _on_join(self, msg: Message, now: float) -> Sequence[Action]:
        if not msg.params or not self._is_us(msg):
            return _NOTHING
        channel = self._channel_of(msg.params[0])
        if channel is None or channel in self.joined:
            return _NOTHING
        self.joined.add(channel)
        self._pending.pop(channel, None)
        return (Joined(channel),)

    def _lost(self, channel: str, now: float, why: str) -> Sequence[Action]:
        self.joined.discard(channel)
        self.ready.discard(channel)
        self._pending[channel] = now + self.config.rejoin_after
        return (Warn(f"#{channel}: {why}; joining again in {self.config.rejoin_after:g} s"),)

    def _on_part(self, msg: Message, now: float) -> Sequence[Action]:
        if not msg.params or not self._is_us(msg):
            return _NOTHING
        channel = self._channel_of(msg.params[0])
        return _NOTHING if channel is None else self._lost(channel, now, "the server parted us")

    def _on_kick(self, msg: Message, now: float) -> Sequence[Action]:
        if len(msg.params) < 2 or msg.params[1].lower() != self.nick.lower():
            return _NOTHING
        channel = self._channel_of(msg.params[0])
        return _NOTHING if channel is None else self._lost(channel, now, "kicked")

    def _on_join_refused(self, msg: Message, now: float) -> Sequence[Action]:
        if len(msg.params) < 2:
            return _NOTHING
        channel = self._channel_of(msg.params[1])
        if channel is None:
            return _NOTHING
        return self._lost(channel, now, f"join refused ({msg.command} {msg.params[-1]})")

    def _on_end_of_names(self, msg: Message, now: float) -> Sequence[Action]:
        if self.twitch or len(msg.params) < 2:
            return _NOTHING
        return self._mark_ready(msg.params[1][1:].lower() if msg.params[1].startswith("#") else "")

    def _on_nick(self, msg: Message, now: float) -> Sequence[Action]:
        if msg.params and self._is_us(msg):
            self.nick = msg.params[0]
        return _NOTHING

    def _mark_ready(self, channel: str) -> Sequence[Action]:
        if channel not in self.joined or channel in self.ready:
            return _NOTHING
        self.ready.add(channel)
        return (Ready(channel),)

    # -- time --------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        """Timers: registration timeout, watchdog PING, stall, handover silence, paced joins."""
        c = self.config
        if not self.welcomed:
            if now - self.started_at >= c.register_timeout:
                return [Close(f"no welcome from the server within {c.register_timeout:g} s")]
            return []
        out: list[Action] = []
        if self.handing_over:
            if now - self.last_line_at >= c.silence_limit:
                return [Close(f"closed by us after {c.silence_limit:g} s of silence; a newer connection records")]
        elif self.stalled:
            pass  # nothing more to ask: wait for the handover, or for the server to close
        elif self.ping_sent_at is not None:
            if now - self.ping_sent_at >= c.ping_timeout:
                self.stalled = True
                out.append(Stalled(f"no answer to our PING within {c.ping_timeout:g} s"))
        elif now - self.last_line_at >= c.ping_after:
            self.ping_sent_at = now
            out.append(Send(f"PING :{WATCHDOG_TOKEN}"))
        for channel, not_before in list(self._pending.items()):
            if not_before > now:
                continue
            if not self._limiter.take(now):
                break
            del self._pending[channel]
            out.append(Send(f"JOIN #{channel}"))
            # joined when the echo arrives; until then a silent server is the watchdog's job
        return out

    def handover(self, now: float) -> list[Action]:
        """A newer connection has joined every channel: ask this one's server for a last PONG."""
        if self.handing_over:
            return []
        self.handing_over = True
        return [Send(f"PING :{HANDOVER_TOKEN}")]

    @property
    def all_ready(self) -> bool:
        """Every channel joined and ready (the point from which this connection records them all)."""
        return len(self.ready) == len(self.config.channels)

    def next_deadline(self, now: float) -> float:
        """The monotonic time by which `tick()` should next be called."""
        c = self.config
        if not self.welcomed:
            return self.started_at + c.register_timeout
        if self.handing_over:
            deadline = self.last_line_at + c.silence_limit
        elif self.stalled:
            deadline = now + 3600.0
        elif self.ping_sent_at is not None:
            deadline = self.ping_sent_at + c.ping_timeout
        else:
            deadline = self.last_line_at + c.ping_after
        if self._pending:
            earliest = min(self._pending.values())
            deadline = min(deadline, max(earliest, now + self._limiter.wait(now)))
        return deadline


_Handler = Callable[[Session, Message, float], Sequence[Action]]
_HANDLERS: dict[str, _Handler] = {
    "PING": Session._on_ping,
    "CAP": Session._on_cap,
    "001": Session._on_welcome,
    "433": Session._on_nick_in_use,
    "NOTICE": Session._on_notice,
    "ERROR": Session._on_error,
    "JOIN": Session._on_join,
    "PART": Session._on_part,
    "KICK": Session._on_kick,
    "366": Session._on_end_of_names,
    "NICK": Session._on_nick,
    **dict.fromkeys(_LOGIN_FAILED_NUMERICS, Session._on_login_numeric),
    **dict.fromkeys(_JOIN_REFUSED_NUMERICS, Session._on_join_refused),
}
