"""Reads: conversations, messages, and conversation history as Gemini turns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q
from django.http import Http404

from apsara.validation import is_public_id
from live import talk_settings

from .models import Conversation, Message, TalkPreferences, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
    from django.db.models import QuerySet

HISTORY_MESSAGES = 20  # seed 002: the last 20 messages give Gemini its context


def user_find(*, reference: str) -> User | None:
    """The user an operator named: by username, email address (any case) or numeric id; None if there is none.

    An email address several people share names none of them (emails are not unique): the operator gives the
    username instead, rather than acting as whoever came first.
    """
    users = User.objects
    found = users.filter(username=reference).first()
    if found is None:
        by_email = list(users.filter(email__iexact=reference)[:2])
        found = by_email[0] if len(by_email) == 1 else None
    if found is None and reference.isdigit():
        found = users.filter(pk=int(reference)).first()
    return found


def talk_settings_for_user(*, user: User) -> talk_settings.TalkSettings:
    """The person's Talk settings: as saved (checked again), or the defaults if they never saved any."""
    saved = TalkPreferences.objects.filter(user=user).values_list("settings", flat=True).first()
    return talk_settings.defaults() if saved is None else talk_settings.stored(saved)


def conversation_list_for_user(*, user: User) -> QuerySet[Conversation]:
    """Return the user's conversations, most recently updated first, with their message counts."""
    return Conversation.objects.for_user(user).annotate(message_count=Count("messages")).order_by("-updated_at", "-id")


def conversation_get_for_user(*, user: User, public_id: str) -> Conversation:
    """Return the user's conversation with this id; anyone else's (or none, or a malformed id) is a 404."""
    if not is_public_id(public_id):  # e.g. a NUL byte, which PostgreSQL refuses in a query: it names no row
        raise Http404("No such conversation.")
    try:
        return conversation_list_for_user(user=user).get(public_id=public_id)
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None


def message_list(*, conversation: Conversation, after: Message | None = None) -> QuerySet[Message]:
    """Return a conversation's messages, REST and live together, oldest first (optionally only those after one)."""
    messages = conversation.messages.all().order_by("created_at", "id")
    if after is not None:
        messages = messages.filter(Q(created_at__gt=after.created_at) | Q(created_at=after.created_at, id__gt=after.id))
    return messages


def message_get_in_conversation(*, conversation: Conversation, public_id: str) -> Message | None:
    """Return this conversation's message with this id, or None (also for a malformed id)."""
    if not is_public_id(public_id):
        return None
    return conversation.messages.filter(public_id=public_id).first()


def message_get_audio_for_user(*, user: User | AnonymousUser, public_id: str) -> Message:
    """Return the message with this id if it has audio the user may hear (owner or staff); else a 404."""
    if not is_public_id(public_id):
        raise Http404("No such file.")
    messages = Message.objects.exclude(audio="").select_related("conversation")
    if not user.is_staff:
        messages = messages.filter(conversation__owner=user)  # type: ignore[misc]
    try:
        return messages.get(public_id=public_id)
    except Message.DoesNotExist:
        raise Http404("No such file.") from None


def message_history_text(message: Message) -> str:
    """Return the words of a message for context: its text, or the transcription standing in for its audio."""
    if message.text.strip():
        return message.text.strip()
    transcriptions = (
        (message.output_transcription, message.input_transcription)
        if message.role == Message.Role.MODEL
        else (message.input_transcription, message.output_transcription)
    )
    for words in transcriptions:
        if words.strip():
            return words.strip()
    return ""


@dataclass(frozen=True)
class History:
    """A conversation's recent history as Gemini turns, and how many messages it was read from."""

    messages_loaded: int
    turns: list[dict[str, Any]]


def conversation_history(
    *, conversation: Conversation, limit: int = HISTORY_MESSAGES, before: Message | None = None
) -> History:
    """Read the last `limit` messages (before `before`, if given) as `{role, parts: [{text}]}` turns, oldest first."""
    messages = conversation.messages.all()
    if before is not None:
        messages = messages.filter(
            Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, id__lt=before.id)
        )
    recent = list(
        messages.filter(role__in=[Message.Role.USER, Message.Role.MODEL]).order_by("-created_at", "-id")[:limit]
    )
    recent.reverse()
    turns = []
    for message in recent:
        text = message_history_text(message)
        if text:  # Gemini rejects empty parts; a silent or failed turn adds nothing to the context
            turns.append({"role": message.role, "parts": [{"text": text}]})
    return History(messages_loaded=len(recent), turns=turns)


def conversation_history_turns(
    *, conversation: Conversation, limit: int = HISTORY_MESSAGES, before: Message | None = None
) -> list[dict[str, Any]]:
    """Return the last `limit` messages as Gemini turns, oldest first, empty ones skipped."""
    return conversation_history(conversation=conversation, limit=limit, before=before).turns
