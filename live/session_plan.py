"""Translate a browser's ``create_session`` config into a Gemini ``LiveConnectConfig``, model-aware.

Everything a person can get wrong is caught here, before anything reaches Gemini, with a message naming the field
and the valid values (e.g. ``voiceName: "auto"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from google.genai import types

from gemini.catalogue import VOICES, LiveModel, not_conversational
from live.protocol import (
    INPUT_AUDIO_MIME,
    OUTPUT_AUDIO_MIME,
    ErrorCode,
    ProtocolError,
    SessionConfig,
    VadConfig,
)
from live.server_messages import EffectiveConfig

DEFAULT_COMPRESSION_TOKENS = 25_600
DEFAULT_COMPRESSION_RATIO = 0.5
DEFAULT_VAD: VadConfig = {"enabled": True}
MODEL_NAME_MAX = 120  # LiveSession.model's column
# A model's name as Gemini spells them (``models/`` prefix optional); anything else cannot name one.
_MODEL_NAME = re.compile(r"(?:models/)?[A-Za-z0-9][A-Za-z0-9._@-]*")
# A BCP 47 language tag as Gemini takes them ("en-US", "cmn-CN", "es-419").
_LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,3}")
_RESOLUTIONS = {
    "LOW": types.MediaResolution.MEDIA_RESOLUTION_LOW,
    "MEDIUM": types.MediaResolution.MEDIA_RESOLUTION_MEDIUM,
    "HIGH": types.MediaResolution.MEDIA_RESOLUTION_HIGH,
}


@dataclass
class SessionPlan:
    """What the bridge needs to run a session: the browser-facing view and how to build each Gemini setup."""

    model: LiveModel
    browser_modalities: list[str]
    upstream_modalities: list[str]
    text_via_transcription: bool
    binary_audio: bool
    voice_name: str | None
    language_code: str | None
    media_resolution: str | None
    compression: types.ContextWindowCompressionConfig | None
    tool_names: list[str]
    tools: list[types.Tool]
    system_instruction: str | None
    vad: VadConfig
    notices: list[str] = field(default_factory=list)

    @property
    def forwards_audio(self) -> bool:
        """Whether model audio goes to the browser at all (not in TEXT-only mode)."""
        return "AUDIO" in self.browser_modalities

    @property
    def vad_enabled(self) -> bool:
        """Whether Gemini detects speech itself (False: push-to-talk with activity_start/activity_end)."""
        return bool(self.vad.get("enabled", True))

    def effective(self) -> EffectiveConfig:
        """Describe the session as the browser will experience it (sent in session_created)."""
        return {
            "responseModalities": list(self.browser_modalities),
            "upstreamModalities": list(self.upstream_modalities),
            "textViaTranscription": self.text_via_transcription,
            "binaryAudio": self.binary_audio,
            "inputAudioFormat": INPUT_AUDIO_MIME,
            "outputAudioFormat": OUTPUT_AUDIO_MIME,
            "voiceName": self.voice_name,
            "tools": list(self.tool_names),
            "vad": dict(self.vad),  # type: ignore[typeddict-item]
        }

    def connect_config(
        self, *, handle: str | None, with_history: bool, transparent: bool = False
    ) -> types.LiveConnectConfig:
        """Build the Gemini setup for a new connection (fresh, or resuming with ``handle``)."""
        speech = None
        if self.voice_name or self.language_code:
            speech = types.SpeechConfig(
                voice_config=(
                    types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice_name))
                    if self.voice_name
                    else None
                ),
                language_code=self.language_code,
            )
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality(m) for m in self.upstream_modalities],
            speech_config=speech,
            media_resolution=_RESOLUTIONS[self.media_resolution] if self.media_resolution else None,
            system_instruction=self.system_instruction or None,
            tools=list(self.tools) or None,
            # Transcripts are the text of stored live messages, so always ask for both.
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            realtime_input_config=vad_to_realtime_input_config(self.vad),
            context_window_compression=self.compression,
            # transparent (Vertex only): Gemini reports lastConsumedClientMessageIndex so unconsumed input can be
            # replayed; on the Gemini API the SDK refuses it, and the bridge treats each handle as covering all input.
            session_resumption=types.SessionResumptionConfig(handle=handle, transparent=transparent or None),
        )
        if with_history and self.model.history_in_client_content and not handle:
            config.history_config = types.HistoryConfig(initial_history_in_client_content=True)
        return config


def vad_to_realtime_input_config(vad: VadConfig) -> types.RealtimeInputConfig:
    """Map the seed's VAD settings onto Gemini's automatic activity detection."""
    enabled = bool(vad.get("enabled", True))
    detection = types.AutomaticActivityDetection(disabled=not enabled)
    if enabled and "sensitivity" in vad:
        high = vad["sensitivity"] >= 0.5
        detection.start_of_speech_sensitivity = (
            types.StartSensitivity.START_SENSITIVITY_HIGH if high else types.StartSensitivity.START_SENSITIVITY_LOW
        )
        detection.end_of_speech_sensitivity = (
            types.EndSensitivity.END_SENSITIVITY_HIGH if high else types.EndSensitivity.END_SENSITIVITY_LOW
        )
    if enabled and "silenceThreshold" in vad:
        detection.silence_duration_ms = vad["silenceThreshold"]
    return types.RealtimeInputConfig(
        automatic_activity_detection=detection,
        activity_handling=types.ActivityHandling.START_OF_ACTIVITY_INTERRUPTS,
    )


def vad_with_defaults(vad: VadConfig) -> VadConfig:
    """VAD settings (their ranges checked by ``live.protocol``) with defaults filled in."""
    return {**DEFAULT_VAD, **vad}


def validate_model_name(name: str) -> str:
    """Refuse, before Gemini is asked, a ``model`` that cannot be a model's name (or does not fit its column)."""
    if len(name) > MODEL_NAME_MAX or not _MODEL_NAME.fullmatch(name):
        raise ProtocolError(
            ErrorCode.INVALID_CONFIG,
            f"model {name[:40]!r} is not a model name (letters, digits, '.', '-', '_', '@'; "
            f"at most {MODEL_NAME_MAX} characters).",
        )
    return name


def _language(code: str, where: str) -> str:
    if not _LANGUAGE_CODE.fullmatch(code):
        raise ProtocolError(
            ErrorCode.INVALID_CONFIG, f"{where} {code[:40]!r} is not a language code such as en-US or de-DE."
        )
    return code


def canonical_voice(name: str) -> str:
    """The catalogue's spelling of a voice name (case-insensitive), or ProtocolError naming the valid voices."""
    by_lower = {v.lower(): v for v in VOICES}
    voice = by_lower.get(name.strip().lower())
    if voice is None:
        raise ProtocolError(
            ErrorCode.INVALID_CONFIG,
            f"Voice {name[:40]!r} is not available. Omit speechConfig for the default voice (Puck) "
            f"or choose one of: {', '.join(VOICES)}.",
        )
    return voice


def _compression(cfg: dict[str, Any]) -> types.ContextWindowCompressionConfig | None:
    if not cfg.get("enabled", True):
        return None
    max_tokens = cfg.get("maxTokens", DEFAULT_COMPRESSION_TOKENS)
    ratio = cfg.get("compressionRatio", DEFAULT_COMPRESSION_RATIO)
    # Gemini compresses once the context reaches triggerTokens, down to slidingWindow.targetTokens.
    return types.ContextWindowCompressionConfig(
        trigger_tokens=max_tokens, sliding_window=types.SlidingWindow(target_tokens=int(max_tokens * ratio))
    )


def _select_tools(requested: list[Any] | None, available: list[types.Tool]) -> tuple[list[str], list[types.Tool]]:
    declarations = {fd.name: fd for tool in available for fd in (tool.function_declarations or []) if fd.name}
    if requested is None:
        names = list(declarations)
    else:
        names = []
        for item in requested:
            name = item if isinstance(item, str) else item.get("name", "")
            if name not in declarations:
                raise ProtocolError(
                    ErrorCode.INVALID_CONFIG,
                    f"Unknown tool {str(name)[:40]!r}; available tools: {', '.join(declarations) or 'none'}.",
                )
            if name not in names:
                names.append(name)
    if not names:
        return [], []
    return names, [types.Tool(function_declarations=[declarations[n] for n in names])]


def plan_session(*, model: LiveModel, config: SessionConfig, available_tools: list[types.Tool]) -> SessionPlan:
    """Validate the browser's config and decide how to serve it with this model."""
    if not model.conversational:
        raise ProtocolError(ErrorCode.INVALID_CONFIG, not_conversational(model))
    notices: list[str] = []
    wanted = list(dict.fromkeys(config.get("responseModalities") or ["AUDIO"]))
    text_via_transcription = False
    upstream = list(wanted)
    if model.audio_only and "TEXT" in wanted:
        # Native-audio models close with 1007 on TEXT; ask for AUDIO and forward the output transcription as text.
        upstream = ["AUDIO"]
        text_via_transcription = True
        notices.append(
            f"{model.name} answers in audio only; text is its transcription"
            + (" (audio is not sent to you)." if "AUDIO" not in wanted else ".")
        )
    elif len(upstream) > 1:
        upstream = ["AUDIO"]
        notices.append(f"{model.name} answers in one modality at a time; using AUDIO with its transcription.")
        text_via_transcription = True

    speech = config.get("speechConfig") or {}
    voice_cfg = speech.get("voiceConfig") or {}
    voice = canonical_voice(voice_cfg["voiceName"]) if "voiceName" in voice_cfg else None
    for where, value in (
        ("speechConfig.voiceConfig.languageCode", voice_cfg.get("languageCode")),
        ("speechConfig.languageCode", speech.get("languageCode")),
    ):
        if value:
            _language(value, where)
    language = voice_cfg.get("languageCode") or speech.get("languageCode")
    ignored = [k for k in ("speakingRate", "pitch", "volumeGainDb") if k in voice_cfg]
    if ignored:
        notices.append(f"Gemini Live has no {', '.join(ignored)} setting; ignored.")
    compression = (
        _compression(dict(config["contextWindowCompression"])) if "contextWindowCompression" in config else None
    )
    tool_names, tools = _select_tools(config.get("tools"), available_tools)
    return SessionPlan(
        model=model,
        browser_modalities=wanted,
        upstream_modalities=upstream,
        text_via_transcription=text_via_transcription,
        binary_audio=bool(config.get("binaryAudio", False)),
        voice_name=voice,
        language_code=language,
        media_resolution=config.get("mediaResolution"),
        compression=compression,
        tool_names=tool_names,
        tools=tools,
        system_instruction=config.get("systemInstruction"),
        vad=vad_with_defaults(config.get("vad") or {}),
        notices=notices,
    )
