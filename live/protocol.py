"""The browser ⇄ server protocol of ``/live``: one typed definition per message, validation, error codes.

``docs/live-protocol.md`` is the prose version of this module; keep the two in step (PROTOCOL_VERSION).
Client messages are validated strictly (a string is not a number, a number is not a bool); unknown keys are
ignored so older or newer browsers keep working, and a client-sent ``userId`` is never read.

Everything a client sends is checked here, at the edge, before anything acts on it: numbers are finite and fit a
64-bit column (``NaN``/``Infinity``, which Python's json would accept, are not JSON), nesting is bounded, and
every string (member names included) is one a database can store (``apsara.validation``: no NUL, no lone
surrogate). Ids are the exception: the services check their format where they look them up, so a malformed id
gets the same answer as an unknown one.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
from typing import Annotated, Any, Literal, NotRequired

import pydantic
from django.core.exceptions import ValidationError
from typing_extensions import TypedDict

from apsara import validation

PROTOCOL_VERSION = "1.0"

INPUT_SAMPLE_RATE = 16_000
OUTPUT_SAMPLE_RATE = 24_000
INPUT_AUDIO_MIME = "audio/pcm;rate=16000"
OUTPUT_AUDIO_MIME = "audio/pcm;rate=24000"
SUPPORTED_INPUT_AUDIO_FORMATS = [INPUT_AUDIO_MIME, "audio/wav (PCM16 mono 16 kHz)"]
SUPPORTED_VIDEO_MIMES = ("image/jpeg", "image/png", "image/webp")
# Arrays and objects inside each other, the message itself counting as 1; the deepest real message
# (create_session's data.config.speechConfig.voiceConfig) is 5.
MAX_JSON_DEPTH = 32


class ErrorCode(enum.StrEnum):
    """Codes of ``session_error`` and ``audio_error``; stable, documented in docs/live-protocol.md."""

    # Bad input (the socket stays open and usable).
    INVALID_JSON = "INVALID_JSON"
    UNKNOWN_MESSAGE_TYPE = "UNKNOWN_MESSAGE_TYPE"
    INVALID_MESSAGE = "INVALID_MESSAGE"
    FRAME_TOO_LARGE = "FRAME_TOO_LARGE"
    NO_ACTIVE_SESSION = "NO_ACTIVE_SESSION"
    SESSION_ALREADY_ACTIVE = "SESSION_ALREADY_ACTIVE"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_IN_USE = "SESSION_IN_USE"
    CONVERSATION_NOT_FOUND = "CONVERSATION_NOT_FOUND"
    SESSION_LIMIT_REACHED = "SESSION_LIMIT_REACHED"
    INVALID_CONFIG = "INVALID_CONFIG"
    INVALID_STATE = "INVALID_STATE"
    RESUME_FAILED = "RESUME_FAILED"
    # A daily quota (usage.quotas) is used up: no new session until it resets (retryAfter, resetsAt).
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    # Audio input.
    AUDIO_DECODE_FAILED = "AUDIO_DECODE_FAILED"
    UNSUPPORTED_AUDIO_FORMAT = "UNSUPPORTED_AUDIO_FORMAT"
    # Flow control.
    BACKPRESSURE = "BACKPRESSURE"
    # Upstream (Gemini).
    MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
    UPSTREAM_AUTH_FAILED = "UPSTREAM_AUTH_FAILED"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ProtocolError(Exception):
    """A client message that cannot be acted on; answered with ``session_error`` on the same socket."""

    def __init__(
        self, code: ErrorCode, message: str, *, retry_after_ms: int | None = None, resets_at: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.resets_at = resets_at  # QUOTA_EXCEEDED: when the quota lifts (ISO 8601, UTC)


class AudioError(ProtocolError):
    """Audio the server cannot use; answered with ``audio_error`` (lists the supported formats)."""


# Close codes the server uses (4000-4999 are application codes).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_FAST = 4408  # audio far faster than real time, after a BACKPRESSURE warning
CLOSE_NORMAL = 1000
CLOSE_SERVICE_RESTART = 1012  # this server process is shutting down: reconnect (another one resumes the call)

_STRICT = pydantic.ConfigDict(strict=True)


# ----------------------------------------------------------------------------------------------------------------
# Client → server
# ----------------------------------------------------------------------------------------------------------------


# Value ranges, declared once: a value outside one is refused at parse time as INVALID_CONFIG, naming the field.
MAX_CONTEXT_TOKENS = 131_072
Sensitivity = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]
SilenceMilliseconds = Annotated[int, pydantic.Field(ge=0, le=10_000)]
CompressionTokens = Annotated[int, pydantic.Field(ge=1024, le=MAX_CONTEXT_TOKENS)]
CompressionRatio = Annotated[float, pydantic.Field(gt=0.0, lt=1.0)]
_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


@pydantic.with_config(_STRICT)
class VoiceConfig(TypedDict, total=False):
    voiceName: str
    languageCode: str
    speakingRate: float  # accepted for seed compatibility; Gemini Live has no such knob (a notice says so)
    pitch: float
    volumeGainDb: float


@pydantic.with_config(_STRICT)
class SpeechConfig(TypedDict, total=False):
    voiceConfig: VoiceConfig
    languageCode: str


@pydantic.with_config(_STRICT)
class CompressionConfig(TypedDict, total=False):
    enabled: bool
    maxTokens: CompressionTokens
    compressionRatio: CompressionRatio


@pydantic.with_config(_STRICT)
class VadConfig(TypedDict, total=False):
    enabled: bool
    sensitivity: Sensitivity
    silenceThreshold: SilenceMilliseconds


@pydantic.with_config(_STRICT)
class ToolRef(TypedDict, total=False):
    name: str
    description: str


@pydantic.with_config(_STRICT)
class SessionConfig(TypedDict, total=False):
    responseModalities: list[Literal["TEXT", "AUDIO"]]
    mediaResolution: Literal["LOW", "MEDIUM", "HIGH"]
    speechConfig: SpeechConfig
    contextWindowCompression: CompressionConfig
    tools: list[str | ToolRef]
    systemInstruction: str
    vad: VadConfig
    binaryAudio: bool  # model audio as binary frames instead of base64 in session_message


@pydantic.with_config(_STRICT)
class CreateSessionData(TypedDict, total=False):
    model: str
    conversationId: str | None
    loadConversationContext: bool
    config: SessionConfig
    userId: Any  # seed compatibility: accepted and ignored, the user is the authenticated one


@pydantic.with_config(_STRICT)
class CreateSession(TypedDict):
    type: Literal["create_session"]
    data: NotRequired[CreateSessionData]


@pydantic.with_config(_STRICT)
class SendMessageData(TypedDict, total=False):
    text: str
    audioChunk: str  # base64 PCM16LE 16 kHz mono (or a WAV of that)
    mimeType: str  # of audioChunk; default audio/pcm;rate=16000
    screenData: str  # base64 JPEG/PNG/WebP
    videoFrame: str  # base64 JPEG/PNG/WebP
    imageMimeType: str  # of screenData/videoFrame; default image/jpeg
    turnComplete: bool
    tools: Any  # seed compatibility: tools are chosen at create_session; ignored here


@pydantic.with_config(_STRICT)
class SendMessage(TypedDict):
    type: Literal["send_message"]
    sessionId: NotRequired[str]
    data: SendMessageData


@pydantic.with_config(_STRICT)
class ActivityStart(TypedDict):
    type: Literal["activity_start"]
    sessionId: NotRequired[str]


@pydantic.with_config(_STRICT)
class ActivityEnd(TypedDict):
    type: Literal["activity_end"]
    sessionId: NotRequired[str]


@pydantic.with_config(_STRICT)
class ConfigureVad(TypedDict):
    type: Literal["configure_vad"]
    sessionId: NotRequired[str]
    data: VadConfig


@pydantic.with_config(_STRICT)
class ResumeSessionData(TypedDict):
    sessionId: str
    resumeHandle: NotRequired[str | None]  # seed compatibility; the server's stored handle is what is used
    binaryAudio: NotRequired[bool]


@pydantic.with_config(_STRICT)
class ResumeSession(TypedDict):
    type: Literal["resume_session"]
    sessionId: NotRequired[str]
    data: ResumeSessionData


@pydantic.with_config(_STRICT)
class EndSession(TypedDict):
    type: Literal["end_session"]
    sessionId: NotRequired[str]


# A turn id the server gave in turn_silent ("turn_" and 12 hex digits); anything else is refused at parse time.
SilentTurnId = Annotated[str, pydantic.StringConstraints(pattern=r"^turn_[0-9a-f]{12}$")]


@pydantic.with_config(_STRICT)
class RetryTurnData(TypedDict):
    turnId: SilentTurnId


@pydantic.with_config(_STRICT)
class RetryTurn(TypedDict):
    """Ask again a turn Gemini answered with nothing (``turn_silent``)."""

    type: Literal["retry_turn"]
    sessionId: NotRequired[str]
    data: RetryTurnData


@pydantic.with_config(_STRICT)
class Ping(TypedDict):
    type: Literal["ping"]


ClientMessage = (
    CreateSession
    | SendMessage
    | ActivityStart
    | ActivityEnd
    | ConfigureVad
    | ResumeSession
    | EndSession
    | RetryTurn
    | Ping
)

_CLIENT_ADAPTERS: dict[str, pydantic.TypeAdapter[Any]] = {
    "create_session": pydantic.TypeAdapter(CreateSession),
    "send_message": pydantic.TypeAdapter(SendMessage),
    "activity_start": pydantic.TypeAdapter(ActivityStart),
    "activity_end": pydantic.TypeAdapter(ActivityEnd),
    "configure_vad": pydantic.TypeAdapter(ConfigureVad),
    "resume_session": pydantic.TypeAdapter(ResumeSession),
    "end_session": pydantic.TypeAdapter(EndSession),
    "retry_turn": pydantic.TypeAdapter(RetryTurn),
    "ping": pydantic.TypeAdapter(Ping),
}
CLIENT_MESSAGE_TYPES = tuple(_CLIENT_ADAPTERS)


def _describe(error: pydantic.ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"] if not str(p).startswith(("function-", "str", "typed-dict")))
        parts.append(f"{where or 'message'}: {item['msg']}")
    return "; ".join(parts)


# Members that name a row, per message type: left to the format check where they are looked up (see the module
# docstring). A top-level ``sessionId`` is only compared with the socket's own session, never looked up.
_SESSION_ID = frozenset({("sessionId",)})
_ID_MEMBERS: dict[str, frozenset[tuple[str, ...]]] = {
    "create_session": frozenset({("data", "conversationId")}),
    "resume_session": frozenset({("data", "sessionId")}),
    "send_message": _SESSION_ID,
    "activity_start": _SESSION_ID,
    "activity_end": _SESSION_ID,
    "configure_vad": _SESSION_ID,
    "end_session": _SESSION_ID,
    "retry_turn": _SESSION_ID,
}
_CONFIG_MEMBERS = (("data", "config"), ("data", "model"))  # of create_session: refused as INVALID_CONFIG


def _load_json(text: str) -> Any:
    """Parse a text frame, refusing non-JSON, NaN/Infinity and numbers no 64-bit column holds."""
    try:
        return json.loads(
            text,
            parse_constant=validation.json_constant,
            parse_int=validation.json_int,
            parse_float=validation.json_float,
        )
    except (json.JSONDecodeError, RecursionError):  # RecursionError: nested far deeper than MAX_JSON_DEPTH
        raise ProtocolError(ErrorCode.INVALID_JSON, "The message is not valid JSON.") from None
    except ValueError:  # from the number hooks (and Python's own limit on the digits of an integer)
        raise ProtocolError(
            ErrorCode.INVALID_JSON,
            "The message is not valid JSON: numbers must be finite (no NaN or Infinity) and integers at most "
            f"{validation.JSON_INT_MAX} either side of 0.",
        ) from None


def _check_members(kind: str, raw: dict[str, Any]) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH and any string a database cannot store, naming the member."""
    ids = _ID_MEMBERS.get(kind, frozenset())
    pending: list[tuple[tuple[str | int, ...], Any, int]] = [((), raw, 1)]
    while pending:  # iterative: a message's shape must not decide how deep this function recurses
        path, value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ProtocolError(
                    ErrorCode.INVALID_MESSAGE, f"The message nests arrays and objects more than {MAX_JSON_DEPTH} deep."
                )
            if isinstance(value, dict):
                for key, item in reversed(value.items()):
                    _check_text(kind, (*path, key), key)
                    pending.append(((*path, key), item, depth + 1))
            else:
                pending.extend(((*path, index), item, depth + 1) for index, item in reversed(list(enumerate(value))))
        elif isinstance(value, str) and path not in ids:
            _check_text(kind, path, value)


def _check_text(kind: str, path: tuple[str | int, ...], text: str) -> None:
    try:
        validation.check_storable_text(text)
    except ValidationError as error:
        code = ErrorCode.INVALID_MESSAGE
        if kind == "create_session" and any(path[:2] == prefix for prefix in _CONFIG_MEMBERS):
            code = ErrorCode.INVALID_CONFIG
        name = functools.reduce(validation.field_path, path, "")
        raise ProtocolError(code, f"Invalid {kind}: {name}: {error.messages[0]}") from None


def parse_client_message(text: str) -> ClientMessage:
    """Parse and validate one JSON text frame from the browser, or raise ProtocolError."""
    raw = _load_json(text)
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "A message must be a JSON object with a 'type'.")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "A message must have a string 'type'.")
    adapter = _CLIENT_ADAPTERS.get(kind)
    if adapter is None:
        raise ProtocolError(
            ErrorCode.UNKNOWN_MESSAGE_TYPE,
            f"Unknown message type {kind[:40]!r}; expected one of: {', '.join(CLIENT_MESSAGE_TYPES)}.",
        )
    _check_members(kind, raw)
    try:
        message: ClientMessage = adapter.validate_python(raw)
    except pydantic.ValidationError as exc:
        # A value of the right type outside its range is a configuration a person chose; anything else is malformed.
        out_of_range = all(error["type"] in _RANGE_ERRORS for error in exc.errors())
        code = ErrorCode.INVALID_CONFIG if out_of_range else ErrorCode.INVALID_MESSAGE
        raise ProtocolError(code, f"Invalid {kind}: {_describe(exc)}.") from None
    return message


def decode_base64(value: str, *, what: str, audio: bool = False) -> bytes:
    """Decode standard or URL-safe base64, or raise a ProtocolError/AudioError naming the field."""
    error_class = AudioError if audio else ProtocolError
    code = ErrorCode.AUDIO_DECODE_FAILED if audio else ErrorCode.INVALID_MESSAGE
    cleaned = value.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        data = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise error_class(code, f"{what} is not valid base64.") from None
    if not data:
        raise error_class(code, f"{what} is empty.")
    return data
