"""The /live socket end to end: the real ASGI app, the real google-genai SDK, gemini_sim over TLS."""

from __future__ import annotations

import base64
import io
import wave

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from conversations.models import Conversation, LiveSession, Message
from tests.factories import ConversationFactory, MessageFactory
from tests.live.conftest import silence, speech

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

MODEL = "gemini-3.1-flash-live-preview"


@database_sync_to_async
def messages_of(conversation_id: str) -> list[Message]:
    return list(Message.objects.filter(conversation__public_id=conversation_id).order_by("created_at", "id"))


@database_sync_to_async
def session_row(public_id: str) -> LiveSession:
    return LiveSession.objects.get(public_id=public_id)


def wav_info(message: Message) -> tuple[int, float]:
    with message.audio.open("rb") as fh, wave.open(io.BytesIO(fh.read())) as wav:
        return wav.getframerate(), wav.getnframes() / wav.getframerate()


async def test_anonymous_socket_is_closed_with_4401(transactional_db):
    from apsara.asgi import application

    communicator = WebsocketCommunicator(application, "/live", headers=[(b"origin", b"http://testserver")])
    connected, _ = await communicator.connect()
    assert connected
    output = await communicator.receive_output(5)
    assert output == {"type": "websocket.close", "code": 4401, "reason": ""} or output["code"] == 4401


async def test_cross_site_origin_is_refused(connect, live_user):
    from apsara.asgi import application

    communicator = WebsocketCommunicator(application, "/live", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


async def test_seed_flow_typed_text(sim, connect):
    """create_session → session_created → send_message text → session_message reply → end_session."""
    ws = await connect()
    created = await ws.create(model=MODEL, userId="someone-else", config={"responseModalities": ["AUDIO"]})
    assert created["sessionId"].startswith("live_")
    assert created["model"] == MODEL
    assert created["provider"] == "google"
    assert created["conversationId"].startswith("conv_")
    assert created["protocolVersion"] == "1.0"
    assert created["timestamp"].endswith("Z")
    session_id = created["sessionId"]

    await ws.send(
        {"type": "send_message", "sessionId": session_id, "data": {"text": "Hello there", "turnComplete": True}}
    )
    turn = await ws.until_turn_complete()
    contents = [
        m["data"]["serverContent"]
        for m in turn
        if isinstance(m, dict) and m["type"] == "session_message" and "serverContent" in m["data"]
    ]
    audio = [p for c in contents for p in c.get("modelTurn", {}).get("parts", []) if "inlineData" in p]
    assert audio, "the model's audio arrives base64 inside session_message by default"
    assert audio[0]["inlineData"]["mimeType"].startswith("audio/pcm;rate=24000")
    assert base64.b64decode(audio[0]["inlineData"]["data"])
    assert any("outputTranscription" in c for c in contents)

    await ws.send({"type": "end_session", "sessionId": session_id})
    ended = await ws.expect("session_ended")
    assert ended["reason"] == "client"

    saved = await messages_of(created["conversationId"])
    assert [m.role for m in saved] == ["user", "model"]
    assert saved[0].text == "Hello there"
    assert saved[1].message_type == "live" and saved[1].audio and saved[1].output_transcription
    assert saved[1].live_config == {"model": MODEL, "sessionId": session_id, "responseModalities": ["AUDIO"]}
    rate, seconds = wav_info(saved[1])
    assert rate == 24000 and seconds == pytest.approx(saved[1].audio_duration, abs=0.01)
    row = await session_row(session_id)
    assert row.status == LiveSession.Status.ENDED
    conversation = await database_sync_to_async(Conversation.objects.get)(public_id=created["conversationId"])
    assert conversation.kind == "live"
