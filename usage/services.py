"""Writes of usage: every count goes through ``usage_add``, an atomic upsert with F() increments.

Called inside the transaction that stores what is counted (``conversations.services.message_create`` for tokens and
audio, ``live.services.live_session_create`` for sessions, ``conversations.generation.generation_prepare`` for
requests): a save that rolls back counts nothing, and concurrent workers add to the same row without losing counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import metrics
from .models import UsageDay

UNKNOWN_MODEL = "unknown"
# One message never reports more than this many tokens: a bound on what a malformed usage dict could add.
MAX_TOKENS_PER_MESSAGE = 10**9


def utc_today(now: dt.datetime | None = None) -> dt.date:
    """The UTC date of ``now`` (default: now): usage days and quotas are UTC days."""
    return (now or timezone.now()).astimezone(dt.UTC).date()


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return min(max(value, 0), MAX_TOKENS_PER_MESSAGE)


def tokens_of(usage: Mapping[str, Any]) -> tuple[int, int]:
    """(in, out) tokens of one Gemini ``usageMetadata`` as stored on a message (REST or Live).

    In: ``promptTokenCount`` (cached tokens are part of it) plus ``toolUsePromptTokenCount``. Out: the reply,
    ``candidatesTokenCount`` (REST) or ``responseTokenCount`` (Live), plus ``thoughtsTokenCount`` (thinking is billed
    as output). ``totalTokenCount`` is their sum and is not added again.
    """
    tokens_in = _count(usage.get("promptTokenCount")) + _count(usage.get("toolUsePromptTokenCount"))
    reply = usage.get("candidatesTokenCount")
    if reply is None:
        reply = usage.get("responseTokenCount")
    return tokens_in, _count(reply) + _count(usage.get("thoughtsTokenCount"))


@transaction.atomic
def usage_add(
    *,
    user_id: int,
    model: str,
    day: dt.date | None = None,
    tokens_in: int = 0,
    tokens_out: int = 0,
    audio_in_seconds: float = 0.0,
    audio_out_seconds: float = 0.0,
    sessions: int = 0,
    requests: int = 0,
) -> None:
    """Add to one person's usage of ``model`` on ``day`` (default: today, UTC), creating the row if it is the first.

    The increments are done by the database (``UPDATE … SET n = n + k``), so two workers adding at once both count.
    """
    model = (model or UNKNOWN_MODEL).removeprefix("models/")[:100]
    day = day or utc_today()
    amounts = {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "audio_in_seconds": audio_in_seconds,
        "audio_out_seconds": audio_out_seconds,
        "sessions": sessions,
        "requests": requests,
    }
    added = {name: value for name, value in amounts.items() if value}
    if not added:
        return
    rows = UsageDay.objects.filter(user_id=user_id, day=day, model=model)
    increments = {name: F(name) + value for name, value in added.items()}
    if not rows.update(**increments):
        try:
            with transaction.atomic():  # a savepoint: losing the race to create leaves the transaction usable
                UsageDay.objects.create(user_id=user_id, day=day, model=model, **added)
        except IntegrityError:
            # Another worker created the row first (its insert committed while this one waited): add to it.
            rows.update(**increments)
    transaction.on_commit(lambda: metrics.record(model=model, **added))


def usage_record_message(
    *,
    user_id: int,
    model: str,
    role: str,
    usage: Mapping[str, Any],
    audio_seconds: float | None,
) -> None:
    """Count a stored message: its token usage, and its audio (the person's: in; the model's: out)."""
    tokens_in, tokens_out = tokens_of(usage)
    seconds = max(audio_seconds or 0.0, 0.0)
    usage_add(
        user_id=user_id,
        model=model,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        audio_in_seconds=seconds if role == "user" else 0.0,
        audio_out_seconds=seconds if role == "model" else 0.0,
    )
