"""``/live``: the WebSocket consumer, a transport adapter between a browser and ``live.bridge.LiveBridge``.

It authenticates, hands text and binary frames to the bridge, sends what the bridge emits, relays control
messages from the channel layer (``message.saved`` to the user's group, ``live.end`` to a session's group) and,
however the socket ends, stops every task the bridge started.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from live.bridge import LiveBridge
from live.protocol import CLOSE_UNAUTHENTICATED, now_iso
from live.services import user_group

logger = logging.getLogger(__name__)


class LiveConsumer(AsyncWebsocketConsumer):
    """One browser socket."""

    bridge: LiveBridge | None = None
    _user_group: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the consumer; if it is torn down without a disconnect (server shutdown, crash), still flush.

        This is ``AsyncConsumer.__call__`` with a cheaper dispatch loop. Channels' ``await_many_dispatch`` starts a
        task and an ``asyncio.wait`` per message, so each audio frame waits for three or four turns of the event
        loop before it is handled; under load (long loop turns) a socket then cannot keep up with 25 frames a
        second and its backlog grows in the server's queue (without bound in daphne's). Here the socket's messages
        are awaited directly in this task (a queued frame is taken at once) and the channel layer's in a task of its
        own;
        a lock keeps dispatch one message at a time, as Channels does, and a failure on either side ends the
        consumer, as it does there.
        """
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        one_at_a_time = asyncio.Lock()
        control: asyncio.Task[None] | None = None
        try:
            if self.channel_layer is not None:
                self.channel_name = await self.channel_layer.new_channel()
                self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
                consumer = asyncio.current_task()
                assert consumer is not None
                control = asyncio.create_task(self._dispatch_control(one_at_a_time, consumer))
            await self._dispatch_from(receive, one_at_a_time)
        except asyncio.CancelledError:
            failed = control is not None and control.done() and not control.cancelled()
            failure = control.exception() if failed else None  # type: ignore[union-attr]
            if failure is None:
                raise
            if not isinstance(failure, StopConsumer):
                raise failure from None
        except StopConsumer:
            pass
        finally:
            if control is not None:
                control.cancel()
                await asyncio.gather(control, return_exceptions=True)
            await asyncio.shield(self._leave())

    async def _dispatch_from(self, receive: Callable[[], Awaitable[dict[str, Any]]], lock: asyncio.Lock) -> None:
        """Dispatch messages from one source, one at a time across sources, until the consumer stops."""
        while True:
            message = await receive()
            async with lock:
                await self.dispatch(message)

    async def _dispatch_control(self, lock: asyncio.Lock, consumer: asyncio.Task[Any]) -> None:
        """Dispatch channel-layer messages; if that fails, stop the consumer between two messages (it re-raises)."""
        try:
            await self._dispatch_from(self.channel_receive, lock)
        except Exception:
            async with lock:
                consumer.cancel()
            raise

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Dispatch without Channels' per-message database-connection hop (performance-anchors §5).

        This consumer never touches the ORM itself: every database call goes through ``live.db``, which manages
        connections in its worker threads.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        """Accept a logged-in user's socket; refuse anyone else with close code 4401."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept, then close with a code the page can act on (send the person to the login page); a refusal
            # before accepting reaches a browser only as a generic failure (1006).
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.bridge = LiveBridge(user=user, outlet=self)
        self._user_group = user_group(user.pk)
        await self.channel_layer.group_add(self._user_group, self.channel_name)
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Hand a frame to the bridge."""
        if self.bridge is None:
            return
        if bytes_data is not None:
            await self.bridge.handle_bytes(bytes_data)
        elif text_data is not None:
            await self.bridge.handle_text(text_data)

    async def disconnect(self, code: int) -> None:
        """Leave the groups, stop the session (it stays resumable) and flush what was recorded."""
        await self._leave()

    async def _leave(self) -> None:
        """Leave the user's group first, then stop and flush; then drop what the layer still holds for this channel.

        In this order the flush's own ``message_saved`` announcements are not delivered to a channel nobody reads:
        channels_redis keeps every message for such a channel in its process-wide receive buffer for good
        (django/channels_redis#384), which grew the server by ~15 KB per session (``make bench`` leak check).
        Safe to call twice (a disconnect, then the consumer's teardown).
        """
        group, self._user_group = self._user_group, None
        if group is not None:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # the flush below matters more than the group (its entry expires in Redis)
                logger.warning("live: leaving group %s failed", group, exc_info=True)
        if self.bridge is not None:
            await self.bridge.shutdown()
        buffers = getattr(self.channel_layer, "receive_buffer", None)
        if isinstance(buffers, dict):
            buffers.pop(self.channel_name, None)

    # -- channel-layer events ------------------------------------------------------------------------------------

    async def message_saved(self, event: dict[str, Any]) -> None:
        """A live or typed message of this user was stored (by this socket or any other): tell the browser."""
        await self.send_json(
            {
                "type": "message_saved",
                "sessionId": event.get("sessionId"),
                "conversationId": event.get("conversationId"),
                "message": event.get("message"),
                "timestamp": now_iso(),
            }
        )

    async def live_end(self, event: dict[str, Any]) -> None:
        """Staff ended the live session this socket holds (``live.end`` to ``live_session_<id>``)."""
        if self.bridge is not None:
            await self.bridge.end_from_control(str(event.get("session_id", "")))

    # -- the bridge's outlet ---------------------------------------------------------------------------------------

    async def send_json(self, message: Mapping[str, Any]) -> None:
        """Send one JSON text frame."""
        await self._send_while_open({"type": "websocket.send", "text": json.dumps(message, separators=(",", ":"))})

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary frame."""
        await self._send_while_open({"type": "websocket.send", "bytes": data})

    async def close_socket(self, code: int) -> None:
        """Close the socket with an application close code."""
        await self._send_while_open({"type": "websocket.close", "code": code})

    async def _send_while_open(self, message: dict[str, Any]) -> None:
        # A browser that has gone is not an error here: what the bridge was saying (the end of a session, a last
        # chunk) has no one to reach, and the disconnect that follows stops the session. uvicorn raises
        # ClientDisconnected (an OSError) for a send after the socket closed; daphne drops it silently.
        try:
            await self.base_send(message)
        except OSError:
            logger.debug("live: send to a closed socket dropped (%s)", message["type"])

    async def group_add(self, group: str) -> None:
        """Join a channel-layer group."""
        await self.channel_layer.group_add(group, self.channel_name)

    async def group_discard(self, group: str) -> None:
        """Leave a channel-layer group."""
        await self.channel_layer.group_discard(group, self.channel_name)
