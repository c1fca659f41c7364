"""Reads for the live app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q

from conversations.models import Message

if TYPE_CHECKING:
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
