"""Merging chat archives: a CRDT whose result is a pure function of the observations it holds.

`merge.core` is the pure merge of record lists (no I/O); `merge.directory` applies it to batch
files on disk (atomic, durable, safe under concurrency and crashes); `merge.view` folds ranged
duplicates for display. docs/merge.md gives the design, its proof sketch and counterexamples.
"""

from formats.errors import ArchiverError, InputError, UsageError
from merge.core import MergeCounts, Merged, Merger, merge, merge_bytes, merge_records

__all__ = [
    "ArchiverError",
    "InputError",
    "MergeCounts",
    "Merged",
    "Merger",
    "UsageError",
    "merge",
    "merge_bytes",
    "merge_records",
]
