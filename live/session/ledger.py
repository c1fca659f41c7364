"""Exactly once across Gemini connections: what was sent, what Gemini consumed, what it answered.

A resumed Gemini session is where its latest resumption handle left it. Since that handle, Gemini may have taken
input it never answered (replayed on the next connection, in order) and answered turns the handle does not cover
(restored as history, not replayed, or they would be answered twice). The ledger keeps both, per connection.
"""

from __future__ import annotations

import collections
from typing import Any, Literal, NamedTuple

from google.genai import types

UNCONSUMED_ITEMS = 250  # sent but not yet covered by a resumption handle: replayed after a reconnect (~10 s)
_FAILED_SEND_INDEX = 1_000_000  # above any index Gemini can report consumed: a failed send is always replayed


class Item(NamedTuple):
    """One thing to send to Gemini, in order.

    A tuple, not a dataclass: up to ``UNCONSUMED_ITEMS`` of them per session outlive a few collections, and a tuple
    of bytes and strings is untracked by the garbage collector, so they do not pile up in its oldest generation
    (whose full passes stalled every socket for tens of ms).
    """

    kind: Literal[
        "audio",
        "text",
        "video",
        "activity_start",
        "activity_end",
        "audio_stream_end",
        "tool_response",
        "history",  # turns Gemini answered but its resumption handle did not yet cover, restored after a reconnect
        "wake",  # no-op: wakes an idle sender when there is something to send again
    ]
    data: Any = None
    mime: str = ""
    turn_complete: bool = True


class Exchange:
    """The text of one user turn and the model's answer, for restoring it as history after a reconnect."""

    __slots__ = ("heard", "model", "transcribed")

    def __init__(self) -> None:
        self.heard: list[str] = []  # typed text and the transcription of what was said
        self.model: list[str] = []  # what the model said (transcription) or wrote
        self.transcribed = False  # Gemini has transcribed speech of this turn

    def contents(self) -> list[types.Content]:
        """The exchange as Gemini history turns (empty sides left out)."""
        turns = []
        for role, pieces in (("user", self.heard), ("model", self.model)):
            text = "".join(pieces).strip()
            if text:
                turns.append(types.Content(role=role, parts=[types.Part(text=text)]))
        return turns


class Replay(NamedTuple):
    """What a new connection must be sent first, and whether Gemini will transcribe some speech a second time."""

    items: list[Item]
    repeats_transcription: bool


class Ledger:
    """The client-message indexes of the open connection and what a reconnect must restore."""

    def __init__(self) -> None:
        self.sent_index = 0  # client messages sent on the open connection (Gemini counts them from 1)
        self.unconsumed: collections.deque[tuple[int, Item]] = collections.deque(maxlen=UNCONSUMED_ITEMS)
        self.answered: list[types.Content] = []  # answered since the latest handle
        self.exchange = Exchange()  # the turn under way
        self._reply_from_index: int | None = None  # the last input sent before the model began its reply

    @property
    def pending(self) -> bool:
        """Whether a resume from the latest handle would need a replay (the next handle would cover it)."""
        return bool(self.unconsumed or self.answered)

    def connection_opened(self) -> None:
        """A new connection counts its client messages from zero."""
        self.sent_index = 0
        self.unconsumed.clear()

    def context_sent(self) -> None:
        """A batch of history went out (counted by Gemini, never replayed: a reload sends it again)."""
        self.sent_index += 1

    def sent(self, item: Item) -> None:
        """``item`` went out on the open connection."""
        self.sent_index += 1
        self.unconsumed.append((self.sent_index, item))

    def send_failed(self, item: Item) -> None:
        """Sending ``item`` failed as its connection went away: it goes again on the next one."""
        self.unconsumed.append((self.sent_index + _FAILED_SEND_INDEX, item))

    def heard(self, text: str, *, transcribed: bool = False) -> None:
        """The user typed ``text`` or Gemini transcribed it from speech."""
        self.exchange.heard.append(text)
        self.exchange.transcribed = self.exchange.transcribed or transcribed

    def replying(self, text: str = "") -> None:
        """The model is producing its reply: note the input it answers (everything sent so far)."""
        if self._reply_from_index is None:
            self._reply_from_index = self.sent_index
        if text:
            self.exchange.model.append(text)

    def unanswered_words(self) -> str:
        """What the user said or typed in the turn under way (that Gemini has not answered)."""
        return "".join(self.exchange.heard).strip()

    def forget_unanswered(self) -> None:
        """The turn under way is being asked again as text (``retry_turn``): its words are noted anew as they are
        sent, so a restore after a reconnect does not hold them twice."""
        self.exchange.heard.clear()

    def turn_answered(self) -> None:
        """A turn is complete: the input sent before its reply began is consumed and answered, so a reconnect before
        the next handle restores the exchange as history instead of replaying it."""
        cut = self._reply_from_index
        self._reply_from_index = None
        if cut is None:
            return
        self._consumed_up_to(cut)
        self.answered.extend(self.exchange.contents())
        self.exchange = Exchange()

    def resumption_update(self, *, consumed_index: int | None, new_handle: bool) -> None:
        """Gemini said what it consumed and/or issued a new handle."""
        if consumed_index is not None:
            self._consumed_up_to(consumed_index)
        elif new_handle:
            self.unconsumed.clear()  # no index reported: the handle covers everything sent so far
        if new_handle:
            self.answered = []  # a handle issued after a turn completed covers that turn

    def take_replay(self) -> Replay:
        """Empty the ledger into what the next connection must be sent before anything newer.

        Audio Gemini already transcribed is transcribed again; the recorder keeps the first transcription.
        """
        items = [item for _, item in self.unconsumed]
        if self.answered:
            items.insert(0, Item("history", list(self.answered)))
        repeats = self.exchange.transcribed and any(item.kind == "audio" for item in items)
        self.answered = []
        self.unconsumed.clear()
        self.exchange = Exchange()  # refilled as the replay is sent and transcribed again
        self._reply_from_index = None
        return Replay(items, repeats)

    def _consumed_up_to(self, index: int) -> None:
        while self.unconsumed and self.unconsumed[0][0] <= index:
            self.unconsumed.popleft()
