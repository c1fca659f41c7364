"""POST /api/ai/generate against the real google-genai SDK and gemini_sim, through the real ASGI app."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx2 as httpx  # the HTTP library google-genai 3.6.1 uses
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from google.auth import exceptions as auth_exceptions
from google.genai import errors as genai_errors
from google.genai import types

from conversations import services
from conversations.generation import (
    GenerationFailed,
    _check_blocked,
    _chunk_text,
    generation_error,
    generation_prepare,
    generation_stream,
    sse_event,
)
from conversations.models import Conversation, Message
from tests.asgi import AsgiStream, session_cookie_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections() -> AsyncIterator[None]:
    """Close the DB connections opened in sync_to_async's worker thread, so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all)()


async def generate(user: Any, body: dict[str, Any]) -> AsgiStream:
    stream = AsgiStream("/api/ai/generate", body=body, session=await _session(user))
    await stream.start()
    return stream


async def _session(user: Any) -> str:
    return await sync_to_async(session_cookie_for)(user)


async def collect(stream: AsgiStream) -> list[tuple[str, dict[str, Any]]]:
    events = [event async for event in stream.events()]
    await stream.finish()
    return events


async def test_generate_streams_chunks_before_the_reply_ends(user, gemini_sim) -> None:
    """Chunks reach the client while Gemini is still replying; then both messages are saved."""
    gemini_sim.set_options(stream_delay=0.2)
    stream = await generate(user, {"prompt": "Hello there, how are you today?"})
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"

    events: list[tuple[str, dict[str, Any]]] = []
    saved_when_first_chunk_arrived = None
    async for name, data in stream.events():
        events.append((name, data))
        if name == "chunk" and saved_when_first_chunk_arrived is None:
            model_id = events[0][1]["modelMessageId"]
            saved_when_first_chunk_arrived = await Message.objects.filter(public_id=model_id).aexists()
    await stream.finish()

    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-1] == "done"
    assert names.count("chunk") >= 2, names
    assert saved_when_first_chunk_arrived is False  # the reply was still streaming when the first chunk arrived

    meta = events[0][1]
    assert meta["conversationCreated"] is True
    assert meta["userMessage"]["content"]["text"] == "Hello there, how are you today?"
    reply = "".join(data["text"] for name, data in events if name == "chunk")
    done = events[-1][1]["message"]
    assert done["id"] == meta["modelMessageId"]
    assert done["content"]["text"] == reply
    assert done["interrupted"] is False
    assert done["usage"]["totalTokenCount"] > 0

    conversation = await Conversation.objects.aget(public_id=meta["conversationId"])
    assert conversation.owner_id == user.pk
    assert conversation.title == "Hello there, how are you today?"
    assert conversation.kind == "rest"
    saved = [(m.role, m.text) async for m in Message.objects.filter(conversation=conversation).order_by("created_at")]
    assert saved == [("user", "Hello there, how are you today?"), ("model", reply)]


async def test_keepalive_comments_while_gemini_is_slow(user, gemini_sim, settings) -> None:
    """While waiting on Gemini, the stream carries SSE comments so proxies keep it open; the reply is unchanged."""
    settings.GENERATE_KEEPALIVE_SECONDS = 0.05
    gemini_sim.set_options(stream_delay=0.4)
    stream = await generate(user, {"prompt": "Hello there, how are you today?"})
    events = await collect(stream)
    assert [name for name, _ in events][-1] == "done"
    assert stream.comments and set(stream.comments) == {": keep-alive"}
    reply = "".join(data["text"] for name, data in events if name == "chunk")
    assert events[-1][1]["message"]["content"]["text"] == reply


async def test_gemini_going_silent_mid_reply_times_out(user, gemini_sim, settings) -> None:
    """A reply that stops arriving ends with GEMINI_TIMEOUT; the text that came is saved as interrupted."""
    settings.GENERATE_KEEPALIVE_SECONDS = 0.05
    settings.GENERATE_IDLE_TIMEOUT_SECONDS = 0.3
    gemini_sim.set_options(stream_delay=5.0)  # the first chunk comes at once, the next one far too late
    events = await collect(await generate(user, {"prompt": "Tell me a long story about a lighthouse keeper."}))
    name, error = events[-1]
    assert name == "error"
    assert error["code"] == "GEMINI_TIMEOUT"
    assert "0.3 seconds" in error["message"]
    chunks = "".join(data["text"] for name, data in events if name == "chunk")
    assert chunks
    saved = await Message.objects.aget(public_id=error["partialMessage"]["id"])
    assert (saved.text, saved.interrupted) == (chunks, True)


async def test_with_keepalive_yields_none_while_waiting() -> None:
    """Keep-alive ticks come only while the source is silent, and every item comes through in order."""
    import asyncio

    from conversations.generation import with_keepalive

    async def slow() -> AsyncIterator[str]:
        yield "a"
        await asyncio.sleep(0.25)
        yield "b"

    out = [item async for item in with_keepalive(slow(), interval=0.05)]
    assert [item for item in out if item is not None] == ["a", "b"]
    assert out[0] == "a" and out[-1] == "b"
    assert out.count(None) >= 2


async def test_generate_sends_history_and_options_to_gemini(user, gemini_sim) -> None:
    """Gemini gets the conversation's REST and live history (transcriptions for audio), the prompt and options."""
    conversation = await _conversation_with_history(user)
    stream = await generate(
        user,
        {
            "prompt": "And now?",
            "conversationId": conversation.public_id,
            "temperature": 0.3,
            "systemInstruction": "Be brief.",
            "model": "models/gemini-2.5-flash",
            "userId": 999,
        },
    )
    events = await collect(stream)
    assert events[0][1]["conversationCreated"] is False
    assert events[-1][0] == "done"

    request = [r for r in gemini_sim.records(type="http") if "streamGenerateContent" in r["path"]][-1]
    assert "/models/gemini-2.5-flash:streamGenerateContent" in request["path"]
    assert request["body"]["contents"] == [
        {"role": "user", "parts": [{"text": "typed question"}]},
        {"role": "model", "parts": [{"text": "typed answer"}]},
        {"role": "user", "parts": [{"text": "spoken question"}]},
        {"role": "model", "parts": [{"text": "spoken answer"}]},
        {"role": "user", "parts": [{"text": "And now?"}]},
    ]
    assert request["body"]["generationConfig"]["temperature"] == pytest.approx(0.3)
    assert request["body"]["systemInstruction"]["parts"][0]["text"] == "Be brief."
    await conversation.arefresh_from_db()
    assert conversation.kind == "hybrid"
    assert await conversation.messages.acount() == 7  # five before, the prompt and the reply


async def _conversation_with_history(user: Any) -> Conversation:
    def build() -> Conversation:
        conversation = services.conversation_create(owner=user, title="Mixed")
        services.message_create(conversation=conversation, role="user", text="typed question")
        services.message_create(conversation=conversation, role="model", text="typed answer")
        services.message_create(
            conversation=conversation, role="user", message_type="live", input_transcription="spoken question"
        )
        services.message_create(
            conversation=conversation, role="model", message_type="live", output_transcription="spoken answer"
        )
        services.message_create(conversation=conversation, role="model", message_type="live")  # silent: skipped
        return conversation

    return await sync_to_async(build)()


@pytest.mark.parametrize(
    ("status", "code"), [(503, "GEMINI_UNAVAILABLE"), (500, "GEMINI_UNAVAILABLE"), (429, "GEMINI_RATE_LIMITED")]
)
async def test_gemini_refusing_the_request_is_an_error_event(user, gemini_sim, status: int, code: str) -> None:
    """A Gemini failure before any text: meta, then an error event; the prompt is kept, no reply is saved."""
    gemini_sim.inject_fault("http", when="rest", status=status)
    events = await collect(await generate(user, {"prompt": "Hello?"}))
    assert [name for name, _ in events] == ["meta", "error"]
    error = events[1][1]
    assert error["code"] == code
    assert str(status) in error["message"]
    assert error["partialMessage"] is None
    conversation_id = events[0][1]["conversationId"]
    saved = [m.role async for m in Message.objects.filter(conversation__public_id=conversation_id)]
    assert saved == ["user"]


async def test_unknown_model_is_a_gemini_error_event(user, gemini_sim) -> None:
    """A model Gemini does not know is reported as GEMINI_ERROR with Gemini's reason."""
    events = await collect(await generate(user, {"prompt": "Hello?", "model": "gemini-0.1-nonexistent"}))
    name, error = events[-1]
    assert name == "error"
    assert error["code"] == "GEMINI_ERROR"
    assert "404" in error["message"]


async def test_client_going_away_mid_stream_keeps_what_arrived(user, gemini_sim) -> None:
    """A closed tab mid-reply cancels the request, and the text that had arrived is saved as interrupted."""
    gemini_sim.set_options(stream_delay=1.0)
    stream = await generate(user, {"prompt": "Tell me a long story about a lighthouse keeper and the sea."})
    first_chunk = None
    meta: dict[str, Any] = {}
    async for name, data in stream.events():
        if name == "meta":
            meta = data
        if name == "chunk":
            first_chunk = data["text"]
            break
    assert first_chunk
    await stream.disconnect()
    message = await Message.objects.aget(public_id=meta["modelMessageId"])
    assert message.text == first_chunk
    assert message.interrupted is True


async def test_stream_closed_while_sending_keeps_what_arrived(user, gemini_sim) -> None:
    """A response closed between two chunks (the server gave up sending) still saves the text sent so far."""
    gemini_sim.set_options(stream_delay=0.2)
    prepared = await sync_to_async(generation_prepare)(user=user, prompt="Tell me a story about the sea, please.")
    stream = generation_stream(prepared)
    assert isinstance(stream, AsyncGenerator)  # typed as an AsyncIterator; it is an async generator, with aclose()
    sent = [await anext(stream), await anext(stream)]  # meta, first chunk
    await stream.aclose()  # what Django's aclosing() does when the client is gone
    first = json.loads(sent[1].decode().split("data: ", 1)[1])["text"]
    message = await Message.objects.aget(public_id=prepared.model_message_id)
    assert (message.text, message.interrupted) == (first, True)


async def test_connection_dropped_mid_stream_saves_what_arrived_and_reports(user, gemini_sim) -> None:
    """Gemini vanishing mid-reply: the partial reply is saved (interrupted) and an error event says why."""
    gemini_sim.set_options(stream_delay=1.0)
    stream = await generate(user, {"prompt": "Tell me a long story about a lighthouse keeper and the sea."})
    events = []
    async for name, data in stream.events():
        events.append((name, data))
        if name == "chunk" and gemini_sim.loop.is_running():
            gemini_sim.stop()  # the server goes away while the reply is streaming
    await stream.finish()
    chunks = "".join(data["text"] for name, data in events if name == "chunk")
    name, error = events[-1]
    assert name == "error", events
    assert error["code"] == "GEMINI_UNAVAILABLE"
    assert error["partialMessage"]["content"]["text"] == chunks
    assert error["partialMessage"]["interrupted"] is True
    saved = await Message.objects.aget(public_id=error["partialMessage"]["id"])
    assert (saved.text, saved.interrupted) == (chunks, True)


def test_sse_event_framing() -> None:
    """An event is `event:` and one JSON `data:` line, even when the text has newlines."""
    framed = sse_event("chunk", {"text": "two\nlines"})
    assert framed == b'event: chunk\ndata: {"text": "two\\nlines"}\n\n'
    assert json.loads(framed.decode().split("data: ", 1)[1]) == {"text": "two\nlines"}


def _api_error(cls: type[genai_errors.APIError], code: int, status: str) -> genai_errors.APIError:
    return cls(code, {"error": {"code": code, "message": f"simulated {status}", "status": status}})


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (_api_error(genai_errors.ClientError, 400, "INVALID_ARGUMENT"), "GEMINI_ERROR"),
        (_api_error(genai_errors.ClientError, 429, "RESOURCE_EXHAUSTED"), "GEMINI_RATE_LIMITED"),
        (_api_error(genai_errors.ServerError, 503, "UNAVAILABLE"), "GEMINI_UNAVAILABLE"),
        (ConnectionResetError("reset"), "GEMINI_UNAVAILABLE"),
        (
            httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
            "GEMINI_UNAVAILABLE",
        ),
        (auth_exceptions.RefreshError("invalid_grant"), "GEMINI_ERROR"),
        (RuntimeError("bug"), "INTERNAL_ERROR"),
    ],
)
def test_generation_error_codes(exc: BaseException, code: str) -> None:
    """SDK and transport failures, classified by gemini.errors, map to the documented SSE error codes."""
    failure = generation_error(exc)
    assert failure.code == code
    assert failure.message
    if code == "INTERNAL_ERROR":
        assert "bug" not in failure.message  # server internals are not shown to the client


def _response(**candidate: Any) -> types.GenerateContentResponse:
    return types.GenerateContentResponse.model_validate({"candidates": [candidate]} if candidate else {})


def test_chunk_text_leaves_out_thoughts() -> None:
    """Only visible text is streamed: thought parts are not shown to the person."""
    chunk = _response(content={"role": "model", "parts": [{"text": "hidden", "thought": True}, {"text": "shown"}]})
    assert _chunk_text(chunk) == "shown"
    assert _chunk_text(_response()) == ""


@pytest.mark.parametrize(
    ("payload", "blocked"),
    [
        ({"candidates": [{"finishReason": "SAFETY"}]}, True),
        ({"promptFeedback": {"blockReason": "SAFETY"}}, True),
        ({"candidates": [{"finishReason": "STOP"}]}, False),
        ({"candidates": [{"finishReason": "MAX_TOKENS"}]}, False),
    ],
)
def test_blocked_replies_are_reported(payload: dict[str, Any], blocked: bool) -> None:
    """A reply Gemini stops for safety (or a refused prompt) becomes GEMINI_BLOCKED; normal ends do not."""
    chunk = types.GenerateContentResponse.model_validate(payload)
    if blocked:
        with pytest.raises(GenerationFailed) as info:
            _check_blocked(chunk)
        assert info.value.code == "GEMINI_BLOCKED"
    else:
        _check_blocked(chunk)
