"""serve.justlog_routes, the pure half of the justlog API: which request a URL is. The examples come
from shared/spec/JUSTLOG_API.md; the fuzz test holds the house invariant (any input is a request,
a redirect, a refusal or not ours, never an exception)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from serve import justlog_routes as jr
from serve.routes import Reject

NOW = datetime(2024, 6, 20, tzinfo=UTC).timestamp()


def route(path: str, query: str = "", method: str = "GET", content_type: str = "") -> object:
    return jr.route(method, path, query, now=NOW, content_type=content_type)


def test_claims_only_api_paths() -> None:
    for path in (
        "/channels",
        "/list/",
        "/capabilities",
        "/optout",
        "/namehistory/1",
        "/channel/x",
        "/ChannelId/1/2024/6/5",
    ):
        assert jr.claims(path), path
    for path in ("/", "/files", "/channel", "/channel/chat.json", "/x/chat.jsonl", "/channels/x", "/segments/a/b"):
        assert not jr.claims(path), path


def test_user_month_and_channel_day() -> None:
    got = route("/channel/Pajlada/user/gempir/2024/6".lower(), "json")
    assert isinstance(got, jr.Logs) and got.period == (2024, 6) and got.options.fmt == "json"
    assert got.channel == jr.Who("pajlada", by_id=False) and got.user == jr.Who("gempir", by_id=False)
    day = route("/channelid/11148817/2024/06/05")
    assert isinstance(day, jr.Logs) and day.period == (2024, 6, 5) and day.channel.by_id and day.user is None
    assert route("/channel/p/user/u/2024/6/15") == jr.NOT_FOUND


def test_format_precedence_and_flags() -> None:
    cases = {
        "json=0": "json",
        "json&raw": "json",
        "type=json": "json",
        "jsonBasic=1&raw": "jsonBasic",
        "ndjson&raw": "ndjson",
        "raw=0": "raw",
        "type=raw": "raw",
        "": "text",
        "type=other": "text",
    }
    for query, expected in cases.items():
        got = route("/channel/p/2024/6/5", query)
        assert isinstance(got, jr.Logs) and got.options.fmt == expected, query
    got = route("/channel/p/2024/6/5", "", content_type="application/json; charset=utf-8")
    assert isinstance(got, jr.Logs) and got.options.fmt == "json"
    got = route("/channel/p/2024/6/5", "reverse=0")
    assert isinstance(got, jr.Logs) and got.options.reverse


def test_from_and_to() -> None:
    closed = jr.parse_span([("from", "100"), ("to", "200")], now=NOW)
    assert closed == jr.Span(100, 201)  # justlog's range includes its last second
    half_open = jr.parse_span([("from", "1970-01-01T00:01:40Z"), ("to", "1970-01-01T00:03:20+00:00")], now=NOW)
    assert half_open == jr.Span(100, 200)
    assert jr.parse_span([("from", "100")], now=NOW) == jr.Span(100, NOW)
    assert jr.parse_span([("to", "2024-06-01T00:00:00")], now=NOW) == jr.Span(NOW, 1717200000)
    assert jr.parse_span([], now=NOW) is None
    for bad in ("yesterday", "1e9", "-5", "2024-02-30T00:00:00Z", "9" * 13, "x" * 100):
        assert isinstance(jr.parse_span([("from", bad), ("to", "1")], now=NOW), Reject), bad


def test_period_span_is_the_utc_month_or_day() -> None:
    assert jr.period_span((2024, 12)) == jr.Span(1733011200, 1735689600)  # to 2025-01-01
    assert jr.period_span((2024, 2, 29)) == jr.Span(1709164800, 1709251200)
    with pytest.raises(ValueError):
        jr.period_span((2023, 2, 29))


def test_upper_case_redirect_reencodes_the_query() -> None:
    assert route("/List", "user=B+C&channel=A") == jr.Redirect("/list?channel=A&user=B+C")
    assert route("/Channel/X/2024/6/5") == jr.Redirect("/channel/x/2024/6/5?")
    assert route("/Channel/X", "json") == jr.Redirect("/channel/x?json=")


def test_methods() -> None:
    assert isinstance(route("/channels", method="OPTIONS"), jr.Preflight)
    assert isinstance(route("/optout", method="POST"), jr.OptOut)
    assert route("/optout") == Reject(405, "Method not allowed: POST /optout")
    assert isinstance(route("/channels", method="DELETE"), Reject)


def test_list_parameters() -> None:
    assert route("/list", "channelid=id:1&user=Bob") == jr.ListLogs(jr.Who("1", True), jr.Who("bob", False))
    assert route("/list", "channel=a&channelid=2") == jr.ListLogs(jr.Who("2", True), None)  # the id wins
    for bad in ("", "user=a", "channel=a%20b", "channelid=12a", "channel=a&userid=x"):
        assert isinstance(route("/list", bad), Reject), bad


@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "PUT"]),
    path=st.one_of(
        st.text(max_size=80).map(lambda s: "/" + s),
        st.lists(
            st.sampled_from(
                [
                    "channel",
                    "channelid",
                    "user",
                    "userid",
                    "x",
                    "1",
                    "2024",
                    "06",
                    "13",
                    "random",
                    "search",
                    "stats",
                    "",
                ]
            ),
            max_size=8,
        ).map(lambda parts: "/" + "/".join(parts)),
    ),
    query=st.text(max_size=200),
)
@example(method="GET", path="/channel/x/search", query="q=%ff")
@example(method="GET", path="/channel/x/9999/12/31", query="")
@example(method="GET", path="/channel/x", query="from=%00")
def test_any_request_parses_or_is_refused(method: str, path: str, query: str) -> None:
    got = jr.route(method, path, query, now=NOW)
    assert got is None or isinstance(
        got,
        (
            Reject,
            jr.Redirect,
            jr.Channels,
            jr.Capabilities,
            jr.OptOut,
            jr.Preflight,
            jr.ListLogs,
            jr.NameHistory,
            jr.Logs,
            jr.Search,
            jr.Stats,
        ),
    )
