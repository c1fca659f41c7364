"""Writes of the live app that other parts (the admin, commands) use to control live sessions."""

from __future__ import annotations

import enum

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from conversations.models import LiveSession

END_MESSAGE_TYPE = "live.end"  # handled by LiveConsumer.live_end in whichever process holds the session
ENDED_BY_STAFF = "ENDED_BY_STAFF"


def live_session_group(public_id: str) -> str:
    """Name the channel-layer group that the consumer holding a live session joins."""
    return f"live_session_{public_id}"


class EndRequest(enum.StrEnum):
    REQUESTED = "requested"
    ALREADY_ENDED = "already_ended"


def live_session_end_request(*, live_session: LiveSession, reason: str = "ended by staff") -> EndRequest:
    """End a live session from outside its socket: mark it ended and tell the holding consumer, wherever it runs.

    The row is ended here rather than left to the consumer: nothing tells whether a consumer still holds it (a
    crashed process cannot answer), and a detached session has none. The consumer's own end is idempotent; it
    closes the browser socket and the Gemini session and flushes what was recorded. The resumption handle is
    dropped so a staff-ended session cannot be resumed.
    """
    with transaction.atomic():
        session = LiveSession.objects.select_for_update().get(pk=live_session.pk)
        if session.status in (LiveSession.Status.ENDED, LiveSession.Status.FAILED):
            return EndRequest.ALREADY_ENDED
        session.status = LiveSession.Status.ENDED
        session.ended_at = timezone.now()
        session.channel_name = ""
        session.resumption_handle = ""
        session.resumption_handle_issued_at = None
        session.last_error_code = ENDED_BY_STAFF
        session.last_error = reason
        session.full_clean()
        session.save()
        message = {"type": END_MESSAGE_TYPE, "session_id": session.public_id, "reason": reason}
        group = live_session_group(session.public_id)
        # Only after commit, so a consumer that re-reads the row sees it ended.
        transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(group, message))
    live_session.refresh_from_db()
    return EndRequest.REQUESTED
