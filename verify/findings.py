"""What verify can find, and how bad each kind is.

A finding is a plain value: a kind (a short stable name scripts can match on), a severity and a
one-line message, plus where it is (file and line, or a channel and a span of time). Severities:

- `problem`: the archive is not whole or not well formed. Any problem makes `verify` exit 1.
- `notice`: worth knowing, not a fault of the archive (a raw recording with a torn last line, an
  archive seen by a single receiver). Notices never change the exit status.
- `unreadable`: verify could not read something it had to read (a file it may not open). Exit 2,
  because the report is then incomplete and "healthy" would be a guess.

The kinds and their meanings are listed in docs/verify-export.md; `KINDS` is the source of truth
for the severity of each, so a test can hold the docs and this table together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PROBLEM = "problem"
NOTICE = "notice"
UNREADABLE = "unreadable"

# kind -> (severity, one-line meaning). The meaning is what docs/verify-export.md expands on.
KINDS: dict[str, tuple[str, str]] = {
    "hash-mismatch": (PROBLEM, "the file's SHA-256 does not match the hash in its name"),
    "torn-file": (PROBLEM, "the file does not end with a newline (a torn or truncated write)"),
    "bad-json": (PROBLEM, "a line is not JSON"),
    "bad-record": (PROBLEM, "a line is JSON but not an archive record (schema)"),
    "not-canonical": (PROBLEM, "a line is not the canonical JSON of its record"),
    "unsorted": (PROBLEM, "lines are not sorted by (time, time_range, line)"),
    "wrong-minute": (PROBLEM, "a record's time does not fall in the file's minute"),
    "duplicate-id": (PROBLEM, "two lines of one file carry the same message id"),
    "conflict": (PROBLEM, "a negative time_range: receivers disagree on when a message was sent"),
    "bad-name": (PROBLEM, "a batch file name whose seconds are not 00"),
    "unmerged": (PROBLEM, "a minute with several batch files (not merged yet)"),
    "foreign-file": (PROBLEM, "a file or folder in the chat tree that the archive does not write"),
    "no-channels": (PROBLEM, "no CHANNEL/chat folder under the root"),
    "implausible-time": (PROBLEM, "batch files timed before 2011 or more than a day ahead of now"),
    "gap": (PROBLEM, "a span with no recorder connected (messages may be lost)"),
    "missing-chat": (PROBLEM, "minutes the raw recordings hold chat for and the archive has no batch file for"),
    "clock-skew": (PROBLEM, "a receiver's receive times are far from the server's times"),
    "quarantined": (PROBLEM, "files a merge set aside as damaged in ROOT/quarantine/: not in the archive"),
    "stale": (PROBLEM, "records differ from what a replay of the raw recordings gives today"),
    "old-merge": (NOTICE, "combined records with numbers from before upstream's (ARCHIVE_FORMAT.md 5.1): merge"),
    "lossy-merge": (NOTICE, "id-less records whose receivers got them far apart: upstream's lossy merges"),
    "empty-file": (NOTICE, "a batch file with no records"),
    "odd-range": (NOTICE, "a time_range wider than any the archiver produces (over 60 s)"),
    "single-receiver": (NOTICE, "the channel was recorded by a single receiver: no redundancy"),
    "raw-elsewhere": (NOTICE, "the raw recordings given do not cover this channel, or not its span: no gaps judged"),
    "debris": (NOTICE, "a leftover temporary file of an interrupted write: not part of the archive"),
    "raw-problem": (NOTICE, "a raw recording line or file that could not be read and was skipped"),
    "unreadable": (UNREADABLE, "a file or folder verify could not read"),
}


@dataclass(frozen=True)
class Finding:
    """One thing verify found. `path`/`line` locate file findings; `start`/`end` (Unix seconds) locate
    time findings such as gaps."""

    kind: str
    message: str
    path: str | None = None
    line: int | None = None
    channel: str | None = None
    start: float | None = None
    end: float | None = None

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]

    @property
    def where(self) -> str:
        if self.path is None:
            return self.channel or ""
        return self.path if self.line is None else f"{self.path}:{self.line}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity
        return data

    def __str__(self) -> str:
        where = self.where
        return f"{where}: {self.kind}: {self.message}" if where else f"{self.kind}: {self.message}"


def exit_status(findings: list[Finding]) -> int:
    """0 healthy, 1 problems found, 2 something could not be read (the report is incomplete)."""
    severities = {f.severity for f in findings}
    if UNREADABLE in severities:
        return 2
    if PROBLEM in severities:
        return 1
    return 0
