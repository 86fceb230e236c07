"""Hypothesis profiles (tests/profiles.py): `dev` (default, quick), `ci` (more examples), by
HYPOTHESIS_PROFILE; and the `core` fixture, which runs a twin test on the pure and the compiled core."""

from __future__ import annotations

import signal

import profiles
import pytest

from tests.compiled import CORES, Core

profiles.load()

# A shell starts a background job (`make test &`, some CI runners) with SIGINT ignored, and a
# process started with a signal ignored keeps ignoring it, as do its children: the Ctrl-C tests'
# processes would never see their SIGINT. The suite's processes take it as Python does by default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="module", params=CORES)
def core(request: pytest.FixtureRequest) -> Core:
    """Both implementations of the twins, one per run of the test: the pure references and the
    compiled module (skipped where it is not built, except on CI). A test that takes it proves its
    claim of both, so no second run under CHAT_ARCHIVER_PURE=1 is needed for it."""
    return Core(request.param)
