"""Theory of operation: when was a message sent?

The archive stores, for every message, a range `[time, time + time_range]` that must contain the
moment the server sent it. A recorder only knows when it *received* each line (its own wall clock),
and some lines carry the server's own clock. The rules (ARCHIVE_FORMAT.md section 4):

1. Exact: the line carries a server time (Twitch `tmi-sent-ts`, IRCv3 `time`). The range is that
   instant, width 0. The connection remembers it, with the local receive time of its line.
2. Estimated: no server time on the line, but one is known on this connection. The server clock
   now is about `last server time + (now - receive time of that line)`; padded by
   `estimated_padding` on both sides, and never earlier than the last server time itself (this
   line arrived after that one, so it was sent after it).
3. Unknown: no server time seen yet on this connection. Guess from the local clock, padded twice as
   wide: `[now - 2p, now + p]`.
4. Delayed commands (Twitch JOIN and PART, delivered up to ~30 s late) reach `max_delay` further
   into the past.

Why it holds: under the documented bounds (server lag and jitter within the padding, JOIN/PART at
most `max_delay` late) the true send time lies in the range; the soundness simulation test in
tests/test_replay_soundness.py checks exactly that. Everything here is pure: `now` is the receive
time the recorder wrote down, so replaying the same recording always gives the same numbers.

Float arithmetic is part of the format: the expressions below are evaluated in exactly the order
the spec states, because a different order can change the last bit, and so the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from formats.errors import UsageError


@dataclass(frozen=True)
class Timing:
    """The constants of the algorithm that a caller may tune, in one place. Defaults are upstream's
    current values. (The batch interval is not one of them: the archive layout fixes it at
    `formats.canonical.BATCH_INTERVAL`.)"""

    estimated_padding: int = 5
    max_delay: int = 45
    max_server_lag: int = 60

    def __post_init__(self) -> None:
        if self.estimated_padding < 0 or self.max_delay < 0:
            raise UsageError("estimated_padding and max_delay must not be negative")
        if self.max_server_lag <= self.max_delay:
            # A delayed JOIN/PART would land in a batch that is already closed, and every such
            # message would become a batch file of its own (upstream shipped this bug with 30).
            raise UsageError(f"max_server_lag ({self.max_server_lag}) must exceed max_delay ({self.max_delay})")


DEFAULT_TIMING = Timing()

# A server time further than this from the line's receive time is not believed, and its record is
# not archived: no real server lags a day, and one far-dated record would make the archive span
# centuries (replay.engine reports it).
MAX_CLOCK_DISTANCE = 86_400  # s


class ServerClock:
    """The per-connection server-time state: the last exact server time and when it arrived."""

    __slots__ = ("last_received", "last_server_time", "timing")

    def __init__(self, timing: Timing = DEFAULT_TIMING) -> None:
        self.timing = timing
        self.last_server_time: float | None = None
        self.last_received = 0.0

    def state(self) -> list[float | None]:
        return [self.last_server_time, self.last_received]

    @classmethod
    def from_state(cls, timing: Timing, state: list[float | None]) -> ServerClock:
        clock = cls(timing)
        clock.last_server_time = state[0]
        clock.last_received = float(state[1] or 0.0)
        return clock

    def observe(self, server_time: float, now: float) -> None:
        self.last_server_time = server_time
        self.last_received = now

    def estimate(self, now: float, delayed: bool) -> tuple[float, int | float]:
        """(time, time_range) for a line without a server time, received at `now` (rules 2-4)."""
        pad = self.timing.estimated_padding
        last = self.last_server_time
        time: float
        time_range: int | float
        if last is not None:
            est = last + (now - self.last_received)
            time = max(est - pad, last)
            time_range = 2 * pad
        else:
            time = now - 2 * pad
            time_range = 3 * pad
        if delayed:
            time -= self.timing.max_delay
            time_range += self.timing.max_delay
        return time, time_range
