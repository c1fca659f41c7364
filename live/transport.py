"""The WebSocket transport under ``/live``'s consumer: Channels' consumer loop, made fit for audio.

``ChannelsSocket`` is ``AsyncWebsocketConsumer`` with three things changed, each for a measured or observed reason
(the docstrings say which): a dispatch loop that takes a queued frame at once, a control loop for channel-layer
messages that survives the layer failing and stops without losing another socket's message, and a teardown that
always runs to its end. Subclasses (``live.consumers.LiveConsumer``) implement the socket's handlers and
``_leave``. Channels' and channels_redis' internals it relies on are in ``live.layer_internals``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from live import layer_internals

logger = logging.getLogger(__name__)

# What the servers raise for a send on a socket that is closed or closing, i.e. "nobody is listening any more":
# uvicorn's ClientDisconnected (an OSError), and daphne's autobahn ``Disconnected`` (a RuntimeError: "Attempt to send
# on a closed protocol") when the browser's close frame has arrived but the connection is not yet gone.
CLOSED_SOCKET_ERRORS: tuple[type[BaseException], ...] = (OSError, Disconnected)

# A consumer whose control loop is the one reading Redis for the whole process sends this to its own channel to end
# the loop: it returns from a receive that completed, not cancelled in mid-read (see LiveConsumer._stop_control).
CONTROL_STOP = "live.control.stop"
CONTROL_STOP_TIMEOUT_SECONDS = 5.0
# After a failed channel-layer receive (Redis restarting, a read timing out) the control loop waits, then tries again.
CONTROL_RETRY_FIRST_SECONDS = 0.5
CONTROL_RETRY_MAX_SECONDS = 5.0


class ChannelsSocket(AsyncWebsocketConsumer):
    """A WebSocket consumer with a cheap dispatch loop, a resilient control loop and a teardown that always ends."""

    _ending = False  # the consumer is tearing down: the control loop no longer stops it
    _closed = False  # a close was sent or the socket went: later sends are dropped
    _control_failure: BaseException | None = None
    _control_state: Literal["receiving", "handling", "waiting"] = "receiving"
    _control_stop: Literal["", "asked", "sent"] = ""  # "sent": a CONTROL_STOP is on its way to the loop

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the consumer until the socket ends; then stop the control loop, flush and forget, whatever happens.

        This is ``AsyncConsumer.__call__`` with a cheaper dispatch loop. Channels' ``await_many_dispatch`` starts a
        task and an ``asyncio.wait`` per message, so each audio frame waits for three or four turns of the event
        loop before it is handled; under load (long loop turns) a socket then cannot keep up with 25 frames a
        second and its backlog grows in the server's queue (without bound in daphne's). Here the socket's messages
        are awaited directly in this task (a queued frame is taken at once) and the channel layer's in a task of its
        own; a lock keeps dispatch one message at a time, as Channels does. A handler failing on the control side
        ends the consumer, as it does there; the channel layer failing to deliver does not (see ``_control_loop``).

        However it ends (disconnect, a server's cancellation, a failure) the teardown (``_end``) runs to completion,
        even if this task is cancelled again meanwhile: nothing recorded is lost and no task is left pending.
        """
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self._groups: set[str] = set()
        one_at_a_time = asyncio.Lock()
        control: asyncio.Task[None] | None = None
        consumer = asyncio.current_task()
        assert consumer is not None
        try:
            if self.channel_layer is not None:
                self.channel_name = await self.channel_layer.new_channel()
                self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
                control = asyncio.create_task(
                    self._control_loop(one_at_a_time, consumer), name=f"live-control-{self.channel_name}"
                )
            await self._dispatch_socket(receive, one_at_a_time)
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            consumer.uncancel()
            failure = self._control_failure
            # Without a failure, the server cancelled this task: it is shutting down (daphne cancels every application
            # then) or this one ran too long after its disconnect. Stop as after a disconnect, then return rather than
            # re-raise: daphne awaits its applications with a gather that stops waiting at the first one that ends
            # cancelled, and would exit while the others are still flushing their sessions.
            if failure is not None and not isinstance(failure, StopConsumer):
                raise failure from None  # the control loop cancelled this task to hand over its failure
        finally:
            await self._end(control)

    async def _dispatch_socket(self, receive: Callable[[], Awaitable[dict[str, Any]]], lock: asyncio.Lock) -> None:
        """Dispatch the socket's messages, one at a time with the control loop's, until the consumer stops."""
        while True:
            message = await receive()
            async with lock:
                await self.dispatch(message)

    async def _control_loop(self, lock: asyncio.Lock, consumer: asyncio.Task[Any]) -> None:
        """Dispatch channel-layer messages until the consumer ends it (``_stop_control``).

        A receive that fails (Redis restarting, a read timing out) is retried with backoff, joining this socket's
        groups again (a Redis that restarted forgot them): the live session does not depend on the layer, so losing
        it for a while must not close the socket. A handler that fails is a bug: the consumer is stopped between two
        of its messages (it re-raises the failure), as Channels does.
        """
        failures = 0
        while self._control_stop != "asked":
            self._control_state = "receiving"
            try:
                message = await self.channel_receive()
            except Exception as exc:
                if self._control_stop:
                    return
                failures += 1
                delay = min(CONTROL_RETRY_MAX_SECONDS, CONTROL_RETRY_FIRST_SECONDS * 2 ** (failures - 1))
                (logger.warning if failures == 1 else logger.debug)(
                    "live: receiving from the channel layer failed (%s); retrying in %.1f s", type(exc).__name__, delay
                )
                self._control_state = "waiting"
                await asyncio.sleep(delay)
                await self._rejoin_groups()
                continue
            if message.get("type") == CONTROL_STOP:
                return
            if self._control_stop:
                continue  # ending: only the stop message, already under way, matters now
            if failures:
                logger.info("live: the channel layer delivers again after %d failed receive(s)", failures)
                failures = 0
            self._control_state = "handling"
            async with lock:
                try:
                    await self.dispatch(message)
                except (Exception, StopConsumer) as exc:
                    if self._ending:  # the consumer is already stopping: nothing to hand the failure to
                        if not isinstance(exc, StopConsumer):
                            logger.exception("live: handling %r failed", message.get("type"))
                        return
                    self._control_failure = exc
                    consumer.cancel()  # it waits for the socket or for this lock: between two messages
                    return

    async def _rejoin_groups(self) -> None:
        for group in sorted(self._groups):
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except Exception:
                return  # still failing: the next round tries again

    async def _end(self, control: asyncio.Task[None] | None) -> None:
        """Run the teardown to its end, even through cancellation (a server stopping, see ``__call__``)."""
        self._ending = True
        teardown = asyncio.ensure_future(self._teardown(control))
        while not teardown.done():
            try:
                await asyncio.shield(teardown)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
        if not teardown.cancelled():
            teardown.result()

    async def _teardown(self, control: asyncio.Task[None] | None) -> None:
        """Stop the control loop, leave the groups, stop and flush the session, forget this socket's channel."""
        if control is not None:
            await self._stop_control(control)
        await self._leave()
        self._forget_channel()

    async def _stop_control(self, control: asyncio.Task[None]) -> None:
        """End the control loop between two messages where cancelling it could lose one; else cancel it.

        Cancelling a channels_redis receive is safe for the layer (now that nothing touches its receive buffer
        meanwhile, see ``_forget_channel``) except for the one receive that reads Redis, under the layer's receive
        lock, for every socket of this process: cancelled, it drops its connection, and a message Redis had just
        popped for another socket would be lost with it. That one is sent a stop message on its own channel and
        returns when it arrives; a loop handling a message returns after it. Only that one: every channel of a
        process shares one Redis queue with a capacity (100 by default), and a stop message per closing socket
        filled it during bursts of closes, so control messages for the process were refused (ChannelFull).
        """
        if not control.done():
            wait = self._control_state == "handling"
            self._control_stop = "asked"
            if self._control_state == "receiving" and layer_internals.reading_redis(control):
                self._control_stop = "sent"  # from now on the loop reads on until the stop message arrives
                try:
                    await asyncio.wait_for(
                        self.channel_layer.send(self.channel_name, {"type": CONTROL_STOP}), CONTROL_STOP_TIMEOUT_SECONDS
                    )
                    wait = True
                except Exception as exc:  # the layer is unreachable (or full): there is no receive to finish cleanly
                    logger.debug("live: stopping the control loop by message failed (%s)", type(exc).__name__)
            if wait:
                await asyncio.wait({control}, timeout=CONTROL_STOP_TIMEOUT_SECONDS)
            control.cancel()  # a no-op once it has returned
        await asyncio.gather(control, return_exceptions=True)

    def _forget_channel(self) -> None:
        """Drop what the layer still holds for this socket's channel, once nothing receives on it any more.

        Popping that buffer while the control loop still waits on it made channels_redis fail inside its own
        cancellation handling (a KeyError before it cancelled its helper tasks), leaving a task that later took the
        layer's receive lock and never gave it back: every socket of the process stopped getting control messages.
        """
        layer_internals.forget_channel(self.channel_layer, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Dispatch without Channels' per-message database-connection hop (performance-anchors §5).

        This consumer never touches the ORM itself: every database call goes through ``live.db_lanes``, which manages
        connections in its worker threads.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _leave(self) -> None:
        """Leave this socket's groups and stop what it runs (the subclass's; called by the teardown)."""

    async def _send_while_open(self, message: dict[str, Any]) -> None:
        # A browser that has gone is not an error here: what the client was saying (the end of a session, a last
        # chunk) has no one to reach, and the disconnect that follows stops the session. So a send to a closed or
        # closing socket (CLOSED_SOCKET_ERRORS) is a debug line, and the sends after it are not even tried; were it
        # raised, the session would end as "crashed" with an ERROR traceback. uvicorn raises RuntimeError for a send
        # after this side sent a close: `_closed` is set then, so one that still gets through is a bug and raises.
        if self._closed:
            logger.debug("live: send after close dropped (%s)", message["type"])
            return
        try:
            await self.base_send(message)
        except CLOSED_SOCKET_ERRORS as exc:
            self._closed = True
            logger.debug("live: send to a closed socket dropped (%s: %s)", message["type"], type(exc).__name__)

    async def group_add(self, group: str) -> None:
        """Join a channel-layer group (joined again if the layer loses it, see ``_control_loop``)."""
        self._groups.add(group)
        await self.channel_layer.group_add(group, self.channel_name)

    async def group_discard(self, group: str) -> None:
        """Leave a channel-layer group."""
        self._groups.discard(group)
        await self.channel_layer.group_discard(group, self.channel_name)
