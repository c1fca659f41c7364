"""The session's ``LiveSession`` row, kept current from the async side: opened, handle saves, VAD, the ending.

Every write names this socket as the holder: once another process has taken the session over, they change nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import tenacity
from django.db import DatabaseError

from live import services
from live.models import LiveSession
from live.protocol import VadConfig

logger = logging.getLogger(__name__)

FINISH_ATTEMPTS = 5  # about 4 s of retries

Lane = Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]


class SessionRow:
    """Writes to one live session's row, through the user's database lane, off the audio path."""

    def __init__(self, *, pk: int, public_id: str, holder: str, lane: Lane) -> None:
        self.pk = pk
        self.public_id = public_id
        self.holder = holder  # the consumer's channel name, as the row has it while this socket holds the session
        self._activate = lane(services.live_session_activate)
        self._store_handle = lane(services.live_session_store_handle)
        self._finish = lane(services.live_session_finish)
        self._store_vad = lane(services.live_session_store_vad)
        self._pending_handle: str | None = None
        self._handle_saver: asyncio.Task[None] | None = None

    async def opened(self) -> None:
        """Gemini accepted the session: it is active, held by this process."""
        await self._activate(live_session_pk=self.pk, holder=self.holder)

    def save_handle(self, handle: str) -> None:
        """Store the latest resumption handle (a browser that reconnects resumes from it)."""
        self._pending_handle = handle
        if self._handle_saver is None or self._handle_saver.done():
            self._handle_saver = asyncio.create_task(self._save_handles())

    async def _save_handles(self) -> None:
        # One writer, latest handle wins: a burst of updates costs one or two writes, never a growing backlog.
        while self._pending_handle is not None:
            handle, self._pending_handle = self._pending_handle, None
            try:
                await self._store_handle(live_session_pk=self.pk, handle=handle, holder=self.holder)
            except Exception:
                logger.exception("live: storing the resumption handle of %s failed", self.public_id)

    async def store_vad(self, vad: VadConfig) -> None:
        """Keep new voice-activity settings with the session, for a browser that resumes it."""
        try:
            await self._store_vad(live_session_pk=self.pk, vad=vad, holder=self.holder)
        except Exception:
            logger.exception("live: storing the VAD settings of %s failed", self.public_id)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The writer task under way, if any (to cancel when the session ends)."""
        return [self._handle_saver] if self._handle_saver is not None else []

    async def finish(
        self,
        *,
        status: LiveSession.Status,
        handle: str | None,
        error_code: str | None,
        error: str | None,
        counters: services.LiveSessionCounters,
        reconnects: int,
    ) -> None:
        """Record how the session ended, retrying a few seconds (a row left open would keep the session in use by
        this process for as long as it runs); a failure after that is logged: the session is over either way."""
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(FINISH_ATTEMPTS),
            wait=tenacity.wait_exponential(multiplier=0.25, max=2),
            retry=tenacity.retry_if_exception_type(DatabaseError),
            reraise=True,
        )
        try:
            await retrying(
                self._finish,
                live_session_pk=self.pk,
                status=status,
                handle=handle,
                error_code=error_code,
                error=error,
                counters=counters,
                reconnects=reconnects,
                holder=self.holder,
            )
        except Exception:
            logger.exception("live: recording the end of %s failed", self.public_id)
