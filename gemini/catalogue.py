"""The Live models Apsara knows (what the bridge must know to translate a browser's config for each), and voices.

Keep in step with gemini_sim's catalogue, ``docs/gemini-fidelity.md`` and
../shared/reference/gemini-live-protocol.md section 7.
"""

from __future__ import annotations

from dataclasses import dataclass

from gemini.client import Mode, current_mode


@dataclass(frozen=True)
class LiveModel:
    """What the bridge must know about a Live model to translate a browser's config for it."""

    name: str
    label: str
    audio_only: bool  # native-audio models reject TEXT output (1007); serve TEXT via output transcription
    history_in_client_content: bool  # newer models need historyConfig.initialHistoryInClientContent
    text_via_realtime_input: bool  # typed text mid-session goes as realtimeInput.text
    vertex: bool = False  # served by Vertex AI only
    # A conversation (Talk) needs a partner that takes typed text and tools; speech-to-text and translation models
    # are Live models too, but Talk refuses them.
    conversational: bool = True
    text_input: bool = True  # False: audio input only (a text turn closes the session)
    tools: bool = True
    max_session_seconds: int | None = None  # a whole session's limit (resumptions included), when the model has one
    # False on 3.8: audioStreamEnd does not end the user's turn there, the silence after it does (openclaw#152830).
    stream_end_ends_turn: bool = True
    description: str = ""  # one line for people choosing a model (Talk settings)
    # Whether the model can answer in TEXT and AUDIO at once. None of today's can: they answer in one modality at a
    # time (native audio: TEXT is their transcription), so Talk settings offer AUDIO or TEXT, not both.
    both_modalities: bool = False

    @property
    def response_modality_choices(self) -> list[list[str]]:
        """The ``responseModalities`` a person may choose for this model in Talk settings."""
        choices = [["AUDIO"], ["TEXT"]]
        return [*choices, ["TEXT", "AUDIO"]] if self.both_modalities else choices


# Keep in step with gemini_sim's catalogue and ../shared/reference/gemini-live-protocol.md section 7.
LIVE_MODELS: dict[str, LiveModel] = {
    m.name: m
    for m in (
        LiveModel(
            "gemini-3.8-live",
            "Gemini 3.8 Live",
            True,
            True,
            True,
            stream_end_ends_turn=False,
            description="The newest and most capable: natural, quick conversation.",
        ),
        LiveModel(
            "gemini-3.8-live-extended-thinking",
            "Gemini 3.8 Live (extended thinking)",
            True,
            True,
            True,
            stream_end_ends_turn=False,
            description="Thinks longer before it answers: slower, better at hard questions.",
        ),
        LiveModel(
            "gemini-3.1-flash-live-preview",
            "Gemini 3.1 Flash Live (preview)",
            True,
            True,
            True,
            description="Fast and light, for everyday conversation.",
        ),
        LiveModel(
            "gemini-2.5-flash-native-audio-preview-12-2025",
            "Gemini 2.5 Flash native audio",
            True,
            False,
            False,
            description="The previous generation, pinned to its December 2025 release.",
        ),
        LiveModel(
            "gemini-2.5-flash-native-audio-latest",
            "Gemini 2.5 Flash native audio (latest)",
            True,
            False,
            False,
            description="The previous generation, always its latest release.",
        ),
        LiveModel(
            "gemini-live-2.5-flash-native-audio",
            "Gemini Live 2.5 Flash native audio (Vertex)",
            True,
            False,
            False,
            vertex=True,
            description="Gemini 2.5 Flash native audio served by Vertex AI.",
        ),
        LiveModel(
            "gemini-3.5-transcribe-live",
            "Gemini 3.5 Transcribe Live (speech-to-text)",
            False,  # TEXT output only
            True,
            True,
            conversational=False,
            text_input=False,
            tools=False,
            max_session_seconds=10 * 60,
        ),
        LiveModel(
            "gemini-3.5-live-translate-preview",
            "Gemini 3.5 Live Translate (preview, speech translation)",
            True,
            True,
            True,
            conversational=False,
            text_input=False,
            tools=False,
        ),
    )
}

# Live models Google has shut down, and when: asked for by name (seed 002 defaults to the first), they are refused
# with the current ones listed instead of failing at Gemini with a bare "not found" (close 1008).
RETIRED_LIVE_MODELS: dict[str, str] = {
    "gemini-2.0-flash-live-001": "2025-12-09",
    "gemini-live-2.5-flash-preview": "2025-12-09",
}

VOICES: tuple[str, ...] = (
    "Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr",
    "Callirrhoe", "Autonoe", "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome",
    "Algenib", "Rasalgethi", "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima",
    "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
)  # fmt: skip


def live_model(name: str) -> LiveModel | None:
    """Look a Live model up by name, with or without the ``models/`` prefix."""
    return LIVE_MODELS.get(name.removeprefix("models/"))


def retired_live_model(name: str) -> str | None:
    """The date a retired Live model was shut down, or None (not known to be retired)."""
    return RETIRED_LIVE_MODELS.get(name.removeprefix("models/"))


def talk_models() -> list[LiveModel]:
    """The catalogued models a conversation can use with the configured Gemini, in catalogue order."""
    vertex = current_mode() is Mode.VERTEX
    return [m for m in LIVE_MODELS.values() if m.conversational and (vertex or not m.vertex)]


def not_conversational(model: LiveModel) -> str:
    """Say why Talk cannot use ``model`` and which models it can (for a session_error or a system check)."""
    limits = [] if model.text_input else ["audio input only"]
    limits += [] if model.tools else ["no tools"]
    why = f"takes {' and '.join(limits)}" if limits else "is not made for conversation"
    return (
        f"{model.name} cannot hold a conversation, so Talk cannot use it: {model.label} {why}. "
        f"Use one of: {', '.join(m.name for m in talk_models())}."
    )
