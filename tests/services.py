"""Real services for the test suite: what CI requires, and the SeaweedFS S3 server the tests start (deploy.seaweed).

``APSARA_REQUIRE_REAL_SERVICES=1`` (set by ``.ci/run``) turns "not configured" into a failure: CI must run
every real-service test against PostgreSQL, Redis, SeaweedFS and Chromium, never skip one.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

# The one SeaweedFS starter lives with the deploy topology; the tests use it from there.
from deploy.seaweed import S3_BUCKET, SeaweedS3

__all__ = ["S3_BUCKET", "SeaweedS3", "http_get", "real_services_required", "skip_or_fail"]


def real_services_required() -> bool:
    """Tell whether this run must use the real services (CI), so a missing one fails instead of skipping."""
    return os.environ.get("APSARA_REQUIRE_REAL_SERVICES", "") not in ("", "0", "false", "False")


def skip_or_fail(reason: str) -> None:
    """Skip a real-service test outside CI; fail it in CI, where the service must be there."""
    if real_services_required():
        pytest.fail(f"{reason} (APSARA_REQUIRE_REAL_SERVICES=1: real services are required)")
    pytest.skip(reason)


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """Fetch a URL without following redirects' credentials anywhere; return status and body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
