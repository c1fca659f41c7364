"""How the JSON API answers a used-up quota: 429 in the one error shape, with when it lifts (docs/api.md)."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response

from apsara.api import error_body

from .quotas import QuotaExceeded

QUOTA_EXCEEDED = "quota_exceeded"


def quota_refusal(exceeded: QuotaExceeded) -> Response:
    """429 ``quota_exceeded``: ``resetsAt`` (ISO 8601, UTC) and ``quota`` in the error, ``Retry-After`` in seconds."""
    body = error_body(code=QUOTA_EXCEEDED, message=exceeded.message)
    body["error"]["resetsAt"] = exceeded.resets_at_iso
    body["error"]["quota"] = exceeded.kind
    response = Response(body, status=status.HTTP_429_TOO_MANY_REQUESTS)
    response["Retry-After"] = str(exceeded.seconds_left())
    return response
