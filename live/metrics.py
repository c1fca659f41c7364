"""Prometheus metrics of the live bridge; the bridge calls these functions, /metrics exposes the registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SESSIONS_CREATED = Counter("apsara_live_sessions_created_total", "Live sessions created")
SESSIONS_ACTIVE = Gauge("apsara_live_sessions_active", "Live sessions currently held by this process")
MESSAGES = Counter("apsara_live_messages_total", "Live messages relayed", ["direction", "kind"])
AUDIO_SECONDS = Counter("apsara_live_audio_seconds_total", "Seconds of audio relayed", ["direction"])
UPSTREAM_ERRORS = Counter("apsara_live_upstream_errors_total", "Gemini errors by session_error code", ["code"])
RECONNECTS = Counter("apsara_live_reconnects_total", "Gemini reconnections (goAway, drops, VAD changes)")
TIME_TO_SESSION_CREATED = Histogram(
    "apsara_live_time_to_session_created_seconds",
    "From create_session to session_created",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
TIME_TO_FIRST_AUDIO = Histogram(
    "apsara_live_time_to_first_audio_seconds",
    "From session_created to the first model audio",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)


def session_created() -> None:
    """Count a created session."""
    SESSIONS_CREATED.inc()


def session_active(delta: int) -> None:
    """Move the active-session gauge by delta (+1 on start, -1 on end)."""
    SESSIONS_ACTIVE.inc(delta)


def message(direction: str, kind: str) -> None:
    """Count one relayed message; direction is "in" (browser→Gemini) or "out"."""
    MESSAGES.labels(direction=direction, kind=kind).inc()


def audio_seconds(direction: str, seconds: float) -> None:
    """Add relayed audio seconds."""
    AUDIO_SECONDS.labels(direction=direction).inc(seconds)


def upstream_error(code: str) -> None:
    """Count an upstream error by its session_error code."""
    UPSTREAM_ERRORS.labels(code=code).inc()


def reconnect() -> None:
    """Count a Gemini reconnection."""
    RECONNECTS.inc()


def observe_time_to_session_created(seconds: float) -> None:
    """Record the time from create_session to session_created."""
    TIME_TO_SESSION_CREATED.observe(seconds)


def observe_time_to_first_audio(seconds: float) -> None:
    """Record the time from session_created to the first model audio."""
    TIME_TO_FIRST_AUDIO.observe(seconds)
