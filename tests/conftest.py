"""Hypothesis profiles (tests/profiles.py): `dev` (default, quick), `ci` (more examples), by HYPOTHESIS_PROFILE."""

from __future__ import annotations

import profiles

profiles.load()
