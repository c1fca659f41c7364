"""The questions of seed 002's interactive live test, their flags and defaults, and the ``create_session`` they make.

Each question has a flag; a flag's answer is checked and refused with ``ChoiceError`` (the command exits 2), a typed
answer that does not fit is asked again. The ``create_session`` is the page's: ``live.talk_settings`` builds it from
the person's Talk settings (voice activity detection, context compression) with the answers in place of theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar, cast

from django.conf import settings
from django.http import Http404

from conversations.models import User
from conversations.selectors import conversation_get_for_user, talk_settings_for_user, user_find
from gemini.catalogue import live_model, not_conversational, retired_live_model, talk_models
from live import talk_settings
from live.protocol import ProtocolError
from live.session_plan import canonical_voice, validate_model_name

T = TypeVar("T")

MODALITIES: dict[str, list[str]] = {"1": ["TEXT"], "2": ["AUDIO"], "3": ["TEXT", "AUDIO"]}
DEFAULT_MODALITY = "3"
RESOLUTIONS: dict[str, str] = {"1": "LOW", "2": "MEDIUM", "3": "HIGH"}
DEFAULT_RESOLUTION = "2"
CUSTOM_VOICE_DEFAULT = "Aoede"  # seed 002's example of a valid prebuilt voice
ASKS = 3  # a typed answer that does not fit is asked again, this many times in all


class ChoiceError(Exception):
    """An answer that cannot be used: what is wrong and what would be right."""


@dataclass
class LiveTestChoices:
    """Everything the seed's questions decide."""

    model: str
    modalities: list[str]
    resolution: str
    voice: str | None  # None: Gemini's default voice
    load_context: bool
    user: User
    conversation_id: str | None  # None: a new conversation
    talk: talk_settings.TalkSettings  # the user's Talk settings (read when the answers are given: no database later)
    notes: list[str] = field(default_factory=list)

    def create_session(self) -> dict[str, Any]:
        """The ``create_session`` message the page sends for these answers (model audio as binary frames)."""
        chosen = talk_settings.TalkSettings(**self.talk)
        chosen["model"] = self.model
        chosen["voiceName"] = self.voice
        chosen["responseModalities"] = cast(list[talk_settings.Modality], list(self.modalities))
        chosen["loadConversationContext"] = self.load_context
        data: dict[str, Any] = dict(talk_settings.create_session_data(chosen))
        data["config"] = {**data["config"], "mediaResolution": self.resolution, "binaryAudio": True}
        if self.conversation_id:
            data["conversationId"] = self.conversation_id
        return {"type": "create_session", "data": data}

    def as_event(self) -> dict[str, Any]:
        """The configuration summary, as an event."""
        return {
            "type": "config",
            "model": self.model,
            "responseModalities": self.modalities,
            "mediaResolution": self.resolution,
            "voice": self.voice,
            "loadContext": self.load_context,
            "user": self.user.get_username(),
            "userId": self.user.pk,
            "conversationId": self.conversation_id,
            "notes": self.notes,
        }


class Prompter:
    """Ask a question on the terminal (or whatever stands for it) and read one answer line."""

    def __init__(self, stdin: IO[str], write: Callable[[str], None]) -> None:
        self.stdin = stdin
        self.write = write

    def ask(self, question: str, parse: Callable[[str], T], default: str = "") -> T:
        """Ask until ``parse`` takes the answer (an empty one, or the end of input, is ``default``)."""
        for attempt in range(ASKS):
            self.write(question)
            line = self.stdin.readline()
            if not line:  # end of input: nothing more will come
                self.write("\n")
                return parse(default)
            try:
                return parse(line.strip() or default)
            except ChoiceError as exc:
                if attempt == ASKS - 1:
                    raise
                self.write(f"{exc}\n")
        raise AssertionError("unreachable")


def choose(options: dict[str, Any], prompter: Prompter | None) -> LiveTestChoices:
    """Decide every answer: from its flag, else by asking (``prompter``), else its default."""

    def answer(flag: str, ask: Callable[[Prompter], T], parse: Callable[[str], T], default: str) -> T:
        if options.get(flag) is not None:
            return parse(str(options[flag]))
        return ask(prompter) if prompter is not None else parse(default)

    out = prompter.write if prompter is not None else (lambda text: None)
    out("\n🎙️ Interactive Live API Test\n============================\n\n⚙️ Live API Configuration:\n")
    out("==========================\n")
    default_model = settings.GEMINI_LIVE_MODEL
    model = answer(
        "model",
        lambda p: p.ask(f"Enter Live model (default: {default_model}): ", parse_model, default_model),
        parse_model,
        default_model,
    )
    out("\n📡 Response Modalities:\n1. TEXT only\n2. AUDIO only\n3. TEXT + AUDIO (default)\n")
    modalities = answer(
        "modality",
        lambda p: p.ask(f"Choose modality (1-3, default: {DEFAULT_MODALITY}): ", parse_modality, DEFAULT_MODALITY),
        parse_modality,
        DEFAULT_MODALITY,
    )
    out("\n🎥 Media Resolution:\n1. LOW\n2. MEDIUM (default)\n3. HIGH\n")
    resolution = answer(
        "resolution",
        lambda p: p.ask(
            f"Choose resolution (1-3, default: {DEFAULT_RESOLUTION}): ", parse_resolution, DEFAULT_RESOLUTION
        ),
        parse_resolution,
        DEFAULT_RESOLUTION,
    )
    out("\n🎤 Voice Configuration:\n1. Default voice\n2. Custom voice settings\n")
    voice = answer("voice", _ask_voice, parse_voice_flag, "default")
    out("\n🔗 Load Conversation Context:\n")
    load_context = answer(
        "load_context",
        lambda p: p.ask("Load previous messages into Live session? (y/n, default: y): ", parse_yes_no, "y"),
        parse_yes_no,
        "y",
    )
    out("\n👤 User:\n")
    user = answer("user", lambda p: p.ask("User (username, email or id): ", parse_user), parse_user, "")
    out("\n💬 Conversation:\n")
    conversation_id = answer(
        "conversation",
        lambda p: p.ask("Conversation ID (default: a new conversation): ", lambda v: parse_conversation(v, user)),
        lambda v: parse_conversation(v, user),
        "",
    )
    notes = []
    if load_context and conversation_id is None:
        notes.append("A new conversation has no messages to load.")
    return LiveTestChoices(
        model=model,
        modalities=modalities,
        resolution=resolution,
        voice=voice,
        load_context=load_context,
        user=user,
        conversation_id=conversation_id,
        talk=talk_settings_for_user(user=user),
        notes=notes,
    )


def current_models() -> str:
    """The Live models a conversation can use now, the default marked."""
    default = settings.GEMINI_LIVE_MODEL
    return ", ".join(f"{m.name} (default)" if m.name == default else m.name for m in talk_models())


def parse_model(value: str) -> str:
    """A Live model Talk can use; a retired, unknown or non-conversational one is refused with the current ones."""
    name = value.strip().removeprefix("models/")
    try:
        validate_model_name(name)
    except ProtocolError as exc:
        raise ChoiceError(f"{exc.message} Current Live models: {current_models()}.") from None
    retired = retired_live_model(name)
    if retired is not None:
        raise ChoiceError(
            f"{name} was retired: Google shut it down on {retired}. Current Live models: {current_models()}."
        )
    model = live_model(name)
    if model is None:
        raise ChoiceError(f"{name} is not a Live model Apsara knows. Current Live models: {current_models()}.")
    if not model.conversational:
        raise ChoiceError(not_conversational(model))
    if model not in talk_models():
        raise ChoiceError(
            f"{name} is served by Vertex AI only, and this server uses the Gemini API. "
            f"Current Live models: {current_models()}."
        )
    return name


def parse_modality(value: str) -> list[str]:
    """1-3 as in the seed, or the names (TEXT, AUDIO, TEXT+AUDIO)."""
    key = value.strip().upper().replace(" ", "").replace(",", "+")
    by_name = {"+".join(m): m for m in MODALITIES.values()} | {"AUDIO+TEXT": ["TEXT", "AUDIO"]}
    found = MODALITIES.get(key) or by_name.get(key)
    if found is None:
        raise ChoiceError(f"Modality must be 1 (TEXT), 2 (AUDIO) or 3 (TEXT + AUDIO), not {value[:20]!r}.")
    return list(found)


def parse_resolution(value: str) -> str:
    """1-3 as in the seed, or LOW, MEDIUM, HIGH."""
    key = value.strip().upper()
    if key in RESOLUTIONS:
        return RESOLUTIONS[key]
    if key in RESOLUTIONS.values():
        return key
    raise ChoiceError(f"Resolution must be 1 (LOW), 2 (MEDIUM) or 3 (HIGH), not {value[:20]!r}.")


def parse_voice_flag(value: str) -> str | None:
    """``default`` (or 1) for Gemini's default voice, else a voice name, checked by the bridge as the page's is."""
    name = value.strip()
    return None if name.lower() in ("", "default", "1") else name


def _ask_voice(prompter: Prompter) -> str | None:
    def parse(value: str) -> str:
        if value not in ("1", "2"):
            raise ChoiceError(f"Choose 1 (default voice) or 2 (custom voice), not {value[:20]!r}.")
        return value

    if prompter.ask("Choose voice (1-2, default: 1): ", parse, "1") == "1":
        return None

    def voice(value: str) -> str:
        try:
            return canonical_voice(value)
        except ProtocolError as exc:
            raise ChoiceError(exc.message) from None

    return prompter.ask(f"Voice name (default: {CUSTOM_VOICE_DEFAULT}): ", voice, CUSTOM_VOICE_DEFAULT)


def parse_yes_no(value: str) -> bool:
    key = value.strip().lower()
    if key in ("y", "yes", "true", "1"):
        return True
    if key in ("n", "no", "false", "0"):
        return False
    raise ChoiceError(f"Answer y or n, not {value[:20]!r}.")


def parse_user(value: str) -> User:
    if not value.strip():
        raise ChoiceError("A user is needed: give a username, an email address or a numeric id (--user).")
    user = user_find(reference=value.strip())
    if user is None:
        raise ChoiceError(f"No user {value[:60]!r} (give a username, an email address or a numeric id).")
    if not user.is_active:
        raise ChoiceError(f"User {user.get_username()!r} is inactive and cannot hold a live session.")
    return user


def parse_conversation(value: str, user: User) -> str | None:
    """A conversation of ``user`` (``conv_…``), or None for a new one (empty or ``new``)."""
    reference = value.strip()
    if reference.lower() in ("", "new"):
        return None
    try:
        return conversation_get_for_user(user=user, public_id=reference).public_id
    except Http404:
        raise ChoiceError(f"User {user.get_username()!r} has no conversation {reference[:60]!r}.") from None
