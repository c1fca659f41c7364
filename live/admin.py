"""Staff view of live sessions as the bridge records them, with an action to end them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

from apsara.admin_display import EMPTY, audio_seconds, clock, count, cut
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

    # Fits a 1280 px screen: the model and the worker are in the filters and on the change page.
    list_display = (
        "short_id",
        "user",
        "conversation_id_display",
        "status",
        "started_at",
        "duration",
        "audio_in",
        "reconnects",
        "error",
    )
    list_filter = ("status", "transport", "model", "started_at")
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
    # The resumption handle lets anyone holding it resume the Gemini session: never shown. Numbers are shown
    # rounded (the display methods), not as the floats the bridge adds up.
    fields = (
        "public_id",
        "user",
        "conversation",
        "model",
        "status",
        "transport",
        "token_expires_at",
        "worker",
        "channel_name",
        "started_at",
        "ended_at",
        "last_seen_at",
        "duration",
        "messages_in_display",
        "messages_out_display",
        "audio_in",
        "audio_out",
        "reconnects",
        "last_error_code",
        "last_error",
        "config",
        "resumption_handle_issued_at",
    )
    readonly_fields = fields
    actions = (end_live_sessions,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Staff may act on sessions from the list ("End selected live sessions"); the record itself, written by the
        # bridge, is never edited by hand.
        return obj is None and super().has_change_permission(request)

    @admin.display(description="Session", ordering="public_id")
    def short_id(self, session: LiveSession) -> SafeString | str:
        return cut(session.public_id, 14)

    @admin.display(description="Conversation", ordering="conversation__public_id")
    def conversation_id_display(self, session: LiveSession) -> SafeString | str:
        return cut(session.conversation.public_id, 14) if session.conversation else EMPTY

    @admin.display(description="Duration")
    def duration(self, session: LiveSession) -> str:
        return clock(session.duration_seconds) + ("" if session.ended_at else " (running)")

    @admin.display(description="Error", ordering="last_error_code")
    def error(self, session: LiveSession) -> SafeString | str:
        return cut(session.last_error_code, 16)

    @admin.display(description="Audio in", ordering="audio_seconds_in")
    def audio_in(self, session: LiveSession) -> str:
        return audio_seconds(session.audio_seconds_in)

    @admin.display(description="Audio out", ordering="audio_seconds_out")
    def audio_out(self, session: LiveSession) -> str:
        return audio_seconds(session.audio_seconds_out)

    @admin.display(description="Messages in", ordering="messages_in")
    def messages_in_display(self, session: LiveSession) -> str:
        return count(session.messages_in)

    @admin.display(description="Messages out", ordering="messages_out")
    def messages_out_display(self, session: LiveSession) -> str:
        return count(session.messages_out)
