"""Hypothesis example counts live in two profiles, chosen by HYPOTHESIS_PROFILE (or CI=true).

`dev` is the quick default for people at a keyboard; `ci` runs twelve times as many examples. A test
whose law needs more (or, being expensive, fewer) examples than the others asks for a multiple of the
active profile's count with `examples(k)` instead of pinning a number, so `dev` stays quick and `ci`
stays thorough for every test alike.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)


def load() -> str:
    """Load the profile HYPOTHESIS_PROFILE names (`ci` under CI=true, `dev` otherwise); return its name."""
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
    settings.load_profile(name)
    return name


def examples(k: float) -> int:
    """`k` times the active profile's example count (at least 1): relative, never a pinned number."""
    return max(1, round(k * settings.default.max_examples))
