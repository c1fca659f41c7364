"""HTTP endpoints of the live app: health for load balancers, metrics for Prometheus."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from live import metrics as live_metrics
from live.health import health_report


@require_GET
@never_cache
async def health(request: HttpRequest) -> JsonResponse:
    """Report the answering worker, database, channel layer and Gemini mode; 200 when healthy, 503 otherwise."""
    report = await health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Serve this process's Prometheus metrics; with METRICS_TOKEN set, only to ``Authorization: Bearer <token>``."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = HttpResponse("A valid bearer token is required.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    body, content_type = live_metrics.exposition()
    return HttpResponse(body, content_type=content_type)
