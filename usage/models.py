"""What each person spent on Gemini per UTC day and model, and their own daily limits (docs/usage.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class UsageDay(models.Model):
    """One person's usage of one model on one UTC day; only ever added to (``usage.services.usage_add``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField(help_text="UTC")
    model = models.CharField(max_length=100)
    tokens_in = models.PositiveBigIntegerField(default=0, help_text="prompt tokens (with tool-use prompts)")
    tokens_out = models.PositiveBigIntegerField(default=0, help_text="reply tokens (with thinking)")
    audio_in_seconds = models.FloatField(default=0.0, help_text="the person's recorded speech")
    audio_out_seconds = models.FloatField(default=0.0, help_text="the model's recorded speech")
    sessions = models.PositiveIntegerField(default=0, help_text="live sessions opened")
    requests = models.PositiveIntegerField(default=0, help_text="typed (REST) generation requests")

    class Meta:
        verbose_name = "usage per day"
        verbose_name_plural = "usage per day"
        ordering = ["-day", "user_id", "model"]
        constraints = [models.UniqueConstraint(fields=["user", "day", "model"], name="usage_day_user_day_model")]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day} {self.model}"

    @property
    def tokens(self) -> int:
        """Tokens in and out."""
        return self.tokens_in + self.tokens_out

    @property
    def live_seconds(self) -> float:
        """Seconds of live audio, in and out (what the live-minutes quota counts)."""
        return self.audio_in_seconds + self.audio_out_seconds


class UsageQuota(models.Model):
    """A person's own daily limits; an empty field means the default from settings, 0 means unlimited."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_quota")
    daily_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Tokens in and out per UTC day. Empty: USAGE_DAILY_TOKENS; 0: unlimited."
    )
    daily_live_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Minutes of live audio (in and out) per UTC day. Empty: USAGE_DAILY_LIVE_MINUTES; 0: unlimited.",
    )

    class Meta:
        verbose_name = "daily quota"

    def __str__(self) -> str:
        return f"quota of {self.user_id}"
