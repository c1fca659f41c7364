"""Add the live app's actions to the LiveSession admin that conversations.admin registers."""

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered

from conversations.models import LiveSession
from live.admin_actions import end_live_sessions

# conversations comes before live in INSTALLED_APPS, so its admin module has run by now.
try:
    _live_session_admin = admin.site.get_model_admin(LiveSession)
except NotRegistered:
    _live_session_admin = None
    # Until conversations.admin registers LiveSession, offer a minimal read-only admin so staff can end sessions.

    @admin.register(LiveSession)
    class LiveSessionAdmin(admin.ModelAdmin):
        list_display = ("public_id", "user", "model", "status", "started_at", "ended_at")
        list_filter = ("status", "model")
        search_fields = ("public_id", "user__username")
        actions = (end_live_sessions,)

        def has_add_permission(self, request):  # sessions are only created by the bridge
            return False


if _live_session_admin is not None and end_live_sessions not in (_live_session_admin.actions or ()):
    _live_session_admin.actions = (*(_live_session_admin.actions or ()), end_live_sessions)
