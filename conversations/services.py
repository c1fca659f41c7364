"""Writes: users, conversations (create, rename, delete)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from conversations.models import Conversation, User


@transaction.atomic
def user_create(*, username: str, password: str, email: str = "") -> User:
    """Create an active user with a hashed password."""
    user = User(username=username, email=email)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def conversation_create(*, owner: User, title: str = "") -> Conversation:
    """Create an empty conversation for its owner."""
    conversation = Conversation(owner=owner, title=title.strip())
    conversation.full_clean()
    conversation.save()
    return conversation


@transaction.atomic
def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    """Give a conversation a new title."""
    conversation.title = title.strip()
    conversation.updated_at = timezone.now()
    conversation.full_clean()
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation, its messages and their audio files."""
    for message in conversation.messages.exclude(audio=""):
        # Files are not deleted with their rows; remove them so nothing of the conversation is left behind.
        message.audio.delete(save=False)
    conversation.delete()
