"""The ASS box as first written, one heap of changes and every message measured as it comes: the
reference `export.ass.AssRenderer` is held to (tests/test_export_ass.py), which reads lazily from
queues and takes records as their canonical lines."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from export.ass import DEFAULT_HOLD, MAX_LINES, MIN_FRAME, Span, _plain, _spans, clock, header, render_lines, wrap
from export.fields import tag_of


@dataclass(eq=False)
class _Message:
    """A message on its way through the box. Its lines are rendered when first shown: on a busy
    channel most messages go off the top within the frame they arrive in."""

    appear: int  # cs from the window start
    login: str
    msg_id: str | None
    spans: list[Span]
    removed: bool = False
    count: int = 0  # lines
    _lines: list[str] | None = None

    def __post_init__(self) -> None:
        self.count = len(wrap(_plain(self.spans)))

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = render_lines(self.spans, self.removed)
        return self._lines

    def remove(self) -> None:
        if not self.removed:
            self.removed = True
            self._lines = None


class AssRendererPy:
    """Streams a window's records (in time order) into ASS: `begin()`, `add(record)`, `end()`, each
    returning text to write. `start` is the window start (time zero of the subtitles), `hold` the
    seconds a message stays up."""

    def __init__(self, start: float, hold: float = DEFAULT_HOLD, title: str = "chat") -> None:
        if not (math.isfinite(hold) and hold > 0):
            raise ValueError(f"hold must be a positive number of seconds, not {hold!r}")
        self.start = start
        self.hold = max(1, round(hold * 100))
        self.title = title
        self._visible: list[_Message] = []  # oldest first
        # scheduled changes: (time cs, order, kind, payload); kinds: 0 appear, 1 remove, 2 expire
        self._changes: list[tuple[int, int, int, Any]] = []
        self._order = 0
        self._frame_start: int | None = None
        self._text = ""

    def _cs(self, record: Mapping[str, Any]) -> int:
        offset = round((float(record["time"]) - self.start) * 100, 6)
        return max(0, math.ceil(offset))

    def _schedule(self, at: int, kind: int, payload: Any) -> None:
        heapq.heappush(self._changes, (at, self._order, kind, payload))
        self._order += 1

    def begin(self) -> str:
        return header(self.title)

    def add(self, record: Mapping[str, Any]) -> str:
        try:
            at = self._cs(record)
        except (TypeError, ValueError, OverflowError):
            return ""
        out = self._flush(at)
        command = record.get("command")
        params = record.get("params") or []
        if command == "CLEARMSG":
            target = tag_of(record, "target-msg-id")
            if target is not None:
                self._schedule(at, 1, ("id", target))
        elif command == "CLEARCHAT":
            who = params[1] if len(params) > 1 and isinstance(params[1], str) else None
            self._schedule(at, 1, ("user", who.lower()) if who else ("all", None))
        else:
            spans = _spans(record)
            if spans is not None:
                login = str(record.get("user") or tag_of(record, "login") or "").lower()
                message = _Message(at, login, tag_of(record, "id"), spans)
                self._schedule(at, 0, message)
                self._schedule(at + self.hold, 2, message)
        return out

    def end(self) -> str:
        return self._flush(None)

    def _apply(self, kind: int, payload: Any) -> None:
        if kind == 0:
            self._visible.append(payload)
        elif kind == 2:
            if payload in self._visible:
                self._visible.remove(payload)
        else:
            how, value = payload
            for message in self._visible:
                if (
                    how == "all"
                    or (how == "id" and message.msg_id == value)
                    or (how == "user" and message.login == value)
                ):
                    message.remove()

    def _box(self) -> str:
        lines: list[str] = []
        keep = 0
        for message in reversed(self._visible):  # newest first, until the box is full
            if len(lines) + message.count > MAX_LINES:
                break
            lines[:0] = message.lines
            keep += 1
        del self._visible[: len(self._visible) - keep]  # gone off the top: never back
        return "\\N".join(lines)

    def _flush(self, until: int | None) -> str:
        """Write the frames that end before `until` (every change before it is known); None: all."""
        out = []
        while self._changes:
            at = self._changes[0][0]
            boundary = at if self._frame_start is None else max(at, self._frame_start + MIN_FRAME)
            if until is not None and boundary >= until:
                break
            while self._changes and self._changes[0][0] <= boundary:
                _at, _order, kind, payload = heapq.heappop(self._changes)
                self._apply(kind, payload)
            text = self._box()
            if text == self._text:
                continue  # nothing visible changed (an expiry of a message already gone)
            if self._text and self._frame_start is not None:
                out.append(f"Dialogue: 0,{clock(self._frame_start)},{clock(boundary)},Chat,,0,0,0,,{self._text}\n")
            self._frame_start = boundary
            self._text = text
        return "".join(out)
