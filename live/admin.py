"""Staff view of live sessions as the bridge records them, with an action to end them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from live.models import LiveSession
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


@admin.register(LiveSession)
class LiveSessionAdmin(admin.ModelAdmin):
    """Live sessions as the bridge records them: read-only for staff, who may end them."""

    list_display = (
        "public_id",
        "user",
        "conversation_id_display",
        "model",
        "status",
        "worker",
        "started_at",
        "duration",
        "reconnects",
        "last_error_code",
    )
    list_filter = ("status", "model", "started_at")
    search_fields = (
        "public_id",
        "user__username",
        "conversation__public_id",
        "worker",
        "last_error_code",
        "last_error",
    )
    list_select_related = ("user", "conversation")
    date_hierarchy = "started_at"
    # The resumption handle lets anyone holding it resume the Gemini session: never shown.
    exclude = ("resumption_handle",)
    readonly_fields = [
        *(f.name for f in LiveSession._meta.fields if f.name not in {"id", "resumption_handle"}),
        "duration",
    ]
    actions = (end_live_sessions,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Staff may act on sessions from the list ("End selected live sessions"); the record itself, written by the
        # bridge, is never edited by hand.
        return obj is None and super().has_change_permission(request)

    @admin.display(description="Conversation", ordering="conversation__public_id")
    def conversation_id_display(self, session: LiveSession) -> str:
        return session.conversation.public_id if session.conversation else "—"

    @admin.display(description="Duration")
    def duration(self, session: LiveSession) -> str:
        seconds = session.duration_seconds
        if seconds is None:
            return ""
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes}:{secs:02d}" + ("" if session.ended_at else " (running)")
