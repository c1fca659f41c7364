"""Reads of usage: rows per person, day and model, and their totals (admin, ``usage_report``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

from django.db.models import F, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from conversations.models import User

from .models import UsageDay

COUNTS = ("tokens_in", "tokens_out", "audio_in_seconds", "audio_out_seconds", "sessions", "requests")


class Totals(TypedDict):
    tokens_in: int
    tokens_out: int
    audio_in_seconds: float
    audio_out_seconds: float
    sessions: int
    requests: int


def usage_list(*, user: User | None = None, since: dt.date | None = None) -> QuerySet[UsageDay]:
    """Usage rows, newest day first, of one person or everyone, from ``since`` (a UTC date) on."""
    rows = UsageDay.objects.select_related("user").order_by("-day", "user__username", "model")
    if user is not None:
        rows = rows.filter(user=user)
    if since is not None:
        rows = rows.filter(day__gte=since)
    return rows


def usage_totals(rows: QuerySet[UsageDay]) -> Totals:
    """The sums of ``rows``' counts (zeros when there are none)."""
    zero: dict[str, Any] = {name: Value(0.0 if "seconds" in name else 0) for name in COUNTS}
    sums = rows.order_by().aggregate(**{name: Coalesce(Sum(name), zero[name]) for name in COUNTS})
    return Totals(**sums)  # type: ignore[typeddict-item]


def usage_by_day(rows: QuerySet[UsageDay]) -> list[dict[str, Any]]:
    """``rows`` summed per day (all people and models), oldest first: ``day``, ``tokens``, ``live_seconds``."""
    per_day = (
        rows.order_by()
        .values("day")
        .annotate(
            day_tokens=Sum(F("tokens_in") + F("tokens_out")),
            day_seconds=Sum(F("audio_in_seconds") + F("audio_out_seconds")),
        )
        .order_by("day")
    )
    return [
        {"day": day["day"], "tokens": day["day_tokens"] or 0, "live_seconds": day["day_seconds"] or 0.0}
        for day in per_day
    ]


def usage_by_user(rows: QuerySet[UsageDay], *, limit: int = 20) -> list[dict[str, Any]]:
    """``rows`` summed per person, most tokens first: ``username``, ``tokens``, ``live_seconds``, ``sessions``,
    ``requests``."""
    per_user = (
        rows.order_by()
        .values("user_id", "user__username")
        .annotate(
            spent=Sum(F("tokens_in") + F("tokens_out")),
            seconds=Sum(F("audio_in_seconds") + F("audio_out_seconds")),
            opened=Sum("sessions"),
            asked=Sum("requests"),
        )
        .order_by("-spent", "user__username")
    )
    return [
        {
            "username": person["user__username"],
            "tokens": person["spent"] or 0,
            "live_seconds": person["seconds"] or 0.0,
            "sessions": person["opened"] or 0,
            "requests": person["asked"] or 0,
        }
        for person in per_user[:limit]
    ]
