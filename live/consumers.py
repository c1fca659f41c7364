"""``/live``: the WebSocket consumer, a transport adapter between a browser and ``live.bridge.LiveBridge``.

It authenticates, hands text and binary frames to the bridge, sends what the bridge emits, relays control
messages from the channel layer (``message.saved`` to the user's group, ``live.end`` to a session's group) and,
however the socket ends, stops every task the bridge started.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer

from live.bridge import LiveBridge
from live.protocol import CLOSE_UNAUTHENTICATED, now_iso
from live.services import user_group

logger = logging.getLogger(__name__)


class LiveConsumer(AsyncWebsocketConsumer):
    """One browser socket."""

    bridge: LiveBridge | None = None
    _user_group: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the consumer; if it is torn down without a disconnect (server shutdown, crash), still flush."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.bridge is not None:
                await asyncio.shield(self.bridge.shutdown())

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Dispatch without Channels' per-message database-connection hop (performance-anchors §5).

        This consumer never touches the ORM itself: every database call goes through ``database_sync_to_async``,
        which manages connections in its worker thread.
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
        """Stop the session (it stays resumable), flush what was recorded, leave the groups."""
        if self.bridge is not None:
            await self.bridge.shutdown()
        if self._user_group is not None:
            await self.channel_layer.group_discard(self._user_group, self.channel_name)

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
        await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary frame."""
        await self.send(bytes_data=data)

    async def close_socket(self, code: int) -> None:
        """Close the socket with an application close code."""
        await self.close(code=code)

    async def group_add(self, group: str) -> None:
        """Join a channel-layer group."""
        await self.channel_layer.group_add(group, self.channel_name)

    async def group_discard(self, group: str) -> None:
        """Leave a channel-layer group."""
        await self.channel_layer.group_discard(group, self.channel_name)
