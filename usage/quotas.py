"""Daily quotas: a person's limits (their own, or the defaults from settings) and whether today's usage reached them.

A day is a UTC day: usage counts from 00:00 UTC and a quota that is reached lifts at the next 00:00 UTC. Typed
generation is refused at the token quota; a new live session at either (tokens, live minutes); a live call in
progress that crosses either is told and ended (``live.session.run``), with everything said saved.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from conversations.models import User

from . import metrics
from .models import UsageDay, UsageQuota
from .services import utc_today


@dataclass(frozen=True)
class Quota:
    """Daily limits; 0 is unlimited."""

    daily_tokens: int
    daily_live_minutes: int


class QuotaExceeded(Exception):
    """A daily quota is used up; ``resets_at`` is when it lifts (the next 00:00 UTC)."""

    def __init__(self, *, kind: str, used: float, limit: int, resets_at: dt.datetime) -> None:
        self.kind = kind  # "tokens" or "live_minutes" (usage.metrics.QUOTA_KINDS)
        self.used = used
        self.limit = limit
        self.resets_at = resets_at
        what = (
            f"{limit:,} tokens (used: {round(used):,})"
            if kind == "tokens"
            else f"{limit:,} live minutes (used: {used:.1f})"
        )
        self.message = f"Your daily quota of {what} is reached. It resets at 00:00 UTC ({self.resets_at_iso})."
        super().__init__(self.message)

    @property
    def resets_at_iso(self) -> str:
        """When the quota lifts, as ISO 8601 in UTC with a Z."""
        return self.resets_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

    def seconds_left(self, now: dt.datetime | None = None) -> int:
        """Whole seconds until the quota lifts (at least 1)."""
        return max(1, math.ceil((self.resets_at - (now or timezone.now())).total_seconds()))


def next_reset(now: dt.datetime | None = None) -> dt.datetime:
    """The next 00:00 UTC after ``now``."""
    today = utc_today(now)
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def quota_for(*, user: User) -> Quota:
    """The person's daily limits: their own where set (admin), else ``USAGE_DAILY_TOKENS``/``…_LIVE_MINUTES``."""
    own = UsageQuota.objects.filter(user_id=user.pk).first()
    tokens = own.daily_tokens if own is not None and own.daily_tokens is not None else None
    minutes = own.daily_live_minutes if own is not None and own.daily_live_minutes is not None else None
    return Quota(
        daily_tokens=settings.USAGE_DAILY_TOKENS if tokens is None else tokens,
        daily_live_minutes=settings.USAGE_DAILY_LIVE_MINUTES if minutes is None else minutes,
    )


def quota_exceeded(*, user: User, live: bool, now: dt.datetime | None = None) -> QuotaExceeded | None:
    """The quota today's usage has reached (None: within limits). ``live``: live minutes count too."""
    quota = quota_for(user=user)
    if not quota.daily_tokens and not (live and quota.daily_live_minutes):
        return None  # unlimited: no query of usage
    totals = UsageDay.objects.filter(user_id=user.pk, day=utc_today(now)).aggregate(
        tokens_in=Sum("tokens_in"),
        tokens_out=Sum("tokens_out"),
        audio_in=Sum("audio_in_seconds"),
        audio_out=Sum("audio_out_seconds"),
    )
    tokens = (totals["tokens_in"] or 0) + (totals["tokens_out"] or 0)
    minutes = ((totals["audio_in"] or 0.0) + (totals["audio_out"] or 0.0)) / 60
    resets_at = next_reset(now)
    if quota.daily_tokens and tokens >= quota.daily_tokens:
        return QuotaExceeded(kind="tokens", used=tokens, limit=quota.daily_tokens, resets_at=resets_at)
    if live and quota.daily_live_minutes and minutes >= quota.daily_live_minutes:
        return QuotaExceeded(kind="live_minutes", used=minutes, limit=quota.daily_live_minutes, resets_at=resets_at)
    return None


def quota_check(*, user: User, live: bool) -> None:
    """Raise ``QuotaExceeded`` if today's usage has reached one of the person's quotas."""
    exceeded = quota_exceeded(user=user, live=live)
    if exceeded is not None:
        metrics.quota_refused(exceeded.kind)
        raise exceeded
