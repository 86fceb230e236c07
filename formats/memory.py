"""Pausing the cyclic garbage collector while a stage builds millions of small, acyclic objects.

Without it, CPython rescans the growing heap again and again (about 40% of a merge at a million
records, a third of a replay on a busy channel). Nothing these stages allocate is cyclic (records
are dicts of strings and numbers), so reference counting frees everything and nothing waits on the
collector. The previous state is restored, also on error.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
