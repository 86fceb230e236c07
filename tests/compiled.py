"""The compiled module in tests: `NATIVE` (imported even under CHAT_ARCHIVER_PURE=1), `needs_native`
for tests of it (skipped on the pure pass, which proves the pure path; the compiled pass holds each
twin to its reference), and `Core`, what the `core`
fixture (tests/conftest.py) gives a test: one of the two implementations of every twin.

A machine without a C compiler installs the pure core only, so there the compiled side is skipped.
CI installs gcc, so there a module that failed to build fails its tests instead of skipping them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

import pytest

from export import ass, html
from formats import canonical, irc, speedups
from index import extract, pg
from merge.scan import Scanned

F = TypeVar("F", bound=Callable[..., Any])


def _import() -> ModuleType | None:
    try:
        native = importlib.import_module(speedups.MODULE)
    except ImportError:
        return None
    # what the product's `twin` tells it (formats/speedups.py), whichever path the product runs
    native.configure_parse_compat(irc.parse_compat_py, irc.unescape_tag_value_compat)
    native.configure_canonical_bytes(canonical.canonical_bytes_py)
    native.configure_is_record(canonical.is_record_py)
    native.configure_scan_file(Scanned)
    native.configure_export_page_line(html.page_line_py)
    native.configure_export_ass_message(ass.message_view_py)
    native.configure_index_privmsg_row(extract.privmsg_row_py, extract.MessageRow)
    native.configure_index_copy_rows(pg.copy_rows_py)
    return native


NATIVE = _import()

# CI's second pass (CHAT_ARCHIVER_PURE=1 -m core) is for the pure path end to end: a test of the
# compiled module against its reference runs the same there as in the first pass, so it runs once.
_PURE_PASS = speedups.pure_forced()
needs_native = pytest.mark.skipif(
    _PURE_PASS or (NATIVE is None and not os.environ.get("CI")),
    reason="the compiled twin is tested in the compiled pass"
    if _PURE_PASS
    else "formats._native not built (no C compiler)",
)


def native() -> ModuleType:
    """The compiled module, in a test marked `needs_native` (so absent only on CI, which fails)."""
    assert NATIVE is not None, "CI builds the compiled core: gcc is on the CI machine"
    return NATIVE


class Core:
    """One implementation of the twins: `pure` (the references) or `compiled` (formats._native)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def twin(self, reference: F, name: str) -> F:
        """`reference` itself on the pure side; its compiled twin `name` on the compiled side."""
        if self.name == "pure":
            return reference
        fast: F = getattr(native(), name)
        return fast


CORES = [pytest.param("pure"), pytest.param("compiled", marks=needs_native)]

# A test whose one claim is that a twin answers as its reference does (same_as_reference, or the
# twin's output against the reference's) would hold the reference to itself on the pure side, a run
# that cannot fail: such a test takes the compiled core only. The reference still runs on every
# input there, as the answer the twin is held to.
compiled_only = pytest.mark.parametrize("core", [CORES[1]], indirect=True)


def skip_unless_bound(bound: bool, what: str) -> pytest.MarkDecorator:
    """For a test of the compiled path as the product binds it: skipped on the pure path, forced or
    not built, except that on CI's compiled run (not forced pure) a missing build fails it."""
    ci_compiled = bool(os.environ.get("CI")) and not speedups.pure_forced()
    return pytest.mark.skipif(not bound and not ci_compiled, reason=f"{what} not bound (pure path)")


def same_as_reference(core: Core, reference: Callable[[Any], Any], name: str, arg: Any) -> Any:
    """`reference(arg)`, once `core`'s twin `name` has given the same answer to `arg`; where the
    reference raises, the twin must raise the same kind of error, and the answer is None."""
    twin = core.twin(reference, name)
    try:
        expected = reference(arg)
    except Exception as e:
        with pytest.raises(type(e)):
            twin(arg)
        return None
    assert twin(arg) == expected, arg
    return expected
