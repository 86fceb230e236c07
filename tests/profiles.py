"""Hypothesis example counts live in two profiles, chosen by HYPOTHESIS_PROFILE (or CI=true).

`dev` is the quick default for people at a keyboard; `ci` runs twelve times as many examples. A test
whose law needs more (or, being expensive, fewer) examples than the others asks for a multiple of the
active profile's count with `examples(k)` instead of pinning a number, so `dev` stays quick and `ci`
stays thorough for every test alike.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# No deadline and no too_slow health check in either profile: both time the machine, not the code,
# and fail a correct test whenever the machine is busy (two suites at once, xdist workers beside
# real servers). How fast the code is, the benchmarks say.
TIMED = [HealthCheck.too_slow]
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=TIMED)
settings.register_profile("ci", max_examples=300, deadline=None, suppress_health_check=TIMED, print_blob=True)


def load() -> str:
    """Load the profile HYPOTHESIS_PROFILE names (`ci` under CI=true, `dev` otherwise); return its name."""
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
    settings.load_profile(name)
    return name


def examples(k: float) -> int:
    """`k` times the active profile's example count (at least 1): relative, never a pinned number."""
    return max(1, round(k * settings.default.max_examples))


def suppressing(*checks: HealthCheck) -> list[HealthCheck]:
    """The profile's suppressed health checks and `checks`: a test's own list replaces the profile's."""
    return [*settings.default.suppress_health_check, *checks]
