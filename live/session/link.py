"""The link to Gemini: one connection at a time, and when to move the session to the next one.

A live session outlives its Gemini connections: Gemini ends each one (``goAway``, ~10 min), a new voice-activity
mode needs a new setup, and networks fail. ``Link`` holds the open connection and an explicit state machine for
moving to the next. ``LinkState`` says whether input may flow; every change of state goes through ``Link._move``,
checked against ``TRANSITIONS``.

::

    CONNECTING ──opened──▶ OPEN ──switch(after_turn)──▶ SWITCH_AFTER_TURN ──turn_complete──▶ SWITCH_AFTER_HANDLE
         ▲                  │ └──switch(after_handle)────────────────────────────────────────────▶ │
         │                  │ └──send_failed──▶ BROKEN                       handle_received, 1 s │
         └──reconnecting────┴──switch(now), deadline ──▶ SWITCHING ◀──────────────────────────────┘

Input flows in OPEN and SWITCH_AFTER_TURN only. It waits in SWITCH_AFTER_HANDLE: sent on the old connection it
could be consumed (and covered by the coming handle) but never answered there, and so be lost.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from contextlib import AsyncExitStack
from typing import Any, Literal

import tenacity
from django.conf import settings

from gemini.client import live_client
from gemini.errors import UpstreamFailure, classify
from gemini.wire import GeminiWire
from live import metrics
from live.protocol import ErrorCode
from live.session_plan import SessionPlan

logger = logging.getLogger(__name__)

HANDLE_WAIT_SECONDS = 1.0  # how long a switch waits for the handle that covers what was sent


class LinkState(enum.Enum):
    CONNECTING = "connecting"  # no usable connection: opening one (input waits)
    OPEN = "open"  # input flows
    SWITCH_AFTER_TURN = "switch_after_turn"  # input flows; move once the model's turn completes
    SWITCH_AFTER_HANDLE = "switch_after_handle"  # input waits; move once the covering handle arrives (≤ 1 s)
    SWITCHING = "switching"  # input waits; the relay stops and the session moves to a new connection
    BROKEN = "broken"  # a send failed: input waits for the receiver to report the loss
    CLOSED = "closed"  # the session ended


S = LinkState
TRANSITIONS: dict[LinkState, frozenset[LinkState]] = {
    S.CONNECTING: frozenset({S.OPEN, S.SWITCH_AFTER_HANDLE, S.SWITCHING, S.CLOSED}),
    S.OPEN: frozenset({S.SWITCH_AFTER_TURN, S.SWITCH_AFTER_HANDLE, S.SWITCHING, S.BROKEN, S.CONNECTING, S.CLOSED}),
    S.SWITCH_AFTER_TURN: frozenset({S.SWITCH_AFTER_HANDLE, S.SWITCHING, S.BROKEN, S.CONNECTING, S.CLOSED}),
    S.SWITCH_AFTER_HANDLE: frozenset({S.SWITCHING, S.BROKEN, S.CONNECTING, S.CLOSED}),
    S.SWITCHING: frozenset({S.CONNECTING, S.CLOSED}),
    S.BROKEN: frozenset({S.SWITCHING, S.CONNECTING, S.CLOSED}),
    S.CLOSED: frozenset(),
}
_INPUT_FLOWS = frozenset({S.OPEN, S.SWITCH_AFTER_TURN})
SwitchWhen = Literal["now", "after_handle", "after_turn"]


class SessionFailed(Exception):
    """Gemini cannot serve this session (or not any more): it ends with ``failure``."""

    def __init__(self, failure: UpstreamFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Link:
    """The Gemini connection of one live session, and the state machine that moves it to the next."""

    def __init__(self, *, plan: SessionPlan, handle: str | None, public_id: str) -> None:
        self.plan = plan
        self.handle = handle  # the latest resumption handle: the next connection resumes from it
        self.public_id = public_id
        self.state = LinkState.CONNECTING
        self.input_flows = asyncio.Event()  # set exactly in the states where input may be sent
        self.switch_due = asyncio.Event()  # set exactly in SWITCHING: the relay stops
        self.session: Any = None  # google.genai.live.AsyncSession
        self.wire: GeminiWire | None = None  # the same connection, for the per-chunk messages
        self.vad_enabled = plan.vad_enabled  # what the open connection was set up with
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._timers: list[asyncio.Task[None]] = []
        self.failures_in_a_row = 0  # Gemini failures since a turn last completed
        self.switch_cause = "upstream"  # why the pending (or last) switch was asked for: a metric label

    # -- the state machine -------------------------------------------------------------------------------------------

    def _move(self, to: LinkState) -> None:
        if to is self.state:
            return
        if to not in TRANSITIONS[self.state]:
            raise RuntimeError(f"live link of {self.public_id}: no transition {self.state.name} → {to.name}")
        logger.debug("live: %s link %s → %s", self.public_id, self.state.name, to.name)
        self.state = to
        if to in _INPUT_FLOWS:
            self.input_flows.set()
        else:
            self.input_flows.clear()
        if to is S.SWITCHING:
            self.switch_due.set()
        else:
            self.switch_due.clear()

    def opened(self) -> None:
        """A connection is up and ready for input (unless a switch was asked for meanwhile)."""
        if self.state is S.CONNECTING:
            self._move(S.OPEN)

    def switch(self, when: SwitchWhen, cause: str | None = None) -> None:
        """Move the session to a new connection: now, once the covering handle arrives, or once the turn completes.

        ``cause`` (``goaway``, ``configure``, ``drain``) is kept for the metrics of the move."""
        if self.state is S.CLOSED or self.state is S.SWITCHING:
            return
        if cause is not None:
            self.switch_cause = cause
        if when == "now":
            self._move(S.SWITCHING)
        elif when == "after_handle":
            if self.state is not S.BROKEN:
                self._move(S.SWITCH_AFTER_HANDLE)
                self._timer(HANDLE_WAIT_SECONDS)
        elif self.state is S.OPEN:
            self._move(S.SWITCH_AFTER_TURN)

    def turn_complete(self) -> None:
        """The model's turn completed: a switch waiting for it now waits for the handle that follows."""
        self.failures_in_a_row = 0
        if self.state is S.SWITCH_AFTER_TURN:
            self.switch("after_handle")

    def handle_received(self, handle: str) -> None:
        """Gemini issued a new resumption handle: resume from it; a switch waiting for it goes ahead."""
        self.handle = handle
        if self.state is S.SWITCH_AFTER_HANDLE:
            self._move(S.SWITCHING)

    def go_away(self, time_left: float, *, model_busy: bool) -> None:
        """Gemini closes this connection in ``time_left`` seconds: move before then, between turns if we can."""
        margin = min(5.0, time_left / 2)
        self._timer(max(0.0, time_left - margin))
        self.switch("after_turn" if model_busy else "now", "goaway")

    def hand_over(self, within: float, *, model_busy: bool, pending: bool) -> None:
        """The session leaves this process (a drain): stop relaying between turns if possible, within ``within``."""
        self._timer(within)
        self.switch(when_to_switch(cut_turn=False, model_busy=model_busy, pending=pending), "drain")

    def send_failed(self) -> None:
        """A send failed on the open connection: it is going away; hold input until the receiver says so."""
        if self.state in _INPUT_FLOWS or self.state is S.SWITCH_AFTER_HANDLE:
            self._move(S.BROKEN)

    def reconnecting(self) -> None:
        """The relay stopped: the session moves to a new connection (pending switches are done by this one)."""
        self._cancel_timers()
        self.switch_cause = "upstream"  # until a switch says otherwise, a lost connection
        if self.state is not S.CLOSED:
            self._move(S.CONNECTING)

    def _timer(self, delay: float) -> None:
        self._timers.append(asyncio.ensure_future(self._switch_at(delay)))

    async def _switch_at(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.switch("now")

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # -- the connection ----------------------------------------------------------------------------------------------

    async def open(self, *, history_if_fresh: bool) -> bool:
        """Connect, resuming from the handle if there is one, retrying with backoff where that can help.

        Returns whether the new connection needs the conversation's history (it started afresh). A refused handle
        is dropped and the same attempt starts afresh at once (a refusal is not a failure to retry: counted as an
        attempt, one on the last attempt would end the session instead).
        """
        delay = settings.LIVE_UPSTREAM_BACKOFF_SECONDS
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(settings.LIVE_UPSTREAM_MAX_RETRIES + 1),
            wait=tenacity.wait_exponential(multiplier=delay, min=delay),
            retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, SessionFailed) and exc.failure.retryable),
            reraise=True,
        )
        return await retrying(self._attempt, history_if_fresh)

    async def _attempt(self, history_if_fresh: bool) -> bool:
        handle = self.handle
        with_history = handle is None and history_if_fresh
        try:
            await self._connect(handle=handle, with_history=with_history)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = classify(exc)
            await self.close()
            if handle is not None and failure.code in (ErrorCode.INVALID_CONFIG, ErrorCode.UPSTREAM_ERROR):
                logger.info("live: %s resumption refused (%s); starting afresh", self.public_id, failure.detail)
                self.handle = None
                return await self._attempt(history_if_fresh)  # without a handle: it cannot be refused again
            metrics.upstream_error(failure.code)
            raise SessionFailed(failure) from exc
        return with_history

    async def _connect(self, *, handle: str | None, with_history: bool) -> None:
        if self._client is None:
            self._client = live_client()
        config = self.plan.connect_config(
            handle=handle, with_history=with_history, transparent=bool(self._client.vertexai)
        )
        stack = AsyncExitStack()
        self._stack = stack
        self.session = await asyncio.wait_for(
            stack.enter_async_context(self._client.aio.live.connect(model=self.plan.model.name, config=config)),
            timeout=settings.LIVE_CONNECT_TIMEOUT_SECONDS,
        )
        self.wire = GeminiWire(self.session)
        self.vad_enabled = self.plan.vad_enabled

    async def close(self, *, abort: bool = False) -> None:
        """Close the connection (if any; ``abort``: drop it without the closing handshake); input waits until the
        next one is open."""
        if self.state in _INPUT_FLOWS:
            self._move(S.CONNECTING)
        wire, stack = self.wire, self._stack
        self._stack, self.session, self.wire = None, None, None
        if stack is None:
            return
        if abort and wire is not None:
            wire.abort()
        try:
            await asyncio.wait_for(stack.aclose(), timeout=5)
        except Exception:  # TimeoutError included
            # The closing handshake did not finish: e.g. Gemini's close frame sits behind frames nobody read (the
            # session stopped mid-reply, or a browser that stopped reading held the relay up), and websockets
            # stopped reading at its queue's high-water mark. Drop the connection, or it and its keepalive task
            # would linger for another ~25 s.
            if wire is not None:
                wire.abort()

    async def end(self, *, abort: bool = False) -> None:
        """The session is over here: cancel pending switches and close the connection (``abort``: see ``close``)."""
        self._cancel_timers()
        self._move(S.CLOSED)
        await self.close(abort=abort)


def when_to_switch(*, cut_turn: bool, model_busy: bool, pending: bool) -> SwitchWhen:
    """When a switch asked for now takes effect: new voice-activity settings (``LiveRun.configure_vad``; a change of
    mode cuts the model's turn, tuning does not) or a hand-over (``hand_over``, never cutting)."""
    if model_busy and not cut_turn:
        return "after_turn"  # wait for the model to finish speaking rather than cutting it off
    return "after_handle" if pending else "now"
