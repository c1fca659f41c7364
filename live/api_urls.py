"""Direct mode's JSON API routes (mounted at /api/; docs/live-direct.md)."""

from django.urls import path

import conversations.converters  # noqa: F401  (registers <public_id:…>)

from . import api

urlpatterns = [
    path("live/token", api.LiveTokenApi.as_view(), name="api-live-token"),
    path("live/sessions/<public_id:session_id>/tool-calls", api.LiveToolCallsApi.as_view(), name="api-live-tools"),
    path("live/sessions/<public_id:session_id>/end", api.LiveSessionEndApi.as_view(), name="api-live-end"),
]
