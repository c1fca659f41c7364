"""A person's Talk settings: their shape, their validation, and the ``create_session`` they become.

The settings are checked by the rules ``create_session`` itself applies (``live.protocol``'s typed definitions and
ranges, ``live.session_plan``'s model and voice checks), so what is saved is what a call will accept; on top of
those, only the choices a settings sheet offers are allowed (a conversational model of the catalogue, one response
modality unless the model can answer in both). Pure: no database here (``conversations.services`` stores them).
"""

from __future__ import annotations

import json
from typing import Any, Literal, NotRequired, cast

import pydantic
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from typing_extensions import TypedDict

from gemini.catalogue import VOICES, LiveModel, live_model, not_conversational, talk_models
from live.protocol import (
    MAX_CONTEXT_TOKENS,
    CreateSessionData,
    ProtocolError,
    VadConfig,
    parse_client_message,
)
from live.session_plan import canonical_voice, plan_session

Modality = Literal["TEXT", "AUDIO"]
# Through the server's /live socket, or from the page straight to Gemini (docs/live-direct.md).
Transport = Literal["proxied", "direct"]


@pydantic.with_config(pydantic.ConfigDict(strict=True, extra="forbid"))
class TalkSettings(TypedDict):
    """What ``GET/PUT /api/me/talk-settings`` carry (docs/api.md); a PUT may leave any of them out (its default)."""

    model: NotRequired[str]
    voiceName: NotRequired[str | None]  # None: Gemini's default voice (Puck)
    responseModalities: NotRequired[list[Modality]]
    vad: NotRequired[VadConfig]  # as create_session's config.vad; enabled False is Hold to talk
    loadConversationContext: NotRequired[bool]
    contextCompression: NotRequired[bool]
    transport: NotRequired[Transport]  # "direct" only where LIVE_DIRECT_MODE is "allowed"


_ADAPTER: pydantic.TypeAdapter[TalkSettings] = pydantic.TypeAdapter(TalkSettings)
_CODES = {
    "greater_than": "min_value",
    "greater_than_equal": "min_value",
    "less_than": "max_value",
    "less_than_equal": "max_value",
    "extra_forbidden": "unknown_field",
    "literal_error": "invalid_choice",
}


def defaults() -> TalkSettings:
    """Settings for someone who never chose any: exactly the call the page made before settings existed."""
    return {
        "model": django_settings.GEMINI_LIVE_MODEL,
        "voiceName": None,
        "responseModalities": ["AUDIO"],
        "vad": {"enabled": True},
        "loadConversationContext": True,
        "contextCompression": False,
        "transport": "proxied",
    }


def direct_allowed() -> bool:
    """Whether people may choose the direct transport (``LIVE_DIRECT_MODE``; docs/live-direct.md)."""
    return bool(django_settings.LIVE_DIRECT_MODE == "allowed")


def _error(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError({field: [ValidationError(message, code=code)]})


def _pydantic_error(exc: pydantic.ValidationError) -> ValidationError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "non_field_errors"
    return _error(field, first["msg"], _CODES.get(first["type"], "invalid"))


def _model(name: str) -> LiveModel:
    model = live_model(name)
    if model is not None and not model.conversational:
        raise _error("model", not_conversational(model), "invalid_choice")
    if model is None or model not in talk_models():
        available = ", ".join(m.name for m in talk_models())
        message = f"{name[:60]!r} is not a Live model Talk can use. Use one of: {available}."
        raise _error("model", message, "invalid_choice")
    return model


def create_session_data(chosen: TalkSettings) -> CreateSessionData:
    """The ``create_session`` data these settings make (``static/js/talk/settings.js`` builds the same)."""
    config: dict[str, Any] = {
        "responseModalities": list(chosen["responseModalities"]),
        "vad": dict(chosen["vad"]),
        "contextWindowCompression": {"enabled": chosen["contextCompression"]},
    }
    if chosen["voiceName"]:
        config["speechConfig"] = {"voiceConfig": {"voiceName": chosen["voiceName"]}}
    return cast(
        CreateSessionData,
        {"model": chosen["model"], "loadConversationContext": chosen["loadConversationContext"], "config": config},
    )


def validate(raw: object) -> TalkSettings:
    """Check settings sent by a person (missing ones take their defaults), or raise ValidationError naming the field."""
    try:
        given = _ADAPTER.validate_python(raw)
    except pydantic.ValidationError as exc:
        raise _pydantic_error(exc) from None
    chosen: TalkSettings = {**defaults(), **given}
    model = _model(chosen["model"])
    chosen["model"] = model.name
    if chosen["voiceName"] is not None:
        try:
            chosen["voiceName"] = canonical_voice(chosen["voiceName"])
        except ProtocolError as error:
            raise _error("voiceName", error.message, "invalid_choice") from None
    modalities = list(dict.fromkeys(chosen["responseModalities"]))
    if modalities not in model.response_modality_choices:
        offered = " or ".join("+".join(choice) for choice in model.response_modality_choices)
        raise _error(
            "responseModalities",
            f"{model.label} answers in one modality at a time: choose {offered}.",
            "invalid_choice",
        )
    chosen["responseModalities"] = cast(list[Modality], modalities)
    if chosen["transport"] == "direct" and not direct_allowed():
        raise _error(
            "transport",
            "Direct mode is not allowed on this server (LIVE_DIRECT_MODE is off): calls go through the server.",
            "invalid_choice",
        )
    # The whole create_session these settings make, through the very checks a call goes through.
    data = create_session_data(chosen)
    try:
        message = parse_client_message(json.dumps({"type": "create_session", "data": data}))
        config = message["data"]["config"] if "data" in message else {}  # type: ignore[typeddict-item]
        plan_session(model=model, config=config, available_tools=[])  # tools are not a setting
    except ProtocolError as error:
        raise _error("non_field_errors", error.message) from None
    return chosen


def stored(value: object) -> TalkSettings:
    """Settings as saved earlier, checked again (the catalogue may have changed since): else the defaults."""
    candidates: list[object] = [value]
    if isinstance(value, dict):
        # Direct mode may have been switched off since, or the model taken out: keep the rest of what was chosen.
        proxied = {**value, "transport": "proxied"}
        candidates += [proxied, {**proxied, "model": defaults()["model"]}]
    for candidate in candidates:
        try:
            return validate(candidate)
        except ValidationError:
            continue
    return defaults()


def choices() -> dict[str, Any]:
    """What a settings sheet offers: the models (with what each allows), the voices, the ranges, the transports."""
    return {
        "models": [
            {
                "name": m.name,
                "label": m.label,
                "description": m.description,
                "responseModalities": m.response_modality_choices,
                "textViaTranscription": m.audio_only,
                "textViaRealtimeInput": m.text_via_realtime_input,  # how a direct call sends typed text
            }
            for m in talk_models()
        ],
        "voices": list(VOICES),
        "defaultVoice": "Puck",
        "silenceThreshold": {"min": 0, "max": 10_000},
        "maxContextTokens": MAX_CONTEXT_TOKENS,
        "transports": ["proxied", "direct"] if direct_allowed() else ["proxied"],
    }
