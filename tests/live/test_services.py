"""live.services: a live session's writes by intent (open, handle, finish) and ending it from outside
its socket (admin, commands)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from live.models import LiveSession
from live.services import (
    EndRequest,
    live_session_activate,
    live_session_end_request,
    live_session_finish,
    live_session_group,
    live_session_store_handle,
    live_session_store_vad,
)
from tests.factories import LiveSessionFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the group message goes out on commit


def listen(session: LiveSession) -> str:
    """Join the session's group the way the holding consumer does; return the channel."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live_session_group(session.public_id), channel)
    return channel


def receive(channel: str, timeout: float = 2.0) -> dict:
    import asyncio

    async def _receive() -> dict:
        return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)

    return async_to_sync(_receive)()


@pytest.mark.parametrize("status", [LiveSession.Status.ACTIVE, LiveSession.Status.CONNECTING])
def test_end_request_tells_the_holding_consumer_and_ends_the_row(status: str) -> None:
    """A held session gets live.end on its group, and the row is ended with its handle dropped."""
    session = LiveSessionFactory.create(status=status, channel_name="specific.abc!def", resumption_handle="h-1")
    channel = listen(session)
    assert live_session_end_request(live_session=session) is EndRequest.REQUESTED
    assert receive(channel) == {"type": "live.end", "session_id": session.public_id, "reason": "ended by staff"}
    session.refresh_from_db()
    assert session.status == LiveSession.Status.ENDED
    assert session.ended_at is not None
    assert (session.channel_name, session.resumption_handle, session.resumption_handle_issued_at) == ("", "", None)
    assert (session.last_error_code, session.last_error) == ("ENDED_BY_STAFF", "ended by staff")


def test_end_request_ends_a_detached_session_nobody_holds() -> None:
    """A detached session (browser gone, no consumer) is ended in the database and can no longer be resumed."""
    session = LiveSessionFactory.create(status=LiveSession.Status.DETACHED, resumption_handle="h-2")
    assert live_session_end_request(live_session=session) is EndRequest.REQUESTED
    assert session.status == LiveSession.Status.ENDED  # the caller's instance is refreshed
    assert session.resumption_handle == ""
    assert LiveSession.objects.active().filter(pk=session.pk).count() == 0


@pytest.mark.parametrize("status", [LiveSession.Status.ENDED, LiveSession.Status.FAILED])
def test_end_request_leaves_finished_sessions_alone(status: str) -> None:
    """An ended or failed session is reported as such, untouched, and no message is sent."""
    session = LiveSessionFactory.create(status=status, last_error_code="UPSTREAM_UNAVAILABLE")
    channel = listen(session)
    assert live_session_end_request(live_session=session) is EndRequest.ALREADY_ENDED
    session.refresh_from_db()
    assert (session.status, session.last_error_code) == (status, "UPSTREAM_UNAVAILABLE")
    with pytest.raises(TimeoutError):
        receive(channel, timeout=0.3)


@pytest.mark.timeout(60)
async def test_end_request_closes_the_session_on_its_socket_and_it_cannot_be_resumed(gemini_sim, connect) -> None:
    """Through a real consumer and gemini_sim: the socket gets session_ended, and resume_session is refused."""
    from channels.db import database_sync_to_async

    ws = await connect()
    created = await ws.create(model="gemini-3.1-flash-live-preview")
    row = await database_sync_to_async(LiveSession.objects.get)(public_id=created["sessionId"])
    assert await database_sync_to_async(live_session_end_request)(live_session=row) is EndRequest.REQUESTED
    ended = await ws.expect("session_ended")
    assert ended["sessionId"] == created["sessionId"]
    await ws.send({"type": "resume_session", "data": {"sessionId": created["sessionId"]}})
    error = await ws.expect("session_error")
    assert error["error"]["code"] == "RESUME_FAILED"
    assert "ended by staff" in error["error"]["message"]


def test_a_late_handle_or_finish_does_not_revive_an_ended_session() -> None:
    # The bridge's handle save can land just after staff ended the session (another thread or process).
    session = LiveSessionFactory.create(status=LiveSession.Status.ACTIVE, channel_name="specific.x!y")
    live_session_end_request(live_session=session)
    live_session_store_handle(live_session_pk=session.pk, handle="late-handle")
    live_session_activate(live_session_pk=session.pk)
    live_session_finish(
        live_session_pk=session.pk, status=LiveSession.Status.DETACHED, handle="later", counters={"messages_in": 3}
    )
    session.refresh_from_db()
    assert session.status == LiveSession.Status.ENDED
    assert session.resumption_handle == "" and session.last_error_code == "ENDED_BY_STAFF"
    assert session.messages_in == 3  # counters still land


def test_a_socket_that_lost_its_session_to_another_changes_nothing_but_the_counters() -> None:
    # Its process stalled past its lease and another process took the session over (a new channel name): the old
    # holder's late writes must not overwrite the new holder's handle, settings or status.
    session = LiveSessionFactory.create(status=LiveSession.Status.ACTIVE, channel_name="specific.new!holder")
    old = "specific.old!holder"
    live_session_store_handle(live_session_pk=session.pk, handle="stale", holder=old)
    live_session_store_vad(live_session_pk=session.pk, vad={"enabled": False}, holder=old)
    live_session_finish(
        live_session_pk=session.pk,
        status=LiveSession.Status.DETACHED,
        handle="stale",
        counters={"messages_in": 2},
        holder=old,
    )
    session.refresh_from_db()
    assert session.status == LiveSession.Status.ACTIVE and session.channel_name == "specific.new!holder"
    assert session.resumption_handle == "" and "vad" not in (session.config.get("request") or {})
    assert session.messages_in == 2  # what the old holder relayed still counts
    live_session_store_handle(live_session_pk=session.pk, handle="fresh", holder="specific.new!holder")
    session.refresh_from_db()
    assert session.resumption_handle == "fresh"


def test_an_open_session_takes_handles_and_finishes_detached_with_the_latest() -> None:
    session = LiveSessionFactory.create(status=LiveSession.Status.CONNECTING, channel_name="specific.a!b")
    live_session_activate(live_session_pk=session.pk)
    session.refresh_from_db()
    assert session.status == LiveSession.Status.ACTIVE and session.last_seen_at is not None
    live_session_store_handle(live_session_pk=session.pk, handle="h1")
    session.refresh_from_db()
    assert session.resumption_handle == "h1" and session.resumption_handle_issued_at is not None
    live_session_finish(live_session_pk=session.pk, status=LiveSession.Status.DETACHED, handle="h2", reconnects=2)
    session.refresh_from_db()
    assert session.status == LiveSession.Status.DETACHED and session.resumption_handle == "h2"
    assert session.ended_at is not None and session.channel_name == "" and session.reconnects == 2


def test_a_failed_finish_records_the_error_and_the_counters() -> None:
    session = LiveSessionFactory.create(status=LiveSession.Status.ACTIVE, messages_out=1, audio_seconds_in=1.5)
    live_session_finish(
        live_session_pk=session.pk,
        status=LiveSession.Status.FAILED,
        error_code="UPSTREAM_UNAVAILABLE",
        error="x" * 3000,
        counters={"messages_out": 2, "audio_seconds_in": 0.5, "messages_in": 0},
    )
    session.refresh_from_db()
    assert session.status == LiveSession.Status.FAILED and session.last_error_code == "UPSTREAM_UNAVAILABLE"
    assert len(session.last_error) == 2000 and session.resumption_handle == ""
    assert (session.messages_in, session.messages_out, session.audio_seconds_in) == (0, 3, 2.0)


@pytest.mark.parametrize("status", [LiveSession.Status.ACTIVE, LiveSession.Status.CONNECTING])
def test_finish_refuses_a_status_that_is_not_an_ending(status: LiveSession.Status) -> None:
    session = LiveSessionFactory.create(status=LiveSession.Status.ACTIVE)
    with pytest.raises(ValueError, match="finishes as one of"):
        live_session_finish(live_session_pk=session.pk, status=status)
    session.refresh_from_db()
    assert session.status == LiveSession.Status.ACTIVE and session.ended_at is None


def test_finishing_before_opening_takes_back_an_unused_conversation_it_created() -> None:
    from conversations.models import Conversation
    from live.services import CREATED_CONVERSATION

    session = LiveSessionFactory.create(status=LiveSession.Status.CONNECTING, config={CREATED_CONVERSATION: True})
    conversation_pk = session.conversation_id
    assert conversation_pk is not None
    live_session_finish(live_session_pk=session.pk, status=LiveSession.Status.FAILED, error_code="SETUP_REFUSED")
    session.refresh_from_db()
    assert session.status == LiveSession.Status.FAILED and session.conversation_id is None
    assert not Conversation.objects.filter(pk=conversation_pk).exists()


@pytest.mark.parametrize("ending", [LiveSession.Status.ENDED, LiveSession.Status.FAILED])
def test_a_call_in_which_nothing_was_said_takes_back_its_conversation(ending: LiveSession.Status) -> None:
    from conversations.models import Conversation
    from live.services import CREATED_CONVERSATION

    session = LiveSessionFactory.create(status=LiveSession.Status.ACTIVE, config={CREATED_CONVERSATION: True})
    conversation_pk = session.conversation_id
    assert conversation_pk is not None
    live_session_finish(live_session_pk=session.pk, status=ending)
    session.refresh_from_db()
    assert session.status == ending and session.conversation_id is None
    assert not Conversation.objects.filter(pk=conversation_pk).exists()


def test_a_call_in_which_something_was_typed_keeps_its_conversation() -> None:
    """The page had moved to the new conversation and the person typed into the call: it stays."""
    from conversations import services as conversation_services
    from conversations.models import Message
    from live.services import CREATED_CONVERSATION

    session = LiveSessionFactory.create(status=LiveSession.Status.ACTIVE, config={CREATED_CONVERSATION: True})
    assert session.conversation is not None
    conversation_services.message_create(
        conversation=session.conversation, role=Message.Role.USER, message_type=Message.MessageType.LIVE, text="hi"
    )
    live_session_finish(live_session_pk=session.pk, status=LiveSession.Status.ENDED)
    session.refresh_from_db()
    assert session.conversation_id is not None


@pytest.mark.parametrize(
    ("status", "config", "ending"),
    [
        # Detached after it opened: it may yet be resumed.
        (LiveSession.Status.ACTIVE, {"createdConversation": True}, LiveSession.Status.DETACHED),
        # Resumed (the mark is dropped on a claim), or opened on a conversation the person already had.
        (LiveSession.Status.ACTIVE, {}, LiveSession.Status.ENDED),
    ],
)
def test_an_empty_call_keeps_a_conversation_it_may_need_or_did_not_create(
    status: LiveSession.Status, config: dict, ending: LiveSession.Status
) -> None:
    session = LiveSessionFactory.create(status=status, config=config)
    live_session_finish(live_session_pk=session.pk, status=ending)
    session.refresh_from_db()
    assert session.conversation_id is not None
