"""Live sessions: one browser talk with Gemini, which may span several Gemini connections (resumption)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

from conversations.models import Conversation

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from conversations.models import User


def new_live_session_id() -> str:
    return f"live_{secrets.token_hex(12)}"


class LiveSessionQuerySet(models.QuerySet["LiveSession"]):
    def for_user(self, user: User) -> QuerySet[LiveSession]:
        return self.filter(user=user)

    def active(self) -> QuerySet[LiveSession]:
        return self.filter(status__in=LiveSession.ACTIVE_STATUSES)


class LiveSession(models.Model):
    """One browser live session, which may span several Gemini connections (resumption)."""

    class Status(models.TextChoices):
        CONNECTING = "connecting", "Connecting"
        ACTIVE = "active", "Active"
        RECONNECTING = "reconnecting", "Reconnecting"
        DETACHED = "detached", "Detached (browser gone, resumable)"
        ENDED = "ended", "Ended"
        FAILED = "failed", "Failed"

    ACTIVE_STATUSES = (Status.CONNECTING, Status.ACTIVE, Status.RECONNECTING)
    # How a session can end: from these it is never active again (DETACHED: until resume_session claims it).
    FINISHED_STATUSES = (Status.ENDED, Status.FAILED, Status.DETACHED)

    public_id = models.CharField(max_length=40, unique=True, default=new_live_session_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="live_sessions")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="live_sessions"
    )
    model = models.CharField(max_length=120)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTING, db_index=True)
    channel_name = models.CharField(max_length=200, blank=True, help_text="consumer currently holding it")
    resumption_handle = models.TextField(blank=True)
    resumption_handle_issued_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="last heartbeat of the server process holding it (stale: that process died)"
    )
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    messages_in = models.PositiveIntegerField(default=0)
    messages_out = models.PositiveIntegerField(default=0)
    audio_seconds_in = models.FloatField(default=0)
    audio_seconds_out = models.FloatField(default=0)
    reconnects = models.PositiveIntegerField(default=0)
    last_error_code = models.CharField(max_length=40, blank=True)
    last_error = models.TextField(blank=True)

    objects = LiveSessionQuerySet.as_manager()

    class Meta:
        # The table it had in the conversations app, where the model was created (live/migrations/0001): moving the
        # model renamed nothing in the database, so processes of the previous release keep working during a deploy.
        db_table = "conversations_livesession"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.public_id

    @property
    def duration_seconds(self) -> float | None:
        end = self.ended_at or timezone.now()
        return (end - self.started_at).total_seconds()
