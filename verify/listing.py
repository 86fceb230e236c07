"""What belongs in an archive's folders: names in, verdicts out (pure; shell.py does the listing).

    ROOT/CHANNEL/chat/YYYY-MM-DDTHH/MM:00-HASH.json

Anything else under `chat/` was not written by an archiver: a leftover temporary file
(`NAME.json.<uuid>.temp`, from a write that never reached its rename: debris, not a problem of the
archive, since its records are in no file and the write that was killed is redone), a stray file, a folder that
is not an hour. Several batch files for one minute are legal between merges, but a merged archive
has one, so they are reported as `unmerged`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from formats.canonical import BATCH_INTERVAL, EARLIEST_TIME, MAX_AHEAD, batch_relpath, parse_batch_name
from formats.store import DEBRIS_AGE, TEMP_SUFFIX, is_debris_name
from verify.findings import Finding


@dataclass(frozen=True, order=True)
class BatchEntry:
    """A batch file to check: where it is and what its name claims."""

    channel: str
    batch_time: int
    digest: str
    path: str


def classify_hour_entry(
    channel: str,
    hour: str,
    name: str,
    path: str,
    is_dir: bool,
) -> BatchEntry | Finding:
    """A batch file to check, or a finding about a name that is not one."""
    if not is_dir:
        parsed = parse_batch_name(hour, name)
        if parsed is not None:
            return BatchEntry(channel, parsed[0], parsed[1], path)
        if name.endswith(TEMP_SUFFIX):
            fate = (
                f"the next replay or merge of this folder removes it once it is {DEBRIS_AGE // 60} minutes old"
                if is_debris_name(name)
                else "not ours: delete it once nothing is writing"
            )
            return Finding("debris", f"leftover temporary file of an interrupted write ({fate})", path, channel=channel)
    what = "folder" if is_dir else "file"
    return Finding("foreign-file", f"{what} that is not a batch file", path, channel=channel)


def name_findings(entry: BatchEntry) -> list[Finding]:
    """Findings about a batch file's name alone (its seconds must be 00)."""
    if entry.batch_time % BATCH_INTERVAL:
        return [Finding("bad-name", "batch time is not on a whole minute", entry.path, channel=entry.channel)]
    return []


# A quarantine finding names this many files, then counts the rest.
QUARANTINE_NAMED = 20


def quarantine_findings(folder: str, files: list[str]) -> list[Finding]:
    """One finding listing the files a merge moved to the quarantine `folder` (paths relative to it)."""
    if not files:
        return []
    named = ", ".join(files[:QUARANTINE_NAMED])
    more = f" and {len(files) - QUARANTINE_NAMED} more" if len(files) > QUARANTINE_NAMED else ""
    return [
        Finding(
            "quarantined",
            f"{len(files)} file{'' if len(files) == 1 else 's'} set aside by a merge as damaged, "
            "their records not in the archive"
            f" (look, restore from a replica, then delete): {named}{more}",
            folder,
        )
    ]


def unmerged_findings(entries: Iterable[BatchEntry]) -> list[Finding]:
    """One finding per minute that has several batch files, naming them all."""
    by_minute: dict[tuple[str, int], list[str]] = {}
    for e in entries:
        by_minute.setdefault((e.channel, e.batch_time - e.batch_time % BATCH_INTERVAL), []).append(e.path)
    findings = []
    for (channel, _minute), paths in sorted(by_minute.items()):
        if len(paths) > 1:
            paths.sort()
            others = ", ".join(p.rsplit("/", 1)[-1] for p in paths[1:])
            findings.append(
                Finding(
                    "unmerged",
                    f"{len(paths)} files for this minute (also {others})",
                    paths[0],
                    channel=channel,
                )
            )
    return findings


def implausible_time_findings(entries: Iterable[BatchEntry], now: float) -> list[Finding]:
    """One finding per channel naming its batch files timed before EARLIEST_TIME or more than
    MAX_AHEAD past `now` (forged, or written by a broken clock): replay and sync no longer archive
    such records. `now` comes from the caller."""
    by_channel: dict[str, list[BatchEntry]] = {}
    for e in entries:
        if e.batch_time < EARLIEST_TIME or e.batch_time > now + MAX_AHEAD:
            by_channel.setdefault(e.channel, []).append(e)
    findings = []
    for channel, found in sorted(by_channel.items()):
        found.sort()
        hours = sorted({batch_relpath(e.batch_time, "")[0] for e in found})
        named = ", ".join(hours[:5])
        more = f" and {len(hours) - 5} more" if len(hours) > 5 else ""
        findings.append(
            Finding(
                "implausible-time",
                f"{len(found)} batch file(s) timed before 2011 or more than a day ahead of now"
                f" (hours {named}{more}): a forged or broken time; move them out",
                found[0].path,
                channel=channel,
            )
        )
    return findings
