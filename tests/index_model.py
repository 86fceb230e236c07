"""The brute-force reference of the index: every answer computed by scanning the records.

Written from index/api.py's definitions (which rows, what `removed` means, the order), not from
the backends' SQL, so the differential tests compare two independent readings of one spec. The
word cut (index.text) and a record's author (index.extract.author) are the definitions both share.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from index.api import MESSAGE_COMMANDS, Day, Month, NameSeen, Query
from index.extract import author, text_of
from index.identity import identity_key, message_id
from index.text import matches, parse_query, text_words


class Row:
    def __init__(self, channel: str, record: dict[str, Any]) -> None:
        self.channel = channel
        self.record = record
        self.key = identity_key(record, channel)
        self.command = record["command"]
        self.time = float(record["time"])
        self.user_id, self.login = author(record)
        tags = record["tags"] or {}
        self.recipient_id = tags.get("msg-param-recipient-id") if self.command == "USERNOTICE" else None
        self.msg_id = message_id(record)
        self.words = text_words(text_of(record))


class Model:
    """The archive's distinct chat lines (one per identity), and the answers the index must give."""

    def __init__(self, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
        rows: dict[int, Row] = {}
        for channel, record in records:
            row = Row(channel, record)
            rows[row.key] = row
        self.rows = [r for r in rows.values() if r.command in MESSAGE_COMMANDS]
        self.clearmsgs = [r for r in rows.values() if r.command == "CLEARMSG"]
        self.bans = [r for r in rows.values() if r.command == "CLEARCHAT" and (r.user_id or r.login)]

    def removed_at(self, m: Row) -> float | None:
        if m.command not in ("PRIVMSG", "USERNOTICE"):
            return None
        times = []
        for r in self.clearmsgs:
            target = (r.record["tags"] or {}).get("target-msg-id")
            if r.channel == m.channel and target and target == m.msg_id:
                times.append(r.time)
        for r in self.bans:
            if r.channel != m.channel or r.time < m.time:
                continue
            if (r.user_id and r.user_id == m.user_id) or (not r.user_id and r.login and r.login == m.login):
                times.append(r.time)
        return min(times) if times else None

    def select(self, q: Query) -> list[Row]:
        terms = parse_query(q.text) if q.text is not None else []
        out = []
        for m in self.rows:
            if m.command not in q.commands:
                continue
            if q.channel is not None and m.channel != q.channel:
                continue
            if q.user_id is not None and q.user_id not in (m.user_id, m.recipient_id):
                continue
            if q.login is not None and m.login != q.login.lower():
                continue
            if q.since is not None and m.time < q.since:
                continue
            if q.until is not None and m.time >= q.until:
                continue
            if terms and not matches(terms, m.words):
                continue
            if not q.include_removed and self.removed_at(m) is not None:
                continue
            out.append(m)
        out.sort(key=lambda m: (m.time, m.key), reverse=not q.oldest_first)
        out = out[q.offset :]
        return out if q.limit is None else out[: q.limit]

    def answer(self, q: Query) -> list[tuple[int, str, float, bool, float | None]]:
        return [(m.key, m.channel, m.time, self.removed_at(m) is not None, self.removed_at(m)) for m in self.select(q)]

    def user_months(self, channel: str, user_id: str) -> list[Month]:
        months = {_month(m.time) for m in self.select(Query(channel=channel, user_id=user_id))}
        return sorted(months, reverse=True)

    def channel_days(self, channel: str) -> list[Day]:
        return sorted({_day(m.time) for m in self.rows if m.channel == channel}, reverse=True)

    def channels(self) -> list[str]:
        return sorted({m.channel for m in self.rows})

    def name_history(self, user_id: str) -> list[NameSeen]:
        seen: dict[str, list[float]] = {}
        for m in self.rows:
            if m.user_id == user_id and m.login:
                seen.setdefault(m.login, []).append(m.time)
        return sorted((NameSeen(k, min(v), max(v)) for k, v in seen.items()), key=lambda n: (n.first_seen, n.login))

    def latest(self, pairs: Iterable[tuple[float, int, str]]) -> str | None:
        best = max(pairs, default=None)
        return None if best is None else best[2]

    def user_id_of(self, login: str) -> str | None:
        return self.latest((m.time, m.key, m.user_id) for m in self.rows if m.login == login.lower() and m.user_id)

    def login_of(self, user_id: str) -> str | None:
        return self.latest((m.time, m.key, m.login) for m in self.rows if m.user_id == user_id and m.login)

    def stats(self, channel: str) -> tuple[list[tuple[Day, int]], list[tuple[str | None, str | None, int]]]:
        chat = [m for m in self.rows if m.channel == channel and m.command in ("PRIVMSG", "USERNOTICE")]
        days = Counter(_day(m.time) for m in chat)
        users = Counter((m.user_id, m.login) for m in chat)
        top = sorted(users.items(), key=lambda kv: (-kv[1], kv[0][1] or "", kv[0][0] or ""))
        return sorted(days.items()), [(u, lg, n) for (u, lg), n in top[:10]]


def _month(t: float) -> Month:
    d = datetime.fromtimestamp(t, UTC)
    return Month(d.year, d.month)


def _day(t: float) -> Day:
    d = datetime.fromtimestamp(t, UTC)
    return Day(d.year, d.month, d.day)
