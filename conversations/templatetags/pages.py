"""Small presentation filters for the pages."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value: dt.datetime | None) -> str:
    """Say how long ago a moment was, in words ("just now", "5 minutes ago")."""
    if value is None:
        return ""
    if timezone.now() - value < dt.timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, depth=1)} ago"
