"""Live sessions: one browser talk with Gemini, which may span several Gemini connections (resumption)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from conversations.models import Conversation

if TYPE_CHECKING:
    from conversations.models import User


def new_live_session_id() -> str:
    return f"live_{secrets.token_hex(12)}"


class LiveWorkerQuerySet(models.QuerySet["LiveWorker"]):
    def alive(self) -> LiveWorkerQuerySet:
        """Workers whose lease has not run out (the database's clock decides, so hosts' clocks never disagree)."""
        return self.filter(expires_at__gt=Now())


class LiveWorker(models.Model):
    """A server process that can hold live sessions: alive while its lease runs (``live.lease`` renews it).

    A process that dies (SIGKILL, out of memory, its machine gone) stops renewing; once ``expires_at`` passes, the
    sessions it held can be taken over by any other process.
    """

    name = models.CharField(primary_key=True, max_length=100, help_text="host:pid:random (live.lease.worker_name)")
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    objects = LiveWorkerQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name


class LiveSessionQuerySet(models.QuerySet["LiveSession"]):
    def for_user(self, user: User) -> LiveSessionQuerySet:
        return self.filter(user=user)

    def active(self) -> LiveSessionQuerySet:
        return self.filter(status__in=LiveSession.ACTIVE_STATUSES)

    def held(self) -> LiveSessionQuerySet:
        """Open sessions in use: bridged by a live process (its lease runs), or direct with a token still valid."""
        alive = LiveWorker.objects.alive().values("name")
        return self.active().filter(
            Q(transport=LiveSession.Transport.PROXIED, worker__in=alive)
            | Q(transport=LiveSession.Transport.DIRECT, token_expires_at__gt=Now())
        )

    def orphaned(self) -> LiveSessionQuerySet:
        """Open sessions nobody can be using: their process is gone (its lease ran out: any process may take them
        over), or, direct, their token has expired."""
        alive = LiveWorker.objects.alive().values("name")
        return self.active().filter(
            Q(transport=LiveSession.Transport.PROXIED) & ~Q(worker__in=alive)
            | Q(transport=LiveSession.Transport.DIRECT, token_expires_at__lte=Now())
        )


class LiveSession(models.Model):
    """One browser live session, which may span several Gemini connections (resumption)."""

    class Status(models.TextChoices):
        CONNECTING = "connecting", "Connecting"
        ACTIVE = "active", "Active"
        RECONNECTING = "reconnecting", "Reconnecting"
        DETACHED = "detached", "Detached (browser gone, resumable)"
        ENDED = "ended", "Ended"
        FAILED = "failed", "Failed"

    class Transport(models.TextChoices):
        PROXIED = "proxied", "Proxied (through the server's bridge)"
        DIRECT = "direct", "Direct (the browser with an ephemeral token)"

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
    worker = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="the server process holding it (a LiveWorker's name)"
    )
    transport = models.CharField(max_length=10, choices=Transport.choices, default=Transport.PROXIED)
    token_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="direct: when the browser's ephemeral token expires (a new one extends it)"
    )
    token_issued_at = models.DateTimeField(null=True, blank=True, help_text="direct: when its latest token was minted")
    early_renewals = models.PositiveIntegerField(
        default=0, help_text="direct: new tokens asked for before the last one neared its expiry (bounded)"
    )
    resumption_handle = models.TextField(blank=True)
    resumption_handle_issued_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="when the process holding it last opened it or took it over"
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
