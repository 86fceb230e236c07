"""The justlog API against a brute-force model: for random archives of one channel, what each
route answers equals a plain filter over the records, written here from the spec's rules (section
5, "which lines go into a user's log" and "a channel day"), through the real index (SQLite) and the
real API object. Times are distinct milliseconds, so the order is the time order."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from index import open_index
from serve.justlog import JustlogApi
from tests import justlog_archive as ja
from tests.archives import write_batch

CHANNEL, ROOM = "chan", "42"
USERS = [(f"u{i}", str(100 + i)) for i in range(4)]
T0 = datetime(2024, 5, 20, tzinfo=UTC).timestamp()  # messages over 2024-05-20 .. 2024-07-10
SPAN = 51 * 86400


@st.composite
def events(draw: Any) -> list[dict[str, Any]]:
    """One channel's chat: PRIVMSGs, subs, sub gifts, timeouts and CLEARMSGs, at distinct times."""
    count = draw(st.integers(1, 25))
    times = sorted(draw(st.lists(st.integers(0, SPAN * 1000), min_size=count, max_size=count, unique=True)))
    out = []
    for n, offset in enumerate(times):
        kind = draw(st.sampled_from(["privmsg", "privmsg", "privmsg", "sub", "gift", "timeout", "clearmsg"]))
        login, uid = draw(st.sampled_from(USERS))
        other_login, other = draw(st.sampled_from(USERS))
        ms = int(T0 * 1000) + offset
        out.append(
            {"kind": kind, "login": login, "uid": uid, "other": other, "other_login": other_login, "ms": ms, "n": n}
        )
    return out


def line(e: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(e["ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if e["kind"] == "privmsg":
        return ja.privmsg(when, CHANNEL, ROOM, e["login"], e["uid"], f"text {e['n']}", f"id-{e['n']}")
    base = f"room-id={ROOM};tmi-sent-ts={e['ms']}"
    if e["kind"] == "timeout":
        return f"@ban-duration=5;{base};target-user-id={e['uid']} :tmi.twitch.tv CLEARCHAT #{CHANNEL} :{e['login']}"
    if e["kind"] == "clearmsg":
        return f"@login={e['login']};{base};target-msg-id=id-{e['n'] - 1} :tmi.twitch.tv CLEARMSG #{CHANNEL} :x"
    tags = f"display-name={e['login']};id=id-{e['n']};login={e['login']};{base};user-id={e['uid']}"
    if e["kind"] == "gift":
        tags += f";msg-id=subgift;msg-param-recipient-id={e['other']};system-msg=gift\\sto\\s{e['other_login']}"
        return f"@{tags} :tmi.twitch.tv USERNOTICE #{CHANNEL}"
    return f"@{tags};msg-id=sub;system-msg={e['login']}\\ssubscribed :tmi.twitch.tv USERNOTICE #{CHANNEL} :hi"


def in_user_log(e: dict[str, Any], uid: str) -> bool:
    """The spec's user log: their PRIVMSGs and USERNOTICEs, gifts to them, CLEARCHATs of them."""
    if e["kind"] in ("privmsg", "sub", "timeout"):
        return e["uid"] == uid
    if e["kind"] == "gift":
        return uid in (e["uid"], e["other"])
    return False  # a CLEARMSG is no log line


def label(e: dict[str, Any]) -> str:
    return "" if e["kind"] == "timeout" else f"id-{e['n']}"


def month_of(ms: int) -> tuple[int, int]:
    d = datetime.fromtimestamp(ms / 1000, UTC)
    return d.year, d.month


def day_of(ms: int) -> tuple[int, int, int]:
    d = datetime.fromtimestamp(ms / 1000, UTC)
    return d.year, d.month, d.day


def get(api: JustlogApi, path: str, query: str = "") -> tuple[int, Any]:
    status, _, body, _ = api.answer("GET", path, query, {})
    data = b"".join(body)
    return status, json.loads(data) if data.startswith((b"{", b"[")) else data


@given(events())
@example(
    [
        {
            "kind": "clearmsg",
            "login": "u0",
            "uid": "100",
            "other": "100",
            "other_login": "u0",
            "ms": 1716163200000,
            "n": 0,
        }
    ]
)
def test_routes_equal_a_filter_over_the_records(chat: list[dict[str, Any]]) -> None:
    root = tempfile.mkdtemp(prefix="justlog-model-")
    try:
        for e in chat:
            record = ja.record(line(e))
            write_batch(root, CHANNEL, int(record["time"] // 60) * 60, [record])
        built = open_index(root)
        built.update()
        built.close()
        api = JustlogApi(lambda: open_index(root))
        try:
            logged = [e for e in chat if e["kind"] != "clearmsg"]
            for login, uid in USERS:
                mine = [e for e in logged if in_user_log(e, uid)]
                months = sorted({month_of(e["ms"]) for e in mine}, reverse=True)
                # a login is known to the archive when its user wrote something (a gift's recipient
                # alone is only an id): justlog would ask Twitch, we ask by id then
                known = any(e["uid"] == uid for e in logged)
                status, body = get(api, "/list", f"channelid={ROOM}&userid={uid}")
                if not months:
                    assert status == 404, (status, body)
                    assert get(api, "/list", f"channel={CHANNEL}&user={login}")[0] == (404 if known else 422)
                    continue
                assert body["availableLogs"] == [{"year": str(y), "month": str(m)} for y, m in months]
                if known:
                    assert get(api, "/list", f"channel={CHANNEL}&user={login}")[1] == body
                for year, month in months:
                    wanted = [label(e) for e in mine if month_of(e["ms"]) == (year, month)]
                    status, body = get(api, f"/channelid/{ROOM}/userid/{uid}/{year}/{month}", "json")
                    assert [m["id"] for m in body["messages"]] == wanted, (login, year, month)
                    if known:
                        status, body = get(api, f"/channel/{CHANNEL}/user/{login}/{year}/{month}", "json&reverse")
                        assert [m["id"] for m in body["messages"]] == wanted[::-1]
            days = sorted({day_of(e["ms"]) for e in logged}, reverse=True)
            status, body = get(api, "/list", f"channel={CHANNEL}")
            if not days:  # nothing but CLEARMSGs: no channel the API knows
                assert status == 422, (status, body)
                return
            assert body["availableLogs"] == [{"year": str(y), "month": str(m), "day": str(d)} for y, m, d in days]
            for year, month, day in days:
                wanted = [label(e) for e in logged if day_of(e["ms"]) == (year, month, day)]
                status, body = get(api, f"/channel/{CHANNEL}/{year}/{month}/{day}", "json")
                assert [m["id"] for m in body["messages"]] == wanted, (year, month, day)
                removed = {f"id-{e['n'] - 1}" for e in chat if e["kind"] == "clearmsg"}
                assert {m["id"] for m in body["messages"] if m.get("removed")} >= removed & set(wanted)
        finally:
            api.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
