"""serve.justlog_format, the pure half that turns index rows into justlog's and rustlog's shapes.
Expected values are the spec's (JUSTLOG_API.md sections 5 and 6), written by hand."""

from __future__ import annotations

import json
from typing import Any

from index.api import Message
from serve import justlog_format as fmt


def row(command: str, text: str, tags: dict[str, Any], login: str | None = "gempir", **extra: Any) -> Message:
    params = ["#pajlada", text] if text or command != "USERNOTICE" else ["#pajlada"]
    record = {
        "command": command,
        "params": params,
        "sender": login if command == "PRIVMSG" else "tmi.twitch.tv",
        "user": login if command == "PRIVMSG" else None,
        "host": None,
        "tags": tags,
        "receivers": {"h.AAAAA.0": 1718452800.5},
        "time": 1718452800.25,
        "time_range": 0,
    }
    fields: dict[str, Any] = {
        "key": 1,
        "channel": "pajlada",
        "command": command,
        "time": 1718452800.25,
        "time_range": 0.0,
        "msg_id": str(tags.get("id", "")),
        "user_id": tags.get("user-id"),
        "login": login,
        "display_name": str(tags.get("display-name") or login or ""),
        "room_id": "11148817",
        "text": text,
        "tags": tags,
        "line": json.dumps(record, sort_keys=True),  # as the archive holds it (canonical)
        "removed": False,
        "removed_at": None,
    }
    fields.update(extra)
    return Message(**fields)


def test_privmsg_and_me() -> None:
    hello = row("PRIVMSG", "hi", {"id": "a", "tmi-sent-ts": "1718452800250", "display-name": "Gempir", "flag": True})
    out = fmt.justlog_json(hello)
    assert (out["text"], out["systemText"], out["username"], out["displayName"], out["type"]) == (
        "hi",
        "",
        "gempir",
        "Gempir",
        1,
    )
    assert out["timestamp"] == "2024-06-15T12:00:00Z" and out["tags"]["flag"] == ""  # a bare tag is ""
    assert out["raw"] == "@display-name=Gempir;flag;id=a;tmi-sent-ts=1718452800250 :gempir!gempir PRIVMSG #pajlada :hi"
    assert fmt.basic_json(hello)["timestamp"] == "2024-06-15T12:00:00.250Z"
    assert fmt.user_text(row("PRIVMSG", "\x01ACTION waves\x01", {})) == "waves"
    assert fmt.text_line(hello) == "[2024-06-15 12:00:00] #pajlada gempir: hi\n"


def test_clearchat_texts() -> None:
    timeout = row("CLEARCHAT", "Spammer", {"ban-duration": "600"}, login="spammer")
    ban = row("CLEARCHAT", "spammer", {}, login="spammer")
    clear = row("CLEARCHAT", "", {}, login=None)
    assert [fmt.system_text(m) for m in (timeout, ban, clear)] == [
        "spammer has been timed out for 600 seconds",
        "spammer has been banned",
        "Chat has been cleared",
    ]
    assert [fmt.user_text(m) for m in (timeout, ban, clear)] == ["", "", ""]
    assert fmt.justlog_json(timeout)["type"] == 2 and fmt.display_name(timeout) == "spammer"
    assert fmt.text_line(clear) == "[2024-06-15 12:00:00] #pajlada Chat has been cleared\n"


def test_usernotice_in_both_shapes() -> None:
    resub = row("USERNOTICE", "5 months!", {"login": "Subber", "system-msg": "Subber subscribed.", "id": "u"})
    assert fmt.user_text(resub) == "5 months!" and fmt.system_text(resub) == "Subber subscribed."
    assert fmt.friendly_text(resub) == "Subber subscribed. 5 months!" and fmt.login_of(resub) == "subber"
    silent = row("USERNOTICE", "", {"login": "gifter", "system-msg": "Gifter gifted a sub."})
    assert fmt.friendly_text(silent) == "Gifter gifted a sub." and fmt.user_text(silent) == ""


def test_json_is_utf8_even_for_a_lone_surrogate() -> None:
    odd = row("PRIVMSG", "half \ud83c", {"id": "s"})
    data = fmt.render("json", odd)
    assert json.loads(data.decode("utf-8"))["text"] == "half ?"
    assert fmt.render("jsonBasic", row("PRIVMSG", "héllo 🎉", {})).decode("utf-8").count("héllo 🎉") == 1
    assert fmt.render("text", odd).decode("utf-8").endswith("half ?\n")


def test_removed_messages_say_so() -> None:
    gone = row("PRIVMSG", "x", {}, removed=True, removed_at=1718452801.0)
    assert fmt.justlog_json(gone)["removed"] is True and fmt.basic_json(gone)["removed"] is True
    assert "removed" not in fmt.justlog_json(row("PRIVMSG", "x", {}))


def test_times_outside_what_a_date_can_say_are_clamped_never_raised() -> None:
    """Any stored time renders: before 1970 as 1970, past 9999 as 9999, not a number as 1970."""
    assert fmt.rfc3339(1e12, millis=True) == "9999-12-31T23:59:59Z"
    assert fmt.rfc3339(-5.5, millis=True) == "1970-01-01T00:00:00Z"
    assert fmt.rfc3339(float("nan"), millis=False) == "1970-01-01T00:00:00Z"
    assert fmt.rfc3339(float("inf"), millis=True) == "9999-12-31T23:59:59Z"
    assert fmt.rfc3339(1718452800.25, millis=True) == "2024-06-15T12:00:00.250Z"
