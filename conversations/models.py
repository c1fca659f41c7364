"""Users, conversations and messages (typed and live); live sessions are live.models'."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from django.db.models import QuerySet


def _public_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def new_conversation_id() -> str:
    return _public_id("conv")


def new_message_id() -> str:
    return _public_id("msg")


def new_live_session_id() -> str:
    """Kept for migration 0001, which created LiveSession here; the model and its ids live in live.models now."""
    return _public_id("live")


def audio_storage() -> Storage:
    """Return the configured audio storage (local disk or S3), resolved when used, not at import."""
    return storages["audio"]


def audio_upload_to(instance: Message, filename: str) -> str:
    """Key audio as `audio/{userId}/{conversationId}/{timestamp}_{messageId}.wav` (seed 002, section 12)."""
    conversation = instance.conversation
    timestamp = int(instance.created_at.timestamp() * 1000)
    return f"audio/{conversation.owner_id}/{conversation.public_id}/{timestamp}_{instance.public_id}.wav"


class User(AbstractUser):
    """The person who owns conversations; custom from day one so it can grow."""


class ConversationQuerySet(models.QuerySet["Conversation"]):
    def for_user(self, user: User) -> QuerySet[Conversation]:
        return self.filter(owner=user)


class Conversation(models.Model):
    """A thread of messages; `kind` is derived from its messages by the services, never set by hand."""

    class Kind(models.TextChoices):
        REST = "rest", "Text chat"
        LIVE = "live", "Live"
        HYBRID = "hybrid", "Text and live"

    public_id = models.CharField(max_length=40, unique=True, default=new_conversation_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REST, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or self.public_id


class MessageQuerySet(models.QuerySet["Message"]):
    def for_user(self, user: User) -> QuerySet[Message]:
        return self.filter(conversation__owner=user)


class Message(models.Model):
    """One turn: typed (rest) or spoken/heard in a live session (live), possibly with audio."""

    class Role(models.TextChoices):
        USER = "user", "User"
        MODEL = "model", "Model"
        TOOL = "tool", "Tool"

    class MessageType(models.TextChoices):
        REST = "rest", "Text chat"
        LIVE = "live", "Live"

    public_id = models.CharField(max_length=40, unique=True, default=new_message_id, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    message_type = models.CharField(max_length=10, choices=MessageType.choices, default=MessageType.REST)
    text = models.TextField(blank=True)
    audio = models.FileField(upload_to=audio_upload_to, storage=audio_storage, blank=True, max_length=300)
    audio_duration = models.FloatField(null=True, blank=True, help_text="Seconds")
    audio_mime_type = models.CharField(max_length=60, blank=True)
    input_transcription = models.TextField(blank=True)
    output_transcription = models.TextField(blank=True)
    live_config = models.JSONField(default=dict, blank=True, help_text="model, sessionId, responseModalities")
    tool_data = models.JSONField(default=dict, blank=True, help_text="function call or response")
    usage = models.JSONField(default=dict, blank=True, help_text="token usage")
    interrupted = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at", "id"])]

    def __str__(self) -> str:
        return f"{self.role}: {(self.text or self.input_transcription or self.output_transcription)[:60]}"

    @property
    def input_mode(self) -> str:
        """How a live session's turn came: "spoken" (audio or a transcript) or "typed" (text sent into the call);
        "" for typed chat. A live message is not necessarily spoken: the recorder stores typed text as one too."""
        if self.message_type != self.MessageType.LIVE or self.role == self.Role.TOOL:
            return ""
        if self.audio or self.input_transcription or self.output_transcription:
            return "spoken"
        return "typed" if self.role == self.Role.USER else ""  # the model's text answer is neither


class TalkPreferences(models.Model):
    """A person's Talk settings (``live.talk_settings``), one row per user, created on the first save.

    One JSON document rather than a column per setting: the settings are the shape ``create_session`` takes and
    grow with it, are always read and written whole, and are checked again when read (``live.talk_settings.stored``).
    The microphone is not here: a device id means something on one device only (the page keeps it locally).
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="talk_preferences")
    settings = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "talk preferences"

    def __str__(self) -> str:
        return f"Talk preferences of {self.user_id}"
