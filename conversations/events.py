"""Tell a user's open pages that one of their messages was saved: the ``message_saved`` event of /live.

The one place it is sent from: ``conversations.services.message_create`` calls ``message_saved_on_commit`` for
every message it stores, typed (the REST API) or spoken (a live session's recorder). The event travels over the
channel layer to the owner's group, which each of their /live sockets joins (``live.consumers.LiveConsumer``
relays it as ``message_saved``, docs/live-protocol.md), in whichever process the socket runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any, Final, Literal, cast

import pydantic
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from typing_extensions import TypedDict

from apsara.asgi_loop import main_event_loop

from .models import Message

logger = logging.getLogger(__name__)

MESSAGE_SAVED: Final = "message.saved"  # handled by LiveConsumer.message_saved


SavedRole = Literal["user", "model", "tool"]  # Message.Role's values
SavedType = Literal["rest", "live"]  # Message.MessageType's values


@pydantic.with_config(pydantic.ConfigDict(extra="forbid"))
class SavedMessageData(TypedDict):
    """A saved message as ``message_saved`` shows it (``live.server_messages.MessageSaved`` carries it as is)."""

    id: str
    role: SavedRole
    messageType: SavedType
    text: str
    interrupted: bool
    audioDuration: float | None
    hasAudio: bool
    toolData: dict[str, Any] | None
    createdAt: str


class MessageSavedEvent(TypedDict):
    """The channel-layer event; the consumer adds the ``timestamp`` when it relays it."""

    type: Literal["message.saved"]
    sessionId: str | None
    conversationId: str
    message: SavedMessageData


def user_group(user_id: int) -> str:
    """Name the channel-layer group of one user's open /live sockets (``message.saved`` goes there)."""
    return f"user_{user_id}"


def message_saved_event(message: Message) -> MessageSavedEvent:
    """Describe a stored message for its owner's other pages (``sessionId``: the live session that recorded it)."""
    session_id = (
        (message.live_config or {}).get("sessionId") if message.message_type == Message.MessageType.LIVE else None
    )
    return {
        "type": MESSAGE_SAVED,
        "sessionId": session_id if isinstance(session_id, str) else None,
        "conversationId": message.conversation.public_id,
        "message": {
            "id": message.public_id,
            "role": cast(SavedRole, message.role),
            "messageType": cast(SavedType, message.message_type),
            "text": message.text or message.input_transcription or message.output_transcription,
            "interrupted": message.interrupted,
            "audioDuration": message.audio_duration,
            "hasAudio": bool(message.audio),
            "toolData": message.tool_data or None,
            "createdAt": message.created_at.isoformat(),
        },
    }


def message_saved_on_commit(*, message: Message) -> None:
    """Announce ``message`` to its owner's open /live sockets once the transaction that stores it commits.

    Nothing is sent if it rolls back. The event is built now, from the row as saved. A channel layer that fails is
    logged and never undoes, or fails, the save.
    """
    event = message_saved_event(message)
    group = user_group(message.conversation.owner_id)
    transaction.on_commit(lambda: _send(group, event, message.public_id))


# Per loop, the latest send: each waits for the one before, so announcements leave in the order of the commits.
_latest: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


def _send(group: str, event: MessageSavedEvent, public_id: str) -> None:
    """Send ``event`` to ``group`` without holding up the committing thread when the server's loop can take it.

    The commit usually happens in a thread that ``sync_to_async`` runs for the event loop (a live session's
    database lane, an ASGI view): the send is handed to that loop and this thread goes on at once. Waiting for it
    here held a lane while the loop was busy, and new sessions' queries queued behind (``make bench``'s connects).
    Elsewhere (a management command) it is sent before returning.
    """
    loop = main_event_loop()
    if loop is not None and loop.is_running():
        loop.call_soon_threadsafe(_schedule, loop, group, event, public_id)
        return
    with contextlib.suppress(Exception):  # logged in _group_send
        async_to_sync(_group_send)(group, event, public_id)


def _schedule(loop: asyncio.AbstractEventLoop, group: str, event: MessageSavedEvent, public_id: str) -> None:
    _latest[loop] = loop.create_task(_group_send(group, event, public_id, after=_latest.get(loop)))


async def _group_send(
    group: str, event: MessageSavedEvent, public_id: str, after: asyncio.Task[None] | None = None
) -> None:
    if after is not None:
        await asyncio.wait({after})  # never raises; its own failure is logged there
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group, dict(event))
    except Exception:
        logger.exception("announcing saved message %s failed", public_id)
