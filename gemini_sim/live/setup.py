"""The ``setup`` message: validate it like the service does and keep what the session acts on as a ``Config``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import catalogue, model, wire
from .errors import INVALID, UNSUPPORTED_MODALITIES, Close

if TYPE_CHECKING:
    from ..server import Options
    from .routes import Route

_ACTIVITY_HANDLING = (None, "ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION")


@dataclass
class Config:
    """The parts of a validated setup the session acts on."""

    model: catalogue.Model
    model_name: str
    modalities: list[str]
    voice: str
    system_instruction: str
    functions: list[dict[str, Any]]
    auto_vad: bool
    interrupts: bool
    start_ms: float
    silence_ms: float
    input_transcription: bool
    output_transcription: bool
    resumption: bool
    transparent: bool
    handle: str | None
    raw: dict[str, Any] = field(default_factory=dict)


def _section(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """A sub-message of the setup: absent is empty, anything but an object is an invalid argument."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Close(1007, INVALID)
    return value


def _millis(value: Any) -> float:
    """An int32 milliseconds field (proto-JSON allows numbers as strings); 0 when absent."""
    if value is None:
        return 0.0
    try:
        ms = float(value)
    except (TypeError, ValueError):
        raise Close(1007, INVALID) from None
    if ms < 0:
        raise Close(1007, INVALID)
    return ms


def _find_model(name: Any, route: Route) -> catalogue.Model:
    """The Live model a setup names on this route (1008 naming it when there is none)."""
    if not isinstance(name, str) or not name.strip():
        raise Close(1007, INVALID)
    found = catalogue.find(name, route.api)
    if found is None or not found.live:
        shown = name if "/" in name else f"models/{name}"
        raise Close(
            1008, f"{shown} is not found for API version {route.version}, or is not supported for "
            "bidiGenerateContent."
        )  # fmt: skip
    return found


def _modalities(gen: dict[str, Any], found: catalogue.Model) -> list[str]:
    """The one response modality asked for (the model's own when none is), if the model can answer in it."""
    modalities = gen.get("responseModalities") or ["TEXT" if found.text_only else "AUDIO"]
    if not isinstance(modalities, list):
        raise Close(1007, INVALID)
    modalities = [str(m).upper() for m in modalities]
    if any(m not in ("AUDIO", "TEXT") for m in modalities):
        raise Close(1007, INVALID)
    if ("TEXT" in modalities and found.audio_only) or ("AUDIO" in modalities and found.text_only):
        raise Close(1007, UNSUPPORTED_MODALITIES.format(", ".join(dict.fromkeys(modalities))))
    if len(set(modalities)) > 1:
        raise Close(1007, INVALID)
    return modalities


def _voice(speech: dict[str, Any]) -> str:
    """The prebuilt voice asked for (matched without regard to case), else the default."""
    if speech.get("multiSpeakerVoiceConfig"):
        raise Close(1007, INVALID)
    requested = wire.get_path(speech, "voiceConfig.prebuiltVoiceConfig.voiceName")
    if requested is None:
        return catalogue.DEFAULT_VOICE
    match = [v for v in catalogue.VOICES if v.lower() == str(requested).lower()]
    if not match:
        raise Close(1007, INVALID)
    return match[0]


def configure(setup: dict[str, Any], route: Route, options: Options) -> Config:
    """Validate a (camelCase) setup like the service; resumed state is restored by the caller."""
    found = _find_model(setup.get("model"), route)
    gen = _section(setup, "generationConfig")
    modalities = _modalities(gen, found)
    functions = model.declared_functions(setup.get("tools"))
    if setup.get("tools") and not found.tools:
        raise Close(1007, INVALID)
    voice = _voice(_section(gen, "speechConfig"))
    rtc = _section(setup, "realtimeInputConfig")
    aad = _section(rtc, "automaticActivityDetection")
    handling = rtc.get("activityHandling")
    if handling not in _ACTIVITY_HANDLING:
        raise Close(1007, INVALID)
    low_start = aad.get("startOfSpeechSensitivity") == "START_SENSITIVITY_LOW"
    start_ms = _millis(aad.get("prefixPaddingMs")) or (60 if low_start else 20)
    silence_ms = _millis(aad.get("silenceDurationMs")) or options.silence_ms
    resumption = setup.get("sessionResumption")
    if resumption is not None and not isinstance(resumption, dict):
        raise Close(1007, INVALID)
    _section(setup, "historyConfig")
    return Config(
        model=found,
        model_name=found.name,
        modalities=modalities,
        voice=voice,
        system_instruction=model.instruction_text(setup.get("systemInstruction")),
        functions=functions,
        auto_vad=not aad.get("disabled", False),
        interrupts=handling != "NO_INTERRUPTION",
        start_ms=float(start_ms),
        silence_ms=float(silence_ms),
        input_transcription="inputAudioTranscription" in setup,
        output_transcription="outputAudioTranscription" in setup,
        resumption=resumption is not None,
        transparent=bool((resumption or {}).get("transparent")),
        handle=(resumption or {}).get("handle") or None,
        raw=setup,
    )
