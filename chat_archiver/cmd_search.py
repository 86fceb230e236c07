"""The `search` command: who said what, when, from the archive's index."""

from __future__ import annotations

import enum
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import typer

from chat_archiver import console
from chat_archiver.cmd_index import DB_HELP, index_or_fail
from formats.errors import ArchiverError
from formats.times import parse_window
from index import ChatIndexError, Query
from index.api import Message


class Format(enum.StrEnum):
    text = "text"
    jsonl = "jsonl"
    json = "json"


def register(app: typer.Typer) -> None:
    @console.command(app, "search")
    def _search(
        root: str = typer.Argument(
            ..., metavar="ROOT", help="Archive root (holds CHANNEL/chat/...).", show_default=False
        ),
        channel: str = typer.Option(None, "--channel", "-c", metavar="CHANNEL", help="Only this channel."),
        user: str = typer.Option(
            None, "--user", metavar="LOGIN", help="Only this user's lines (every name their id had)."
        ),
        text: str = typer.Option(
            None,
            "--text",
            metavar="WORDS",
            help='Words and "quoted phrases", all required; any case; emotes are words.',
        ),
        since: str = typer.Option(None, "--since", metavar="TIME", help="From this time: Unix seconds or ISO 8601."),
        until: str = typer.Option(None, "--until", metavar="TIME", help="Before this time (exclusive), same forms."),
        fmt: Format = typer.Option(
            Format.text, "--format", case_sensitive=False, metavar="text|jsonl|json", help="Output format."
        ),
        limit: int = typer.Option(100, "--limit", min=0, metavar="N", help="At most N messages (0: all)."),
        oldest_first: bool = typer.Option(False, "--oldest-first", help="Oldest first (default: newest first)."),
        db: str = typer.Option(None, "--db", metavar="URL", help=DB_HELP, show_default=False),
        no_update: bool = typer.Option(
            False, "--no-update", help="Answer from the index as it is (default: bring it up to date first)."
        ),
    ) -> None:
        """Search chat by channel, user, words and time.

        Answers from the index (built or brought up to date first, unless --no-update; see
        `index`). text prints one line per message, `[time UTC] #channel login: text`, with
        `(removed)` when a moderator removed it; jsonl and json print objects with the message's
        tags. A removed message is still listed.

        Exit status: 0 done (a note on stderr when nothing matched), 2 nothing could be done.

        \b
        Examples:
          chat-archiver search archive/ -c desertbus --user someviewer
          chat-archiver search archive/ --text '"good run" Kappa' --format jsonl
        """
        try:
            t_since, t_until = parse_window(since, until)
        except ArchiverError as e:
            console.fail(str(e))
        index = index_or_fail(root, db)
        try:
            if not no_update:
                for problem in index.update().problems:
                    console.warn(f"damaged batch file skipped: {problem}")
            query = Query(
                channel=channel.lower().lstrip("#") if channel else None,
                text=text,
                since=t_since,
                until=t_until,
                oldest_first=oldest_first,
                limit=limit or None,
            )
            if user is not None:
                user_id = index.user_id_of(user)
                query = replace(query, user_id=user_id) if user_id else replace(query, login=user)
            found = index.messages(query)
        except ChatIndexError as e:  # QueryError too: one line, exit 2
            console.fail(str(e))
        finally:
            index.close()
        out = sys.stdout.buffer
        if fmt is Format.json:
            out.write(orjson.dumps([as_json(m) for m in found]) + b"\n")
        else:
            for m in found:
                out.write(orjson.dumps(as_json(m)) + b"\n" if fmt is Format.jsonl else text_line(m).encode() + b"\n")
        sys.stdout.flush()
        if not found:
            console.note("no messages match")


def as_json(m: Message) -> dict[str, Any]:
    return {
        "channel": m.channel,
        "timestamp": _iso(m.time),
        "time": m.time,
        "command": m.command,
        "id": m.msg_id,
        "user_id": m.user_id,
        "login": m.login,
        "display_name": m.display_name,
        "text": m.text,
        "removed": m.removed,
        "removed_at": None if m.removed_at is None else _iso(m.removed_at),
        "tags": dict(m.tags),
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(text: str) -> str:
    """Chat text for a terminal: control characters (escape sequences, CR) shown, never run."""
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in text)


def text_line(m: Message) -> str:
    when = datetime.fromtimestamp(m.time, UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = m.text
    if text.startswith("\x01ACTION ") and text.endswith("\x01"):
        text = "* " + text[8:-1]
    who = m.login or "?"
    if m.command == "CLEARCHAT":
        line = f"[{when}] #{m.channel} -- {who} was timed out or banned"
    elif m.command == "USERNOTICE":
        system = m.tags.get("system-msg")
        line = f"[{when}] #{m.channel} {who}: {_clean(system) if isinstance(system, str) else ''} {_clean(text)}"
    else:
        line = f"[{when}] #{m.channel} {who}: {_clean(text)}"
    return line.rstrip() + (" (removed)" if m.removed else "")
