"""Context bridging (seed 002): a conversation's recent messages as Gemini turns, sent in batches.

The last ``HISTORY_MESSAGES`` messages, oldest first, become ``{role, parts: [{text}]}`` turns (transcriptions stand
in for audio, tool rows and empty texts are skipped) and go to Gemini as ``clientContent`` in batches of
``BATCH_SIZE`` with ``turnComplete`` false on all but the last batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.genai import types

from conversations.models import Conversation, Message

HISTORY_MESSAGES = 20
BATCH_SIZE = 10


@dataclass(frozen=True)
class History:
    """Turns to seed a live session with, and how many messages they came from."""

    messages_loaded: int
    turns: list[types.Content]

    def batches(self, size: int = BATCH_SIZE) -> list[tuple[list[types.Content], bool]]:
        """Split the turns into (batch, turn_complete) pairs; only the last batch completes the turn."""
        chunks = [self.turns[i : i + size] for i in range(0, len(self.turns), size)]
        return [(chunk, i == len(chunks) - 1) for i, chunk in enumerate(chunks)]


def message_text(message: Message) -> str:
    """The text a message contributes to the model's context (typed text, else its transcription)."""
    if message.role == Message.Role.USER:
        return (message.text or message.input_transcription).strip()
    return (message.text or message.output_transcription).strip()


def message_to_turn(message: Message) -> types.Content | None:
    """Convert one stored message to a Gemini turn, or None when it has nothing to say (or is a tool row)."""
    if message.role not in (Message.Role.USER, Message.Role.MODEL):
        return None
    text = message_text(message)
    if not text:
        return None
    return types.Content(role=str(message.role), parts=[types.Part(text=text)])


def load_history(conversation: Conversation, *, limit: int = HISTORY_MESSAGES) -> History:
    """Read the conversation's last ``limit`` messages (sync; call through database_sync_to_async)."""
    recent = list(Message.objects.filter(conversation=conversation).order_by("-created_at", "-id")[:limit])
    recent.reverse()
    turns = [turn for turn in (message_to_turn(m) for m in recent) if turn is not None]
    return History(messages_loaded=len(recent), turns=turns)
