"""``/live``: the WebSocket consumer, a transport adapter between a browser and ``live.session.LiveClient``.

It authenticates, hands text and binary frames to the client, sends what the client emits, relays control
messages from the channel layer (``message.saved`` to the user's group, ``live.end`` to a session's group) and,
however the socket ends, stops every task it or the client started.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from conversations.events import SavedMessageData, user_group
from live import shutdown
from live.protocol import CLOSE_SERVICE_RESTART, CLOSE_UNAUTHENTICATED
from live.server_messages import ServerMessage, message_saved
from live.session import LiveClient
from live.transport import ChannelsSocket

logger = logging.getLogger(__name__)


class LiveConsumer(ChannelsSocket):
    """One browser socket."""

    client: LiveClient | None = None
    _user_group: str | None = None

    async def connect(self) -> None:
        """Accept a logged-in user's socket; refuse anyone else with close code 4401."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept, then close with a code the page can act on (send the person to the login page); a refusal
            # before accepting reaches a browser only as a generic failure (1006).
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            self._closed = True
            return
        if shutdown.draining():
            # This process is shutting down (a socket that got in just before it stopped listening): go elsewhere.
            await self.accept()
            await self.close(code=CLOSE_SERVICE_RESTART)
            self._closed = True
            return
        self.client = LiveClient(user=user, outlet=self)
        self._user_group = user_group(user.pk)
        await self.group_add(self._user_group)
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Hand a frame to the client."""
        if self.client is None:
            return
        if bytes_data is not None:
            await self.client.handle_bytes(bytes_data)
        elif text_data is not None:
            await self.client.handle_text(text_data)

    async def disconnect(self, code: int) -> None:
        """Leave the groups, stop the session (it stays resumable) and flush what was recorded."""
        self._closed = True
        await self._leave()

    async def _leave(self) -> None:
        """Leave the user's group first, then stop and flush.

        In this order the flush's own ``message_saved`` announcements are not delivered to a channel nobody reads
        (see ``_forget_channel``). Safe to call twice (a disconnect, then the consumer's teardown).
        """
        group, self._user_group = self._user_group, None
        if group is not None:
            try:
                await self.group_discard(group)
            except Exception:  # the flush below matters more than the group (its entry expires in Redis)
                logger.warning("live: leaving group %s failed", group, exc_info=True)
        if self.client is not None:
            await self.client.shutdown()

    # -- channel-layer events ------------------------------------------------------------------------------------

    async def message_saved(self, event: dict[str, Any]) -> None:
        """A live or typed message of this user was stored (by this socket or any other): tell the browser."""
        await self.send_json(
            message_saved(
                session_id=event.get("sessionId"),
                conversation_id=cast(str, event.get("conversationId")),
                message=cast(SavedMessageData, event.get("message")),
            )
        )

    async def live_end(self, event: dict[str, Any]) -> None:
        """Staff ended the live session this socket holds (``live.end`` to ``live_session_<id>``)."""
        if self.client is not None:
            await self.client.end_from_control(str(event.get("session_id", "")))

    # -- the client's outlet ---------------------------------------------------------------------------------------

    async def send_json(self, message: ServerMessage) -> None:
        """Send one JSON text frame."""
        await self._send_while_open({"type": "websocket.send", "text": json.dumps(message, separators=(",", ":"))})

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary frame."""
        await self._send_while_open({"type": "websocket.send", "bytes": data})

    async def close_socket(self, code: int) -> None:
        """Close the socket with an application close code."""
        await self._send_while_open({"type": "websocket.close", "code": code})
        self._closed = True
