"""The server → browser messages of ``/live``: one TypedDict and one builder per message.

The bridge builds every message it sends with a builder here, and the outlet takes only ``ServerMessage``, so mypy
checks each send against ``docs/live-protocol.md``'s shapes; tests validate what goes out at run time as well
(``validate_server_message``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired

import pydantic
from typing_extensions import TypedDict

from conversations.events import SavedMessageData
from live.protocol import (
    PROTOCOL_VERSION,
    SUPPORTED_INPUT_AUDIO_FORMATS,
    AudioError,
    ErrorCode,
    ProtocolError,
    VadConfig,
)

_SERVER = pydantic.ConfigDict(extra="forbid")

EndReason = Literal["client", "admin", "upstream", "error", "backpressure", "quota"]


def now_iso() -> str:
    """Return the current time as an ISO 8601 UTC timestamp with milliseconds, like the seed."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pydantic.with_config(_SERVER)
class EffectiveConfig(TypedDict):
    responseModalities: list[str]  # what the browser gets
    upstreamModalities: list[str]  # what Gemini was asked for
    textViaTranscription: bool  # TEXT served from output transcription of an audio-only model
    binaryAudio: bool
    inputAudioFormat: str
    outputAudioFormat: str
    voiceName: str | None
    tools: list[str]
    vad: VadConfig


@pydantic.with_config(_SERVER)
class SessionCreated(TypedDict):
    type: Literal["session_created"]
    sessionId: str
    model: str
    provider: Literal["google"]
    conversationId: str
    protocolVersion: str
    config: EffectiveConfig
    notices: list[str]
    timestamp: str


@pydantic.with_config(_SERVER)
class ContextLoaded(TypedDict):
    type: Literal["context_loaded"]
    sessionId: str
    conversationId: str
    messagesLoaded: int
    turnsLoaded: int
    batches: int
    timestamp: str


@pydantic.with_config(_SERVER)
class ContextLoadSkipped(TypedDict):
    type: Literal["context_load_skipped"]
    sessionId: str
    conversationId: str
    reason: str
    timestamp: str


@pydantic.with_config(_SERVER)
class SessionMessage(TypedDict):
    type: Literal["session_message"]
    sessionId: str
    data: dict[str, Any]  # Gemini's server message, camelCase (serverContent | toolCall | toolCallCancellation …)
    timestamp: str


@pydantic.with_config(_SERVER)
class MessageSaved(TypedDict):
    type: Literal["message_saved"]
    sessionId: str | None
    conversationId: str
    message: SavedMessageData
    timestamp: str


@pydantic.with_config(_SERVER)
class SessionReconnecting(TypedDict):
    type: Literal["session_reconnecting"]
    sessionId: str
    reason: str
    timestamp: str


@pydantic.with_config(_SERVER)
class SessionResumed(TypedDict):
    type: Literal["session_resumed"]
    sessionId: str
    conversationId: str
    model: str
    contextReloaded: bool
    config: NotRequired[EffectiveConfig]
    timestamp: str


@pydantic.with_config(_SERVER)
class SessionEnded(TypedDict):
    type: Literal["session_ended"]
    sessionId: str
    reason: EndReason
    timestamp: str


@pydantic.with_config(_SERVER)
class ErrorBody(TypedDict):
    code: str
    message: str
    retryAfter: NotRequired[int]  # milliseconds
    resetsAt: NotRequired[str]  # QUOTA_EXCEEDED: when the quota lifts (ISO 8601, UTC)


@pydantic.with_config(_SERVER)
class SessionError(TypedDict):
    type: Literal["session_error"]
    sessionId: str | None
    error: ErrorBody
    timestamp: str


@pydantic.with_config(_SERVER)
class AudioErrorBody(TypedDict):
    code: str
    message: str
    supportedFormats: list[str]


@pydantic.with_config(_SERVER)
class AudioErrorMessage(TypedDict):
    type: Literal["audio_error"]
    sessionId: str | None
    error: AudioErrorBody
    timestamp: str


@pydantic.with_config(_SERVER)
class VadConfigured(TypedDict):
    type: Literal["vad_configured"]
    sessionId: str
    vad: VadConfig
    timestamp: str


@pydantic.with_config(_SERVER)
class TurnSilent(TypedDict):
    type: Literal["turn_silent"]
    sessionId: str
    turnId: str  # what retry_turn names
    timestamp: str


@pydantic.with_config(_SERVER)
class Pong(TypedDict):
    type: Literal["pong"]
    protocolVersion: str
    timestamp: str


SERVER_MESSAGES: dict[str, Any] = {
    "session_created": SessionCreated,
    "context_loaded": ContextLoaded,
    "context_load_skipped": ContextLoadSkipped,
    "session_message": SessionMessage,
    "message_saved": MessageSaved,
    "session_reconnecting": SessionReconnecting,
    "session_resumed": SessionResumed,
    "vad_configured": VadConfigured,
    "session_ended": SessionEnded,
    "session_error": SessionError,
    "audio_error": AudioErrorMessage,
    "turn_silent": TurnSilent,
    "pong": Pong,
}
_SERVER_ADAPTERS = {kind: pydantic.TypeAdapter(definition) for kind, definition in SERVER_MESSAGES.items()}


def validate_server_message(message: Mapping[str, Any]) -> None:
    """Check a message the server sends against its definition (used by tests: nothing undocumented goes out)."""
    kind = message.get("type")
    if kind not in _SERVER_ADAPTERS:
        raise ValueError(f"undocumented server message type {kind!r}")
    _SERVER_ADAPTERS[kind].validate_python(dict(message))


def session_error(
    session_id: str | None,
    code: ErrorCode | str,
    message: str,
    *,
    retry_after_ms: int | None = None,
    resets_at: str | None = None,
) -> SessionError:
    """Build a ``session_error``."""
    body: ErrorBody = {"code": str(code), "message": message}
    if retry_after_ms is not None:
        body["retryAfter"] = retry_after_ms
    if resets_at is not None:
        body["resetsAt"] = resets_at
    return {"type": "session_error", "sessionId": session_id, "error": body, "timestamp": now_iso()}


def audio_error(session_id: str | None, code: ErrorCode | str, message: str) -> AudioErrorMessage:
    """Build an ``audio_error``."""
    return {
        "type": "audio_error",
        "sessionId": session_id,
        "error": {"code": str(code), "message": message, "supportedFormats": list(SUPPORTED_INPUT_AUDIO_FORMATS)},
        "timestamp": now_iso(),
    }


def error_for(session_id: str | None, error: ProtocolError) -> SessionError | AudioErrorMessage:
    """Build the message answering a ProtocolError (audio errors get ``audio_error``)."""
    if isinstance(error, AudioError):
        return audio_error(session_id, error.code, error.message)
    return session_error(
        session_id, error.code, error.message, retry_after_ms=error.retry_after_ms, resets_at=error.resets_at
    )


ServerMessage = (
    SessionCreated
    | ContextLoaded
    | ContextLoadSkipped
    | SessionMessage
    | MessageSaved
    | SessionReconnecting
    | SessionResumed
    | VadConfigured
    | SessionEnded
    | SessionError
    | AudioErrorMessage
    | TurnSilent
    | Pong
)


def pong() -> Pong:
    """Build a ``pong`` (the answer to ``ping``)."""
    return {"type": "pong", "protocolVersion": PROTOCOL_VERSION, "timestamp": now_iso()}


def session_created(
    *, session_id: str, model: str, conversation_id: str, config: EffectiveConfig, notices: list[str]
) -> SessionCreated:
    """Build a ``session_created``: Gemini accepted the session."""
    return {
        "type": "session_created",
        "sessionId": session_id,
        "model": model,
        "provider": "google",
        "conversationId": conversation_id,
        "protocolVersion": PROTOCOL_VERSION,
        "config": config,
        "notices": notices,
        "timestamp": now_iso(),
    }


def context_loaded(
    *, session_id: str, conversation_id: str, messages_loaded: int, turns_loaded: int, batches: int
) -> ContextLoaded:
    """Build a ``context_loaded``: the conversation's recent messages were sent to Gemini."""
    return {
        "type": "context_loaded",
        "sessionId": session_id,
        "conversationId": conversation_id,
        "messagesLoaded": messages_loaded,
        "turnsLoaded": turns_loaded,
        "batches": batches,
        "timestamp": now_iso(),
    }


def context_load_skipped(*, session_id: str, conversation_id: str, reason: str) -> ContextLoadSkipped:
    """Build a ``context_load_skipped``: there was nothing to load."""
    return {
        "type": "context_load_skipped",
        "sessionId": session_id,
        "conversationId": conversation_id,
        "reason": reason,
        "timestamp": now_iso(),
    }


def session_message(*, session_id: str, data: dict[str, Any]) -> SessionMessage:
    """Build a ``session_message``: Gemini's server message, relayed."""
    return {"type": "session_message", "sessionId": session_id, "data": data, "timestamp": now_iso()}


def message_saved(*, session_id: str | None, conversation_id: str, message: SavedMessageData) -> MessageSaved:
    """Build a ``message_saved``: a message of this user was stored (by any socket, tab or process)."""
    return {
        "type": "message_saved",
        "sessionId": session_id,
        "conversationId": conversation_id,
        "message": message,
        "timestamp": now_iso(),
    }


def session_reconnecting(*, session_id: str, reason: str) -> SessionReconnecting:
    """Build a ``session_reconnecting``: the Gemini connection was lost and is being resumed."""
    return {"type": "session_reconnecting", "sessionId": session_id, "reason": reason, "timestamp": now_iso()}


def session_resumed(
    *,
    session_id: str,
    conversation_id: str,
    model: str,
    context_reloaded: bool,
    config: EffectiveConfig | None = None,
) -> SessionResumed:
    """Build a ``session_resumed`` (``config`` when a browser resumed the session, not after a Gemini reconnect)."""
    message: SessionResumed = {
        "type": "session_resumed",
        "sessionId": session_id,
        "conversationId": conversation_id,
        "model": model,
        "contextReloaded": context_reloaded,
        "timestamp": now_iso(),
    }
    if config is not None:
        message["config"] = config
    return message


def vad_configured(*, session_id: str, vad: VadConfig) -> VadConfigured:
    """Build a ``vad_configured``: new voice-activity settings are in effect."""
    return {"type": "vad_configured", "sessionId": session_id, "vad": vad, "timestamp": now_iso()}


def turn_silent(*, session_id: str, turn_id: str) -> TurnSilent:
    """Build a ``turn_silent``: Gemini ended its turn with nothing (no audio, text or transcription)."""
    return {"type": "turn_silent", "sessionId": session_id, "turnId": turn_id, "timestamp": now_iso()}


def session_ended(*, session_id: str, reason: EndReason) -> SessionEnded:
    """Build a ``session_ended``."""
    return {"type": "session_ended", "sessionId": session_id, "reason": reason, "timestamp": now_iso()}
