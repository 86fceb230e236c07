"""What commands check about their inputs before the work starts, the same way in every command."""

from __future__ import annotations

import os
from collections.abc import Sequence

from chat_archiver.console import fail
from formats.errors import ArchiverError
from formats.rawfile import RAW_SUFFIXES, RawProblem, find_raw_files, group_streams
from formats.store import QUARANTINE, list_channels


def raw_files_or_fail(paths: Sequence[str]) -> list[str]:
    """The raw recordings under `paths`; exit 2 with one line if a path is missing, if nothing
    there is a raw recording, or if no file there has a readable header (`notes.txt`)."""
    named = ", ".join(paths)
    try:
        files = find_raw_files(paths)
    except ArchiverError as e:
        fail(str(e))
    if not files:
        fail(f"no raw recordings ({', '.join('*' + s for s in RAW_SUFFIXES)}) found in {named}")
    problems: list[RawProblem] = []
    if not group_streams(files, problems):
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        first = f": {problems[0]}{more}" if problems else ""
        fail(f"no readable raw recordings in {named}{first}")
    return files


def archive_channels_or_fail(roots: Sequence[str], channels: Sequence[str], *, allow_empty: bool = False) -> None:
    """Exit 2 with one line unless every root is a folder, together they hold an archive, and
    each `--channel` asked for is in one of them. Says what a folder holds instead, when it is
    empty or holds raw recordings (a mix-up of replay's input and output). `allow_empty`: an
    archive that is yet to be written (one that `merge --interval` watches) may be empty."""
    found: set[str] = set()
    for root in roots:
        if not os.path.isdir(root):
            fail(f"{root}: no such folder")
        here = [c for c in list_channels(root) if c != QUARANTINE]
        if not here and not allow_empty:
            fail(f"{root}: {_what_is_there(root)}")
        found.update(here)
    for wanted in channels if found or not allow_empty else ():
        name = wanted.lower().lstrip("#")
        if name not in found:
            fail(f"--channel {wanted}: no such channel in {', '.join(roots)} (there: {', '.join(sorted(found))})")


def _what_is_there(root: str) -> str:
    try:
        raw = find_raw_files([root])
    except ArchiverError:
        raw = []
    if raw:
        return (
            f"holds {len(raw)} raw recording{'s' if len(raw) != 1 else ''}, not an archive; "
            f"to make an archive of them: chat-archiver replay {root} -o ROOT"
        )
    try:
        entries = len(os.listdir(root))
    except OSError as e:
        return f"cannot list: {e.strerror}"
    if not entries:
        return "the folder is empty: no archive here"
    return f"no archive here (no CHANNEL/chat folders among its {entries} entries)"
