"""Asking again (Retry) after a failed or empty reply: the prompt's ``messageId`` keeps it stored once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Message, new_message_id
from tests.asgi import AsgiStream
from tests.conversations.test_generation import (
    _close_worker_thread_connections,  # noqa: F401 (an autouse fixture, used here too)
    collect,
    generate,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def _error(stream: AsgiStream) -> dict[str, Any]:
    body = b"".join([piece async for piece in stream.body_pieces()])
    await stream.finish()
    return dict(json.loads(body)["error"])


async def _roles(conversation_id: str) -> list[str]:
    return [m.role async for m in Message.objects.filter(conversation__public_id=conversation_id).order_by("id")]


async def test_retry_with_the_same_message_id_stores_the_prompt_once(user, gemini_sim) -> None:
    """A 429, then the same prompt and messageId again: one user message (the same id), then the reply."""
    message_id = new_message_id()
    gemini_sim.inject_fault("http", when="rest", status=429)
    first = await collect(await generate(user, {"prompt": "Hello?", "messageId": message_id}))
    assert [name for name, _ in first] == ["meta", "error"]
    assert first[1][1]["code"] == "GEMINI_RATE_LIMITED"
    meta = first[0][1]
    assert meta["userMessage"]["id"] == message_id
    conversation_id = meta["conversationId"]

    # Asked again in the conversation the first attempt created, or without naming it (its meta never arrived).
    for body in ({"conversationId": conversation_id}, {}):
        again = await collect(await generate(user, {"prompt": "Hello?", "messageId": message_id, **body}))
        assert again[0][0] == "meta" and again[-1][0] == "done"
        assert again[0][1]["conversationId"] == conversation_id
        assert again[0][1]["conversationCreated"] is False
        assert again[0][1]["userMessage"]["id"] == message_id
    assert await _roles(conversation_id) == ["user", "model", "model"]
    requests = gemini_sim.records(type="http")
    # Gemini was asked the prompt once each time, never with the prompt twice in its history.
    for request in requests[-2:]:
        texts = [part.get("text") for turn in request["body"]["contents"] for part in turn["parts"]]
        assert texts.count("Hello?") == 1, texts


@pytest.mark.parametrize(
    "change", [{"prompt": "Something else"}, {"conversationId": "other"}, {"owner": "other"}], ids=str
)
async def test_a_message_id_naming_another_message_is_refused(user, gemini_sim, change) -> None:
    """An id already used for another text, conversation or user is a 400 naming messageId; nothing is saved."""
    message_id = new_message_id()
    first = await collect(await generate(user, {"prompt": "Hello?", "messageId": message_id}))
    body: dict[str, Any] = {"prompt": "Hello?", "messageId": message_id}
    asker = user
    if "prompt" in change:
        body["prompt"] = change["prompt"]
    elif "conversationId" in change:
        other = await collect(await generate(user, {"prompt": "A second conversation"}))
        body["conversationId"] = other[0][1]["conversationId"]
    else:
        asker = await sync_to_async(UserFactory.create)(username="someone-else")
    stream = await generate(asker, body)
    assert stream.status == 400
    assert (await _error(stream))["field"] == "messageId"
    assert await _roles(first[0][1]["conversationId"]) == ["user", "model"]


@pytest.mark.parametrize("value", ["msg_123", "conv_0123456789abcdef01234567", "MSG_" + "a" * 24, 5, "msg_" + "G" * 24])
async def test_a_malformed_message_id_is_a_400(user, gemini_sim, value) -> None:
    stream = await generate(user, {"prompt": "Hello?", "messageId": value})
    assert stream.status == 400
    assert (await _error(stream))["field"] == "messageId"


async def test_an_empty_reply_is_an_empty_reply_error_and_nothing_is_saved(user, gemini_sim) -> None:
    """Gemini finishing without a word: error EMPTY_REPLY, no model message; asking again answers."""
    gemini_sim.set_options(empty_turns=1)
    message_id = new_message_id()
    events = await collect(await generate(user, {"prompt": "Hello?", "messageId": message_id}))
    assert [name for name, _ in events] == ["meta", "error"]
    assert events[1][1]["code"] == "EMPTY_REPLY"
    assert events[1][1]["partialMessage"] is None
    conversation_id = events[0][1]["conversationId"]
    assert await _roles(conversation_id) == ["user"]
    again = await collect(await generate(user, {"prompt": "Hello?", "messageId": message_id}))
    assert again[-1][0] == "done"
    assert await _roles(conversation_id) == ["user", "model"]
