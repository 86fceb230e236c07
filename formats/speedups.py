"""Which core runs: the compiled twins of the hottest pure functions, or the pure-Python reference.

The pure-Python functions are the one source of truth. One compiled module, `formats._native`
(its C in native/, one part per stage), holds the compiled twins of the hottest of them: the IRC
parser and the canonical encoder (native/irc.c), the schema check (native/record.c), the replay's
step and lane (native/replay.c), the byte scanners of merge, verify and export, and the index's
reader of a PRIVMSG's row (native/index.c). Each handles the common shape and hands everything
else to its reference, so odd input and errors always come from the pure code; the twin tests hold
each equal to its reference through the `core` fixture (tests/conftest.py), which runs them on both
implementations.

Every twin is bound here, in one way: `twin(reference, name)`. The module is an optional
extension: an install without a C compiler goes on, and the first import says once, on stderr,
that the pure path runs. `CHAT_ARCHIVER_PURE=1` forces the pure path.
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


MODULE = "formats._native"


@functools.cache
def load() -> ModuleType | None:
    """The one compiled module (`formats._native`, built from native/), or None for the pure path:
    forced, or not built (then said once per command)."""
    if pure_forced():
        return None
    try:
        return importlib.import_module(MODULE)
    except ImportError:
        if not os.environ.get(_NOTICE_SHOWN_ENV):
            print(NOTICE, file=sys.stderr)
            os.environ[_NOTICE_SHOWN_ENV] = "1"
        return None


def twin(reference: F, name: str, *needs: Any) -> F:
    """The compiled twin `name` of the pure `reference`, or `reference` itself on the pure path.

    A twin that hands odd input back to its reference is told it first: the module's
    `configure_<name>(reference, *needs)`, where it has one, is called with the reference and any
    other pure function the twin calls (so the contract between C and Python is these arguments)."""
    native = load()
    if native is None:
        return reference
    configure = getattr(native, "configure_" + name, None)
    if configure is not None:
        configure(reference, *needs)
    fast: F = getattr(native, name)
    return fast


def compiled(name: str, *needs: Any) -> Any:
    """The compiled function or type `name`, or None on the pure path: for a fast path that has no
    pure twin in production (its caller takes the ordinary path instead, and tests hold it to the
    reference in tests/reference/). The module's `configure_<name>(*needs)`, where it has one, is
    called first with the Python objects the C builds or calls (as for `twin`)."""
    native = load()
    if native is None:
        return None
    configure = getattr(native, "configure_" + name, None)
    if configure is not None:
        configure(*needs)
    return getattr(native, name)


def core_name() -> str:
    """`compiled` or `pure`: which core this process runs (benchmarks print it); every `twin` binds
    its reference exactly when `load()` is None."""
    return "pure" if load() is None else "compiled"
