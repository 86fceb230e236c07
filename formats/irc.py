"""IRC message parsing: the IRCv3 reading (`parse`) and upstream's reading (`parse_compat`).

Two readings exist because the archive must match upstream byte for byte, and upstream used the
girc library, which differs from the IRCv3 specifications in small ways that change the bytes
(ARCHIVE_FORMAT.md section 3):

=====================  ===============================  ====================================
detail                 IRCv3 (`parse`)                  girc (`parse_compat`, the archive)
=====================  ===============================  ====================================
tag without `=`        None                             True (JSON `true`)
unknown escape `\\a`    `a`                              `\\a` kept
lone `\\` at the end    dropped                          kept
surrounding space      CR LF at the end removed         the line is `str.strip()`ped first
=====================  ===============================  ====================================

In both, words before the trailing parameter are separated by runs of spaces and the trailing
parameter is kept verbatim (runs and leading spaces too). Archives written before that rule
collapsed runs of spaces in the text, as girc did before 2022-08; a replay of the raw fixes them.

Both raise `IRCParseError` (our own error) for anything they cannot read, never anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from formats import speedups
from formats.errors import IRCParseError

TagValue = str | None

_IRCV3_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_IRCV3_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_ESCAPE_RE = re.compile(r"\\(.?)", re.DOTALL)
_NEEDS_ESCAPE_RE = re.compile(r"[; \\\r\n]")
_COMMAND_RE = re.compile(r"^(?:[A-Za-z]+|[0-9]{3})$")


_WORD_RE = re.compile(r"[^ ]+")


def _params(line: str, pos: int) -> list[str]:
    """The parameters after the command (which ends at `pos`), as both readings take them: middle
    parameters are words separated by runs of spaces; the first word starting with `:` starts the
    trailing parameter, the rest of the line verbatim."""
    params: list[str] = []
    for word in _WORD_RE.finditer(line, pos):
        if word[0][0] == ":":
            params.append(line[word.start() + 1 :])
            break
        params.append(word[0])
    return params


def unescape_tag_value(value: str) -> str:
    """IRCv3 message-tags unescaping: unknown escapes drop the backslash, a final lone one is dropped."""
    if "\\" not in value:
        return value
    return _ESCAPE_RE.sub(lambda m: _IRCV3_UNESCAPES.get(m.group(1), m.group(1)), value)


def escape_tag_value(value: str) -> str:
    if not _NEEDS_ESCAPE_RE.search(value):
        return value
    return "".join(_IRCV3_ESCAPES.get(c, c) for c in value)


def _girc_unescape_match(m: re.Match[str]) -> str:
    c = m.group(1)
    if c == ":":
        return ";"
    if c == "s":
        return " "
    if c == "\\":
        return "\\"
    if c == "r":
        return "\r"
    if c == "n":
        return "\n"
    return m.group(0)  # unknown escape, or a lone backslash at the end: kept as written


def unescape_tag_value_compat(value: str) -> str:
    """girc's unescaping: known escapes decoded, anything else kept verbatim."""
    if "\\" not in value:
        return value
    return _ESCAPE_RE.sub(_girc_unescape_match, value)


def _check_chars(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    if "\r" in line or "\n" in line or "\0" in line:
        raise IRCParseError("line contains CR, LF or NUL")
    return line


@dataclass(frozen=True)
class Message:
    """A parsed IRC message (IRCv3 reading). `params` holds the trailing parameter without its `:`."""

    tags: dict[str, TagValue] | None
    source: str | None
    command: str
    params: list[str]

    def to_line(self) -> str:
        """Serialise to one IRC line (without CRLF) that `parse` reads back equal."""
        parts = []
        if self.tags is not None:
            parts.append(
                "@"
                + ";".join(
                    key if value is None else f"{key}={escape_tag_value(value)}" for key, value in self.tags.items()
                )
            )
        if self.source is not None:
            parts.append(":" + self.source)
        parts.append(self.command)
        if self.params:
            parts.extend(self.params[:-1])
            # Always written as a trailing parameter: valid for any content, and it reads back equal.
            parts.append(":" + self.params[-1])
        return " ".join(parts)


def parse(line: str) -> Message:
    """Parse one IRC line per the IRCv3 message and message-tags specifications."""
    line = _check_chars(line)
    pos = 0
    n = len(line)
    tags: dict[str, TagValue] | None = None
    if line.startswith("@"):
        end = line.find(" ")
        if end < 0:
            raise IRCParseError("tags but no command")
        tags = {}
        for item in line[1:end].split(";"):
            if not item:
                continue
            key, eq, value = item.partition("=")
            if not key:
                raise IRCParseError("tag with an empty key")
            tags[key] = unescape_tag_value(value) if eq else None
        pos = end
    while pos < n and line[pos] == " ":
        pos += 1
    source = None
    if pos < n and line[pos] == ":":
        end = line.find(" ", pos)
        if end < 0:
            raise IRCParseError("source but no command")
        source = line[pos + 1 : end]
        if not source:
            raise IRCParseError("empty source")
        pos = end
        while pos < n and line[pos] == " ":
            pos += 1
    end = line.find(" ", pos)
    if end < 0:
        end = n
    command = line[pos:end]
    if not _COMMAND_RE.match(command):
        raise IRCParseError(f"invalid command {command!r}" if command else "no command")
    pos = end
    return Message(tags, source, command.upper(), _params(line, pos))


CompatTags = dict[str, str | bool]


def _compat_tags(text: str) -> CompatTags:
    tags: CompatTags = {}
    for item in text.split(";"):
        key, eq, value = item.partition("=")
        tags[key] = value if eq else True  # girc: a tag without "=" is True
    if "\\" in text:
        for name, tag in tags.items():
            if isinstance(tag, str) and "\\" in tag:
                tags[name] = unescape_tag_value_compat(tag)
    return tags


CompatFields = tuple[str, list[str], str | None, str | None, str | None, CompatTags | None]


def _split_prefix(prefix: str) -> tuple[str, str | None, str | None]:
    """`nick!user@host` -> (sender, user, host): host after the last `@`, then user after the first `!`."""
    user = host = None
    if "@" in prefix:
        prefix, _, host = prefix.rpartition("@")
    if "!" in prefix:
        prefix, _, user = prefix.partition("!")
    return prefix, user, host


def _archivable_text(line: str) -> str:
    """The line as the archive reads it: `str.strip()`ped; refused if empty or holding CR, LF or NUL."""
    line = line.strip()
    if not line:
        raise IRCParseError("empty line")
    if "\r" in line or "\n" in line or "\0" in line:
        raise IRCParseError("line contains CR, LF or NUL")
    return line


def parse_compat_py(line: str) -> CompatFields:
    """Upstream's (girc's) reading: (command, params, sender, user, host, tags), the archive's fields.

    The pure-Python reference; `parse_compat` is its compiled twin when that is built (see
    formats/speedups.py), else this.

    ARCHIVE_FORMAT.md section 3: the line is `str.strip()`ped; tags, prefix, command and middle
    parameters are words separated by runs of spaces; the trailing parameter (the first word after
    the command that starts with `:`) is the rest of the line after that `:`, verbatim. Nearly every
    real line has single spaces only, and then slicing at single spaces is the whole rule, which is
    what this fast path does; lines with a run of spaces take `parse_compat_words` (a property test
    holds the two equal on every line).
    """
    line = _archivable_text(line)
    if "  " in line:
        return parse_compat_words(line)
    pos = 0
    tags: CompatTags | None = None
    if line[0] == "@":
        end = line.find(" ")
        if end < 0:
            raise IRCParseError("no command")
        tags = _compat_tags(line[1:end])
        pos = end + 1
    sender = user = host = None
    if line[pos] == ":":
        end = line.find(" ", pos)
        if end < 0:
            raise IRCParseError("no command")
        sender, user, host = _split_prefix(line[pos + 1 : end])
        pos = end + 1
    end = line.find(" ", pos)
    if end < 0:
        return line[pos:].upper(), [], sender, user, host, tags
    command = line[pos:end].upper()
    rest = line[end + 1 :]  # not empty: a stripped line does not end with a space
    if rest[0] == ":":
        params = [rest[1:]]
    else:
        i = rest.find(" :")
        if i < 0:
            params = rest.split(" ")
        else:
            params = rest[:i].split(" ")
            params.append(rest[i + 2 :])
    return command, params, sender, user, host, tags


def parse_compat_words(line: str) -> CompatFields:
    """The same reading, word by word, for any line (see parse_compat_py)."""
    line = _archivable_text(line)
    words = list(_WORD_RE.finditer(line))  # runs of spaces separate words; a stripped line has one at least
    i = 0
    tags: CompatTags | None = None
    if words[0][0][0] == "@":
        tags = _compat_tags(words[0][0][1:])
        i = 1
    sender = user = host = None
    if i < len(words) and words[i][0][0] == ":":
        sender, user, host = _split_prefix(words[i][0][1:])
        i += 1
    if i >= len(words):
        raise IRCParseError("no command")
    command = words[i][0].upper()
    return command, _params(line, words[i].end()), sender, user, host, tags


# Upstream's reading, compiled when built (byte-identical to parse_compat_py: tests/test_speedups.py).
parse_compat = speedups.twin(parse_compat_py, "parse_compat", unescape_tag_value_compat)
