"""The one reading of times and durations that people type: on the command line, in a URL.

Every command that takes a moment (`replay --since`, `export --since`, `serve`'s
`chat.json?start=`) and every option that takes a length of time (`sync --since 14d`) reads it
here, so the same text means the same thing everywhere.

A moment is either Unix seconds (`1700000000`, `1700000000.5`) or ISO 8601
(`2023-11-14T22:13:20Z`, `2023-11-14T23:13:20+01:00`, `2023-11-14 22:13:20`, `2023-11-14`).
ISO without an offset is UTC, never the local zone of whoever runs the command: archives are in
UTC, and the web editor sends UTC without an offset (`2023-11-14T22:10:00.000`). A duration is a
number of seconds or one or more number-unit pairs (`90`, `90s`, `15m`, `1h30m`, `14d`, `2w`).

The rule is strict on purpose: `nan`, `inf` and numbers too large for a date are refused, not
read as "no limit" (a window that filters nothing is worse than an error). Errors are
`TimeError`, a `UsageError` that is also a `ValueError`, and they quote the text as it was given,
so the user recognises what they typed.

The module is pure: `parse_since` takes `now` as data rather than reading the clock.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from formats.errors import UsageError

__all__ = ["TimeError", "parse_duration", "parse_since", "parse_time", "parse_window"]

_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"^((\d+(\.\d*)?|\.\d+)[smhdw])+$", re.IGNORECASE)
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhdw])", re.IGNORECASE)
# what a datetime can name; Unix seconds outside it are surely typing mistakes
_FIRST = datetime(1, 1, 1, tzinfo=UTC).timestamp()
_LAST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()

TIME_FORMS = "Unix seconds, or ISO 8601 like 2023-11-14T22:13:20Z (UTC unless an offset is given)"
DURATION_FORMS = "seconds, or a number with a unit s, m, h, d or w, like 90s, 15m, 1h30m, 14d"


class TimeError(UsageError, ValueError):
    """A time or duration that does not read. The message quotes the text as given."""


def _whole(seconds: float) -> float:
    # an integral moment stays an int, so that it prints as the user typed it (1700000000, not
    # 1700000000.0) wherever it is echoed or written
    return int(seconds) if seconds == int(seconds) and abs(seconds) < 2**53 else seconds


def parse_time(text: str) -> float:
    """Unix seconds from `text`: Unix seconds or ISO 8601 (see the module docstring).

    Raises TimeError for anything else, including `nan`, `inf` and moments outside the years
    1 to 9999.
    """
    value = text.strip()
    if _NUMBER_RE.match(value):
        seconds = float(value)
        if not (math.isfinite(seconds) and _FIRST <= seconds <= _LAST):
            if math.isfinite(seconds) and seconds > _LAST and seconds / 1000 <= _LAST:
                raise TimeError(
                    f"time {text!r} is out of range (years 1 to 9999): it looks like milliseconds "
                    f"since 1970; in Unix seconds that is {_whole(seconds / 1000)}"
                )
            raise TimeError(f"time {text!r} is out of range (years 1 to 9999)")
        return _whole(seconds)
    iso = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise TimeError(f"time {text!r} is not a time: use {TIME_FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        seconds = moment.timestamp()
    except (OverflowError, OSError, ValueError):
        raise TimeError(f"time {text!r} is out of range (years 1 to 9999)") from None
    return _whole(seconds)


def parse_duration(text: str) -> float:
    """A length of time in seconds from `90`, `90s`, `15m`, `1h30m`, `14d` or `2w` (units may be
    upper case). Raises TimeError for anything else, including negative, `nan` and `inf`."""
    value = text.strip()
    if _NUMBER_RE.match(value) and not value.startswith(("-", "+")):
        seconds = float(value)
    elif _DURATION_RE.match(value):
        seconds = sum(float(n) * _UNITS[u.lower()] for n, u in _DURATION_PART_RE.findall(value))
    else:
        raise TimeError(f"duration {text!r} is not a duration: use {DURATION_FORMS}")
    if not math.isfinite(seconds) or seconds > _LAST - _FIRST:
        raise TimeError(f"duration {text!r} is out of range")
    return _whole(seconds)


def parse_since(text: str, now: float) -> float:
    """A moment given either as a time (`parse_time`) or as a duration before `now` (`14d` means
    fourteen days before `now`). A bare number is a time, not a duration: `--since 3600` is
    one hour after 1970, which is what the same text means everywhere else."""
    if _DURATION_RE.match(text.strip()):
        moment = now - parse_duration(text)
        if moment < _FIRST:
            raise TimeError(f"duration {text!r} reaches before the year 1")
        return _whole(moment)
    return parse_time(text)


def parse_window(
    since: str | None,
    until: str | None,
    *,
    names: tuple[str, str] = ("--since", "--until"),
    now: float | None = None,
) -> tuple[float | None, float | None]:
    """Both ends of a half-open window `[since, until)` (None: open on that side). With `now`,
    either end may also be a duration back from it (`--since 6h`, as `parse_since`).

    An empty window (`until` not after `since`) is refused, naming the options (`names`) and
    echoing both times as given, so every command treats the same empty window the same way.
    """
    start = None if since is None else _named(since, names[0], now)
    end = None if until is None else _named(until, names[1], now)
    if start is not None and end is not None and end <= start:
        raise TimeError(
            f"the window is empty: {names[1]} {until} is not after {names[0]} {since}",
        )
    return start, end


def _named(text: str, name: str, now: float | None) -> float:
    try:
        return parse_time(text) if now is None else parse_since(text, now)
    except TimeError as e:
        raise TimeError(f"{name}: {e}") from None
