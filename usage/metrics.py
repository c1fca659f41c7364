"""Prometheus counters of usage by model, in the live bridge's registry (``live.metrics.REGISTRY``, at /metrics).

Model names reach here from client input (a typed request may name its model), so a label is a model of the
catalogue or one of the configured ones, and anything else is ``other``: the number of series stays bounded.
"""

from __future__ import annotations

from django.conf import settings
from prometheus_client import Counter

from gemini.catalogue import live_model
from live.metrics import DIRECTIONS, REGISTRY

OTHER = "other"
QUOTA_KINDS = ("tokens", "live_minutes")

_tokens = Counter(
    "apsara_usage_tokens",
    "Gemini tokens by model and direction (in: prompt, out: reply), REST and Live.",
    ["model", "direction"],
    registry=REGISTRY,
)
_audio_seconds = Counter(
    "apsara_usage_live_audio_seconds",
    "Seconds of recorded live audio by model and direction (in: the person, out: the model).",
    ["model", "direction"],
    registry=REGISTRY,
)
_sessions = Counter("apsara_usage_live_sessions", "Live sessions opened, by model.", ["model"], registry=REGISTRY)
_requests = Counter(
    "apsara_usage_requests", "Typed (REST) generation requests, by model.", ["model"], registry=REGISTRY
)
_refusals = Counter(
    "apsara_usage_quota_refusals",
    "Requests and live sessions refused, or calls ended, at a daily quota, by the quota reached.",
    ["kind"],
    registry=REGISTRY,
)


def model_label(name: str) -> str:
    """``name`` if it is a model this server knows, else ``other`` (a bounded label set)."""
    name = name.removeprefix("models/")
    known = {settings.GEMINI_TEXT_MODEL, settings.GEMINI_LIVE_MODEL}
    return name if name in known or live_model(name) is not None else OTHER


def record(
    *,
    model: str,
    tokens_in: float = 0,
    tokens_out: float = 0,
    audio_in_seconds: float = 0.0,
    audio_out_seconds: float = 0.0,
    sessions: float = 0,
    requests: float = 0,
) -> None:
    """Count what one usage row was just credited with."""
    label = model_label(model)
    for direction, tokens, seconds in zip(
        DIRECTIONS, (tokens_in, tokens_out), (audio_in_seconds, audio_out_seconds), strict=True
    ):
        if tokens:
            _tokens.labels(label, direction).inc(tokens)
        if seconds:
            _audio_seconds.labels(label, direction).inc(seconds)
    if sessions:
        _sessions.labels(label).inc(sessions)
    if requests:
        _requests.labels(label).inc(requests)


def quota_refused(kind: str) -> None:
    """Count a refusal (or a call ended) at the ``kind`` quota."""
    if kind not in QUOTA_KINDS:
        raise ValueError(f"unknown quota kind {kind!r}")
    _refusals.labels(kind).inc()
