"""Hypothesis profiles: `dev` (default, quick), `ci` (more examples), chosen by HYPOTHESIS_PROFILE;
and the `core` fixture, which runs a twin test on the pure and the compiled core."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.compiled import CORES, Core

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="module", params=CORES)
def core(request: pytest.FixtureRequest) -> Core:
    """Both implementations of the twins, one per run of the test: the pure references and the
    compiled module (skipped where it is not built, except on CI). A test that takes it proves its
    claim of both, so no second run under CHAT_ARCHIVER_PURE=1 is needed for it."""
    return Core(request.param)
