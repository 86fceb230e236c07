"""The justlog/rustlog API (shared/spec/JUSTLOG_API.md) route by route, over real HTTP on loopback,
against every index backend this machine can run. Expected values are written from the spec and
the hand-written archive in tests/justlog_archive.py, never copied from the server's output."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from index import open_index
from index.api import ChatIndex, Query
from serve.app import ChatApp
from serve.justlog import RANDOM_TRIES, JustlogApi, OptOutList, keyset_pages
from serve.server import Running
from tests import justlog_archive as ja
from tests import pgserver
from tests.archives import write_batch

pytestmark = pytest.mark.integration

NOW = datetime(2024, 6, 20, 12, tzinfo=UTC).timestamp()  # the server's clock in most tests: June 2024 is open
GEMPIR_JUNE = "/channel/pajlada/user/gempir/2024/6"


def request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request; redirects are not followed (the frontend never follows them either)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def get_json(url: str) -> Any:
    status, headers, body = request(url)
    assert status == 200, (url, status, body)
    assert headers["content-type"] == "application/json; charset=utf-8", headers
    return json.loads(body)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ja.write(str(tmp_path_factory.mktemp("justlog") / "archive"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest, archive: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The archive's index, built once per backend (PostgreSQL: a real server in a temporary
    folder, skipped with the reason where it cannot run, a failure in CI)."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = "sqlite:" + str(tmp_path_factory.mktemp("idx") / "index.sqlite")
        else:
            url = stack.enter_context(pgserver.postgres_server())
        built = open_index(archive, url)
        built.update()
        built.close()
        yield url


def make_api(archive: str, url: str, optout: OptOutList | None = None, now: float = NOW) -> JustlogApi:
    def opener() -> ChatIndex:
        return open_index(archive, url)

    return JustlogApi(opener, optout, clock=lambda: now)


@contextlib.contextmanager
def serving(archive: str, api: JustlogApi) -> Iterator[str]:
    try:
        with Running(ChatApp(archive, extra=api)) as server:
            yield server.url
    finally:
        api.close()


@pytest.fixture(scope="module")
def base(archive: str, index_url: str) -> Iterator[str]:
    with serving(archive, make_api(archive, index_url)) as url:
        yield url


@pytest.fixture(scope="module")
def optout_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("optout") / "optout.txt"
    path.write_text("# users who asked\nhidden\n22484632  # the forsen channel, by its id\n")
    return path


@pytest.fixture(scope="module")
def hidden_base(archive: str, index_url: str, optout_file: Path) -> Iterator[str]:
    with serving(archive, make_api(archive, index_url, OptOutList.load(str(optout_file)))) as url:
        yield url


# -- the frontend's page load, in its order ---------------------------------------------------------
def test_justlog_frontend_page_load(base: str) -> None:
    """What justlog's web page calls (useChannels, useAvailableLogs, useLog), and reads."""
    channels = get_json(f"{base}/channels")["channels"]
    assert {"userID": ja.PAJ, "name": "pajlada"} in channels
    months = get_json(f"{base}/list?channel=pajlada&user=gempir")["availableLogs"]
    first = months[0]
    status, headers, body = request(f"{base}/channel/pajlada/user/gempir/{first['year']}/{first['month']}?reverse&json")
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    messages = json.loads(body)["messages"]
    assert [m["id"] for m in messages] == ["g-jun16", "u-subgift", "g-me", "g-jun15a", "g-jun5"]  # newest first
    for m in messages:
        assert isinstance(m["text"], str) and isinstance(m["tags"], dict)
        assert m["displayName"] and m["id"] is not None
        datetime.fromisoformat(m["timestamp"])  # the page does `new Date(timestamp)`
    assert request(f"{base}/swagger.json")[0] == 404  # harmless
    status, headers, body = request(f"{base}/optout", method="POST", data=b"")
    assert status == 501 and headers["content-type"] == "text/plain; charset=utf-8", body


def test_justlog_frontend_ids_as_it_sends_them(base: str) -> None:
    """The page marks ids with `id:` and sends them so to /list; the log route gets bare ids."""
    months = get_json(f"{base}/list?channelid=id:{ja.PAJ}&userid=id:{ja.GEMPIR}")["availableLogs"]
    assert months == get_json(f"{base}/list?channel=pajlada&user=gempir")["availableLogs"]
    by_id = get_json(f"{base}/channelid/{ja.PAJ}/userid/{ja.GEMPIR}/2024/6?reverse&json")
    assert by_id == get_json(f"{base}{GEMPIR_JUNE}?reverse&json")


def test_rustlog_frontend_page_load(base: str) -> None:
    messages = get_json(f"{base}{GEMPIR_JUNE}?jsonBasic=1&reverse=1")["messages"]
    assert messages and all(set(m) == {"text", "displayName", "timestamp", "id", "tags"} for m in messages)


# -- /channels and /list ------------------------------------------------------------------------
def test_channels(base: str) -> None:
    status, headers, body = request(f"{base}/channels")
    assert status == 200 and headers["cache-control"] == "public, max-age=600"
    channels = json.loads(body)["channels"]
    assert sorted(channels, key=lambda c: c["name"]) == [
        {"userID": ja.FORSEN, "name": "forsen"},
        {"userID": ja.PAJ, "name": "pajlada"},
        {"userID": ja.TIES, "name": "ties"},
    ]


def test_list_months_are_unpadded_strings_newest_first(base: str) -> None:
    body = get_json(f"{base}/list?channel=pajlada&user=gempir")
    assert body == {
        "availableLogs": [
            {"year": "2024", "month": "6"},
            {"year": "2024", "month": "5"},
            {"year": "2023", "month": "12"},
        ]
    }
    assert request(f"{base}/list?channel=pajlada&user=gempir")[1]["cache-control"] == "public, max-age=600"


def test_list_channel_days_newest_first(base: str) -> None:
    days = get_json(f"{base}/list?channel=pajlada")["availableLogs"]
    assert days == [
        {"year": "2024", "month": "6", "day": "16"},
        {"year": "2024", "month": "6", "day": "15"},
        {"year": "2024", "month": "6", "day": "5"},
        {"year": "2024", "month": "5", "day": "11"},
        {"year": "2024", "month": "5", "day": "10"},
        {"year": "2023", "month": "12", "day": "31"},
    ]


def test_list_errors(base: str) -> None:
    assert request(f"{base}/list?channel=pajlada&user=nobody_here")[::2] == (422, b"could not find users\n")
    assert request(f"{base}/list?channel=nochannel&user=gempir")[::2] == (422, b"could not find users\n")
    status, headers, body = request(f"{base}/list?channelid=1&userid={ja.GEMPIR}")
    assert status == 404 and headers["content-type"] == "text/plain; charset=utf-8"
    status, _, body = request(f"{base}/list?channel=forsen&user=oldname")  # known user, no logs there
    assert status == 404 and body.startswith(b"failed to get available user logs"), body
    assert request(f"{base}/list")[0] == 400


# -- a user's month and a channel's day -----------------------------------------------------------
def test_user_month_json_is_justlogs_message(base: str) -> None:
    messages = get_json(f"{base}{GEMPIR_JUNE}?json")["messages"]
    assert [m["id"] for m in messages] == ["g-jun5", "g-jun15a", "g-me", "u-subgift", "g-jun16"]  # the gift's recipient
    hello = messages[1]
    assert hello["text"] == "héllo Kappa 🎉" and hello["systemText"] == ""
    assert hello["username"] == "gempir" and hello["displayName"] == "Gempir" and hello["channel"] == "pajlada"
    assert hello["timestamp"] == "2024-06-15T12:00:00Z"  # justlog: whole seconds
    assert hello["type"] == 1 and hello["tags"]["emotes"] == "25:6-10" and hello["tags"]["user-id"] == ja.GEMPIR
    assert hello["raw"].startswith("@") and hello["raw"].endswith(" PRIVMSG #pajlada :héllo Kappa 🎉")
    assert messages[2]["text"] == "waves"  # /me without its ACTION wrapper
    gift = messages[3]
    assert gift["type"] == 4 and gift["text"] == "" and gift["username"] == "gifter"
    assert gift["systemText"] == "Gifter gifted a Tier 1 sub to gempir!"


def test_usernotice_and_clearchat_in_both_json_shapes(base: str) -> None:
    day = get_json(f"{base}/channel/pajlada/2024/6/15?json")["messages"]
    resub = next(m for m in day if m["id"] == "u-resub")
    assert resub["text"] == "five months Kappa"
    assert resub["systemText"] == "Subber subscribed at Tier 1. They've subscribed for 5 months!"
    assert resub["tags"]["system-msg"] == resub["systemText"]  # unescaped (\s is a space)
    clears = [m for m in day if m["type"] == 2]
    assert [(m["text"], m["systemText"], m["username"]) for m in clears] == [
        ("", "spammer has been timed out for 600 seconds", "spammer"),
        ("", "spammer2 has been banned", "spammer2"),
        ("", "Chat has been cleared", ""),
    ]
    basic = get_json(f"{base}/channel/pajlada/2024/6/15?jsonBasic")["messages"]
    resub_basic = next(m for m in basic if m["id"] == "u-resub")
    assert resub_basic["text"] == "Subber subscribed at Tier 1. They've subscribed for 5 months! five months Kappa"
    assert [m["text"] for m in basic if m["tags"].get("target-user-id") == ja.SPAMMER] == [
        "spammer has been timed out for 600 seconds"
    ]
    assert basic[0]["timestamp"] == "2024-06-15T12:00:00.250Z"  # rustlog: milliseconds when not zero


def test_removed_message_says_so(base: str) -> None:
    day = get_json(f"{base}/channel/pajlada/2024/6/15?json")["messages"]
    removed = [m["id"] for m in day if m.get("removed")]
    assert removed == ["s-1"], removed


def test_ndjson_raw_and_text(base: str) -> None:
    status, headers, body = request(f"{base}/channel/pajlada/user/gempir/2024/5?ndjson")
    assert status == 200 and headers["content-type"] == "application/x-ndjson"
    assert body.endswith(b"\r\n") and [json.loads(line)["text"] for line in body.split(b"\r\n")[:-1]] == [
        "hello in may"
    ]
    status, headers, body = request(f"{base}/channel/pajlada/user/gempir/2024/5?raw")
    assert status == 200 and headers["content-type"] == "text/plain; charset=utf-8"
    assert body.endswith(b" :gempir!gempir@gempir.tmi.twitch.tv PRIVMSG #pajlada :hello in may\n")
    status, headers, body = request(f"{base}/channel/pajlada/2024/6/15")
    assert status == 200 and headers["content-type"] == "text/plain; charset=utf-8"
    lines = body.decode().splitlines()
    assert lines[0] == "[2024-06-15 12:00:00] #pajlada gempir: héllo Kappa 🎉"
    assert "[2024-06-15 12:00:06] #pajlada spammer: spammer has been timed out for 600 seconds" in lines
    assert "[2024-06-15 12:00:10] #pajlada Chat has been cleared" in lines
    assert request(f"{base}/channel/pajlada/user/gempir/2024/6")[2].startswith(b"[2024-06-05 08:00:00] #pajlada")


def test_gzip_when_asked(base: str) -> None:
    plain = request(f"{base}{GEMPIR_JUNE}?json")
    assert "content-encoding" not in plain[1]
    for accept in ("gzip", "br, gzip;q=0.8", "deflate, GZIP"):
        status, headers, body = request(f"{base}{GEMPIR_JUNE}?json", headers={"Accept-Encoding": accept})
        assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(body) == plain[2], accept
    assert "content-encoding" not in request(f"{base}{GEMPIR_JUNE}?json", headers={"Accept-Encoding": "gzip;q=0"})[1]
    assert "content-encoding" not in request(f"{base}/channels", headers={"Accept-Encoding": "gzip"})[1]


def test_reverse_flips_the_order(base: str) -> None:
    forward = [m["id"] for m in get_json(f"{base}{GEMPIR_JUNE}?json")["messages"]]
    backward = [m["id"] for m in get_json(f"{base}{GEMPIR_JUNE}?json&reverse")["messages"]]
    assert backward == forward[::-1] and len(forward) == 5


def test_a_flag_counts_whatever_its_value(base: str) -> None:
    """`?json=0` is JSON, as justlog reads flags (key present)."""
    for query in ("json=0", "json", "json=1", "json=false", "type=json"):
        assert request(f"{base}{GEMPIR_JUNE}?{query}")[1]["content-type"].startswith("application/json"), query
    headers = {"Content-Type": "application/json"}
    assert request(f"{base}{GEMPIR_JUNE}", headers=headers)[1]["content-type"].startswith("application/json")
    assert request(f"{base}{GEMPIR_JUNE}?raw&json")[2].startswith(b'{"messages":')  # justlog: json before raw
    assert request(f"{base}{GEMPIR_JUNE}?type=raw")[2].startswith(b"@")
    assert request(f"{base}{GEMPIR_JUNE}?reverse=0&json")[2] == request(f"{base}{GEMPIR_JUNE}?reverse&json")[2]


def test_padded_and_unpadded_months_and_days(base: str) -> None:
    assert request(f"{base}/channel/pajlada/user/gempir/2024/06?json")[2] == request(f"{base}{GEMPIR_JUNE}?json")[2]
    assert request(f"{base}/channel/pajlada/2024/06/05")[2] == request(f"{base}/channel/pajlada/2024/6/5")[2]
    assert request(f"{base}/channel/pajlada/2024/6/5")[0] == 200


def test_not_found_and_bad_dates(base: str) -> None:
    for path in (
        "/channel/pajlada/user/gempir/2024/4",  # an empty month
        "/channel/pajlada/2024/6/14",  # an empty day
        "/channel/pajlada/user/gempir/2024/6/15",  # a user route with a day does not exist
        "/channel/pajlada/user/nobody_here/2024/6",  # an unknown login
        "/channel/nochannel/user/gempir/2024/6",
        "/channelid/1/2024/6/15",
        "/channel/pajlada/user/gempir/24/6",  # the year has 4 digits
        "/channel/pajlada/user/gempir/2024/123",
    ):
        status, headers, body = request(base + path)
        assert status == 404 and headers["content-type"] == "text/plain; charset=utf-8", (path, status, body)
        assert headers["access-control-allow-origin"] == "*"
    for path in ("/channel/pajlada/user/gempir/2024/13", "/channel/pajlada/2024/2/30", "/channel/pajlada/0000/1/1"):
        status, headers, body = request(base + path)
        assert status == 400 and body == b"Invalid param: Invalid date\n", (path, status, body)


def test_trailing_slash_and_upper_case(base: str) -> None:
    assert request(f"{base}{GEMPIR_JUNE}/?json")[2] == request(f"{base}{GEMPIR_JUNE}?json")[2]
    assert request(f"{base}/channels/")[0] == 200
    status, headers, _ = request(f"{base}/Channel/Pajlada/User/Gempir/2024/6?reverse&json=1")
    assert status == 302 and headers["location"] == f"{GEMPIR_JUNE}?json=1&reverse=", headers
    status, headers, _ = request(f"{base}/List")
    assert status == 302 and headers["location"] == "/list?"  # a `?` is always appended


def test_cors_on_every_answer_and_options(base: str) -> None:
    for path in ("/channels", "/list?channel=pajlada", f"{GEMPIR_JUNE}?json", "/channel/pajlada/2024/1/1"):
        headers = request(base + path)[1]
        assert headers["access-control-allow-origin"] == "*" and headers["x-content-type-options"] == "nosniff"
    status, headers, body = request(f"{base}{GEMPIR_JUNE}", method="OPTIONS")
    assert status == 200 and body == b""
    assert headers["access-control-allow-origin"] == "*" and headers["access-control-allow-methods"] == "GET"
    assert headers["access-control-allow-headers"] == (
        "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization"
    )


def test_cache_headers(base: str) -> None:
    assert request(f"{base}/channel/pajlada/user/gempir/2024/5?json")[1]["cache-control"] == "public, max-age=36000"
    assert request(f"{base}{GEMPIR_JUNE}?json")[1]["cache-control"] == "no-cache"  # June is still open at NOW
    assert request(f"{base}/channel/pajlada/2024/6/15")[1]["cache-control"] == "public, max-age=36000"
    assert request(f"{base}/channel/pajlada/random")[1]["cache-control"] == "no-cache"
    assert request(f"{base}/channel/pajlada/user/gempir")[1]["cache-control"] == "no-cache"


def test_undated_routes_redirect_to_the_newest_logs(base: str) -> None:
    status, headers, _ = request(f"{base}/channel/pajlada/user/gempir?json")
    assert status == 302 and headers["location"] == "/channel/pajlada/user/gempir/2024/6?json"
    status, headers, _ = request(f"{base}/channel/pajlada")
    assert status == 302 and headers["location"] == "/channel/pajlada/2024/6/16"
    status, headers, _ = request(f"{base}/channelid/{ja.PAJ}/userid/{ja.RENAMED}")
    assert status == 302 and headers["location"] == f"/channelid/{ja.PAJ}/userid/{ja.RENAMED}/2024/6"
    assert request(f"{base}/channel/forsen/user/oldname")[0] == 404


def test_random(base: str) -> None:
    gempir = {"hello in may", "a one-digit day", "héllo Kappa 🎉", "waves", "the next day", "last of the year", ""}
    for _ in range(8):
        message = get_json(f"{base}/channel/pajlada/user/gempir/random?json")["messages"]
        assert len(message) == 1 and message[0]["text"] in gempir, message
    status, _, body = request(f"{base}/channel/pajlada/random")
    assert status == 200 and body.startswith(b"[20") and body.count(b"\n") == 1
    assert request(f"{base}/channel/forsen/user/subber/random")[0] == 404


def test_from_and_to_both_forms(base: str) -> None:
    at = ja.ms("2024-06-15 12:00:00.250") // 1000  # 12:00:00
    one = f"{base}/channel/pajlada/user/gempir/2024/6?json&from={at}&to={at + 1}"
    assert [m["id"] for m in get_json(one)["messages"]] == ["g-jun15a", "g-me"]  # justlog's range is closed
    rfc = f"{base}/channel/pajlada/user/gempir?json&from=2024-06-15T12:00:00Z&to=2024-06-15T12:00:01Z"
    assert [m["id"] for m in get_json(rfc)["messages"]] == ["g-jun15a"]  # rustlog's is half-open, no redirect
    offset = f"{base}/channel/pajlada?json&from=2024-06-15T14:00:00%2B02:00&to=2024-06-15T14:00:01%2B02:00"
    assert [m["id"] for m in get_json(offset)["messages"]] == ["g-jun15a"]
    empty = get_json(f"{base}/channel/pajlada?json&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z")
    assert empty == {"messages": []}  # a range that holds nothing is an empty answer, as justlog's
    only_from = f"{base}/channel/pajlada/user/gempir?json&from={ja.ms('2024-06-16 00:00:00') // 1000}"
    assert [m["id"] for m in get_json(only_from)["messages"]] == ["g-jun16"]  # `to` is now
    for bad in ("from=yesterday&to=1", "from=1&to=2024-13-01T00:00:00Z", "from=99999999999999999999"):
        status, _, body = request(f"{base}/channel/pajlada/user/gempir?{bad}")
        assert status == 400 and body.startswith(b"Invalid param"), (bad, status, body)


def test_limit_and_offset(base: str) -> None:
    ids = [m["id"] for m in get_json(f"{base}{GEMPIR_JUNE}?json&limit=2&offset=1")["messages"]]
    assert ids == ["g-jun15a", "g-me"]
    assert request(f"{base}{GEMPIR_JUNE}?json&limit=-1")[0] == 400
    # an offset is rows read and thrown away: capped, so no request scans a whole channel
    assert request(f"{base}{GEMPIR_JUNE}?json&offset=100000")[:3:2] == (404, b"could not load logs\n")
    status, _, body = request(f"{base}/channel/pajlada?json&offset=100001")
    assert status == 400 and body.startswith(b"Invalid param: offset must be at most 100000"), body


def test_renamed_user_and_name_history(base: str) -> None:
    old = get_json(f"{base}/channel/pajlada/user/oldname/2024/6?json")["messages"]
    assert [m["text"] for m in old] == ["my new name"]  # the login maps to the id, which kept chatting
    assert get_json(f"{base}/list?channel=pajlada&user=newname") == get_json(
        f"{base}/list?channel=pajlada&user=oldname"
    )
    history = get_json(f"{base}/namehistory/{ja.RENAMED}")
    assert [h["user_login"] for h in history] == ["oldname", "newname"]
    assert history[0]["first_timestamp"] == "2024-05-11T10:00:00Z"


def test_plain_irc_channel_by_login(base: str) -> None:
    lines = request(f"{base}/channel/irconly/user/alice/2024/6")[2].decode().splitlines()
    assert lines == ["[2024-06-16 10:59:55] #irconly alice: hi from plain irc"]
    assert get_json(f"{base}/list?channel=irconly&user=bob") == {"availableLogs": [{"year": "2024", "month": "6"}]}


def test_paging_through_ties(archive: str, index_url: str) -> None:
    """The keyset pages of any size give exactly the one-query answer, ties in one millisecond
    included, in both orders; and a server reading two rows at a time answers the same."""
    idx = open_index(archive, index_url)
    try:
        for oldest_first in (True, False):
            query = Query(channel="ties", oldest_first=oldest_first)
            whole = [m.key for m in idx.messages(query)]
            assert len(whole) == 10
            for size in (1, 2, 3, 7, 11):
                assert [m.key for m in keyset_pages(idx, query, size)] == whole, (oldest_first, size)
    finally:
        idx.close()
    with serving(archive, JustlogApi(lambda: open_index(archive, index_url), page=2)) as url:
        small = request(f"{url}/channel/ties/2024/6/17?json&reverse")[2]
    with serving(archive, make_api(archive, index_url)) as url:
        assert small == request(f"{url}/channel/ties/2024/6/17?json&reverse")[2]
    ids = [m["id"] for m in json.loads(small)["messages"]]
    assert set(ids[:3]) == {"t-7", "t-8", "t-9"} and set(ids[3:]) == {f"t-{i}" for i in range(7)}  # newest second first


# -- rustlog's extras -------------------------------------------------------------------------------
def test_capabilities(base: str) -> None:
    status, headers, body = request(f"{base}/capabilities")
    assert status == 200 and json.loads(body) == ["arbitrary-range-query", "search", "stats", "namehistory"]
    assert headers["x-rustlog-capabilities"] == "arbitrary-range-query,search,stats,namehistory"


def test_search_over_a_channel_and_a_user(base: str) -> None:
    found = get_json(f"{base}/channel/pajlada/search?q=kappa&json")["messages"]
    assert [m["id"] for m in found] == ["g-jun15a", "u-resub"]  # case-insensitive, emotes are words
    phrase = get_json(f"{base}/channel/pajlada/search?q=%22my+new%22&json")["messages"]
    assert [m["id"] for m in phrase] == ["r-jun"]
    assert get_json(f"{base}/channel/pajlada/search?q=%22new+my%22&json") == {"messages": []}
    mine = get_json(f"{base}/channel/pajlada/user/subber/search?q=kappa&json")["messages"]
    assert [m["id"] for m in mine] == ["u-resub"]
    newest = get_json(f"{base}/channel/pajlada/search?q=kappa&json&reverse")["messages"]
    assert [m["id"] for m in newest] == ["u-resub", "g-jun15a"]
    assert request(f"{base}/channel/pajlada/search?json")[0] == 400


def test_stats(base: str) -> None:
    stats = get_json(f"{base}/channel/pajlada/stats")
    assert stats["messageCount"] == 12  # PRIVMSG and USERNOTICE rows of pajlada, counted by hand
    assert stats["topChatters"][0] == {"userId": ja.GEMPIR, "userLogin": "gempir", "messageCount": 6}
    june15 = get_json(f"{base}/channel/pajlada/stats?from=2024-06-15T00:00:00Z&to=2024-06-16T00:00:00Z")
    assert june15["messageCount"] == 7 and june15["messagesPerDay"] == [{"date": "2024-06-15", "messageCount": 7}]
    assert get_json(f"{base}/channel/pajlada/user/gempir/stats") == {
        "userId": ja.GEMPIR,
        "userLogin": "gempir",
        "messageCount": 6,
    }


# -- the opt-out list -----------------------------------------------------------------------------
def test_opted_out_user_is_403_on_every_read_route(hidden_base: str) -> None:
    for path in (
        "/list?channel=pajlada&user=hidden",
        f"/list?channel=pajlada&userid={ja.HIDDEN}",
        "/channel/pajlada/user/hidden/2024/6?json",
        f"/channel/pajlada/userid/{ja.HIDDEN}/2024/6",
        "/channel/pajlada/user/hidden",
        "/channel/pajlada/user/hidden/random",
        "/channel/pajlada/user/hidden/search?q=forget",
        "/channel/pajlada/user/hidden/stats",
        f"/namehistory/{ja.HIDDEN}",
    ):
        status, headers, body = request(hidden_base + path)
        assert (status, body) == (403, b"User or channel has opted out\n"), path
        assert headers["content-type"] == "text/plain; charset=utf-8"


def test_opted_out_user_is_absent_elsewhere(hidden_base: str) -> None:
    day = request(f"{hidden_base}/channel/pajlada/2024/6/15")[2].decode()
    assert "hidden" not in day and "gempir" in day
    assert get_json(f"{hidden_base}/channel/pajlada/search?q=forget&json") == {"messages": []}
    chatters = get_json(f"{hidden_base}/channel/pajlada/stats")["topChatters"]
    assert ja.HIDDEN not in [c["userId"] for c in chatters] and chatters
    for _ in range(10):
        assert b"hidden" not in request(f"{hidden_base}/channel/pajlada/random?raw")[2]


def test_opted_out_channel(hidden_base: str) -> None:
    assert sorted(c["name"] for c in get_json(f"{hidden_base}/channels")["channels"]) == ["pajlada", "ties"]
    for path in ("/list?channel=forsen", "/channel/forsen/2024/6/16", "/channel/forsen/search?q=forsen1"):
        assert request(hidden_base + path)[0] == 403, path


def test_optout_file_is_read_again_when_it_changes(archive: str, index_url: str, tmp_path: Path) -> None:
    path = tmp_path / "optout.txt"
    path.write_text("")
    optout = OptOutList.load(str(path))
    with serving(archive, make_api(archive, index_url, optout)) as url:
        assert request(f"{url}{GEMPIR_JUNE}")[0] == 200
        path.write_text(f"{ja.GEMPIR}\n")
        os.utime(path, (time.time() + 5, time.time() + 5))
        optout.checked = 0  # the file is looked at once a second: do not wait for it
        assert request(f"{url}{GEMPIR_JUNE}")[0] == 403
        assert request(f"{url}/channel/pajlada/user/oldname/2024/6")[0] == 200


# -- hostile input --------------------------------------------------------------------------------
HOSTILE = [
    "q=%22",
    "q=*",
    "q=NEAR(a+b)",
    "q=a+OR+b+NOT+c",
    "q=%27%3B+DROP+TABLE+messages%3B--",
    "q=1%27+OR+%271%27%3D%271",
    "q=%00",
    "q=%ff%fe",
    "q=" + "a" * 9000,
    "q=" + "+".join(["w"] * 200),
    "q=%F0%9F%8E%89",
    "q=col%3Avalue",
    "q=%5E*%7B%7D%28%29",
    "q=a&q=b&" + "&".join(f"k{i}=v" for i in range(80)),
    "from=1e9&to=2e9&q=x",
    "from=%00&q=x",
    "limit=99999999999999999999&q=x",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_500(base: str, query: str) -> None:
    for route in ("/channel/pajlada/search", "/channel/pajlada/user/gempir/search", GEMPIR_JUNE, "/list"):
        status, headers, body = request(f"{base}{route}?{query}&json")
        assert status in (200, 400, 404), (route, query, status, body)
        assert b"Traceback" not in body
        if status == 400:
            assert headers["content-type"] == "text/plain; charset=utf-8" and body.endswith(b"\n")
            assert body.count(b"\n") == 1, body


def test_hostile_paths_never_500(base: str) -> None:
    for path in (
        "/channel/pajlada/user/gempir/9999/12",
        "/channel/pajlada/9999/12/31",
        "/channel/pajlada/user/gempir/2024/00",
        "/channel/%ff/2024/6/15",
        "/channel/pajlada%00/2024/6/15",
        "/namehistory/abc",
        "/channelid/abc/2024/6/15",
        "/channel/" + "a" * 5000 + "/2024/6/15",
    ):
        status, _, body = request(base + path)
        assert status in (400, 404), (path, status, body)


def test_without_an_index_the_api_says_so(archive: str) -> None:
    with Running(ChatApp(archive, extra=JustlogApi(None))) as server:
        status, _, body = request(f"{server.url}/channels")
        assert status == 503 and b"chat-archiver index" in body
        assert request(f"{server.url}/files")[0] == 200  # wubloader's routes are untouched


def test_frontend_files(archive: str, index_url: str, tmp_path: Path) -> None:
    """`--justlog-web`: the built frontend at `/` beside the API, as justlog serves web/dist; the
    page even for a `?channel=` nobody knows (justlog answers 422 there: a quirk not copied)."""
    web = tmp_path / "dist"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>justlog</title>")
    (web / "assets" / "app.js").write_text("console.log(1)")
    (web / ".secret").write_text("no")
    (tmp_path / "outside.txt").write_text("no")
    (web / "link.txt").symlink_to(tmp_path / "outside.txt")
    api = JustlogApi(lambda: open_index(archive, index_url), web=str(web))
    with serving(archive, api) as url:
        for path in ("/", "/?channel=unknownname&username=nobody"):
            status, headers, body = request(url + path)
            assert status == 200 and body == b"<!doctype html><title>justlog</title>", path
            assert headers["content-type"] == "text/html; charset=utf-8" and headers["cache-control"] == "no-cache"
        status, headers, body = request(f"{url}/assets/app.js")
        assert status == 200 and body == b"console.log(1)" and "javascript" in headers["content-type"]
        for path in ("/.secret", "/link.txt", "/assets/missing.js", "/assets/../../outside.txt"):
            status, _, body = request(url + path)
            assert status in (403, 404) and body != b"no", path  # 403: wubloader's rule for a leading period
        assert request(f"{url}/channels")[0] == 200 and request(f"{url}/files")[0] == 200
    with serving(archive, make_api(archive, index_url)) as url:
        assert b"chat archive" in request(f"{url}/")[2]  # without it, `/` is the archive's own browser


def test_wubloader_routes_still_answer(base: str) -> None:
    assert request(f"{base}/files")[0] == 200
    status, headers, _ = request(f"{base}/channel/chat.json")  # the chat of a channel named `channel`
    assert status == 400 and "x-rustlog-capabilities" not in headers  # wubloader's: it wants start and end


# -- the command as a user runs it ----------------------------------------------------------------
def test_serve_command_with_index_and_optout(archive: str, index_url: str, optout_file: Path) -> None:
    if not index_url.startswith("sqlite:"):
        pytest.skip("the command's test runs once, on the SQLite index")
    exe = Path(sys.executable).parent / "chat-archiver"
    args = [str(exe), "serve", archive, "--port", "0", "--index", index_url, "--optout-file", str(optout_file)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving" in line, line
        url = line.split(" on ")[1].split()[0]
        notes = proc.stderr.readline() + proc.stderr.readline()
        assert "opt-out list" in notes and "justlog API on" in notes, notes
        assert request(f"{url}/list?channel=pajlada&user=gempir")[0] == 200
        assert request(f"{url}/list?channel=pajlada&user=hidden")[0] == 403
        proc.terminate()
        assert proc.wait(20) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_serve_command_without_an_index_says_so(tmp_path: Path) -> None:
    root = ja.write(str(tmp_path / "bare"))
    exe = Path(sys.executable).parent / "chat-archiver"
    proc = subprocess.Popen([str(exe), "serve", root, "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert "serving" in proc.stderr.readline()
        assert "justlog API off: no search index" in proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(20)
        if proc.stderr:
            proc.stderr.close()
    for bad, says in (
        (["--index", str(tmp_path / "none.sqlite")], "no such index"),
        (["--optout-file", str(tmp_path / "missing.txt")], "cannot read the opt-out file"),
        (["--justlog-web", str(tmp_path)], "no index.html there"),
    ):
        done = subprocess.run([str(exe), "serve", root, *bad], capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, done.stderr
    (tmp_path / "bad.txt").write_text("gempir\nnot a login!\n")
    done = subprocess.run(
        [str(exe), "serve", root, "--optout-file", str(tmp_path / "bad.txt")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and "bad.txt:2:" in done.stderr, done.stderr


def test_a_wild_tmi_sent_ts_does_not_break_the_day(tmp_path: Path) -> None:
    """A `tmi-sent-ts` of 15 digits (a year past 9999) on a stored message: the day, the month and
    a search still answer, with the message at the archive's own time."""
    root = str(tmp_path / "archive")
    line = ja.privmsg("2024-06-15 12:00:00", "wild", "77", "mallory", "78", "far future", "w-1")
    line = line.replace(f"tmi-sent-ts={ja.ms('2024-06-15 12:00:00')}", "tmi-sent-ts=999999999999999")
    assert "tmi-sent-ts=999999999999999" in line
    rec = ja.record(line)
    rec["time"] = ja.ms("2024-06-15 12:00:00") / 1000
    rec["receivers"] = {ja.RECEIVER: rec["time"] + 0.1}
    write_batch(root, "wild", int(rec["time"] // 60) * 60, [rec])
    url = "sqlite:" + str(tmp_path / "index.sqlite")
    built = open_index(root, url)
    built.update()
    built.close()
    with serving(root, make_api(root, url)) as base:
        for path in ("/channel/wild/2024/6/15?json", "/channel/wild/user/mallory/2024/6?json"):
            (message,) = get_json(base + path)["messages"]
            assert message["timestamp"] == "2024-06-15T12:00:00Z", path
        status, _, body = request(base + "/channel/wild/2024/6/15")
        assert status == 200 and body.startswith(b"[2024-06-15 12:00:00] #wild mallory: far future"), body


def test_random_counts_the_channel_once_however_many_picks_land_on_opted_out_users(tmp_path: Path) -> None:
    """/random in a channel whose every message is an opted-out user's: a few picks, all refused,
    then 404, and the channel's rows are counted once for the request, not once per pick."""

    root = str(tmp_path / "archive")
    records = []
    for i in range(3):
        line = ja.privmsg(f"2024-06-15 12:00:0{i}", "quiet", "55", "hidden", "56", f"secret {i}", f"q-{i}")
        records.append(ja.record(line))
    write_batch(root, "quiet", int(records[0]["time"] // 60) * 60, records)
    url = "sqlite:" + str(tmp_path / "index.sqlite")
    built = open_index(root, url)
    built.update()
    built.close()
    optout = tmp_path / "optout.txt"
    optout.write_text("hidden\n")
    calls = {"count": 0, "random_message": 0}

    def opener() -> ChatIndex:
        idx = open_index(root, url)
        for name in calls:
            real = getattr(idx, name)

            def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
                calls[_name] += 1
                return _real(*args, **kwargs)

            setattr(idx, name, counted)
        return idx

    with serving(root, JustlogApi(opener, OptOutList.load(str(optout)), clock=lambda: NOW)) as base:
        before = dict(calls)
        status, _, body = request(f"{base}/channel/quiet/random?raw")
        assert status == 404 and b"secret" not in body
        assert calls["count"] - before["count"] == 1
        assert calls["random_message"] - before["random_message"] == RANDOM_TRIES
