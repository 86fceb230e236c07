"""The compiled twins in tests: import one, and mark the tests that need it.

A machine without a C compiler installs the pure core only, so there those tests are skipped. CI
installs gcc, so there a module that failed to build fails its tests instead of skipping them.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from formats.speedups import pure_forced


def compiled_module(name: str) -> ModuleType | None:
    """The built extension `name` (imported even under CHAT_ARCHIVER_PURE=1), or None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def skip_unless_built(built: bool, what: str) -> pytest.MarkDecorator:
    """Skip where `what` is not built, except on CI, which builds every extension."""
    return pytest.mark.skipif(not built and not os.environ.get("CI"), reason=f"{what} not built (no C compiler)")


def skip_unless_bound(bound: bool, what: str) -> pytest.MarkDecorator:
    """For tests of the compiled path as the product binds it: skipped on the pure path, forced or
    not built, except that on CI's compiled run (not forced pure) a missing build fails them."""
    ci_compiled = bool(os.environ.get("CI")) and not pure_forced()
    return pytest.mark.skipif(not bound and not ci_compiled, reason=f"{what} not bound (pure path)")
