"""Test-wide settings."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Timing deadlines make property tests flaky on a shared 2-core machine; CI also fixes the seed
# so a failure there reproduces exactly.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
