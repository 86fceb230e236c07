"""Which core runs: the compiled twins of the hottest pure functions, or the pure-Python reference.

The pure-Python functions are the one source of truth. `formats/_speedups.c` holds compiled twins
of the two hottest: `formats.irc.parse_compat_py` (the IRC line parser with its tag map) and
`formats.canonical.canonical_bytes_py` (the canonical JSON encoder). Each handles the common shape
(a usual line, a record of the archive schema) and hands everything else to its reference, so odd
input and errors always come from the pure code; tests/test_speedups.py holds each twin equal to
its reference over random input (hypothesis) and real data (the corpus, the fixtures).

The twin is an optional extension: an install without a C compiler goes on, and the first import
says once, on stderr, that the pure path runs. `CHAT_ARCHIVER_PURE=1` forces the pure path (CI runs
the whole suite both ways).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

PURE_ENV = "CHAT_ARCHIVER_PURE"
# Set once the notice is printed, so that worker processes (verify, export and sync start them with
# forkserver, which imports afresh) inherit it and stay quiet: one notice per command.
_NOTICE_SHOWN_ENV = "CHAT_ARCHIVER_PURE_NOTICE_SHOWN"

NOTICE = (
    "chat-archiver: the compiled core is not built (no C compiler at install time?); running the "
    "pure-Python core, which gives the same bytes more slowly. Reinstall with gcc to build it."
)


def pure_forced() -> bool:
    """True when CHAT_ARCHIVER_PURE asks for the pure path (any value but empty or 0)."""
    return os.environ.get(PURE_ENV, "") not in ("", "0")


@functools.cache
def load(module: str = "formats._speedups") -> ModuleType | None:
    """A compiled module (`formats._speedups` unless named), or None for the pure path: forced, or
    not built (then said once per command, whichever module is missing first).

    Each stage that has compiled twins keeps them in its own optional extension module, listed in
    pyproject.toml's `[[tool.setuptools.ext-modules]]`, and binds them through this function."""
    if pure_forced():
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        if not os.environ.get(_NOTICE_SHOWN_ENV):
            print(NOTICE, file=sys.stderr)
            os.environ[_NOTICE_SHOWN_ENV] = "1"
        return None


def bind(
    reference: F,
    name: str,
    module: str = "formats._speedups",
    *,
    configure: str = "configure",
    with_: tuple[Any, ...] = (),
) -> F:
    """The compiled twin `module.name` of the pure `reference`, or `reference` itself on the pure
    path. The twin is first told `module.configure(*with_)` (usually the reference functions it
    hands odd input to)."""
    compiled = load(module)
    if compiled is None:
        return reference
    getattr(compiled, configure)(*with_)
    fast: F = getattr(compiled, name)
    return fast


def core_name() -> str:
    """`compiled` or `pure`: which core this process runs (benchmarks print it)."""
    from formats import canonical, irc  # noqa: PLC0415

    pure = irc.parse_compat is irc.parse_compat_py
    assert pure == (canonical.canonical_bytes is canonical.canonical_bytes_py)
    return "pure" if pure else "compiled"
