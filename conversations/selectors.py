"""Reads: conversations and messages, always scoped to their owner."""

from __future__ import annotations

from django.db.models import QuerySet

from conversations.models import Conversation, Message, User


def conversation_list(*, user: User) -> QuerySet[Conversation]:
    """Return the user's conversations, most recently active first."""
    return Conversation.objects.for_user(user).order_by("-updated_at")


def conversation_get(*, user: User, public_id: str) -> Conversation:
    """Return the user's conversation by public id; raise Conversation.DoesNotExist for anyone else's."""
    return Conversation.objects.for_user(user).get(public_id=public_id)


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    """Return a conversation's messages (typed and live) in chronological order."""
    return conversation.messages.order_by("created_at", "id")
