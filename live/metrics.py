"""Prometheus metrics of the live bridge, served at ``/metrics`` (see ``live.views.metrics``).

The bridge calls only the functions below; metric objects stay private to this module. Label values must come
from fixed sets in the code (protocol message kinds, error codes), never from client input, so the number of
series stays bounded.

Each server process (every ``apsara.serve`` worker) keeps its own counters and serves them at its own
``/metrics``: scrape every process (one target each), or put them behind something that aggregates. A load
balancer in front of several processes would return a different process's numbers on each scrape.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

# A registry of its own, so tests and re-imports never collide with whatever else uses the default one.
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

DIRECTIONS = ("in", "out")  # in: browser → server → Gemini; out: Gemini → server → browser
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

_sessions_created = Counter(
    "apsara_live_sessions_created", "Live sessions created (session_created sent to a browser).", registry=REGISTRY
)
_sessions_active = Gauge("apsara_live_sessions_active", "Live sessions open in this process.", registry=REGISTRY)
_messages = Counter(
    "apsara_live_messages",
    "Live messages by direction (in: from the browser, out: to the browser) and kind.",
    ["direction", "kind"],
    registry=REGISTRY,
)
_audio_seconds = Counter(
    "apsara_live_audio_seconds",
    "Seconds of audio carried, by direction (in: user speech, out: model speech).",
    ["direction"],
    registry=REGISTRY,
)
_upstream_errors = Counter(
    "apsara_live_upstream_errors", "Errors from Gemini, by session_error code.", ["code"], registry=REGISTRY
)
# Why a session moved: to a new Gemini connection (goaway, configure, upstream) or to a new socket, maybe in another
# process (drop: the browser's socket went; drain: its process shut down; crash: its process died).
RESUME_CAUSES = ("goaway", "configure", "upstream", "drop", "drain", "crash")
_resumes = Counter(
    "apsara_live_resumes",
    "Live sessions resumed, by cause: a new Gemini connection (goaway, configure, upstream) or a new browser socket "
    "(drop, drain, crash).",
    ["cause"],
    registry=REGISTRY,
)
_time_to_resume = Histogram(
    "apsara_live_time_to_resume_seconds",
    "By cause: from losing the connection (or the process holding it) to the session running again.",
    ["cause"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
_sessions_drained = Counter(
    "apsara_live_sessions_drained",
    "Live sessions a shutting-down process handed over (left resumable, browser told to reconnect).",
    registry=REGISTRY,
)
_sessions_taken_over = Counter(
    "apsara_live_sessions_taken_over",
    "Live sessions taken over from a process that died holding them (its lease ran out).",
    registry=REGISTRY,
)
_time_to_session_created = Histogram(
    "apsara_live_time_to_session_created_seconds",
    "From create_session received to session_created sent (includes the Gemini connect).",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
_silent_turns = Counter(
    "apsara_live_silent_turns",
    "Model turns that ended (turnComplete) with no audio, no text and no transcription: shown as 'No answer'.",
    registry=REGISTRY,
)
_silent_turn_retries = Counter(
    "apsara_live_silent_turn_retries", "Silent turns asked again (retry_turn).", registry=REGISTRY
)
_time_to_first_audio = Histogram(
    "apsara_live_time_to_first_audio_seconds",
    "From the end of a user turn to the first model audio sent to the browser.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)


# Called per audio frame: cache the labelled children so the hot path is one dict lookup and one locked add.
@cache
def _message_child(direction: str, kind: str) -> Counter:
    return _messages.labels(direction=direction, kind=kind)


@cache
def _audio_child(direction: str) -> Counter:
    return _audio_seconds.labels(direction=direction)


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")


def session_created() -> None:
    """Count a live session created."""
    _sessions_created.inc()


def silent_turn() -> None:
    """Count a model turn that came back with nothing (``apsara_live_silent_turns_total``)."""
    _silent_turns.inc()


def silent_turn_retried() -> None:
    """Count a silent turn the browser asked again."""
    _silent_turn_retries.inc()


def session_active(delta: int) -> None:
    """Add ``delta`` (+1 when a session starts, -1 when it ends) to the active-session gauge."""
    _sessions_active.inc(delta)


def message(direction: str, kind: str) -> None:
    """Count one message; ``kind`` must be from a fixed set (e.g. a protocol message type, ``audio``)."""
    _check_direction(direction)
    _message_child(direction, kind).inc()


def audio_seconds(direction: str, seconds: float) -> None:
    """Add ``seconds`` of audio carried in ``direction``."""
    _check_direction(direction)
    _audio_child(direction).inc(seconds)


def upstream_error(code: str) -> None:
    """Count an upstream (Gemini) error by its session_error code."""
    _upstream_errors.labels(code=code).inc()


def resumed(cause: str, seconds: float | None) -> None:
    """Count a session resumed for ``cause`` (one of ``RESUME_CAUSES``), and how long it took when known."""
    if cause not in RESUME_CAUSES:
        raise ValueError(f"cause must be one of {RESUME_CAUSES}, not {cause!r}")
    _resumes.labels(cause=cause).inc()
    if seconds is not None:
        _time_to_resume.labels(cause=cause).observe(max(0.0, seconds))
    if cause == "crash":
        _sessions_taken_over.inc()


def sessions_drained(count: int) -> None:
    """Count sessions handed over by a shutting-down process."""
    _sessions_drained.inc(count)


def observe_time_to_session_created(seconds: float) -> None:
    """Record how long a create_session took until session_created."""
    _time_to_session_created.observe(seconds)


def observe_time_to_first_audio(seconds: float) -> None:
    """Record how long the model took to answer a user turn with audio."""
    _time_to_first_audio.observe(seconds)


def exposition() -> tuple[bytes, str]:
    """Return this process's metrics in the Prometheus text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
