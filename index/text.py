"""Words, phrases and queries: how chat text is cut into words, and a user's query into terms.

A word is a maximal run of characters other than white space (what `str.split` splits on), control
characters (so a `/me` line's `\x01ACTION ...\x01` wrapper and colour escapes cut words), lone
surrogates and the punctuation `. , ! ? "`, compared after `str.casefold()`. So emotes are
words (`Kappa`, `:)`, `<3`, `D:`), `hello,` is the word `hello`, and `Straße` equals `STRASSE`.

A query is words and "quoted phrases" (an unclosed quote runs to the end). Every term must occur:
a word as one of the text's words, a phrase as consecutive words. Cutting is done here, in Python,
for both the stored text and the query, so both backends see the same words and a query can never
be read as FTS or SQL syntax: the backends get the words as bound values (PostgreSQL) or as quoted
FTS tokens made only of `[a-z0-9_]` (SQLite, `fts_token`).
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Sequence

from index.api import MAX_TERMS, QueryError

# Separators: white space as str.split sees it, NUL, surrogates (not encodable), and . , ! ? "
_WORD_RE = re.compile(r'[^\s\x00-\x1f\x7f\ud800-\udfff.,!?"]+')

Term = tuple[str, ...]  # one word, or the words of a phrase in order


def _folded_words(text: str) -> list[str]:
    """The words of a text, in order, case-folded (then cut again, in case folding made a separator)."""
    if text.isascii():
        return _WORD_RE.findall(text.lower())  # ASCII: folding is lowering, and makes no separator
    out: list[str] = []
    for w in _WORD_RE.findall(text):
        out.extend(_WORD_RE.findall(w.casefold()))
    return out


def parse_query(query: str) -> list[Term]:
    """The terms of a user's query: each quoted phrase is one term, every other word its own.
    Duplicate terms are dropped. More than MAX_TERMS terms is a QueryError."""
    terms: list[Term] = []
    parts = query.split('"')
    for i, part in enumerate(parts):
        found = _folded_words(part)
        if i % 2 == 1:  # inside quotes
            if found:
                terms.append(tuple(found))
        else:
            terms.extend((w,) for w in found)
    unique = list(dict.fromkeys(terms))
    if len(unique) > MAX_TERMS:
        raise QueryError(f"too many search terms ({len(unique)}; at most {MAX_TERMS})")
    return unique


def text_words(text: str) -> list[str]:
    """The words stored for a message's text (the same cut as a query's); a `/me` line's words are
    those inside its `\x01ACTION ...\x01` wrapper."""
    if text.startswith("\x01ACTION ") and text.endswith("\x01") and len(text) >= 9:
        text = text[8:-1]
    return _folded_words(text)


def matches(terms: list[Term], text_words_: list[str]) -> bool:
    """Whether a text (its words) holds every term: the reference both backends must agree with."""
    for term in terms:
        n = len(term)
        if not any(tuple(text_words_[i : i + n]) == term for i in range(len(text_words_) - n + 1)):
            return False
    return True


@functools.lru_cache(maxsize=65536)
def fts_token(word: str) -> str:
    """A word as an FTS5 token of the `ascii` tokenizer (with `_` a token character): plain
    `[a-z0-9]+` words stay as they are, anything else becomes `_` and its UTF-8 in hex. The result
    is only `[a-z0-9_]`, so it cannot be read as FTS syntax, and no two words share a token."""
    if word.isascii() and (word.isdigit() or (word.isalnum() and word.islower())):
        return word  # [a-z0-9]+ (the words are case-folded already; digits alone are not "lower")
    return "_" + word.encode("utf-8").hex()


def fts_document(words_: Sequence[str]) -> str:
    """A text's words as the SQLite index stores them: their FTS tokens, joined by spaces."""
    return " ".join(map(fts_token, words_))


_ARRAY_HEAD = struct.Struct("!iiiii")
_EMPTY_ARRAY = struct.pack("!iii", 0, 0, 25)  # no dimensions, no NULLs, elements of type text (oid 25)


def pg_words(words_: Sequence[str]) -> bytes:
    """A text's words as the PostgreSQL index's build writes them: a `text[]` in PostgreSQL's binary
    form (array_send's: dimensions, the element type, then each element's length and UTF-8), what
    `string_to_array(' '.join(words), ' ')` holds."""
    if not words_:
        return _EMPTY_ARRAY
    out = [_ARRAY_HEAD.pack(1, 0, 25, len(words_), 1)]
    for word in words_:
        data = word.encode("utf-8")
        out.append(len(data).to_bytes(4, "big"))
        out.append(data)
    return b"".join(out)


def fts_match(terms: list[Term]) -> str:
    """An FTS5 MATCH expression for all the terms: each term a quoted phrase, joined by AND."""
    return " AND ".join('"' + " ".join(fts_token(w) for w in term) + '"' for term in terms)
