"""Times on the command line: ISO 8601 (UTC unless an offset is given) or Unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(text: str) -> float:
    """Unix seconds from `1700000000`, `1700000000.5`, `2023-11-14T22:13:20Z` or `2023-11-14 22:13:20+01:00`.

    A time without an offset is UTC: archives are in UTC, and the local zone of whoever runs the
    command must not change the result. Raises ValueError with a readable message.
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use ISO 8601 like 2023-11-14T22:13:20Z, or Unix seconds)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
