"""Pacing rules: reconnect backoff and the join rate. Pure: callers pass the time and the randomness.

Backoff. After the n-th failed attempt in a row the next one waits a random time in
[d/2, d] with d = min(cap, base * 2**(n-1)) ("equal jitter"): never a tight loop, never longer than
the cap, and several recorders that lost the same server do not come back in lock step. A
connection that has joined every channel and received chat resets the count (the supervisor calls
`reset()`), so a recorder that ran for a week, or only a minute between two cuts, comes back after
about a second, not after the cap.

Join rate. Twitch allows 20 JOINs per 10 seconds on one connection; going over gets the connection
dropped. `JoinLimiter` is a sliding window: a JOIN may go when fewer than `limit` JOINs were sent
in the last `window` seconds. Sliding (not a bucket refilled at window edges) is what guarantees
that *every* 10-second interval holds at most 20, which is what the server counts.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable


class Backoff:
    """Capped exponential backoff with equal jitter."""

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < base <= cap:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rand = rand

    def ceiling(self, failures: int) -> float:
        """The longest wait after `failures` failures in a row (the jitter picks from its upper half)."""
        if failures <= 0:
            return 0.0
        # min() before the power would overflow for a recorder that failed a thousand times
        exponent = min(failures - 1, 64)
        return min(self.cap, self.base * 2.0**exponent)

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next attempt."""
        self.failures += 1
        top = self.ceiling(self.failures)
        return top / 2 + self._rand() * (top / 2)

    def reset(self) -> None:
        self.failures = 0


class JoinLimiter:
    """At most `limit` joins in any `window` seconds (a sliding window over the send times)."""

    def __init__(self, limit: int = 20, window: float = 10.0) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("need limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._sent: deque[float] = deque()

    def _expire(self, now: float) -> None:
        # `sent + window <= now`, the same float expression `wait()` uses, so the two always agree
        while self._sent and self._sent[0] + self.window <= now:
            self._sent.popleft()

    def wait(self, now: float) -> float:
        """Seconds until one more join may be sent (0 when it may go now)."""
        self._expire(now)
        if len(self._sent) < self.limit:
            return 0.0
        return self._sent[0] + self.window - now

    def take(self, now: float) -> bool:
        """Send one join now if allowed; True if it was counted."""
        if self.wait(now) > 0:
            return False
        self._sent.append(now)
        return True
