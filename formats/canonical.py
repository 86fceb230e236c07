"""Canonical bytes of archive records and batch files (ARCHIVE_FORMAT.md sections 1-3).

A batch file line is exactly what `json.dumps(record, separators=(",", ":"), sort_keys=True)`
prints. That encoder is slow, so the hot path uses orjson with sorted keys and then rewrites the
two things orjson does differently:

- orjson writes UTF-8; `ensure_ascii` escapes every code point >= U+007F as `\\uXXXX` (astral
  characters as surrogate pairs). Non-ASCII bytes can only occur inside JSON strings, so escaping
  them after the fact is safe.
- orjson prints floats below 1e-4 without an exponent (`0.00001` where repr gives `1e-05`), and
  cannot encode ints beyond 64 bits or non-finite floats. Records whose numbers fall there take the
  stdlib path. Everything else prints identically (a property test holds both paths to
  `json.dumps`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

import orjson

from formats import speedups
from formats.errors import InputError, UsageError

BATCH_INTERVAL = 60

# The times an archive believes: not before Twitch existed, not more than a day ahead of now. One
# record timed in the year 9999 would make the archive span centuries; sync refuses a peer's file
# outside them, and verify reports a file timed past them.
EARLIEST_TIME = 1_306_886_400  # 2011-06-01T00:00:00Z
MAX_AHEAD = 86_400  # s

RECORD_KEYS = frozenset(("command", "params", "sender", "user", "host", "tags", "receivers", "time", "time_range"))
# What a message is: every key but who received it when (`receivers`) and when it was sent.
CONTENT_KEYS = ("command", "host", "params", "sender", "tags", "user")


class Record(TypedDict):
    """An archive record (ARCHIVE_FORMAT.md section 3), for the type checker only: at run time it is
    a plain dict, as JSON decoding gives it."""

    command: str
    params: list[str]
    sender: str | None
    user: str | None
    host: str | None
    tags: dict[str, str | bool] | None
    receivers: dict[str, float]
    time: float
    time_range: float


# Every ASCII digit as "0", everything else as " ": a run of 19 digits is then a plain substring,
# which bytes' substring search finds ten times faster than the regex `\d{19}` scans for it.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_NINETEEN_DIGITS = b"0" * 19


def _has_long_digits(data: bytes) -> bool:
    """Whether `data` holds a run of 19 or more ASCII digits (an int orjson would read as a float)."""
    return _NINETEEN_DIGITS in data.translate(_DIGITS_AS_ZERO)


def ensure_ascii(raw: bytes) -> bytes:
    """Rewrite JSON text in UTF-8 (orjson's output) the way `json.dumps(..., ensure_ascii=True)` writes it.

    `backslashreplace` (C speed) turns non-ASCII characters into `\\xNN`, `\\uNNNN` or `\\UNNNNNNNN`;
    JSON wants `\\u00NN` and surrogate pairs. Backslashes that were in the text are already doubled by
    the JSON encoder, so the escapes are read left to right from a split at every backslash.
    """
    escaped = raw.decode("utf-8").encode("ascii", "backslashreplace")
    if b"\\x" in escaped or b"\\U" in escaped:
        parts = escaped.split(b"\\")
        out = [parts[0]]
        i, n = 1, len(parts)
        while i < n:
            part = parts[i]
            if not part:  # an escaped backslash (`\\\\`); the part after it is plain text
                out.append(b"\\\\" + parts[i + 1])
                i += 2
                continue
            first = part[0]
            if first == 0x78:  # x: one Latin-1 character
                out.append(b"\\u00" + part[1:])
            elif first == 0x55:  # U: outside the BMP, as a surrogate pair
                code = int(part[1:9], 16) - 0x10000
                out.append(b"\\u%04x\\u%04x" % (0xD800 | (code >> 10), 0xDC00 | (code & 0x3FF)) + part[9:])
            else:
                out.append(b"\\" + part)
            i += 1
        escaped = b"".join(out)
    return escaped.replace(b"\x7f", b"\\u007f")


_INF = float("inf")
_INT_MIN, _INT_MAX = -(2**63), 2**64


def _fast_path_ok(record: Mapping[str, Any]) -> bool:
    """True when orjson prints every number of the record exactly as repr() does."""
    receivers = record.get("receivers")
    values: list[Any] = [record.get("time"), record.get("time_range")]
    if type(receivers) is dict:
        values.extend(receivers.values())
    for v in values:
        t = type(v)
        if t is float:
            # orjson and repr agree on finite floats except below 1e-4 (orjson has no exponent there)
            if not (v == 0.0 or 1e-4 <= abs(v) < _INF):
                return False
        elif t is int and not (_INT_MIN <= v < _INT_MAX):
            return False
    return True


def canonical_bytes_py(record: Mapping[str, Any]) -> bytes:
    """The record as `json.dumps(record, separators=(',', ':'), sort_keys=True)` prints it, in ASCII bytes.

    The pure-Python reference; `canonical_bytes` is its compiled twin when that is built (see
    formats/speedups.py), else this.
    """
    if _fast_path_ok(record):
        try:
            raw = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            pass  # something orjson cannot encode (a huge int nested in tags): use the stdlib
        else:
            if raw.isascii() and b"\x7f" not in raw:
                return raw
            return ensure_ascii(raw)
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode("ascii")


# json.dumps's canonical bytes, compiled when built (byte-identical: tests/test_speedups.py).
canonical_bytes = speedups.twin(canonical_bytes_py, "canonical_bytes")


def canonical_json(record: Mapping[str, Any]) -> str:
    """`canonical_bytes` as text."""
    return canonical_bytes(record).decode("ascii")


def format_batch(
    records: Iterable[Mapping[str, Any]],
    encode: Callable[[Mapping[str, Any]], bytes] | None = None,
) -> bytes:
    """The exact bytes of a batch file holding `records`: canonical lines, sorted, final newline.
    `encode` gives each record's canonical line (`canonical_bytes` unless given)."""
    encode = canonical_bytes if encode is None else encode
    keyed = [(r["time"], r["time_range"], encode(r)) for r in records]
    if not keyed:
        return b""
    # bytes sort like the ASCII text they hold, so this is the spec's (time, time_range, line) order
    keyed.sort()
    return b"\n".join([k[2] for k in keyed]) + b"\n"


def content_key(content: tuple[Any, ...]) -> bytes:
    """A key equal for equal contents (the CONTENT_KEYS values of a record, in that order) and
    different otherwise: JSON with sorted keys, in UTF-8. Not the canonical line, whose escaping of
    non-ASCII costs a regex pass that a dictionary key does not need."""
    try:
        return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson cannot encode (an int beyond 64 bits), the stdlib can
        return canonical_bytes(dict(zip(CONTENT_KEYS, content, strict=True)))


def record_content_key(record: Mapping[str, Any]) -> bytes:
    """`content_key` of a record's content: equal exactly for records that are the same message."""
    return content_key(tuple([record[k] for k in CONTENT_KEYS]))


def content_hash(data: bytes) -> str:
    """SHA-256 of `data`, URL-safe base64 without padding (43 characters)."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode("ascii").rstrip("=")


def batch_time_of(time: float) -> int:
    """The start of the one-minute batch holding a record that starts at `time`."""
    return int(time / BATCH_INTERVAL) * BATCH_INTERVAL


def batch_relpath(batch_time: int, digest: str) -> tuple[str, str]:
    """(hour folder, file name) of a batch: `YYYY-MM-DDTHH`, `MM:SS-HASH.json`."""
    moment = datetime.fromtimestamp(batch_time, UTC)
    return moment.strftime("%Y-%m-%dT%H"), f"{moment.strftime('%M:%S')}-{digest}.json"


# ASCII digits only (`\d` would take any script's, and int() reads them), always matched whole.
_NAME_RE = re.compile(r"([0-9]{2}):([0-9]{2})-([A-Za-z0-9_-]{43})\.json", re.ASCII)
_HOUR_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2})", re.ASCII)


def is_hour_folder(name: str) -> bool:
    """Whether `name` has the shape of an hour folder's name, `YYYY-MM-DDTHH`."""
    return _HOUR_RE.fullmatch(name) is not None


def parse_batch_name(hour: str, name: str) -> tuple[int, str] | None:
    """(batch time, hash) from a batch file's hour folder and name, or None if it is not one."""
    m = _NAME_RE.fullmatch(name)
    h = _HOUR_RE.fullmatch(hour)
    if not m or not h:
        return None
    try:
        moment = datetime(
            int(h.group(1)),
            int(h.group(2)),
            int(h.group(3)),
            int(h.group(4)),
            int(m.group(1)),
            int(m.group(2)),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    return int(moment.timestamp()), m.group(3)


_STR = {str}
_STR_OR_TRUE = {str, bool}
_NUMBER = {int, float}


def is_record_py(record: dict[str, Any]) -> bool:
    """Whether a decoded line has the archive record schema (ARCHIVE_FORMAT.md section 3): the one
    schema check, which `validate_record` runs first. Written for speed (every line of every file a
    merge, verify or export reads goes through it): type sets are built by C loops, and a bool is
    cheaper than an exception; only a record that fails is looked at again, to name the fault.

    The pure-Python reference; `is_record` is its compiled twin (native/record.c) when built."""
    if record.keys() != RECORD_KEYS:
        return False
    tags = record["tags"]
    if tags is not None:
        if type(tags) is not dict:
            return False
        kinds = set(map(type, tags.values()))
        if not kinds <= _STR_OR_TRUE or (bool in kinds and False in [v for v in tags.values() if type(v) is bool]):
            return False
    params = record["params"]
    receivers = record["receivers"]
    return (
        type(params) is list
        and set(map(type, params)) <= _STR
        and type(record["command"]) is str
        and type(receivers) is dict
        and bool(receivers)
        and set(map(type, receivers.values())) <= _NUMBER
        and type(record["time"]) in _NUMBER
        and type(record["time_range"]) in _NUMBER
        and (record["sender"] is None or type(record["sender"]) is str)
        and (record["user"] is None or type(record["user"]) is str)
        and (record["host"] is None or type(record["host"]) is str)
    )


# The schema check, compiled when built (the same verdicts: tests/test_readcore.py).
is_record = speedups.twin(is_record_py, "is_record")


def validate_record(record: object) -> dict[str, Any]:
    """The record if a decoded line has the archive record schema (`is_record`); else InputError
    saying what is wrong."""
    if type(record) is dict and is_record(record):
        return record
    if type(record) is not dict:
        raise InputError("record is not a JSON object")
    if record.keys() != RECORD_KEYS:
        keys = set(record)
        missing = sorted(RECORD_KEYS - keys)
        extra = sorted(keys - RECORD_KEYS)
        raise InputError(f"record keys wrong (missing {missing}, unexpected {extra})")
    if type(record["command"]) is not str:
        raise InputError("'command' is not a string")
    params = record["params"]
    if type(params) is not list or not set(map(type, params)) <= _STR:
        raise InputError("'params' is not a list of strings")
    if not all(record[k] is None or type(record[k]) is str for k in ("sender", "user", "host")):
        raise InputError("'sender', 'user' or 'host' is not a string or null")
    tags = record["tags"]
    if tags is not None and (
        type(tags) is not dict or not set(map(type, tags.values())) <= _STR_OR_TRUE or False in tags.values()
    ):
        raise InputError("'tags' is not an object of strings (or true)")
    receivers = record["receivers"]
    if type(receivers) is not dict or not receivers or not set(map(type, receivers.values())) <= _NUMBER:
        raise InputError("'receivers' is not a non-empty object of numbers")
    raise InputError("'time' or 'time_range' is not a number")


_BIG = float(2**63)


def _read_a_big_int(value: Any) -> bool:
    """Whether orjson may have read an int beyond 64 bits (as a float, of magnitude 2**63 or more) where
    a record keeps numbers. Elsewhere any number makes the record invalid, whether int or float, with
    the same message; so asking this of the decoded record, rather than a regular expression of each
    line that holds 19 digits in a row (Twitch ids and nonces often do), gives the same records."""
    if type(value) is not dict:
        return False
    time, time_range, receivers = value.get("time"), value.get("time_range"), value.get("receivers")
    if type(time) is float and not -_BIG < time < _BIG:
        return True
    if type(time_range) is float and not -_BIG < time_range < _BIG:
        return True
    if type(receivers) is dict:
        for v in receivers.values():
            if type(v) is float and not -_BIG < v < _BIG:
                return True
    return False


def parse_batch(data: bytes, source: str = "<batch>") -> list[dict[str, Any]]:
    """Decode a batch file's bytes into validated records; InputError names the bad line."""
    records: list[dict[str, Any]] = []
    if not data:
        return records
    if not data.endswith(b"\n"):
        raise InputError("batch file does not end with a newline (torn write?)", source)
    long_digits = _has_long_digits(data)  # one scan of the file, not one per line
    for number, line in enumerate(data[:-1].split(b"\n"), 1):
        try:
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                value = json.loads(line)  # raises with the stdlib's clearer message (or reads a huge int)
            else:
                if long_digits and _read_a_big_int(value):
                    value = json.loads(line)  # orjson reads ints beyond 64 bits as floats; the stdlib keeps them
            records.append(validate_record(value))
        except InputError as e:
            raise e.at(source, number) from None
        except ValueError as e:
            raise InputError(f"invalid JSON: {e}", source, number) from None
    return records


_FIRST_KEY = b'{"command":'
_NEXT_LINE = b'\n{"command":'


def decode_batch_fast(data: bytes) -> list[dict[str, Any]] | None:
    """`parse_batch`'s records, decoded in one orjson call, when that is sure to give the same; else
    None (then `parse_batch` reads the file, and names what is wrong).

    Sure means: a final newline; every line opens with `{"command":`, the first key of a canonical
    line (so no newline falls inside a record: within a string, the next line's `{"` would close
    the string right before `command`; between a record's members or params, `{` cannot come);
    one record per line (the counts agree); no run of 19 digits (an int orjson reads as a float);
    and every record has the schema (`is_record`)."""
    if not data.endswith(b"\n") or not data.startswith(_FIRST_KEY):
        return None
    lines = data.count(b"\n")
    if data.count(_NEXT_LINE) != lines - 1 or _has_long_digits(data):
        return None
    try:
        records = orjson.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(records) != lines or not all(type(r) is dict and is_record(r) for r in records):
        return None
    decoded: list[dict[str, Any]] = records
    return decoded


# Printable ASCII but for what a filesystem (or a shell) reads as structure; `\Z`, since `$` would
# also match before a trailing newline.
_SAFE_CHANNEL = re.compile(r"[^\x00-\x20/\\,:*?\"<>|\x7f-\U0010ffff]{1,200}\Z")


def check_channel_dirname(channel: str) -> str:
    """Return `channel` if it is safe as a folder name under the archive root, else raise UsageError.

    Channel names come from the network, so a name that could leave the root (`..`, a slash, NUL),
    that a filesystem would mangle, or that is not printable ASCII (a digit of another script, a
    bidi control, a trailing newline) is refused rather than written.
    """
    if channel.startswith(".") or not _SAFE_CHANNEL.match(channel):
        raise UsageError(f"refusing unsafe channel name as a folder: {channel!r}")
    return channel
