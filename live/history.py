"""Context bridging (seed 002): a conversation's recent messages as Gemini turns, sent in batches.

The history itself (the last 20 messages, oldest first, transcriptions standing in for audio, empty texts skipped)
is ``conversations.selectors.conversation_history``; here it becomes ``types.Content`` turns sent as
``clientContent`` in batches of ``BATCH_SIZE`` with ``turnComplete`` false on all but the last batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.genai import types

from conversations.models import Conversation
from conversations.selectors import conversation_history
from live.server_messages import ContextLoaded, ContextLoadSkipped, context_load_skipped, context_loaded

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

    def announcement(self, *, session_id: str, conversation_id: str) -> ContextLoaded | ContextLoadSkipped:
        """What the browser is told once the history is sent: ``context_loaded``, or why nothing was."""
        if not self.turns:
            return context_load_skipped(
                session_id=session_id, conversation_id=conversation_id, reason="The conversation has no messages yet."
            )
        return context_loaded(
            session_id=session_id,
            conversation_id=conversation_id,
            messages_loaded=self.messages_loaded,
            turns_loaded=len(self.turns),
            batches=len(self.batches()),
        )


def load_history(conversation: Conversation, *, limit: int = HISTORY_MESSAGES) -> History:
    """Read the conversation's last ``limit`` messages as turns (sync; call through ``live.db_lanes``)."""
    history = conversation_history(conversation=conversation, limit=limit)
    return History(
        messages_loaded=history.messages_loaded,
        turns=[types.Content.model_validate(turn) for turn in history.turns],
    )
