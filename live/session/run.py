"""One live session on one socket: its lifecycle from the first Gemini connection to the flushed recording.

A ``LiveRun`` runs three kinds of task:

- the lifecycle task: connect (``Link.open`` retries where that can help), load context, then relay
  (``Inbound``) until the link says the connection must change, and move to the next connection;
- the sender (``Outbound``): drains the bounded input queue into Gemini while the link lets input flow, and
  replays what a lost connection had not consumed (``Ledger``);
- helpers: tool calls (``ToolCalls``), the row's handle saves (``SessionRow``), the recorder's writer.

Audio never crosses the channel layer; the only awaits on the audio path are the socket sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from django.utils import timezone

from conversations.models import Message
from gemini.errors import UpstreamFailure, classify, is_upstream_error
from live import memory, metrics, services
from live.history import load_history
from live.lease import lease
from live.models import LiveSession
from live.protocol import ErrorCode, VadConfig
from live.server_messages import (
    EndReason,
    session_created,
    session_ended,
    session_error,
    session_message,
    session_reconnecting,
    session_resumed,
    vad_configured,
)
from live.session.link import SessionFailed, when_to_switch
from live.session.parts import assemble
from live.session_plan import SessionPlan
from usage import metrics as usage_metrics
from usage import quotas as usage_quotas

if TYPE_CHECKING:
    from live.session.client import LiveClient

logger = logging.getLogger(__name__)

StopReason = Literal["client", "admin", "disconnect", "drain", "backpressure", "error", "upstream", "quota"]
_ROW_STATUS = {
    "disconnect": LiveSession.Status.DETACHED,
    "drain": LiveSession.Status.DETACHED,
    "error": LiveSession.Status.FAILED,
}
_RESUMABLE: tuple[StopReason, ...] = ("disconnect", "drain")  # the row keeps the handle for the next socket
_ERROR_CODES: dict[StopReason, str] = {
    "backpressure": "BACKPRESSURE",
    "drain": services.SERVER_RESTART,
    "quota": ErrorCode.QUOTA_EXCEEDED,
}
_ERRORS: dict[StopReason, str] = {
    "drain": "Its server process shut down; the session was handed over.",
    "quota": "A daily quota was reached during the call; it was ended.",
}


class LiveRun:
    """One live session: the Gemini link, the relay in both directions, the recorder, and how it all ends."""

    def __init__(
        self,
        *,
        client: LiveClient,
        row: LiveSession,
        plan: SessionPlan,
        load_context: bool,
        handle: str | None,
        claim: services.Claim | None,
        started: float,
    ) -> None:
        """``claim``: how the session was taken for this socket, when it is resumed (None: a new session)."""
        self.client = client
        self.user = client.user
        self.public_id = row.public_id
        assert row.conversation is not None  # a session row always has its conversation
        self.conversation = row.conversation
        self.plan = plan
        self.load_context = load_context
        self.claim = claim
        self.resumed = claim is not None
        self._started = started
        self._helpers: set[asyncio.Task[Any]] = set()
        parts = assemble(
            client=client,
            row=row,
            conversation=self.conversation,
            plan=plan,
            handle=handle,
            spawn=self._spawn,
            on_saved=self._after_saved,
        )
        self.counters, self.reply_clock, self.rate_guard = parts.counters, parts.reply_clock, parts.rate_guard
        self.recorder, self.ledger, self.link, self.row = parts.recorder, parts.ledger, parts.link, parts.row
        self.outbound, self.tool_calls, self.inbound = parts.outbound, parts.tool_calls, parts.inbound
        self._main: asyncio.Task[None] | None = None
        self._finishing: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._stop_reason: StopReason | None = None
        self._active_counted = False
        self._vad_ack_pending = False
        self._reconnects = 0
        self._draining = False
        self._quota_stop: asyncio.Task[None] | None = None
        # What ended the session, classified, once it has ended (None: nothing failed); the browser sees its code and
        # message, an in-process runner (``manage.py live_test``) explains its cause.
        self.failure: UpstreamFailure | None = None

    # -- control (called by the client) ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the lifecycle task."""
        self.recorder.start()
        self._main = asyncio.create_task(self._lifecycle(), name=f"live-run-{self.public_id}")

    async def stop(self, reason: StopReason) -> None:
        """End the session (idempotent) and wait until everything is flushed."""
        if self._stop_reason is None:
            self._stop_reason = reason
        main = self._main
        if main is None or asyncio.current_task() is main:
            return
        # asyncio.wait_for on Python 3.11 can swallow a cancellation that lands as its inner task completes: cancel
        # until the lifecycle task has actually ended, or stop() (and the socket) would wait forever.
        while not main.done():
            main.cancel()
            await asyncio.wait({main}, timeout=1.0)
        if self._finishing is not None:
            await self._finishing

    async def drain(self) -> bool:
        """The process is shutting down: hand the session over and wait until it is let go; return whether it was.

        The model finishes its turn (the person hears the end of the answer) and the handle that covers it arrives,
        within half of ``LIVE_DRAIN_SECONDS``; then the session stops as ``drain``: its row detached with that handle
        (flagged SERVER_RESTART), everything recorded flushed, the browser told to reconnect (see ``_finish``). Any
        process resumes it from there. A session already ending (another reason) is waited for.
        """
        main = self._main
        if main is None:
            return False
        if self._stop_reason is None:
            self._draining = True
            self.link.hand_over(
                settings.LIVE_DRAIN_SECONDS / 2, model_busy=self.inbound.model_busy, pending=self.ledger.pending
            )
        await asyncio.wait({main})
        if self._finishing is not None:
            await self._finishing
        return self._stop_reason == "drain"

    def configure_vad(self, vad: VadConfig) -> None:
        """Apply new VAD settings by resuming the Gemini session with them.

        Switching between automatic detection and push-to-talk applies at once (after the handle that covers what
        was already sent, up to a second): input that follows (e.g. an activity_start) waits for the new
        connection, since the old one would refuse it. Tuning (sensitivity, silence) waits for the model to finish
        speaking rather than cutting it off.
        """
        mode_change = bool(vad.get("enabled", True)) != self.link.vad_enabled
        self.plan.vad = vad
        self._vad_ack_pending = True
        self._spawn(self.row.store_vad(vad))
        self.link.switch(
            when_to_switch(cut_turn=mode_change, model_busy=self.inbound.model_busy, pending=self.ledger.pending),
            "configure",
        )

    async def _after_saved(self, message: Message) -> None:
        """A turn was stored, and counted in the person's usage: a daily quota it used up ends the call, gracefully.

        The page is told first (``session_error`` QUOTA_EXCEEDED, with when the quota lifts), then the session ends
        as any other does (``session_ended`` reason ``quota``): the recorder flushes every turn before the row ends.
        """
        if self._stop_reason is not None or self._quota_stop is not None:
            return
        exceeded = await self.client.db(usage_quotas.quota_exceeded)(user=self.user, live=True)
        if exceeded is None or self._stop_reason is not None or self._quota_stop is not None:
            return
        usage_metrics.quota_refused(exceeded.kind)
        logger.info("live: session %s reached its user's %s quota; ending it", self.public_id, exceeded.kind)
        await self.client.send(
            session_error(
                self.public_id,
                ErrorCode.QUOTA_EXCEEDED,
                f"{exceeded.message} This call ends now; everything said in it is saved.",
                retry_after_ms=exceeded.seconds_left() * 1000,
                resets_at=exceeded.resets_at_iso,
            )
        )
        # Its own task, not a helper: helpers are cancelled by the very ending it starts. Called from the recorder's
        # writer, it must not wait here for the ending (which waits for the writer).
        self._quota_stop = asyncio.create_task(self.stop("quota"), name=f"live-quota-{self.public_id}")

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def _lifecycle(self) -> None:
        failure: UpstreamFailure | None = None
        try:
            await self._open(initial=True)
            self._sender = asyncio.create_task(self.outbound.run(), name=f"live-send-{self.public_id}")
            while True:
                exc = await self._relay()
                if self._draining:
                    self._stop_reason = self._stop_reason or "drain"
                    break
                await self._reconnect(exc)
        except SessionFailed as failed:
            failure = failed.failure
            if self._stop_reason is None:
                self._stop_reason = "error"
        except asyncio.CancelledError:
            pass  # stop(): the reason is set
        except Exception as exc:  # a bug: end cleanly, keep what was recorded, tell the browser
            logger.exception("live: session %s crashed", self.public_id)
            failure = UpstreamFailure(
                ErrorCode.INTERNAL_ERROR, "The server failed; the error is logged.", False, detail=repr(exc)
            )
            self._stop_reason = self._stop_reason or "error"
        finally:
            # Flushing must finish even if this task is cancelled again meanwhile; stop() awaits it.
            self._finishing = asyncio.ensure_future(self._finish(failure))
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._finishing)

    async def _open(self, *, initial: bool) -> None:
        """Connect (resuming if there is a handle); load the conversation when the connection started afresh."""
        # A new session asks for history if the browser did; a resumed or restarted one needs it whenever it cannot
        # resume Gemini's state (no handle, or the handle was refused).
        history_if_fresh = self.load_context if initial and not self.resumed else True
        with_history = await self.link.open(history_if_fresh=history_if_fresh)
        self.ledger.connection_opened()
        if initial:
            await self._announce_open(context_reloaded=with_history)
        elif with_history:
            self.outbound.drop_history_replay()
        if with_history:
            try:
                await self._load_context(announce=initial and not self.resumed)
            except Exception as exc:
                raise SessionFailed(classify(exc)) from exc

    async def _load_context(self, *, announce: bool) -> None:
        """Send the conversation's recent messages as turns; on a mid-session restart, without asking for a reply."""
        if not announce:
            await self.recorder.drain()  # the history must include what this session already recorded
        history = await self.client.db(load_history)(self.conversation)
        for turns, last in history.batches():
            await self.link.session.send_client_content(turns=turns, turn_complete=last and announce)
            self.ledger.context_sent()
        if announce:
            ids = {"session_id": self.public_id, "conversation_id": self.conversation.public_id}
            await self.client.send(history.announcement(**ids))

    async def _announce_open(self, *, context_reloaded: bool) -> None:
        await self.row.opened()
        await self.client.outlet.group_add(services.live_session_group(self.public_id))
        metrics.session_active(1)
        self._active_counted = True
        self.link.opened()
        session_id, conversation_id = self.public_id, self.conversation.public_id
        model, config = self.plan.model.name, self.plan.effective()
        if self.claim is not None:
            lost_at = self.claim.lost_at
            metrics.resumed(self.claim.cause, (timezone.now() - lost_at).total_seconds() if lost_at else None)
            await self.client.send(
                session_resumed(
                    session_id=session_id,
                    conversation_id=conversation_id,
                    model=model,
                    config=config,
                    context_reloaded=context_reloaded,
                )
            )
            return
        metrics.session_created()
        metrics.observe_time_to_session_created(time.monotonic() - self._started)
        # session_created goes out before context_loaded (seed order).
        await self.client.send(
            session_created(
                session_id=session_id,
                conversation_id=conversation_id,
                model=model,
                config=config,
                notices=list(self.plan.notices),
            )
        )

    async def _relay(self) -> BaseException | None:
        """Relay Gemini's messages until the connection must change: return why (None: the link asked to switch)."""
        assert self.link.wire is not None
        receiver = asyncio.create_task(self.inbound.receive(self.link.wire), name=f"live-recv-{self.public_id}")
        switch = asyncio.create_task(self.link.switch_due.wait())
        try:
            done, _ = await asyncio.wait({receiver, switch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiver, switch):
                task.cancel()
            await asyncio.gather(receiver, switch, return_exceptions=True)
        if switch in done:
            return None
        return receiver.exception() if not receiver.cancelled() else None

    async def _reconnect(self, exc: BaseException | None) -> None:
        """Move the session to a new Gemini connection (resuming with the latest handle)."""
        if exc is not None and not is_upstream_error(exc):
            raise exc  # a bug on this side, not Gemini's doing: end the session as a crash (everything is flushed)
        failure = classify(exc) if exc is not None else None
        cause = "upstream" if failure is not None else self.link.switch_cause
        lost_at = time.monotonic()
        if failure is not None:
            metrics.upstream_error(failure.code)
            self.link.failures_in_a_row += 1
            # Mid-session, "not found" (1008) is the sporadic "Requested entity was not found" (js-genai#1236), not
            # a model that setup just accepted: resume, and let the resumed setup say if it is real. Whatever keeps
            # failing with no turn completed in between (a poisoned replay, say) ends the session.
            retry = failure.retryable or failure.code is ErrorCode.MODEL_NOT_FOUND
            if not retry or self.link.failures_in_a_row > settings.LIVE_UPSTREAM_MAX_RETRIES:
                raise SessionFailed(failure)
            logger.info("live: %s lost Gemini (%s); resuming", self.public_id, failure.detail)
            await self.client.send(session_reconnecting(session_id=self.public_id, reason=str(failure.code)))
        self.link.reconnecting()
        if self.inbound.model_busy:
            # Whatever the model was saying is cut off by the switch: keep it, flagged, and tell the browser the
            # turn is over (as after a barge-in) so it does not wait for the rest.
            self.recorder.interrupted()
            await self.recorder.turn_complete()
            self.inbound.model_busy = False
            cut = {"serverContent": {"interrupted": True, "turnComplete": True}}
            await self.client.send(session_message(session_id=self.public_id, data=cut))
        await self.link.close()
        replay = self.ledger.take_replay()
        if replay.repeats_transcription:
            self.recorder.expect_repeated_transcription()
        self.outbound.replay_first(replay.items)
        had_handle = self.link.handle is not None
        await self._open(initial=False)
        self._reconnects += 1
        metrics.resumed(cause, time.monotonic() - lost_at)
        self.link.opened()
        if self._vad_ack_pending:
            self._vad_ack_pending = False
            await self.client.send(vad_configured(session_id=self.public_id, vad=self.plan.vad))
        if failure is not None:
            await self.client.send(
                session_resumed(
                    session_id=self.public_id,
                    conversation_id=self.conversation.public_id,
                    model=self.plan.model.name,
                    context_reloaded=not had_handle or self.link.handle is None,
                )
            )

    async def _finish(self, failure: UpstreamFailure | None) -> None:
        """Stop every task, close Gemini, flush the recorder, record the ending, tell the browser."""
        reason: StopReason = self._stop_reason or "upstream"
        self.failure = failure
        tasks = [t for t in (self._sender,) if t is not None] + self.row.tasks()
        tasks += self.tool_calls.running() + list(self._helpers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Handed over, the session goes on elsewhere from its handle: no polite close, which can wait seconds behind a
        # reply nobody reads (see Link.close).
        await self.link.end(abort=reason == "drain")
        if self.inbound.model_busy:
            self.recorder.interrupted()
        try:
            await self.recorder.close()
        except Exception:
            logger.exception("live: flushing the recording of %s failed", self.public_id)
        if self._active_counted:
            metrics.session_active(-1)
        memory.release_soon()
        await self.row.finish(
            status=_ROW_STATUS.get(reason, LiveSession.Status.ENDED),
            handle=self.link.handle if reason in _RESUMABLE else None,
            error_code=str(failure.code) if failure else _ERROR_CODES.get(reason),
            error=(failure.detail or failure.message) if failure else _ERRORS.get(reason),
            counters=self.counters.as_dict(),
            reconnects=self._reconnects,
        )
        lease.let_go()
        with contextlib.suppress(Exception):
            await self.client.outlet.group_discard(services.live_session_group(self.public_id))
        self.client.session_over(self)
        if failure is not None:
            await self.client.send(
                session_error(self.public_id, failure.code, failure.message, retry_after_ms=failure.retry_after_ms)
            )
        if reason == "drain":
            # Not an ending: the browser reconnects (the socket closes with 1012) and another process resumes.
            await self.client.send(session_reconnecting(session_id=self.public_id, reason=services.SERVER_RESTART))
        elif reason != "disconnect":
            ended: EndReason = reason
            await self.client.send(session_ended(session_id=self.public_id, reason=ended))

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)
        return task
