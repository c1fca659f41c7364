"""Admin actions on live sessions; the LiveSession admin (conversations.admin) offers them via live.admin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from conversations.models import LiveSession
from live.services import EndRequest, live_session_end_request


@admin.action(description="End selected live sessions", permissions=["change"])
def end_live_sessions(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[LiveSession]) -> None:
    """End each selected session (the consumer holding it closes it, in whichever process)."""
    results = [live_session_end_request(live_session=session) for session in queryset]
    ended = results.count(EndRequest.REQUESTED)
    skipped = results.count(EndRequest.ALREADY_ENDED)
    if ended:
        modeladmin.message_user(request, f"Ended {ended} live session(s).", messages.SUCCESS)
    if skipped:
        modeladmin.message_user(request, f"{skipped} session(s) had already ended.", messages.WARNING)
