"""From WebSocket frames to IRC lines, and a cheap look at a line. Pure.

A frame usually carries one IRC line, but Twitch may put several in one frame, separated by CRLF;
generic IRC-over-WebSocket servers send one line per frame with or without the CRLF. So a frame is
split on LF, one CR before each LF is dropped, and a last piece without a line ending is a whole
line too (a frame is a message boundary). `str.splitlines()` would be wrong: it also splits on
U+2028, U+0085 and other characters that chat messages may legitimately contain.

`peek` is the hot path: it finds the command and channel of a line with a few `split`s instead of
a full parse, because the recorder only needs them for metrics and to spot the rare lines it acts
on (PING, RECONNECT, numerics...), which `session` then parses properly.
"""

from __future__ import annotations


def split_frame(text: str) -> list[str]:
    """The IRC lines in one text frame, without line endings; empty lines are dropped."""
    if "\n" not in text:
        if text.endswith("\r"):
            text = text[:-1]
        return [text] if text else []
    lines = []
    for piece in text.split("\n"):
        line = piece[:-1] if piece.endswith("\r") else piece
        if line:
            lines.append(line)
    return lines


def _words(line: str, count: int) -> list[str]:
    """The first `count` space-separated words (runs of spaces are allowed between IRC parts)."""
    words: list[str] = []
    pos = 0
    n = len(line)
    while len(words) < count:
        while pos < n and line[pos] == " ":
            pos += 1
        if pos >= n:
            break
        end = line.find(" ", pos)
        if end < 0:
            end = n
        words.append(line[pos:end])
        pos = end
    return words


def peek(line: str) -> tuple[str, str]:
    """(command, channel) of a line; channel is the first parameter without `#` if it names one.

    Malformed lines give ("", ""): they are still recorded, just not counted under a command.
    """
    words = line.split(" ", 4)  # fast path: single spaces, as every real server sends
    if len(words) == 5:
        words.pop()  # the rest of the line, never needed
    if "" in words:
        words = _words(line, 4)
    i = 0
    if i < len(words) and words[i].startswith("@"):
        i += 1
    if i < len(words) and words[i].startswith(":"):
        i += 1
    if i >= len(words):
        return ("", "")
    target = words[i + 1] if i + 1 < len(words) else ""
    return (words[i].upper(), target[1:] if target.startswith("#") else "")
