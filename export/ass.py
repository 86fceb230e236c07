"""`--format ass`: the window's chat as Advanced SubStation Alpha subtitles, to burn into or play
beside the video that starts at the window's start.

Theory of operation. Chat on screen is a box in the bottom-left corner: the newest message at the
bottom, older ones stacked above it, each shown for `hold` seconds from the moment it was sent, and
at most `MAX_LINES` lines at once (a message that no longer fits goes off the top). The box is one
subtitle event per *frame*, a span of time in which its content does not change; the event's text
is the whole box, bottom-aligned, lines joined with `\\N`. Renderers place one event exactly where
its style says (no collision handling between events), so the stack is ours, not the renderer's,
and looks the same in every player.

A frame ends at the next change: a message appears (its time, rounded up to ASS's centisecond, so
it never shows before it was sent), expires, or is removed. A CLEARMSG (`target-msg-id`) or a
CLEARCHAT (one user's messages by its parameter, or everyone's) turns the messages it removes
grey and struck through from its own time on; it never drops them. A frame lasts at least
`MIN_FRAME`: changes within it wait for its end, so a busy channel (100 messages a second) updates
the box a few times a second instead of writing one frame per message, and the file stays a few
lines per second of video. A quiet channel's messages appear exactly on time.

Emotes stay words here: ASS draws text only (the html page and the TwitchDownloader JSON embed
their images; docs/media.md).

Records come in time order (the export sorts them), so the renderer streams: when a record at time
`t` arrives every change before `t` is known (expiries are scheduled when a message appears), and
the frames up to `t` are written. Memory holds the messages on screen.

Text is wrapped here, at `LINE_CHARS` characters (the style sets WrapStyle 2: the renderer never
wraps), so that the number of lines in the box is known. Chat is untrusted: anything ASS would
read as markup is escaped (`escape`): `{` and `}` as `\\{` `\\}` (libass's escapes, as ffmpeg's own
converters write them) and a backslash followed by an invisible WORD JOINER, so `\\N`, `\\n` and
`\\h` in chat stay text; line breaks and other control characters become spaces.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from export.fields import display_name, me_action, tag_of

PLAY_RES_X, PLAY_RES_Y = 1920, 1080
FONT_SIZE = 36
LINE_CHARS = 56  # wrap width, in characters of the chat font at FONT_SIZE (about 40% of the width)
MAX_LINES = 12  # lines on screen at once
MIN_FRAME = 25  # centiseconds: the box changes at most four times a second
MARGIN_L, MARGIN_V = 30, 40
DEFAULT_HOLD = 10.0

# Twitch's palette for users without a chosen colour; the html page uses the same one and hash
PALETTE = (
    "#FF0000",
    "#0000FF",
    "#008000",
    "#B22222",
    "#FF7F50",
    "#9ACD32",
    "#FF4500",
    "#2E8B57",
    "#DAA520",
    "#D2691E",
    "#5F9EA0",
    "#1E90FF",
    "#FF69B4",
    "#8A2BE2",
    "#00FF7F",
)
_COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
_BREAKERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
WORD_JOINER = "\u2060"
BODY_COLOR = "#FFFFFF"
REMOVED_COLOR = "#9A9A9A"
SYSTEM_COLOR = "#C8B4FF"


def stable_color(login: str) -> str:
    """A colour for a user who never chose one: FNV-1a (32 bit) of the login's code points, into
    Twitch's palette. Stable across runs and machines; the page's script computes the same."""
    h = 0x811C9DC5
    for ch in login:
        h = ((h ^ ord(ch)) * 0x01000193) & 0xFFFFFFFF
    return PALETTE[h % len(PALETTE)]


def user_color(record: Mapping[str, Any]) -> str:
    """The `color` tag when it is a colour, else the login's stable colour."""
    color = tag_of(record, "color")
    if color is not None and _COLOR_RE.match(color):
        return color.upper()
    return stable_color(str(record.get("user") or tag_of(record, "login") or record.get("sender") or ""))


def ass_color(rgb: str) -> str:
    """`#RRGGBB` as ASS's `&HBBGGRR&`."""
    return f"&H{rgb[5:7]}{rgb[3:5]}{rgb[1:3]}&".upper()


def escape(text: str) -> str:
    """Chat text as literal ASS dialogue text: no override block, line break or hard space can come
    out of it (see the module docstring)."""
    text = _BREAKERS.sub(" ", text)
    return text.replace("\\", "\\" + WORD_JOINER).replace("{", "\\{").replace("}", "\\}")


def clock(cs: int) -> str:
    """Centiseconds as ASS's `H:MM:SS.cc`."""
    seconds, cs = divmod(cs, 100)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{cs:02d}"


def wrap(text: str, width: int = LINE_CHARS) -> list[tuple[int, int]]:
    """Where to cut `text` into lines of at most `width` characters: (start, end) of each line, at
    spaces when there is one in reach (the space itself is dropped), else mid-word."""
    lines = []
    start, n = 0, len(text)
    while n - start > width:
        cut = text.rfind(" ", start + 1, start + width + 1)
        if cut <= start:
            lines.append((start, start + width))
            start += width
        else:
            lines.append((start, cut))
            start = cut + 1
    lines.append((start, n))
    return lines


# A span of a message: its text and how it looks (colour, bold, italic)
Span = tuple[str, str, bool, bool]


def _spans(record: Mapping[str, Any]) -> list[Span] | None:
    """How a record shows in the box, or None when it does not show (only chat and user notices)."""
    command = record.get("command")
    params = record.get("params") or []
    text = params[1] if len(params) > 1 and isinstance(params[1], str) else ""
    name = display_name(record)
    color = user_color(record)
    if command == "PRIVMSG":
        action = me_action(text)
        if action is not None:
            return [(name, color, True, True), (" " + action, color, False, True)]
        return [(name, color, True, False), (": " + text, BODY_COLOR, False, False)]
    if command == "USERNOTICE":
        system = tag_of(record, "system-msg") or tag_of(record, "msg-id") or "user notice"
        spans: list[Span] = [("\u2605 " + system, SYSTEM_COLOR, False, True)]
        if text:
            spans += [(" " + name, color, True, False), (": " + text, BODY_COLOR, False, False)]
        return spans
    return None


def _plain(spans: list[Span]) -> str:
    return _BREAKERS.sub(" ", "".join(span[0] for span in spans))


def render_lines(spans: list[Span], removed: bool) -> list[str]:
    """A message's lines of ASS text: wrapped, escaped, each line opening with its own overrides
    (colour, bold, italic, strike-out) so that lines stand alone in any order."""
    plain = _plain(spans)
    pieces = []  # (start, end, override) of each span in `plain`
    at = 0
    for text, color, bold, italic in spans:
        shown = REMOVED_COLOR if removed else color
        pieces.append((at, at + len(text), f"{{\\c{ass_color(shown)}\\b{int(bold)}\\i{int(italic)}\\s{int(removed)}}}"))
        at += len(text)
    out = []
    for start, end in wrap(plain):
        line = "".join(
            override + escape(plain[max(a, start) : min(b, end)])
            for a, b, override in pieces
            if max(a, start) < min(b, end)
        )
        if line:  # a text ending in the space it was cut at leaves an empty last line: not shown
            out.append(line)
    return out or ["{\\s0}"]


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


def header(title: str) -> str:
    return (
        "[Script Info]\n"
        f"Title: {escape(title)}\n"
        "ScriptType: v4.00+\n"
        "WrapStyle: 2\n"
        f"PlayResX: {PLAY_RES_X}\n"
        f"PlayResY: {PLAY_RES_Y}\n"
        "ScaledBorderAndShadow: yes\n"
        "\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
        "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
        "Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Chat,DejaVu Sans,{FONT_SIZE},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,0,0,0,0,100,100,0,0,"
        f"1,2,1,1,{MARGIN_L},{MARGIN_L},{MARGIN_V},1\n"
        "\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )


class AssRenderer:
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
