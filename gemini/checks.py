"""System checks on the Gemini settings the live bridge depends on.

Django runs them before ``runserver`` and the ``manage.py`` commands that check (``check``, ``migrate``,
``gemini_check``, …); ``python -m apsara.serve`` runs them too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from gemini.catalogue import live_model, not_conversational
from gemini.client import Mode, current_mode, live_api_version_problem

DIRECT_MODES = ("off", "allowed")  # LIVE_DIRECT_MODE (live.direct)


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


@register()
def direct_mode_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse a ``LIVE_DIRECT_MODE`` that means nothing; warn when it is allowed where it cannot work (Vertex AI)."""
    mode = settings.LIVE_DIRECT_MODE
    if mode not in DIRECT_MODES:
        return [
            Error(
                f"LIVE_DIRECT_MODE is {mode!r}; it is 'off' or 'allowed'.",
                hint="Set LIVE_DIRECT_MODE=allowed to let people choose direct mode, or unset it (off).",
                id="live.E003",
            )
        ]
    if mode == "allowed" and current_mode() is Mode.VERTEX:
        return [
            Warning(
                "LIVE_DIRECT_MODE is 'allowed', but Vertex AI has no ephemeral tokens: every token request will be "
                "refused and Talk stays proxied.",
                hint="Unset LIVE_DIRECT_MODE, or use the Gemini Developer API (GEMINI_API_KEY).",
                id="live.W001",
            )
        ]
    return []
