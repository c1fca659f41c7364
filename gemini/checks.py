"""System checks on the Gemini settings the live bridge depends on.

Django runs them before ``runserver`` and the ``manage.py`` commands that check (``check``, ``migrate``,
``gemini_check``, …); ``python -m apsara.serve`` runs them too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from gemini.catalogue import live_model, not_conversational
from gemini.client import live_api_version_problem


@register()
def gemini_live_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse a Live API version the Gemini API does not serve Live on, and a default model Talk cannot use."""
    errors: list[CheckMessage] = []
    problem = live_api_version_problem()
    if problem:
        errors.append(Error(problem, hint="Unset GEMINI_LIVE_API_VERSION.", id="live.E001"))
    model = live_model(settings.GEMINI_LIVE_MODEL)
    if model is not None and not model.conversational:
        errors.append(
            Error(
                f"GEMINI_LIVE_MODEL: {not_conversational(model)}",
                hint="Set GEMINI_LIVE_MODEL to a conversational model (or unset it).",
                id="live.E002",
            )
        )
    return errors
