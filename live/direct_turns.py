"""Turns of a direct session (docs/live-direct.md): the page talked to Gemini itself and posts each finished turn;
it is stored exactly as the server's recorder stores a proxied turn (``live.turns.turn_message_create``).

Everything the page sends is checked here before anything is stored: the session (a direct one of this person and
this conversation; anything else is the same 404 as an unknown id), the audio (a WAV of PCM16 mono at the rate of
the role, whole, no longer than a turn may be nor than the session has existed), the times, and Gemini's usage.
The message id the page chose is the idempotency key: the same turn posted again (a retry, or a turn kept in the
page's IndexedDB and sent late) answers with the message already stored, never a second one.

Not gated by ``LIVE_DIRECT_MODE``: a turn of a session minted while direct mode was allowed is still the person's
conversation, and may arrive after an operator switched the mode off.
"""

from __future__ import annotations

import enum
import io
import json
import wave
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from google.genai import types

from apsara import validation
from conversations.audio import INPUT_SAMPLE_RATE, OUTPUT_SAMPLE_RATE, SAMPLE_WIDTH, pcm16_duration
from conversations.models import Conversation, Message, User
from live.models import LiveSession
from live.turns import TurnRecord, turn_message_create

# The page's clock against the server's (startedAt is the page's time): a little drift is no reason to lose a turn.
CLOCK_SKEW = timedelta(seconds=30)
# Audio against the session's age, both measured here (the audio's length, the server's clock): only latency.
DURATION_SLACK = timedelta(seconds=5)
TRANSCRIPT_MAX_CHARS = 20_000
USAGE_MAX_CHARS = 4_096
USAGE_MAX_DEPTH = 3  # {"promptTokensDetails": [{"tokenCount": 1}]}
USAGE_DETAILS_MAX_ITEMS = 8
WAV_HEADER_MAX_BYTES = 4_096  # RIFF, fmt and the odd LIST chunk; more than this beside the samples is not a turn
FORM_MAX_BYTES = 128 * 1024  # the multipart form beside the audio: boundaries, headers, transcript, usage
SAMPLE_RATES = {Message.Role.USER: INPUT_SAMPLE_RATE, Message.Role.MODEL: OUTPUT_SAMPLE_RATE}

# Gemini's usageMetadata, as the SDK dumps it for a proxied turn (camelCase): token counts, per-modality details.
USAGE_COUNTS = (
    "promptTokenCount",
    "cachedContentTokenCount",
    "responseTokenCount",
    "toolUsePromptTokenCount",
    "thoughtsTokenCount",
    "totalTokenCount",
)
USAGE_DETAILS = ("promptTokensDetails", "cacheTokensDetails", "responseTokensDetails", "toolUsePromptTokensDetails")


class TurnIdTaken(Exception):
    """The turn's id names a message that is not this session's turn in this conversation (someone else's, perhaps:
    nothing about it is told)."""


@dataclass(frozen=True, kw_only=True)
class DirectTurn:
    """One posted turn, its fields already of the right types (``LiveTurnSerializer``); checked against the session
    and stored by ``direct_turn_save``."""

    public_id: str
    session_id: str
    role: Message.Role
    transcript: str
    started_at: datetime
    interrupted: bool = False
    usage: dict[str, Any] = field(default_factory=dict)
    audio: IO[bytes] | None = None


def max_audio_bytes(role: Message.Role) -> int:
    """Return the size of the largest WAV a turn of ``role`` may upload (its longest audio, plus a header)."""
    return settings.LIVE_DIRECT_TURN_MAX_SECONDS * SAMPLE_RATES[role] * SAMPLE_WIDTH + WAV_HEADER_MAX_BYTES


def max_request_bytes() -> int:
    """Return the largest body the live-turns endpoint reads: the longest model turn's WAV and the form around it."""
    return max_audio_bytes(Message.Role.MODEL) + FORM_MAX_BYTES


def _invalid(name: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError({name: ValidationError(message, code=code)})


def started_at_parse(raw: str) -> datetime:
    """Read ``startedAt``: ISO 8601 with a time zone (a time without one means nothing to a server elsewhere).

    Raises ValidationError (about the field as a whole).
    """
    try:
        value = parse_datetime(raw.strip())
    except ValueError:  # well formed, but no such date or time (a 13th month, an hour 25)
        value = None
    if value is None:
        raise ValidationError("Give an ISO 8601 date and time, e.g. 2026-12-03T18:30:00.250Z.", code="invalid")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("Give the time zone too (Z or an offset such as +01:00).", code="naive")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise ValidationError("This date is out of range.", code="invalid") from None


def _usage_count(name: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= validation.JSON_INT_MAX:
        raise _invalid(name, "A token count is a whole number, 0 or more.")
    return value


def _usage_enum(name: str, value: object, choices: type[enum.Enum]) -> str:
    if not isinstance(value, str) or value not in choices.__members__:
        raise _invalid(name, f"One of {', '.join(choices.__members__)}.")
    return value


def usage_parse(raw: str) -> dict[str, Any]:
    """Read ``usage`` (Gemini's usageMetadata as JSON) into what a proxied turn stores.

    Known members must have Gemini's types (counts: whole numbers; details: lists of ``{modality, tokenCount}``);
    unknown members are dropped rather than refused, so a field Gemini adds one day never costs a person a turn.
    Raises ValidationError: about ``usage`` as a whole, or keyed by the member at fault ("promptTokensDetails.0").
    """
    if len(raw) > USAGE_MAX_CHARS:
        raise ValidationError(f"At most {USAGE_MAX_CHARS} characters of JSON.", code="max_length")
    if validation.json_nesting_exceeds(raw, USAGE_MAX_DEPTH):
        raise ValidationError(f"JSON nested deeper than {USAGE_MAX_DEPTH} levels.", code="too_deep")
    try:
        data = json.loads(
            raw,
            parse_constant=validation.json_constant,
            parse_float=validation.json_float,
            parse_int=validation.json_int,
        )
    except ValueError as exc:
        raise ValidationError(f"Not JSON: {exc}", code="parse_error") from None
    if not isinstance(data, dict):
        raise ValidationError("A JSON object is required (Gemini's usageMetadata).", code="invalid")
    usage: dict[str, Any] = {}
    for name in USAGE_COUNTS:
        if name in data:
            usage[name] = _usage_count(name, data[name])
    for name in USAGE_DETAILS:
        if name not in data:
            continue
        items = data[name]
        if not isinstance(items, list) or len(items) > USAGE_DETAILS_MAX_ITEMS:
            raise _invalid(name, f"A list of at most {USAGE_DETAILS_MAX_ITEMS} {{modality, tokenCount}}.")
        details = []
        for index, item in enumerate(items):
            where = f"{name}.{index}"
            if not isinstance(item, dict):
                raise _invalid(where, "An object {modality, tokenCount} is required.")
            detail: dict[str, Any] = {}
            if "modality" in item:
                detail["modality"] = _usage_enum(f"{where}.modality", item["modality"], types.MediaModality)
            if "tokenCount" in item:
                detail["tokenCount"] = _usage_count(f"{where}.tokenCount", item["tokenCount"])
            details.append(detail)
        usage[name] = details
    if "trafficType" in data:
        usage["trafficType"] = _usage_enum("trafficType", data["trafficType"], types.TrafficType)
    return usage


def _audio_pcm(upload: IO[bytes], role: Message.Role) -> bytes:
    """Return the PCM16 samples of an uploaded WAV, refusing anything a proxied turn of ``role`` could not hold."""
    rate = SAMPLE_RATES[role]
    longest = settings.LIVE_DIRECT_TURN_MAX_SECONDS
    data = upload.read(max_audio_bytes(role) + 1)
    if len(data) > max_audio_bytes(role):
        raise _invalid("audio", f"A turn's audio is at most {longest} s ({max_audio_bytes(role)} bytes).", "too_long")
    if not data:
        raise _invalid("audio", "The audio file is empty.", "empty")
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            params = wav.getparams()
            pcm = wav.readframes(params.nframes)
    except (wave.Error, EOFError, RuntimeError, ValueError, OverflowError, OSError) as exc:
        # wave.Error for what is no PCM WAV (another format, a float or compressed WAV), EOFError for a file cut
        # inside its header, the others for chunk sizes that make no sense.
        raise _invalid("audio", f"Not a PCM WAV file ({exc or type(exc).__name__}).", "not_wav") from None
    who = "your microphone" if role == Message.Role.USER else "Gemini's voice"
    wanted = f"PCM 16-bit mono at {rate} Hz ({who})"
    if params.comptype != "NONE" or params.sampwidth != SAMPLE_WIDTH:
        raise _invalid("audio", f"Expected {wanted}; got {8 * params.sampwidth}-bit samples.", "format")
    if params.nchannels != 1:
        raise _invalid("audio", f"Expected {wanted}; got {params.nchannels} channels.", "format")
    if params.framerate != rate:
        raise _invalid("audio", f"Expected {wanted}; got {params.framerate} Hz.", "format")
    if params.nframes == 0:
        raise _invalid("audio", "The audio holds no samples.", "empty")
    if len(pcm) != params.nframes * SAMPLE_WIDTH:
        raise _invalid(
            "audio",
            f"The file is cut short: its header announces {params.nframes} samples, it holds "
            f"{len(pcm) // SAMPLE_WIDTH}.",
            "truncated",
        )
    if len(data) - len(pcm) > WAV_HEADER_MAX_BYTES:
        raise _invalid("audio", "The file holds more than its audio (extra data beside the samples).", "format")
    if pcm16_duration(len(pcm), sample_rate=rate) > longest:
        raise _invalid("audio", f"A turn's audio is at most {longest} s.", "too_long")
    return pcm


def _session_get(*, user: User, conversation: Conversation, session_id: str) -> LiveSession:
    """Return the direct session ``session_id`` of ``user`` in ``conversation``, whatever its status (a turn may be
    posted long after the session ended); anything else is the same 404 as an unknown id."""
    session = (
        LiveSession.objects.for_user(user)
        .filter(public_id=session_id, conversation=conversation, transport=LiveSession.Transport.DIRECT)
        .first()
        if validation.is_public_id(session_id)
        else None
    )
    if session is None:
        raise Http404("No direct live session with this id in this conversation.")
    return session


def _replay(*, message: Message, conversation: Conversation, session: LiveSession) -> Message:
    """Return ``message`` if it is this session's turn in this conversation (the same turn posted again)."""
    if message.conversation_id != conversation.pk or message.live_config.get("sessionId") != session.public_id:
        raise TurnIdTaken(message.public_id)
    return message


def _response_modalities(session: LiveSession) -> list[str]:
    """Return the modalities the session asked for (as its token endpoint stored them), as a proxied turn records."""
    request = session.config.get("request") if isinstance(session.config, dict) else None
    wanted = request.get("responseModalities") if isinstance(request, dict) else None
    if isinstance(wanted, list) and wanted and all(isinstance(m, str) for m in wanted):
        return list(dict.fromkeys(wanted))
    return ["AUDIO"]


def _check_times(*, turn: DirectTurn, session: LiveSession, seconds: float, now: datetime) -> None:
    if turn.started_at > now + CLOCK_SKEW:
        raise _invalid("startedAt", "This time is in the future: check the device's clock.", "future")
    if turn.started_at < session.started_at - CLOCK_SKEW:
        raise _invalid("startedAt", "This time is before the session began.", "before_session")
    if timedelta(seconds=seconds) > now - session.started_at + DURATION_SLACK:
        raise _invalid(
            "audio",
            f"The audio lasts {seconds:.1f} s, longer than the session has existed.",
            "longer_than_session",
        )


def direct_turn_save(*, user: User, conversation: Conversation, turn: DirectTurn) -> tuple[Message, bool]:
    """Store a direct session's turn as a live message, once; return it and whether it is new.

    Raises Http404 (the session is not a direct one of ``user`` in ``conversation``), ValidationError naming the
    field at fault, or TurnIdTaken (the id is another message's).
    """
    session = _session_get(user=user, conversation=conversation, session_id=turn.session_id)
    if (stored := Message.objects.filter(public_id=turn.public_id).first()) is not None:
        return _replay(message=stored, conversation=conversation, session=session), False
    if turn.role == Message.Role.USER and turn.interrupted:
        raise _invalid("interrupted", "Only a model turn can be interrupted.")
    if turn.role == Message.Role.USER and turn.usage:
        raise _invalid("usage", "Gemini reports usage with the model's turn; send it there.")
    pcm = _audio_pcm(turn.audio, turn.role) if turn.audio is not None else b""
    if not pcm and not turn.transcript:
        raise _invalid("transcript", "A turn needs a transcript, its audio, or both.", "required")
    rate = SAMPLE_RATES[turn.role]
    _check_times(turn=turn, session=session, seconds=pcm16_duration(len(pcm), sample_rate=rate), now=timezone.now())
    modalities = _response_modalities(session)
    spoken = turn.transcript if "AUDIO" in modalities else ""
    record = TurnRecord(
        public_id=turn.public_id,
        role=turn.role,
        created_at=turn.started_at,
        # As the recorder stores them: the user's words are their input transcription; the model's turn is its text,
        # which, when it spoke, is the transcription of what it said.
        text=turn.transcript if turn.role == Message.Role.MODEL else "",
        input_transcription=turn.transcript if turn.role == Message.Role.USER else "",
        output_transcription=spoken if turn.role == Message.Role.MODEL else "",
        pcm=pcm,
        sample_rate=rate if pcm else 0,
        usage=turn.usage,
        interrupted=turn.interrupted,
    )
    live_config = {"model": session.model, "sessionId": session.public_id, "responseModalities": modalities}
    try:
        with transaction.atomic():
            return turn_message_create(conversation=conversation, live_config=live_config, turn=record), True
    except (IntegrityError, ValidationError) as exc:
        # The same id stored meanwhile (a retry racing the first post): the database's unique index decided, or
        # the model's uniqueness check saw it first. Anything else is not ours to explain.
        if isinstance(exc, ValidationError) and "public_id" not in getattr(exc, "error_dict", {}):
            raise
        stored = Message.objects.filter(public_id=turn.public_id).first()
        if stored is None:
            raise
        return _replay(message=stored, conversation=conversation, session=session), False
