"""What commands check about their inputs before the work starts, the same way in every command."""

from __future__ import annotations

from collections.abc import Sequence

from chat_archiver.console import fail
from formats.errors import ArchiverError
from formats.rawfile import RAW_SUFFIXES, Problem, find_raw_files, group_streams


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
    problems: list[Problem] = []
    if not group_streams(files, problems):
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        first = f": {problems[0]}{more}" if problems else ""
        fail(f"no readable raw recordings in {named}{first}")
    return files
