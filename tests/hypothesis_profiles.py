"""Hypothesis example budgets: ``ci`` (bounded, reproducible), ``dev`` (same budget, new examples each run) and
``thorough`` (many more, for a hunt before a release).

Chosen by ``HYPOTHESIS_PROFILE``; by default ``ci`` when ``CI`` is set (as .ci/run's environment does), else ``dev``.
``pytest --hypothesis-profile=NAME`` overrides both.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

_COMMON: dict[str, Any] = {
    # Requests through the whole app and a real database: a slow example is not a failing one.
    "deadline": None,
    # The examples share the test's fixtures (users, their conversations) on purpose; each runs in a savepoint.
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,  # a failure prints @reproduce_failure(...) to replay it exactly
}

settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=100, database=None, **_COMMON)
settings.register_profile("thorough", max_examples=1000, database=None, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
