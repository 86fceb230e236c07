"""A record's identity: the message id that makes two sightings one message.

Every stage that groups, counts or checks records by message agrees on this one reading: the
`id` tag (Twitch), else the IRCv3 `msgid` tag; only a string counts. The merge folds records with
one id into one; verify counts ids that repeat; export keeps a minute's records with a shared id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def message_id(record: Mapping[str, Any]) -> str | None:
    """The message id of a record (`id` tag, else IRCv3 `msgid`), or None. Only strings count."""
    return id_of_tags(record.get("tags"))


def id_of_tags(tags: Any) -> str | None:
    """The message id a record's `tags` hold (see `message_id`), or None."""
    if not tags:
        return None
    value = tags.get("id")
    if isinstance(value, str):
        return value
    value = tags.get("msgid")
    return value if isinstance(value, str) else None
