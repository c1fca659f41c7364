"""Reads: conversations and messages, always scoped to their owner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count
from django.http import Http404

from .models import Conversation, Message, User

if TYPE_CHECKING:
    from django.db.models import QuerySet


def conversation_list_for_user(*, user: User) -> QuerySet[Conversation]:
    """Return the user's conversations, most recently updated first, with their message counts."""
    return Conversation.objects.for_user(user).annotate(message_count=Count("messages")).order_by("-updated_at", "-id")


def conversation_get_for_user(*, user: User, public_id: str) -> Conversation:
    """Return the user's conversation with this id; anyone else's (or none) is a 404."""
    try:
        return conversation_list_for_user(user=user).get(public_id=public_id)
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    """Return a conversation's messages, REST and live together, oldest first."""
    return conversation.messages.all().order_by("created_at", "id")
