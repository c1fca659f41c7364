"""Add the live app's actions to the LiveSession admin that conversations.admin registers."""

from django.contrib import admin

from conversations.models import LiveSession
from live.admin_actions import end_live_sessions

# conversations comes before live in INSTALLED_APPS, so its admin module has registered LiveSession by now.
_live_session_admin = admin.site.get_model_admin(LiveSession)
if end_live_sessions not in (_live_session_admin.actions or ()):
    _live_session_admin.actions = (*(_live_session_admin.actions or ()), end_live_sessions)
