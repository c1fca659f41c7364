"""Staff views of usage (per person, per UTC day, by model, with totals and a chart) and of daily quotas."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.template.response import TemplateResponse

from apsara.admin_display import audio_seconds, count

from . import selectors
from .charts import bar_chart
from .models import UsageDay, UsageQuota


@admin.register(UsageDay)
class UsageDayAdmin(admin.ModelAdmin):
    """Read-only: usage is counted by the app as messages are stored and sessions opened (``usage.services``).

    Filter by day (the date links), model, or search a person: the totals, the chart and the people table above the
    list follow the filter.
    """

    list_display = (
        "day",
        "user",
        "model",
        "tokens_in_",
        "tokens_out_",
        "audio_in",
        "audio_out",
        "sessions",
        "requests",
    )
    list_filter = ("model",)
    date_hierarchy = "day"
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Tokens in", ordering="tokens_in")
    def tokens_in_(self, row: UsageDay) -> str:
        return count(row.tokens_in)

    @admin.display(description="Tokens out", ordering="tokens_out")
    def tokens_out_(self, row: UsageDay) -> str:
        return count(row.tokens_out)

    @admin.display(description="Audio in", ordering="audio_in_seconds")
    def audio_in(self, row: UsageDay) -> str:
        return audio_seconds(row.audio_in_seconds)

    @admin.display(description="Audio out", ordering="audio_out_seconds")
    def audio_out(self, row: UsageDay) -> str:
        return audio_seconds(row.audio_out_seconds)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        response = super().changelist_view(request, extra_context)
        if not isinstance(response, TemplateResponse) or response.context_data is None:
            return response  # a redirect (e.g. a bad filter)
        changelist = response.context_data.get("cl")
        if isinstance(changelist, ChangeList):
            rows = changelist.queryset
            totals = selectors.usage_totals(rows)
            per_day = selectors.usage_by_day(rows)[-60:]
            response.context_data["usage_totals"] = {
                "tokens_in": count(totals["tokens_in"]),
                "tokens_out": count(totals["tokens_out"]),
                "tokens": count(totals["tokens_in"] + totals["tokens_out"]),
                "audio_in": audio_seconds(totals["audio_in_seconds"]),
                "audio_out": audio_seconds(totals["audio_out_seconds"]),
                "live_minutes": f"{(totals['audio_in_seconds'] + totals['audio_out_seconds']) / 60:,.1f}",
                "sessions": count(totals["sessions"]),
                "requests": count(totals["requests"]),
            }
            response.context_data["usage_charts"] = [
                bar_chart(
                    title="Tokens per day",
                    bars=[(str(d["day"]), float(d["tokens"]), count(d["tokens"])) for d in per_day],
                ),
                bar_chart(
                    title="Live minutes per day",
                    bars=[
                        (str(d["day"]), float(d["live_seconds"]), f"{d['live_seconds'] / 60:,.1f} min") for d in per_day
                    ],
                    colour="#79aec8",
                ),
            ]
            response.context_data["usage_people"] = [
                {
                    "username": person["username"],
                    "tokens": count(person["tokens"]),
                    "live_minutes": f"{person['live_seconds'] / 60:,.1f}",
                    "sessions": count(person["sessions"]),
                    "requests": count(person["requests"]),
                }
                for person in selectors.usage_by_user(rows)
            ]
        return response


@admin.register(UsageQuota)
class UsageQuotaAdmin(admin.ModelAdmin):
    """A person's own daily limits; empty fields fall back to USAGE_DAILY_TOKENS / USAGE_DAILY_LIVE_MINUTES."""

    list_display = ("user", "daily_tokens", "daily_live_minutes")
    search_fields = ("user__username", "user__email")
    autocomplete_fields = ("user",)
    list_select_related = ("user",)
