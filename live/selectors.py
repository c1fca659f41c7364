"""Reads for the live app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from conversations.models import Message
from live.models import LiveSession

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conversations.models import User


def message_search(*, user: User, query: str, limit: int) -> list[Message]:
    """Return the user's own most recent messages whose text or transcription contains ``query``."""
    matches = (
        Q(text__icontains=query) | Q(input_transcription__icontains=query) | Q(output_transcription__icontains=query)
    )
    return list(
        Message.objects.for_user(user)
        .filter(matches)
        .select_related("conversation")
        .order_by("-created_at", "-id")[:limit]
    )


def live_session_list(
    *, user: User | None = None, statuses: Sequence[str] | None = None, held: bool = False, limit: int = 50
) -> list[LiveSession]:
    """Return live sessions, newest first, optionally of one user, in the given statuses, or (``held``) open in a
    live server process (not those of a process that died and has not been found out yet)."""
    sessions: QuerySet[LiveSession] = (
        LiveSession.objects.held() if held else LiveSession.objects.all()
    ).select_related("user", "conversation")
    if user is not None:
        sessions = sessions.filter(user=user)
    if statuses:
        sessions = sessions.filter(status__in=statuses)
    return list(sessions.order_by("-started_at", "-id")[:limit])


def live_session_get(*, public_id: str) -> LiveSession | None:
    """Return the live session with this public id (with its user), or None."""
    return LiveSession.objects.select_related("user", "conversation").filter(public_id=public_id).first()


def live_session_messages(*, public_id: str) -> list[Message]:
    """Return the messages a live session recorded (its id is in their live config), oldest first."""
    return list(Message.objects.filter(live_config__sessionId=public_id).order_by("created_at", "id"))
