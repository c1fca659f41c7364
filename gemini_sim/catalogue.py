"""The simulator's one table of models and voices (keep in step with gemini/catalogue.py and reference section 7)."""

from __future__ import annotations

from dataclasses import dataclass

GEMINI = "gemini"  # Gemini Developer API (generativelanguage)
VERTEX = "vertex"  # Vertex AI (aiplatform)
BOTH = (GEMINI, VERTEX)


@dataclass(frozen=True)
class Model:
    """One model: what it serves, on which API, and its limits."""

    name: str
    display_name: str
    live: bool  # serves bidiGenerateContent (Live API); otherwise REST generateContent only
    audio_only: bool = False  # native audio: TEXT response modality closes with 1007
    apis: tuple[str, ...] = (GEMINI,)
    # 3.x Live models refuse the deprecated realtimeInput.mediaChunks (1007) and clientContent turns without a role.
    generation3: bool = False
    # gemini-3.8-live: audioStreamEnd does not end the user's turn; trailing audio/silence does (openclaw#152830).
    stream_end_ends_turn: bool = True
    # Not a conversation partner: transcribe-live (speech in, TEXT out) and live-translate (audio in only).
    conversational: bool = True
    text_only: bool = False  # transcribe-live: AUDIO response modality closes with 1007
    accepts_text_input: bool = True  # live-translate takes audio input only
    tools: bool = True  # the transcribe and translate models take no tools (1007)
    max_session_seconds: float | None = None  # transcribe-live: a session (resumptions included) lasts 10 minutes
    input_token_limit: int = 131072
    output_token_limit: int = 8192
    # 3.x puts audio and its transcript in one serverContent; 2.5 sends one part per message.
    combined_parts: bool = False
    # 3.8 Extended Thinking reports interactionStatus IN_PROGRESS while it works and IDLE when done.
    interaction_status: bool = False
    # 3.8: functions are NON_BLOCKING unless declared BLOCKING (the model keeps talking while they run).
    async_tools_default: bool = False


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model(
            "gemini-3.8-live",
            "Gemini 3.8 Live",
            True,
            True,
            BOTH,
            generation3=True,
            stream_end_ends_turn=False,
            output_token_limit=65536,
            combined_parts=True,
            async_tools_default=True,
        ),
        Model(
            "gemini-3.8-live-extended-thinking",
            "Gemini 3.8 Live Extended Thinking",
            True,
            True,
            (GEMINI,),
            generation3=True,
            stream_end_ends_turn=False,
            output_token_limit=65536,
            combined_parts=True,
            interaction_status=True,
            async_tools_default=True,
        ),
        Model(
            "gemini-3.1-flash-live-preview",
            "Gemini 3.1 Flash Live Preview",
            True,
            True,
            (GEMINI,),
            generation3=True,
            output_token_limit=65536,
            combined_parts=True,
        ),
        # Speech-to-text only: TEXT output, no tools, sessions up to 10 minutes (ai.google.dev, 2026-12).
        Model(
            "gemini-3.5-transcribe-live",
            "Gemini 3.5 Transcribe Live",
            True,
            text_only=True,
            generation3=True,
            conversational=False,
            accepts_text_input=False,
            tools=False,
            max_session_seconds=600.0,
        ),
        # Speech translation: audio input only, no tools (ai.google.dev, 2026-12).
        Model(
            "gemini-3.5-live-translate-preview",
            "Gemini 3.5 Live Translate Preview",
            True,
            True,
            generation3=True,
            conversational=False,
            accepts_text_input=False,
            tools=False,
            combined_parts=True,
        ),
        Model("gemini-2.5-flash-native-audio-preview-12-2025", "Gemini 2.5 Flash Native Audio (12-2025)", True, True),
        Model("gemini-2.5-flash-native-audio-latest", "Gemini 2.5 Flash Native Audio Latest", True, True),
        Model("gemini-live-2.5-flash-native-audio", "Gemini Live 2.5 Flash Native Audio", True, True, (VERTEX,)),
        # Half-cascade (TEXT or AUDIO output), private GA on Vertex: the one Live model here that serves TEXT.
        Model("gemini-live-2.5-flash", "Gemini Live 2.5 Flash", True, False, (VERTEX,)),
        Model(
            "gemini-2.5-flash",
            "Gemini 2.5 Flash",
            False,
            apis=BOTH,
            input_token_limit=1048576,
            output_token_limit=65536,
        ),
        Model(
            "gemini-2.5-pro", "Gemini 2.5 Pro", False, apis=BOTH, input_token_limit=1048576, output_token_limit=65536
        ),
        Model(
            "gemini-3-flash", "Gemini 3 Flash", False, apis=BOTH, input_token_limit=1048576, output_token_limit=65536
        ),
    )
}

# The 30 prebuilt voices; Puck is the default.
VOICES: tuple[str, ...] = (
    "Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr",
    "Callirrhoe", "Autonoe", "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome",
    "Algenib", "Rasalgethi", "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima",
    "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
)  # fmt: skip
DEFAULT_VOICE = "Puck"


def model_id(name: str) -> str:
    """Reduce ``models/x`` or ``projects/p/locations/l/publishers/google/models/x`` to ``x``."""
    return name.rsplit("/", 1)[-1]


def find(name: str, api: str) -> Model | None:
    """Look a model up by any of its spellings, if the given API serves it."""
    model = MODELS.get(model_id(name))
    return model if model is not None and api in model.apis else None


def generation_methods(model: Model) -> list[str]:
    """The supportedGenerationMethods ListModels reports for a model."""
    if model.live:
        return ["bidiGenerateContent"]
    return ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
