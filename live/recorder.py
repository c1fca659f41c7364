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

import asyncio
import collections
import dataclasses
import logging
import math
import operator
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import tenacity
from django.utils import timezone

from conversations.audio import pcm16_to_wav
from conversations.models import Conversation, Message, new_message_id
from conversations.services import message_create
from live import db_lanes
from live.protocol import INPUT_SAMPLE_RATE, OUTPUT_SAMPLE_RATE

logger = logging.getLogger(__name__)

SAVE_ATTEMPTS = 3
SAVE_BACKOFF_SECONDS = 0.4  # then 0.8 s: a database that blips recovers, the turn is not held for long


def _log_failed_attempt(state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    logger.error("Saving a live turn failed (attempt %d); retrying", state.attempt_number, exc_info=error)


class PcmBuffer:
    """Growing PCM of one turn: in memory up to ``memory_bytes``, then in a temporary file (a long turn, many
    sessions), so a session's memory stays bounded however long people talk."""

    def __init__(self, initial: bytes = b"", *, memory_bytes: int = 128 * 1024) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=memory_bytes)  # noqa: SIM115 (closed by read/close)
        self._size = 0
        if initial:
            self.append(initial)

    def append(self, data: bytes) -> None:
        """Add samples at the end."""
        self._file.write(data)
        self._size += len(data)

    def __len__(self) -> int:
        return self._size

    def truncate(self, size: int) -> None:
        """Drop everything after ``size`` bytes."""
        if size < self._size:
            self._file.truncate(size)
            self._file.seek(size)
            self._size = size

    def read(self) -> bytes:
        """Return all samples and release the buffer (in the writer's thread: it may read a file)."""
        self._file.seek(0)
        data = self._file.read()
        self.close()
        return data

    def close(self) -> None:
        """Release the buffer."""
        self._file.close()


@dataclass(frozen=True, kw_only=True)
class TurnRecord:
    """One turn of a live session as it is stored: who spoke, when, what was said or heard, and its audio.

    ``public_id`` is chosen when the turn is cut, before its first save: every save attempt uses it.
    """

    public_id: str
    role: Message.Role
    created_at: datetime
    text: str = ""
    input_transcription: str = ""
    output_transcription: str = ""
    pcm: bytes = b""  # PCM16LE mono at ``sample_rate``; empty when the turn has no audio
    sample_rate: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    tool_data: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False


def _save_turn(*, conversation: Conversation, live_config: dict[str, Any], turn: TurnRecord) -> Message:
    """Store one recorded turn as a live message (its audio as WAV), once: a retry of a save that did commit (the
    error came after) finds the message by its id, chosen before the first attempt, instead of storing it again."""
    saved = Message.objects.filter(public_id=turn.public_id).first()
    if saved is not None:
        return saved
    return message_create(
        conversation=conversation,
        role=turn.role,
        message_type=Message.MessageType.LIVE,
        text=turn.text,
        audio=pcm16_to_wav(turn.pcm, sample_rate=turn.sample_rate) if turn.pcm else None,
        input_transcription=turn.input_transcription,
        output_transcription=turn.output_transcription,
        live_config=live_config,
        tool_data=turn.tool_data,
        usage=turn.usage,
        interrupted=turn.interrupted,
        created_at=turn.created_at,
        public_id=turn.public_id,
    )


@dataclass
class _Job:
    """A turn waiting for the writer; its audio is still in a buffer, read by the writer (perhaps from disk)."""

    turn: TurnRecord
    buffer: PcmBuffer | None = None


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
        self._on_saved = on_saved
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
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=queue_size)
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.saved = 0
        self.failed = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer task."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="live-recorder-writer")

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
            if self._writer is None:
                self.start()
            await self._jobs.put(None)
            assert self._writer is not None
            await asyncio.shield(self._writer)

    async def drain(self) -> None:
        """Wait until everything queued so far is saved."""
        if self._writer is not None:
            await self._jobs.join()

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
        if self._writer is None:
            self.start()
        # Blocks only when the database has fallen far behind: the bounded queue is the back pressure.
        await self._jobs.put(_Job(turn, buffer))

    async def _write_loop(self) -> None:
        save = db_lanes.for_user(self.conversation.owner_id, _save_turn)
        while True:
            job = await self._jobs.get()
            if job is None:
                self._jobs.task_done()
                return
            try:
                await self._save(save, job)
            finally:
                self._jobs.task_done()

    async def _save(self, save: Callable[..., Awaitable[Message]], job: _Job) -> None:
        turn = job.turn
        if job.buffer is not None:
            # Read once (perhaps from disk): retries reuse it.
            turn = dataclasses.replace(turn, pcm=await asyncio.to_thread(job.buffer.read))
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(SAVE_ATTEMPTS),
            wait=tenacity.wait_exponential(multiplier=SAVE_BACKOFF_SECONDS),
            before_sleep=_log_failed_attempt,
            reraise=True,
        )
        try:
            message: Message = await retrying(
                save, conversation=self.conversation, live_config=self.live_config, turn=turn
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Saving a live %s turn failed %d times; it is not stored", turn.role, SAVE_ATTEMPTS)
            self.failed += 1
            return
        self.saved += 1
        if self._on_saved is not None:  # conversations.events announces the message; this is an observer's hook
            try:
                await self._on_saved(message)
            except Exception:
                logger.exception("The on_saved hook failed for a saved live message")
