"""Recorded turns on their way to the database: the audio buffer, the stored form and the writer.

The recorder (``live.recorder``) assembles turns as a session goes; each finished turn becomes a ``TurnRecord``,
handed to the session's ``TurnWriter``: one task that saves turns in order, in the user's database lane
(``live.db_lanes``), retrying a failed save with the same message id so that a save that did commit is not stored
twice. The bounded queue is the back pressure: it blocks only when the database has fallen far behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import tenacity

from conversations.audio import pcm16_to_wav
from conversations.models import Conversation, Message
from conversations.services import message_create
from live import db_lanes

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


def save_turn(*, conversation: Conversation, live_config: dict[str, Any], turn: TurnRecord) -> Message:
    """Store one recorded turn as a live message (its audio as WAV), once: a retry of a save that did commit (the
    error came after) finds the message by its id, chosen before the first attempt, instead of storing it again."""
    saved = Message.objects.filter(public_id=turn.public_id).first()
    if saved is not None:
        return saved
    return turn_message_create(conversation=conversation, live_config=live_config, turn=turn)


def turn_message_create(*, conversation: Conversation, live_config: dict[str, Any], turn: TurnRecord) -> Message:
    """Store one turn as a new live message, its audio packed as WAV: the one way a live turn becomes a row, whether
    the server's recorder heard it (proxied) or the page posted it (direct, ``live.direct_turns``)."""
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


class TurnWriter:
    """Save one session's turns in order, off the audio path; ``close()`` waits until every one is saved."""

    def __init__(
        self,
        *,
        conversation: Conversation,
        live_config: dict[str, Any],
        on_saved: Callable[[Message], Awaitable[None]] | None = None,
        queue_size: int = 64,
    ) -> None:
        self.conversation = conversation
        self.live_config = live_config
        self._on_saved = on_saved
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self.saved = 0
        self.failed = 0

    def start(self) -> None:
        """Start the writer task (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._write_loop(), name="live-recorder-writer")

    async def put(self, turn: TurnRecord, buffer: PcmBuffer | None = None) -> None:
        """Queue ``turn`` (its audio, if any, still in ``buffer``); blocks only when the database is far behind."""
        self.start()
        await self._jobs.put(_Job(turn, buffer))

    async def drain(self) -> None:
        """Wait until everything queued so far is saved."""
        if self._task is not None:
            await self._jobs.join()

    async def close(self) -> None:
        """Save everything queued, then stop the task (even if the caller is cancelled meanwhile)."""
        self.start()
        await self._jobs.put(None)
        assert self._task is not None
        await asyncio.shield(self._task)

    async def _write_loop(self) -> None:
        save = db_lanes.for_user(self.conversation.owner_id, save_turn)
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
