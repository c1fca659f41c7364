"""message_saved from one place (conversations.events, called by message_create), after commit, to the owner only.

Real parts: the ASGI app's /live sockets and POST /api/ai/generate, the google-genai SDK against gemini_sim, the
configured channel layer (Redis when REDIS_URL is set) and database.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from conversations.models import Conversation, Message
from conversations.services import message_create
from tests.asgi import AsgiStream, session_cookie_for
from tests.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def _generate(user: Any, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    stream = AsgiStream("/api/ai/generate", body=body, session=await database_sync_to_async(session_cookie_for)(user))
    await stream.start()
    assert stream.status == 200
    events = [event async for event in stream.events()]
    await stream.finish()
    return events


def _saved_ids(received: list[dict[str, Any] | bytes]) -> list[str]:
    return [m["message"]["id"] for m in received if isinstance(m, dict) and m.get("type") == "message_saved"]


async def test_a_typed_exchange_reaches_the_users_open_sockets_and_no_one_elses(gemini_sim, connect, live_user) -> None:
    """POST /api/ai/generate saves the prompt and the reply: the user's /live socket hears of both, in order, after
    they are stored; another user's socket hears of neither."""
    bob = await database_sync_to_async(UserFactory)()
    mine = await connect()
    theirs = await connect(user=bob)
    events = await _generate(live_user, {"prompt": "Hello there, how are you today?"})
    assert events[0][0] == "meta" and events[-1][0] == "done"
    meta, done = events[0][1], events[-1][1]

    prompt = await mine.expect("message_saved")
    reply = await mine.expect("message_saved")
    assert prompt["sessionId"] is None and prompt["conversationId"] == meta["conversationId"]
    assert prompt["message"]["id"] == meta["userMessage"]["id"]
    assert prompt["message"]["role"] == "user" and prompt["message"]["messageType"] == "rest"
    assert prompt["message"]["text"] == "Hello there, how are you today?" and prompt["message"]["hasAudio"] is False
    assert reply["message"]["id"] == done["message"]["id"] == meta["modelMessageId"]
    assert reply["message"]["role"] == "model" and reply["message"]["text"] == done["message"]["content"]["text"]
    stored = await database_sync_to_async(set)(
        Message.objects.filter(conversation__public_id=meta["conversationId"]).values_list("public_id", flat=True)
    )
    assert {prompt["message"]["id"], reply["message"]["id"]} == stored

    await mine.drain(0.5)
    await theirs.drain(0.5)
    assert _saved_ids(mine.received) == [prompt["message"]["id"], reply["message"]["id"]]  # once each
    assert _saved_ids(theirs.received) == []


async def test_a_rolled_back_message_is_never_announced(connect, live_user) -> None:
    """A message created in a transaction that rolls back is not announced; the next one that commits is."""
    ws = await connect()
    conversation = await database_sync_to_async(ConversationFactory)(owner=live_user)

    @database_sync_to_async
    def save_then_roll_back() -> str:
        with pytest.raises(RuntimeError), transaction.atomic():
            message = message_create(conversation=conversation, role="user", text="never happened")
            raise RuntimeError("the request failed after the save")
        assert not Message.objects.filter(public_id=message.public_id).exists()
        return message.public_id

    @database_sync_to_async
    def save() -> str:
        return message_create(conversation=conversation, role="user", text="this one stays").public_id

    rolled_back = await save_then_roll_back()
    kept = await save()
    saved = await ws.expect("message_saved")
    assert saved["message"]["id"] == kept and saved["message"]["text"] == "this one stays"
    await ws.drain(0.5)
    assert rolled_back not in _saved_ids(ws.received)
    assert _saved_ids(ws.received) == [kept]


async def test_a_message_is_announced_only_once_its_transaction_commits(connect, live_user) -> None:
    """Inside an outer transaction (generation_prepare saves a conversation and the prompt in one), nothing is sent
    until the outermost commit: a page never hears of a message it cannot read yet."""
    ws = await connect()
    saved_uncommitted, commit = threading.Event(), threading.Event()

    @database_sync_to_async
    def save_in_one_transaction() -> tuple[str, str]:
        with transaction.atomic():
            conversation = Conversation.objects.create(owner=live_user, title="Outer")
            first = message_create(conversation=conversation, role="user", text="first")
            second = message_create(conversation=conversation, role="model", text="second")
            saved_uncommitted.set()
            assert commit.wait(10)
        return first.public_id, second.public_id

    saving = asyncio.ensure_future(save_in_one_transaction())
    try:
        assert await asyncio.to_thread(saved_uncommitted.wait, 10)
        await ws.drain(0.5)
        assert _saved_ids(ws.received) == []  # both messages are saved, not yet committed
    finally:
        commit.set()
    first, second = await saving
    assert (await ws.expect("message_saved"))["message"]["id"] == first
    assert (await ws.expect("message_saved"))["message"]["id"] == second


async def test_saves_from_a_live_lane_are_announced_in_commit_order_without_holding_the_lane(connect, live_user):
    """A live session's recorder saves in the user's database lane: the lane goes on at once (the send happens on
    the server's loop), and the announcements still arrive in the order the messages were stored."""
    from live import db_lanes

    tab = await connect()
    conversation = await database_sync_to_async(ConversationFactory.create)(owner=live_user)
    save = db_lanes.for_user(live_user.pk, message_create)
    stored = [
        (await save(conversation=conversation, role=Message.Role.USER, text=f"turn {i}")).public_id for i in range(12)
    ]
    announced = [(await tab.expect("message_saved"))["message"]["id"] for _ in stored]
    assert announced == stored


@pytest.mark.parametrize("where", ["on the server's loop", "in a thread of its own"])
async def test_a_channel_layer_that_fails_never_fails_the_save(live_user, monkeypatch, caplog, where) -> None:
    """The save stands and the failure is logged, whether the send went to the server's loop (a sync_to_async
    thread) or was made in place (a thread with no loop, as a management command)."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    async def unreachable(group: str, message: dict[str, Any]) -> None:
        raise ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr(layer, "group_send", unreachable)
    conversation = await database_sync_to_async(ConversationFactory.create)(owner=live_user)

    def save() -> str:
        return message_create(conversation=conversation, role="user", text="kept").public_id

    if where == "on the server's loop":
        public_id = await database_sync_to_async(save)()
    else:
        done: list[str] = []
        thread = threading.Thread(target=lambda: done.append(save()))
        thread.start()
        await asyncio.to_thread(thread.join, 10)
        public_id = done[0]
    for _ in range(50):
        if "announcing saved message" in caplog.text:
            break
        await asyncio.sleep(0.05)
    assert await database_sync_to_async(Message.objects.filter(public_id=public_id).exists)()
    assert f"announcing saved message {public_id} failed" in caplog.text
