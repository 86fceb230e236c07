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
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from export.fields import display_name, me_action, tag_of
from formats import speedups

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
    return _render(spans, removed, plain, wrap(plain))


def _render(spans: list[Span], removed: bool, plain: str, cuts: list[tuple[int, int]]) -> list[str]:
    """`render_lines` of `spans`, given their `_plain` text and its `wrap`."""
    if (
        len(cuts) == 1
        and len(spans) == 2
        and not removed
        and "\\" not in plain
        and "{" not in plain
        and "}" not in plain
    ):
        # the usual message: one line, two spans, nothing to escape
        (first, color_a, bold_a, italic_a), (_second, color_b, bold_b, italic_b) = spans
        n = len(first)
        one = ""
        if n:
            one = f"{{\\c{ass_color(color_a)}\\b{int(bold_a)}\\i{int(italic_a)}\\s0}}{plain[:n]}"
        if len(plain) > n:
            one += f"{{\\c{ass_color(color_b)}\\b{int(bold_b)}\\i{int(italic_b)}\\s0}}{plain[n:]}"
        return [one] if one else ["{\\s0}"]
    pieces = []  # (start, end, override) of each span in `plain`
    at = 0
    for text, color, bold, italic in spans:
        shown = REMOVED_COLOR if removed else color
        pieces.append((at, at + len(text), f"{{\\c{ass_color(shown)}\\b{int(bold)}\\i{int(italic)}\\s{int(removed)}}}"))
        at += len(text)
    # `plain` holds no breaker: only these need escaping, and most chat has none of them
    special = "\\" in plain or "{" in plain or "}" in plain
    out = []
    for start, end in cuts:
        parts = []
        for a, b, override in pieces:
            lo = a if a > start else start
            hi = b if b < end else end
            if lo < hi:
                parts.append(override + (escape(plain[lo:hi]) if special else plain[lo:hi]))
        line = "".join(parts)
        if line:  # a text ending in the space it was cut at leaves an empty last line: not shown
            out.append(line)
    return out or ["{\\s0}"]


# What the box needs of a message that stays on screen: its number of lines (`wrap` of its text,
# at least one), its lines as shown (not removed), its message id (None when none) and the login a
# CLEARCHAT names it by (lowercase, "" when none).
MessageView = tuple[int, list[str], str | None, str]


def _login(record: Mapping[str, Any]) -> str:
    return str(record.get("user") or tag_of(record, "login") or "").lower()


def message_view(record: Mapping[str, Any]) -> MessageView:
    """The `MessageView` of a record (only chat and user notices show: any other has one empty line)."""
    spans = _spans(record) or []
    plain = _plain(spans)
    cuts = wrap(plain)
    return len(cuts), _render(spans, False, plain, cuts), tag_of(record, "id"), _login(record)


def message_view_py(line: bytes) -> MessageView:
    """`message_view` of the record whose canonical line is `line` (a stored line export passes
    through). The reference; `message_view_line` is its compiled twin (native/export.c) when built."""
    return message_view(orjson.loads(line))


message_view_line = speedups.twin(message_view_py, "export_ass_message")


class _Message:
    """A message on its way through the box, kept as it came (a record, or its canonical line) and
    read when first needed: on a busy channel most messages go off the top within the frame they
    arrive in, so most are never decoded, measured or rendered. A stored line is read by
    `message_view_line` (the compiled twin: no dict); a removed message is rendered from its record."""

    __slots__ = ("_lines", "_source", "_view", "appear", "gone", "removed")

    def __init__(self, appear: int, source: Mapping[str, Any] | bytes) -> None:
        self.appear = appear  # cs from the window start
        self.removed = False
        self.gone = False  # went off the top of the box (it never comes back)
        self._source = source
        self._view: MessageView | None = None
        self._lines: list[str] | None = None

    @property
    def view(self) -> MessageView:
        if self._view is None:
            source = self._source
            self._view = message_view_line(source) if isinstance(source, bytes) else message_view(source)
        return self._view

    @property
    def login(self) -> str:
        return self.view[3]

    @property
    def msg_id(self) -> str | None:
        return self.view[2]

    @property
    def count(self) -> int:
        """Its number of lines (at least one)."""
        return self.view[0]

    @property
    def lines(self) -> list[str]:
        if not self.removed:
            return self.view[1]
        if self._lines is None:
            source = self._source
            record = orjson.loads(source) if isinstance(source, bytes) else source
            spans = _spans(record) or []
            plain = _plain(spans)
            self._lines = _render(spans, True, plain, wrap(plain))
        return self._lines

    def remove(self) -> None:
        self.removed = True


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


# how a canonical line starts for each command the box reads (its keys are sorted: `command` first)
_SHOWN = (b'{"command":"PRIVMSG",', b'{"command":"USERNOTICE",')
_CLEARMSG = b'{"command":"CLEARMSG",'
_CLEARCHAT = b'{"command":"CLEARCHAT",'
_BOX_COMMANDS = (*_SHOWN, _CLEARMSG, _CLEARCHAT)
# a scheduled change: (time cs, order, kind, payload); kinds: 0 appear, 1 remove, 2 expire
Change = tuple[int, int, int, Any]


class AssRenderer:
    """Streams a window's records (in time order) into ASS: `begin()`, `add(record)` (or
    `add_stored(time, line)`, a record given as its time and canonical line), `end()`, each
    returning text to write. `start` is the window start (time zero of the subtitles), `hold` the
    seconds a message stays up.

    The changes are kept in three queues, each in (time, order) order: appearances and removals as
    scheduled (records come in time order), expiries (every message stays `hold`), and a heap
    for any change scheduled earlier than one before it (records out of order); the next change
    is the least of their heads, as one heap of them all would give it. The box on screen is
    always the newest messages that appeared, oldest first: expiries and the top of the box take
    from its front."""

    def __init__(self, start: float, hold: float = DEFAULT_HOLD, title: str = "chat") -> None:
        if not (math.isfinite(hold) and hold > 0):
            raise ValueError(f"hold must be a positive number of seconds, not {hold!r}")
        self.start = start
        self.hold = max(1, round(hold * 100))
        self.title = title
        self._visible: deque[_Message] = deque()  # oldest first
        self._now: deque[Change] = deque()  # appearances and removals
        self._expiries: deque[Change] = deque()
        self._late: list[Change] = []  # a heap: changes scheduled out of time order
        self._order = 0
        self._frame_start: int | None = None
        self._text = ""
        self._reached = 0
        # the boundary the next frame would end at (no frame is written before it): None when
        # nothing is scheduled; kept as changes are scheduled, so most records write nothing quickly
        self._wake: int | None = None

    def _cs(self, time: Any) -> int:
        offset = round((float(time) - self.start) * 100, 6)
        return max(0, math.ceil(offset))

    def _schedule(self, at: int, kind: int, payload: Any) -> None:
        queue = self._expiries if kind == 2 else self._now
        change = (at, self._order, kind, payload)
        self._order += 1
        if queue and queue[-1][0] > at:
            heapq.heappush(self._late, change)
        else:
            queue.append(change)
        # the next boundary is max(earliest change, frame start + MIN_FRAME): this change lowers
        # the earliest to `at` at most
        boundary = (
            at if self._frame_start is None or at >= self._frame_start + MIN_FRAME else self._frame_start + MIN_FRAME
        )
        if self._wake is None or boundary < self._wake:
            self._wake = boundary

    def begin(self) -> str:
        return header(self.title)

    def add(self, record: Mapping[str, Any]) -> str:
        try:
            at = self._cs(record["time"])
        except (TypeError, ValueError, OverflowError):
            return ""
        command = record.get("command")
        if command in ("CLEARMSG", "CLEARCHAT"):
            out = self._flush(self._reach(at))
            self._removal(at, record)
            return out
        if command in ("PRIVMSG", "USERNOTICE"):
            out = self._flush(self._reach(at))
            self._appear(at, record)
            return out
        self._skip(at)  # changes nothing: the frames before it are written with the next change
        return ""

    def add_stored(self, time: Any, line: bytes) -> str:
        """`add` of the record whose time is `time` and whose canonical line is `line`: decoded only
        if the box needs it (a removal, or a message that stays on screen)."""
        try:
            at = self._cs(time)
        except (TypeError, ValueError, OverflowError):
            return ""
        if not line.startswith(_BOX_COMMANDS):
            self._skip(at)
            return ""
        out = self._flush(self._reach(at))
        if line.startswith(_SHOWN):
            self._appear(at, line)
        else:
            self._removal(at, orjson.loads(line))
        return out

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> str:
        """`add_stored(row[0], row[2])` of each row, or `add(row[4])` of a row of five (export's
        rows: time, range, canonical line, place, and the record when the export built one), in
        one loop: the same text as adding them one by one."""
        out = []
        start = self.start
        for row in rows:
            if len(row) == 5:
                out.append(self.add(row[4]))
                continue
            line = row[2]
            try:
                at = math.ceil(round((float(row[0]) - start) * 100, 6))  # _cs
            except (TypeError, ValueError, OverflowError):
                continue
            at = max(at, 0)
            if not line.startswith(_BOX_COMMANDS):
                self._reached = max(self._reached, at)
                continue
            reached = self._reached  # _reach
            self._reached = 0
            until = reached if reached > at else at
            wake = self._wake
            if wake is not None and wake < until:
                out.append(self._flush(until))
            if not line.startswith(_SHOWN):
                self._removal(at, orjson.loads(line))
                continue
            self._appear(at, line)
        return "".join(out)

    def _reach(self, at: int) -> int:
        """Where to write frames up to before a change at `at` is scheduled: `at`, or a later time a
        record that changed nothing reached since the last change. Writing the frames before `a`
        and then those before `b`, with nothing scheduled between, writes the frames before the
        later of the two: so such a record need not write any itself."""
        reached = self._reached
        self._reached = 0
        return reached if reached > at else at

    def _skip(self, at: int) -> None:
        """A record at `at` that schedules nothing (see `_reach`)."""
        self._reached = max(self._reached, at)

    def _appear(self, at: int, source: Mapping[str, Any] | bytes) -> None:
        """Schedule a message's appearance and expiry (`_schedule` of both, inline: one call a message)."""
        message = _Message(at, source)
        order = self._order
        self._order = order + 2
        now, expiries = self._now, self._expiries
        if now and now[-1][0] > at:
            heapq.heappush(self._late, (at, order, 0, message))
        else:
            now.append((at, order, 0, message))
        gone = at + self.hold
        if expiries and expiries[-1][0] > gone:
            heapq.heappush(self._late, (gone, order + 1, 2, message))
        else:
            expiries.append((gone, order + 1, 2, message))
        start = self._frame_start
        boundary = at if start is None or at >= start + MIN_FRAME else start + MIN_FRAME
        if self._wake is None or boundary < self._wake:
            self._wake = boundary

    def _removal(self, at: int, record: Mapping[str, Any]) -> None:
        if record.get("command") == "CLEARMSG":
            target = tag_of(record, "target-msg-id")
            if target is not None:
                self._schedule(at, 1, ("id", target))
        else:
            params = record.get("params") or []
            who = params[1] if len(params) > 1 and isinstance(params[1], str) else None
            self._schedule(at, 1, ("user", who.lower()) if who else ("all", None))

    def end(self) -> str:
        return self._flush(None)

    def _next(self) -> int | None:
        """The time of the earliest change scheduled, or None."""
        at = self._now[0][0] if self._now else None
        if self._expiries and (at is None or self._expiries[0][0] < at):
            at = self._expiries[0][0]
        if self._late and (at is None or self._late[0][0] < at):
            at = self._late[0][0]
        return at

    def _pop(self, boundary: int) -> Change | None:
        """The earliest change (by time, then order) at or before `boundary`, taken off its queue."""
        best: Change | None = None
        source = None
        for queue in (self._now, self._expiries):
            if queue:
                head = queue[0]
                if head[0] <= boundary and (best is None or head[:2] < best[:2]):
                    best, source = head, queue
        if self._late:
            head = self._late[0]
            if head[0] <= boundary and (best is None or head[:2] < best[:2]):
                return heapq.heappop(self._late)
        if source is not None:
            source.popleft()
        return best

    def _take_due(self, boundary: int) -> None:
        """Apply the changes due by `boundary` when every change is in its queue's order (no late
        one): the appearances and removals in their order, then the expiries. That is their order
        by time wherever it matters: an expiry and an appearance commute (the box keeps the order
        of appearances), and a removal that marks a message expiring in the same step, or misses
        one expired just before it, changes nothing shown (the message is off screen by the box)."""
        now, expiries, visible = self._now, self._expiries, self._visible
        while now and now[0][0] <= boundary:
            change = now.popleft()
            if change[2] == 0:
                visible.append(change[3])
            else:
                self._apply(change[2], change[3])
        while expiries and expiries[0][0] <= boundary:
            message = expiries.popleft()[3]
            if not message.gone:  # else it left the box already
                if visible and visible[0] is message:
                    visible.popleft()
                elif message in visible:
                    visible.remove(message)

    def _apply(self, kind: int, payload: Any) -> None:
        visible = self._visible
        if kind == 0:
            visible.append(payload)
        elif kind == 2:
            if visible and visible[0] is payload:  # messages expire in the order they appeared
                visible.popleft()
            elif payload in visible:
                visible.remove(payload)
        else:
            how, value = payload
            for message in visible:
                if (
                    how == "all"
                    or (how == "id" and message.msg_id == value)
                    or (how == "user" and message.login == value)
                ):
                    message.remove()

    def _box(self) -> str:
        lines: list[str] = []
        keep = 0
        visible = self._visible
        for message in reversed(visible):  # newest first, until the box is full
            # a message has at least one line: a full box needs no count
            if len(lines) >= MAX_LINES or len(lines) + message.count > MAX_LINES:
                break
            lines[:0] = message.lines
            keep += 1
        for _ in range(len(visible) - keep):  # gone off the top: never back
            visible.popleft().gone = True
        return "\\N".join(lines)

    def _flush(self, until: int | None) -> str:
        """Write the frames that end before `until` (every change before it is known); None: all."""
        wake = self._wake
        if wake is None or (until is not None and wake >= until):
            return ""  # the next frame ends at `wake`: none ends before `until`
        out = []
        while True:
            at = self._next()
            if at is None:
                self._wake = None
                break
            boundary = at if self._frame_start is None else max(at, self._frame_start + MIN_FRAME)
            if until is not None and boundary >= until:
                self._wake = boundary
                break
            if self._late:
                while (change := self._pop(boundary)) is not None:
                    self._apply(change[2], change[3])
            else:
                self._take_due(boundary)
            text = self._box()
            if text == self._text:
                continue  # nothing visible changed (an expiry of a message already gone)
            if self._text and self._frame_start is not None:
                out.append(f"Dialogue: 0,{clock(self._frame_start)},{clock(boundary)},Chat,,0,0,0,,{self._text}\n")
            self._frame_start = boundary
            self._text = text
        return "".join(out)
