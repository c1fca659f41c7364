"""Record a live session: user and model turns (PCM → WAV), transcripts, typed text and tool calls → Messages.

The bridge feeds events from the audio hot path with cheap synchronous calls; turns are cut at their boundaries and
handed to a per-session writer task through a bounded queue, which saves them through ``conversations.services`` in a
worker thread (the user's lane, ``live.db_lanes``), each as a typed ``TurnRecord``. ``close()`` flushes every
finished and partial turn however the session ends. Each saved message is announced to the user's other pages by
``conversations.services.message_create`` (after commit), like a typed one.

User turns: the mic streams continuously, silence included. A user turn starts at the first voiced frame (with
``pad`` of audio before it) and is cut when the model starts answering; trailing silence beyond ``pad`` after the
last voiced frame is dropped, so a turn is what was said, not the minutes spent listening.
"""

from __future__ import annotations

import collections
import logging
import math
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from conversations.models import Conversation, Message, new_message_id
from live.protocol import INPUT_SAMPLE_RATE, OUTPUT_SAMPLE_RATE
from live.turns import PcmBuffer, TurnRecord, TurnWriter

logger = logging.getLogger(__name__)


def pcm_rms(pcm: bytes) -> float:
    """Root mean square of PCM16LE samples (every 8th sample: plenty for a speech gate, cheap per frame)."""
    usable = len(pcm) - len(pcm) % 2
    if usable < 2:
        return 0.0
    samples = memoryview(pcm)[:usable].cast("h")[::8]
    return math.sqrt(sum(map(operator.mul, samples, samples)) / len(samples))


@dataclass
class _UserTurn:
    started_at: datetime
    pcm: PcmBuffer = field(default_factory=PcmBuffer)
    voiced_until: int = 0  # byte offset just after the last voiced frame
    transcript: list[str] = field(default_factory=list)


@dataclass
class _ModelTurn:
    started_at: datetime
    pcm: PcmBuffer = field(default_factory=PcmBuffer)
    transcript: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False


class Recorder:
    """Per-session turn assembler and writer."""

    def __init__(
        self,
        *,
        conversation: Conversation,
        live_config: dict[str, Any],
        on_saved: Callable[[Message], Awaitable[None]] | None = None,
        pad_ms: int = 300,
        silence_rms: float = 200.0,
        max_turn_seconds: float = 300.0,
        queue_size: int = 64,
    ) -> None:
        self.conversation = conversation
        self.live_config = live_config
        self.writer = TurnWriter(
            conversation=conversation, live_config=live_config, on_saved=on_saved, queue_size=queue_size
        )
        self._pad_bytes = int(INPUT_SAMPLE_RATE * 2 * pad_ms / 1000) & ~1
        self._silence_rms = silence_rms
        self._max_user_bytes = int(INPUT_SAMPLE_RATE * 2 * max_turn_seconds)
        self._max_model_bytes = int(OUTPUT_SAMPLE_RATE * 2 * max_turn_seconds)
        self._preroll: collections.deque[bytes] = collections.deque()
        self._preroll_bytes = 0
        self._user: _UserTurn | None = None  # being spoken
        self._pending_user: _UserTurn | None = None  # cut, waiting for its transcript until the model turn ends
        self._held: list[_UserTurn] = []  # earlier cut turns not yet saved (several cuts before a model turn)
        self._model: _ModelTurn | None = None
        self._repeat_pending = False  # the next input transcription repeats one already recorded (see replaying)
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer task."""
        self.writer.start()

    async def close(self) -> None:
        """Flush every finished and partial turn, then wait for the writer to save them all."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._model is not None:
                # The session ended before the model finished speaking: keep what was heard, flagged.
                self._model.interrupted = True
            await self._finish_model_turn()
            self._cut_user_turn()
            await self._flush_user_turn()
        finally:
            await self.writer.close()

    async def drain(self) -> None:
        """Wait until everything queued so far is saved."""
        await self.writer.drain()

    # -- hot path: audio and transcripts -------------------------------------------------------------------------

    def user_audio(self, pcm: bytes) -> bool:
        """Take one frame of the user's 16 kHz PCM; return whether it is voiced (speech, not silence)."""
        voiced = pcm_rms(pcm) >= self._silence_rms
        turn = self._user
        if turn is None:
            if not voiced:
                self._preroll.append(pcm)
                self._preroll_bytes += len(pcm)
                while self._preroll and self._preroll_bytes - len(self._preroll[0]) >= self._pad_bytes:
                    self._preroll_bytes -= len(self._preroll.popleft())
                return False
            preroll = b"".join(self._preroll)[-self._pad_bytes :] if self._pad_bytes else b""
            self._preroll.clear()
            self._preroll_bytes = 0
            started = timezone.now() - timedelta(seconds=len(preroll) / 2 / INPUT_SAMPLE_RATE)
            turn = self._user = _UserTurn(started_at=started, pcm=PcmBuffer(preroll))
        turn.pcm.append(pcm)
        if voiced:
            turn.voiced_until = len(turn.pcm)
        if len(turn.pcm) >= self._max_user_bytes:
            self._cut_user_turn()
        return voiced

    def expect_repeated_transcription(self) -> None:
        """Gemini is being sent again audio it already transcribed (a reconnect replays what its resumption handle
        did not cover): the transcription that comes back is the same turn's, already recorded, not a new turn."""
        self._repeat_pending = True

    def input_transcription(self, text: str) -> None:
        """Add a piece of the transcript of what the user said."""
        if not text:
            return
        if self._repeat_pending:
            return  # the repeat lasts until the model answers (model_started) or the user speaks anew
        target = self._pending_user or self._user
        if target is None:
            target = self._pending_user = _UserTurn(started_at=timezone.now())
        target.transcript.append(text)

    async def model_audio(self, pcm: bytes) -> None:
        """Take a chunk of the model's 24 kHz PCM."""
        turn = self._model_turn()
        turn.pcm.append(pcm)
        if len(turn.pcm) >= self._max_model_bytes:
            await self._finish_model_turn()

    def output_transcription(self, text: str) -> None:
        """Add a piece of the transcript of what the model said."""
        if text:
            self._model_turn().transcript.append(text)

    def model_text(self, text: str) -> None:
        """Add text the model wrote (text parts)."""
        if text:
            self._model_turn().text.append(text)

    def usage(self, usage: dict[str, Any]) -> None:
        """Attach token usage to the current model turn (usage is reported with its end)."""
        if usage and self._model is not None:
            self._model.usage = usage

    def interrupted(self) -> None:
        """Flag the current model turn as cut off by the user (barge-in)."""
        if self._model is not None:
            self._model.interrupted = True

    def model_started(self) -> None:
        """The model began answering: what the user said so far is one turn."""
        self._model_turn()

    async def turn_complete(self) -> None:
        """The model's turn ended: save the user turn it answered, then the model turn."""
        if self._model is None:
            # A turn Gemini ended with nothing (a silent turn): the user's turn still ends here, and is saved.
            self._cut_user_turn()
        await self._finish_model_turn()

    async def user_activity_end(self) -> None:
        """Push-to-talk released: the user's turn ends here."""
        self._cut_user_turn()

    # -- discrete events -----------------------------------------------------------------------------------------

    async def typed_text(self, text: str) -> None:
        """Save text the user typed mid-session."""
        await self._enqueue(Message.Role.USER, created_at=timezone.now(), text=text)

    async def tool_call(self, *, call_id: str | None, name: str, args: dict[str, Any]) -> datetime:
        """Note a function call by the model (the user's turn ends here); return when it happened."""
        self._cut_user_turn()
        return timezone.now()

    async def tool_result(
        self,
        *,
        call_id: str | None,
        name: str,
        args: dict[str, Any],
        response: dict[str, Any] | None,
        called_at: datetime,
        cancelled: bool = False,
    ) -> None:
        """Save one function call with its result (or its cancellation)."""
        await self._enqueue(
            Message.Role.TOOL,
            created_at=called_at,
            tool_data={"id": call_id, "name": name, "args": args, "response": response, "cancelled": cancelled},
        )

    # -- internals -----------------------------------------------------------------------------------------------

    def _model_turn(self) -> _ModelTurn:
        self._repeat_pending = False
        if self._model is None:
            self._cut_user_turn()
            self._model = _ModelTurn(started_at=timezone.now())
        return self._model

    def _cut_user_turn(self) -> None:
        turn = self._user
        if turn is None:
            return
        self._user = None
        keep = min(len(turn.pcm), turn.voiced_until + self._pad_bytes)
        turn.pcm.truncate(keep)
        if self._pending_user is not None:
            # Two cuts without a model turn between them (e.g. speech, tool call, more speech): keep both, in order.
            self._held.append(self._pending_user)
        self._pending_user = turn

    async def _flush_user_turn(self) -> None:
        held, self._held = self._held, []
        if self._pending_user is not None:
            held.append(self._pending_user)
            self._pending_user = None
        for turn in held:
            transcript = "".join(turn.transcript).strip()
            if not turn.pcm and not transcript:
                turn.pcm.close()
                continue
            await self._enqueue(
                Message.Role.USER,
                created_at=turn.started_at,
                input_transcription=transcript,
                buffer=turn.pcm if turn.pcm else None,
                sample_rate=INPUT_SAMPLE_RATE,
            )

    async def _finish_model_turn(self) -> None:
        turn = self._model
        self._model = None
        await self._flush_user_turn()
        if turn is None:
            return
        transcript = "".join(turn.transcript).strip()
        text = "".join(turn.text).strip() or transcript
        if not turn.pcm and not text:
            turn.pcm.close()
            return
        await self._enqueue(
            Message.Role.MODEL,
            created_at=turn.started_at,
            text=text,
            output_transcription=transcript,
            buffer=turn.pcm if turn.pcm else None,
            sample_rate=OUTPUT_SAMPLE_RATE,
            usage=turn.usage,
            interrupted=turn.interrupted,
        )

    async def _enqueue(
        self,
        role: Message.Role,
        *,
        created_at: datetime,
        text: str = "",
        input_transcription: str = "",
        output_transcription: str = "",
        buffer: PcmBuffer | None = None,
        sample_rate: int = 0,
        usage: dict[str, Any] | None = None,
        tool_data: dict[str, Any] | None = None,
        interrupted: bool = False,
    ) -> None:
        turn = TurnRecord(
            public_id=new_message_id(),  # the turn's idempotency key: every save attempt uses it
            role=role,
            created_at=created_at,
            text=text,
            input_transcription=input_transcription,
            output_transcription=output_transcription,
            sample_rate=sample_rate,
            usage=usage or {},
            tool_data=tool_data or {},
            interrupted=interrupted,
        )
        await self.writer.put(turn, buffer)
