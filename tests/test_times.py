"""formats/times.py: the one reading of times and durations people type."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from formats.errors import UsageError
from formats.times import TimeError, parse_duration, parse_since, parse_time, parse_window
from tests.strategies import typed_times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1700000000),
        ("1700000000.25", 1700000000.25),
        (" 1700000000 ", 1700000000),
        ("2023-11-14T22:13:20Z", 1700000000),
        ("2023-11-14T22:13:20", 1700000000),
        ("2023-11-14 22:13:20", 1700000000),
        ("2023-11-14T23:13:20+01:00", 1700000000),
        ("2023-11-14T22:13:20.5Z", 1700000000.5),
        ("2023-11-14T22:13:20.000", 1700000000),  # the web editor's form (WUBLOADER_HTTP.md)
        ("2023-11-14", 1699920000),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time(text) == expected
    assert type(parse_time(text)) is type(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2023-13-01T00:00:00Z",
        "1e999",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "12:00",
        "1e300",
        "14d",
    ],
)
def test_parse_time_refuses_and_quotes_the_text(text: str) -> None:
    with pytest.raises(TimeError) as caught:
        parse_time(text)
    assert repr(text) in str(caught.value)
    assert isinstance(caught.value, UsageError) and isinstance(caught.value, ValueError)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)), st.integers(-14 * 60, 14 * 60))
def test_iso_and_unix_forms_agree(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    seconds = aware.timestamp()
    assert parse_time(aware.isoformat()) == pytest.approx(seconds, abs=1e-6)
    assert parse_time(repr(seconds)) == pytest.approx(seconds, abs=1e-6)
    naive_utc = aware.astimezone(UTC).replace(tzinfo=None)
    assert parse_time(naive_utc.isoformat()) == pytest.approx(seconds, abs=1e-6)


@given(typed_times())
def test_every_typed_form_of_a_moment_reads_the_same(moment: tuple[float, list[str]]) -> None:
    seconds, forms = moment
    read = [parse_time(form) for form in forms]
    assert all(r == pytest.approx(seconds, abs=1e-6) for r in read), (seconds, forms, read)


@given(st.text(max_size=30))
def test_parse_time_any_text_parses_or_raises_time_error(text: str) -> None:
    with contextlib.suppress(TimeError):
        parse_time(text)


@given(st.text(max_size=30))
def test_parse_duration_any_text_parses_or_raises_time_error(text: str) -> None:
    with contextlib.suppress(TimeError):
        assert parse_duration(text) >= 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("14d", 14 * 86400),
        ("2w", 14 * 86400),
        ("1.5h", 5400),
        ("1D", 86400),
        (" 0 ", 0),
    ],
)
def test_parse_duration(text: str, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "-5", "+5", "nan", "inf", "5x", "d", "1e999", "1h-30m", "1e999d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(TimeError, match="duration"):
        parse_duration(text)


@given(st.integers(0, 10**6), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_duration_units_add_up(d: int, h: int, m: int, s: int) -> None:
    assert parse_duration(f"{d}d{h}h{m}m{s}s") == d * 86400 + h * 3600 + m * 60 + s


def test_parse_since_reads_a_duration_before_now_and_a_time_as_a_time() -> None:
    now = 1700000000
    assert parse_since("14d", now) == now - 14 * 86400
    assert parse_since("3600", now) == 3600
    assert parse_since("2023-11-14T22:13:20Z", now) == 1700000000
    with pytest.raises(TimeError):
        parse_since("nan", now)


def test_parse_window_echoes_the_users_text() -> None:
    assert parse_window(None, None) == (None, None)
    assert parse_window("1700000000", None) == (1700000000, None)
    with pytest.raises(TimeError) as caught:
        parse_window("2023-11-14T22:13:20Z", "1699999999")
    message = str(caught.value)
    assert "--until 1699999999 is not after --since 2023-11-14T22:13:20Z" in message
    with pytest.raises(TimeError, match="--since: time 'nan'"):
        parse_window("nan", None)
    with pytest.raises(TimeError, match="--until: time 'x'"):
        parse_window("5", "x")
