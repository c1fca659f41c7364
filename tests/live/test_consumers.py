"""The /live socket end to end: the real ASGI app, the real google-genai SDK, gemini_sim over TLS."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from conversations.models import Conversation, Message
from live.models import LiveSession
from tests.factories import ConversationFactory, MessageFactory
from tests.live.conftest import MODEL, messages_of, session_row, silence, speech

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


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
    await communicator.disconnect()


async def test_cross_site_origin_is_refused(connect, live_user):
    from apsara.asgi import application

    communicator = WebsocketCommunicator(application, "/live", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()  # end the refusing consumer here, not in the event loop's teardown


async def test_seed_flow_typed_text(gemini_sim, connect):
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


async def test_spoken_turn_is_stored_as_two_wav_messages(gemini_sim, connect, live_user):
    """Speech then silence (binary PCM frames) → Gemini's VAD ends the turn → user and model turns stored as WAV."""
    ws = await connect()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send_audio(speech(1.0) + silence(1.0))
    turn = await ws.until_turn_complete()
    model_audio = b"".join(m for m in turn if isinstance(m, bytes))
    assert len(model_audio) > 24000, "binaryAudio: model audio arrives as binary frames"
    contents = [
        m["data"].get("serverContent", {}) for m in turn if isinstance(m, dict) and m["type"] == "session_message"
    ]
    assert not any("inlineData" in p for c in contents for p in c.get("modelTurn", {}).get("parts", []))
    heard = [c["inputTranscription"]["text"] for c in contents if "inputTranscription" in c]
    assert heard == ["(", "1.0 seconds of speech)"]  # streamed while heard

    saved = [await ws.expect("message_saved"), await ws.expect("message_saved")]
    assert [s["message"]["role"] for s in saved] == ["user", "model"]
    assert all(s["sessionId"] == created["sessionId"] for s in saved)

    stored = await messages_of(created["conversationId"])
    user, model = stored
    assert (user.role, model.role) == ("user", "model")
    assert user.input_transcription == "(1.0 seconds of speech)"
    rate, seconds = wav_info(user)
    # One second of speech plus the 0.3 s kept after it; the silence beyond that is not a turn's content.
    assert rate == 16000 and seconds == pytest.approx(1.3, abs=0.05)
    assert user.audio_duration == pytest.approx(seconds, abs=0.001)
    rate, seconds = wav_info(model)
    assert rate == 24000 and seconds == pytest.approx(len(model_audio) / 48000, abs=0.001)
    assert model.output_transcription.startswith("I heard you speak for about 1.0 seconds")
    assert model.text == model.output_transcription
    assert model.usage["responseTokenCount"] > 0
    assert not model.interrupted
    assert user.audio.name.startswith(f"audio/{live_user.pk}/{created['conversationId']}/")


async def test_barge_in_interrupts_and_flags_the_model_turn(gemini_sim, connect):
    gemini_sim.set_options(realtime_factor=4)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send({"type": "send_message", "data": {"text": "Tell me a story in 6 sentences"}})
    while not isinstance(await ws.next(), bytes):
        pass  # the model has started speaking
    await ws.send_audio(speech(0.5) + silence(1.0))
    turn = await ws.until_turn_complete()
    interrupted = [
        m for m in turn if isinstance(m, dict) and m.get("data", {}).get("serverContent", {}).get("interrupted")
    ]
    assert interrupted, "the browser is told to stop playback"
    await ws.until_turn_complete()  # the answer to what was said over the model
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")
    stored = await messages_of(created["conversationId"])
    assert [(m.role, m.interrupted) for m in stored] == [
        ("user", False),
        ("model", True),
        ("user", False),
        ("model", False),
    ]
    story = stored[1]
    assert story.audio and story.audio_duration > 0
    assert stored[2].input_transcription == "(0.5 seconds of speech)"


async def test_tool_call_round_trip(gemini_sim, connect):
    from live.tools import tool_execute

    ws = await connect()
    created = await ws.create(model=MODEL, config={"tools": ["calculator"]})
    assert created["config"]["tools"] == ["calculator"]
    await ws.send({"type": "send_message", "data": {"text": "Use the calculator for 15 * 23"}})
    call = await ws.expect("session_message")
    while "toolCall" not in call["data"]:
        call = await ws.expect("session_message")
    function_call = call["data"]["toolCall"]["functionCalls"][0]
    assert function_call["name"] == "calculator"
    response = await ws.expect("session_message")
    while "toolResponse" not in response["data"]:
        response = await ws.expect("session_message")
    expected = await tool_execute(user=None, name="calculator", args=function_call["args"])  # type: ignore[arg-type]
    assert response["data"]["toolResponse"]["functionResponses"][0]["response"] == expected
    await ws.until_turn_complete()

    sent = [m for m in gemini_sim.client_messages() if "tool_response" in m or "toolResponse" in m]
    body = sent[0].get("tool_response") or sent[0]["toolResponse"]
    fr = (body.get("function_responses") or body["functionResponses"])[0]
    assert fr["id"] == function_call["id"] and fr["name"] == "calculator" and fr["response"] == expected

    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")
    stored = await messages_of(created["conversationId"])
    assert [m.role for m in stored] == ["user", "tool", "model"]
    assert stored[1].tool_data == {
        "id": function_call["id"],
        "name": "calculator",
        "args": function_call["args"],
        "response": expected,
        "cancelled": False,
    }
    assert "calculator result" in stored[2].output_transcription


async def test_text_on_an_audio_only_model_is_served_from_the_transcription(gemini_sim, connect):
    ws = await connect()
    created = await ws.create(model=MODEL, config={"responseModalities": ["TEXT"]})
    assert created["config"]["responseModalities"] == ["TEXT"]
    assert created["config"]["upstreamModalities"] == ["AUDIO"]
    assert created["config"]["textViaTranscription"] is True
    assert any("audio only" in n for n in created["notices"])
    await ws.send({"type": "send_message", "data": {"text": "Hello"}})
    turn = await ws.until_turn_complete()
    assert not any(isinstance(m, bytes) for m in turn)
    parts = [
        p
        for m in turn
        if isinstance(m, dict) and m["type"] == "session_message"
        for p in m["data"].get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    ]
    assert parts and all(set(p) == {"text"} for p in parts)
    assert "".join(p["text"] for p in parts).startswith("Hello! How can I help you today?")
    setup = gemini_sim.client_messages()[0]["setup"]
    assert setup["generationConfig"]["responseModalities"] == ["AUDIO"]


async def test_invalid_voice_is_rejected_before_gemini(gemini_sim, connect):
    ws = await connect()
    await ws.send(
        {
            "type": "create_session",
            "data": {"model": MODEL, "config": {"speechConfig": {"voiceConfig": {"voiceName": "auto"}}}},
        }
    )
    error = await ws.expect("session_error")
    assert error["error"]["code"] == "INVALID_CONFIG"
    assert (
        "'auto'" in error["error"]["message"]
        and "Puck" in error["error"]["message"]
        and "Zephyr" in error["error"]["message"]
    )
    assert gemini_sim.records(type="connect") == []
    created = await ws.create(model=MODEL, config={"speechConfig": {"voiceConfig": {"voiceName": "kore"}}})
    assert created["config"]["voiceName"] == "Kore"
    setup = gemini_sim.client_messages()[0]["setup"]
    assert "Kore" in str(setup["generationConfig"]["speechConfig"])


@pytest.mark.parametrize("handle_delay", [0.0, 0.3])
async def test_configure_vad_resumes_gemini_with_the_new_settings(gemini_sim, connect, handle_delay):
    """With ``handle_delay``, configure_vad arrives before the handle covering the last turn: the switch waits for
    it instead of resuming from the older handle and replaying (and so re-asking) what was already answered."""
    gemini_sim.set_options(handle_delay=handle_delay)
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "My name is Ada"}})
    await ws.until_turn_complete()
    await ws.send({"type": "configure_vad", "sessionId": created["sessionId"], "data": {"enabled": False}})
    configured = await ws.expect("vad_configured")
    assert configured["vad"]["enabled"] is False
    setups = [m["setup"] for m in gemini_sim.client_messages() if "setup" in m]
    assert len(setups) == 2
    assert setups[1]["sessionResumption"]["handle"]
    assert str(setups[1]["realtimeInputConfig"]).count("disabled") == 1 and "True" in str(
        setups[1]["realtimeInputConfig"]
    )
    # Push-to-talk now works, and the model still knows the name (same Gemini session, resumed).
    await ws.send({"type": "activity_start"})
    await ws.send_audio(speech(0.6))
    await ws.send({"type": "activity_end"})
    await ws.until_turn_complete()
    await ws.send({"type": "send_message", "data": {"text": "What is my name?"}})
    turn = await ws.until_turn_complete()
    said = "".join(
        m["data"]["serverContent"].get("outputTranscription", {}).get("text", "")
        for m in turn
        if isinstance(m, dict) and m["type"] == "session_message" and "serverContent" in m["data"]
    )
    assert "Your name is Ada" in said
    assert not ws.of_type("session_reconnecting")
    said_to_gemini = [m for m in gemini_sim.client_messages() if "My name is Ada" in json.dumps(m)]
    assert len(said_to_gemini) == 1


async def test_message_saved_reaches_the_users_other_tabs(gemini_sim, connect, live_user):
    other_tab = await connect()
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "Hello"}})
    saved = await other_tab.expect("message_saved")
    assert saved["conversationId"] == created["conversationId"] and saved["sessionId"] == created["sessionId"]
    assert saved["message"]["role"] == "user" and saved["message"]["text"] == "Hello"
    assert saved["message"]["messageType"] == "live"


async def test_a_closed_socket_leaves_nothing_behind_in_the_channel_layer(gemini_sim, connect, live_user, monkeypatch):
    # Its last recording is saved as it closes; the other tab hears of it, the closed socket's channel gets nothing
    # (channels_redis would keep such messages in its receive buffer for the life of the process).
    from channels.layers import get_channel_layer

    from conversations.events import user_group

    layer = get_channel_layer()
    members_when_announced: list[set[str]] = []
    group_send = layer.group_send

    async def spy(group: str, message: dict) -> None:
        if group == user_group(live_user.pk) and hasattr(layer, "groups"):  # the in-memory layer shows its groups
            members_when_announced.append(set(layer.groups.get(group, {})))
        await group_send(group, message)

    monkeypatch.setattr(layer, "group_send", spy)
    other_tab = await connect()
    ws = await connect()
    created = await ws.create(model=MODEL)
    channel = (await session_row(created["sessionId"])).channel_name
    await ws.send_audio(speech(0.4))
    await ws.close()  # mid-sentence: the partial user turn is flushed
    saved = await other_tab.expect("message_saved")
    assert saved["message"]["role"] == "user" and saved["message"]["audioDuration"] > 0
    await other_tab.drain()
    assert all(channel not in members for members in members_when_announced)
    assert channel not in getattr(layer, "receive_buffer", {})  # channels_redis
    assert channel not in getattr(layer, "channels", {})  # the in-memory layer


async def test_a_failing_channel_layer_at_close_still_loses_nothing(
    gemini_sim, connect, live_user, monkeypatch, caplog
):
    from channels.layers import get_channel_layer

    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send_audio(speech(0.4))

    async def unreachable(group: str, channel: str) -> None:
        raise ConnectionError("Redis is gone")

    monkeypatch.setattr(get_channel_layer(), "group_discard", unreachable)
    await ws.close()  # mid-sentence: leaving the user's group fails, the partial user turn is still saved
    for _ in range(50):
        saved = await messages_of(created["conversationId"])
        if saved:
            break
        await asyncio.sleep(0.1)
    assert [m.role for m in saved] == ["user"] and saved[0].audio_duration > 0
    assert "leaving group" in caplog.text


async def test_existing_conversation_must_belong_to_the_user(gemini_sim, connect, live_user):
    mine = await database_sync_to_async(ConversationFactory)(owner=live_user)
    theirs = await database_sync_to_async(ConversationFactory)()
    ws = await connect()
    await ws.send({"type": "create_session", "data": {"model": MODEL, "conversationId": theirs.public_id}})
    error = await ws.expect("session_error")
    assert error["error"]["code"] == "CONVERSATION_NOT_FOUND"
    created = await ws.create(model=MODEL, conversationId=mine.public_id)
    assert created["conversationId"] == mine.public_id


async def test_end_session_from_the_admin_over_the_channel_layer(gemini_sim, connect):
    from live.services import live_session_end_request

    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "Hello"}})
    await ws.until_turn_complete()
    row = await session_row(created["sessionId"])
    # What the admin action does: mark it ended, then live.end to live_session_<id> after commit.
    await database_sync_to_async(live_session_end_request)(live_session=row)
    ended = await ws.expect("session_ended")
    assert ended["reason"] == "admin"
    row = await session_row(created["sessionId"])
    assert row.status == LiveSession.Status.ENDED and row.last_error_code == "ENDED_BY_STAFF"
    assert not row.resumption_handle
    assert len(await messages_of(created["conversationId"])) == 2
    await ws.send({"type": "ping"})
    assert (await ws.expect("pong"))["protocolVersion"] == "1.0"


async def test_disconnect_mid_turn_loses_nothing_already_said(gemini_sim, connect):
    gemini_sim.set_options(realtime_factor=2)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send({"type": "send_message", "data": {"text": "Tell me a story in 6 sentences"}})
    heard = b""
    while len(heard) < 48000:  # a second of the answer
        item = await ws.next()
        if isinstance(item, bytes):
            heard += item
    await ws.close()
    stored = await messages_of(created["conversationId"])
    assert [m.role for m in stored] == ["user", "model"]
    assert stored[0].text == "Tell me a story in 6 sentences"
    partial = stored[1]
    assert partial.interrupted
    assert partial.audio_duration >= len(heard) / 48000 - 0.001
    assert partial.output_transcription.startswith("Once")
    row = await session_row(created["sessionId"])
    assert row.status == LiveSession.Status.DETACHED
    assert row.resumption_handle


async def test_context_of_25_messages_reaches_gemini_in_two_batches(gemini_sim, connect, live_user):
    conversation = await database_sync_to_async(ConversationFactory)(owner=live_user)
    for i in range(25):
        await database_sync_to_async(MessageFactory)(
            conversation=conversation, role="user" if i % 2 == 0 else "model", text=f"message number {i}"
        )
    ws = await connect()
    await ws.create(model=MODEL, conversationId=conversation.public_id, loadConversationContext=True)
    loaded = await ws.expect("context_loaded")
    assert loaded["messagesLoaded"] == 20 and loaded["turnsLoaded"] == 20 and loaded["batches"] == 2
    assert loaded["conversationId"] == conversation.public_id
    await ws.until_turn_complete()  # the last turn is the user's: Gemini answers it
    sent = [m.get("client_content") or m.get("clientContent") for m in gemini_sim.client_messages()]
    batches = [b for b in sent if b is not None]
    assert [len(b["turns"]) for b in batches] == [10, 10]
    assert [b.get("turnComplete", b.get("turn_complete")) for b in batches] == [False, True]
    texts = [t["parts"][0]["text"] for b in batches for t in b["turns"]]
    assert texts == [f"message number {i}" for i in range(5, 25)]
    roles = [t["role"] for b in batches for t in b["turns"]]
    assert roles == ["model" if i % 2 else "user" for i in range(5, 25)]
    setup = gemini_sim.client_messages()[0]["setup"]
    # The SDK sends the inside of historyConfig in snake_case; Gemini parses proto-JSON, either spelling.
    assert setup["historyConfig"] in (
        {"initialHistoryInClientContent": True},
        {"initial_history_in_client_content": True},
    )


async def test_a_message_saved_outside_live_reaches_open_sockets(connect, live_user):
    from conversations.services import message_create

    ws = await connect()
    conversation = await database_sync_to_async(ConversationFactory)(owner=live_user)

    @database_sync_to_async
    def save_typed_reply() -> Message:
        return message_create(conversation=conversation, role="model", text="A typed reply")

    message = await save_typed_reply()
    saved = await ws.expect("message_saved")
    assert saved["sessionId"] is None and saved["conversationId"] == conversation.public_id
    assert saved["message"]["id"] == message.public_id and saved["message"]["messageType"] == "rest"
    assert saved["message"]["hasAudio"] is False


async def test_metrics_follow_a_session(gemini_sim, connect):
    from live import metrics

    def value(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    before = {
        "created": value("apsara_live_sessions_created_total"),
        "active": value("apsara_live_sessions_active"),
        "audio_in": value("apsara_live_audio_seconds_total", direction="in"),
        "audio_out": value("apsara_live_audio_seconds_total", direction="out"),
        "first_audio": value("apsara_live_time_to_first_audio_seconds_count"),
    }
    ws = await connect()
    await ws.create(model=MODEL)
    assert value("apsara_live_sessions_created_total") == before["created"] + 1
    assert value("apsara_live_sessions_active") == before["active"] + 1
    await ws.send_audio(speech(0.5) + silence(1.0))
    await ws.until_turn_complete()
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")
    assert value("apsara_live_audio_seconds_total", direction="in") == pytest.approx(before["audio_in"] + 1.5)
    assert value("apsara_live_audio_seconds_total", direction="out") > before["audio_out"]
    assert value("apsara_live_time_to_first_audio_seconds_count") == before["first_audio"] + 1
    assert value("apsara_live_sessions_active") == before["active"]


async def test_context_requested_for_an_empty_conversation_is_skipped(gemini_sim, connect):
    ws = await connect()
    created = await ws.create(model=MODEL, loadConversationContext=True)
    skipped = await ws.expect("context_load_skipped")
    assert skipped["sessionId"] == created["sessionId"] and skipped["conversationId"] == created["conversationId"]
    assert skipped["reason"]


@pytest.mark.parametrize(
    ("model", "text_as_realtime", "history_config"),
    [
        ("gemini-3.1-flash-live-preview", True, True),
        ("gemini-3.8-live", True, True),
        ("gemini-2.5-flash-native-audio-preview-12-2025", False, False),
    ],
)
async def test_translation_is_model_aware(gemini_sim, connect, live_user, model, text_as_realtime, history_config):
    conversation = await database_sync_to_async(ConversationFactory)(owner=live_user)
    await database_sync_to_async(MessageFactory)(conversation=conversation, role="user", text="My name is Ada")
    await database_sync_to_async(MessageFactory)(conversation=conversation, role="model", text="Hello Ada.")
    ws = await connect()
    await ws.create(model=model, conversationId=conversation.public_id, loadConversationContext=True)
    await ws.expect("context_loaded")
    await ws.send({"type": "send_message", "data": {"text": "What is my name?"}})
    turn = await ws.until_turn_complete()
    assert "Your name is Ada" in "".join(
        m["data"]["serverContent"].get("outputTranscription", {}).get("text", "")
        for m in turn
        if isinstance(m, dict) and m["type"] == "session_message" and "serverContent" in m["data"]
    )
    sent = gemini_sim.client_messages()
    assert ("historyConfig" in sent[0]["setup"]) is history_config
    typed = [m for m in sent[1:] if "What is my name?" in json.dumps(m)]
    assert len(typed) == 1
    assert ("realtime_input" in typed[0] or "realtimeInput" in typed[0]) is text_as_realtime


async def test_configure_vad_during_a_model_turn_waits_for_the_turn_to_end(gemini_sim, connect):
    gemini_sim.set_options(realtime_factor=8)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send({"type": "send_message", "data": {"text": "Tell me a story in 2 sentences"}})
    while not isinstance(await ws.next(), bytes):
        pass
    await ws.send({"type": "configure_vad", "data": {"enabled": True, "silenceThreshold": 300}})
    turn = await ws.until_turn_complete()
    assert not [
        m for m in turn if isinstance(m, dict) and m.get("data", {}).get("serverContent", {}).get("interrupted")
    ]
    configured = await ws.expect("vad_configured")
    assert configured["vad"] == {"enabled": True, "silenceThreshold": 300}
    setups = [m["setup"] for m in gemini_sim.client_messages() if "setup" in m]
    assert len(setups) == 2 and "300" in json.dumps(setups[1])
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")
    stored = await messages_of(created["conversationId"])
    assert [(m.role, m.interrupted) for m in stored] == [("user", False), ("model", False)]


async def test_the_gemini_leg_is_uncompressed(gemini_sim, connect):
    ws = await connect()
    await ws.create(model=MODEL)
    [connection] = gemini_sim.records(type="connect")
    headers = {k.lower(): v for k, v in connection["headers"].items()}
    assert "permessage-deflate" not in headers.get("sec-websocket-extensions", "")
    assert headers.get("x-goog-api-key")


async def test_switching_to_push_to_talk_mid_answer_applies_before_the_next_input(gemini_sim, connect):
    gemini_sim.set_options(realtime_factor=4)
    ws = await connect()
    await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send({"type": "send_message", "data": {"text": "Tell me a story in 6 sentences"}})
    while not isinstance(await ws.next(), bytes):
        pass
    # What a page does when the person switches to push-to-talk and presses the button straight away.
    await ws.send({"type": "configure_vad", "data": {"enabled": False}})
    await ws.send({"type": "activity_start"})
    await ws.send_audio(speech(0.6))
    await ws.send({"type": "activity_end"})
    await ws.expect("vad_configured")
    while True:
        turn = await ws.until_turn_complete()
        heard = [
            m["data"]["serverContent"]["inputTranscription"]["text"]
            for m in turn
            if isinstance(m, dict) and "inputTranscription" in m.get("data", {}).get("serverContent", {})
        ]
        if heard:
            break
    assert "".join(heard) == "(0.6 seconds of speech)"
    assert not ws.of_type("session_error")
    assert not [c for c in gemini_sim.records(type="close") if c["code"] == 1007]


@pytest.mark.parametrize(
    ("mode", "rest_version", "live_version", "path"),
    [
        ("simulator", "", "", "gemini:v1beta"),
        ("api_key", "", "", "gemini:v1beta"),
        ("api_key", "v1", "", "gemini:v1beta"),
        ("api_key", "v2", "", "gemini:v1beta"),
        ("api_key", "v1", "v1alpha", "gemini:v1alpha"),
    ],
)
async def test_talk_opens_live_where_the_gemini_api_serves_it_whatever_rest_uses(
    gemini_sim, connect, settings, monkeypatch, mode, rest_version, live_version, path
):
    """The SDK's default (v1) and GEMINI_API_VERSION (REST) never reach Live: the Gemini API serves it on v1beta."""
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")  # the SDK's default, pinned whatever the SDK version
    if mode == "api_key":
        settings.GEMINI_API_KEY = "test-key-0123456789"
        settings.GEMINI_BASE_URL = gemini_sim.base_url
        settings.GEMINI_CA_FILE = str(gemini_sim.ca_path)
    settings.GEMINI_API_VERSION = rest_version
    settings.GEMINI_LIVE_API_VERSION = live_version
    ws = await connect()
    await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "Hello"}})
    await ws.until_turn_complete()
    assert [c["path"] for c in gemini_sim.records(type="connect")] == [path]


@pytest.mark.parametrize("model", ["gemini-3.5-transcribe-live", "gemini-3.5-live-translate-preview"])
async def test_a_model_that_cannot_hold_a_conversation_is_refused_and_the_socket_stays_usable(
    gemini_sim, connect, model
):
    ws = await connect()
    await ws.send({"type": "create_session", "data": {"model": model}})
    error = (await ws.expect("session_error"))["error"]
    assert error["code"] == "INVALID_CONFIG"
    message = error["message"]
    assert message.startswith(f"{model} cannot hold a conversation, so Talk cannot use it: ")
    assert "takes audio input only and no tools" in message
    offered = message.split("Use one of: ", 1)[1].rstrip(".").split(", ")
    assert MODEL in offered and "gemini-3.8-live" in offered
    assert not {"gemini-3.5-transcribe-live", "gemini-3.5-live-translate-preview"} & set(offered)
    assert gemini_sim.records(type="connect") == []
    assert await database_sync_to_async(LiveSession.objects.count)() == 0
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "sessionId": created["sessionId"], "data": {"text": "Hello"}})
    await ws.until_turn_complete()
    assert [c["path"] for c in gemini_sim.records(type="connect")] == ["gemini:v1beta"]


@pytest.mark.parametrize("model", ["gemini-3.8-live", "gemini-3.1-flash-live-preview"])
async def test_turn_complete_on_audio_ends_the_spoken_turn_on_every_model(gemini_sim, connect, model):
    """audioChunk + turnComplete ends the user's turn: audioStreamEnd, and on 3.8 (where that alone does not end
    it) the trailing silence a paused microphone would send."""
    ws = await connect()
    await ws.create(model=model)
    await ws.send_audio(speech(1.0))
    end = base64.b64encode(silence(0.04)).decode()
    await ws.send({"type": "send_message", "data": {"audioChunk": end, "turnComplete": True}})
    turn = await ws.until_turn_complete(within=10)
    contents = [m["data"].get("serverContent", {}) for m in turn if isinstance(m, dict) and "data" in m]
    assert [c["inputTranscription"]["text"] for c in contents if "inputTranscription" in c] == [
        "(",
        "1.0 seconds of speech)",
    ]
    sent = gemini_sim.client_messages()
    assert any("audioStreamEnd" in (m.get("realtime_input") or m.get("realtimeInput") or {}) for m in sent)


async def test_push_to_talk_then_back_to_automatic_at_once_keeps_the_session(gemini_sim, connect):
    """Markers queued for a push-to-talk connection that reach the next (automatic) one are not sent: Gemini would
    refuse them and end the session."""
    ws = await connect()
    await ws.create(model=MODEL)
    for message in (
        {"type": "configure_vad", "data": {"enabled": False}},
        {"type": "activity_start"},
        {"type": "activity_end"},
        {"type": "configure_vad", "data": {"enabled": True}},
    ):
        await ws.send(message)
    await ws.send({"type": "send_message", "data": {"text": "My name is Ada"}})
    await ws.until_turn_complete()
    assert not ws.of_type("session_error") and not ws.of_type("session_ended")


@pytest.mark.timeout(60)
async def test_a_misconfigured_endpoint_reaches_the_browser_as_upstream_error_not_model_not_found(
    gemini_sim, connect, settings
):
    """Seed 000: a 404 at the handshake with a correct model name is the server's endpoint, not the model."""
    settings.GEMINI_API_KEY = "k-1234"
    settings.GEMINI_BASE_URL = gemini_sim.base_url + "/v1beta"
    settings.GEMINI_CA_FILE = str(gemini_sim.ca_path)
    ws = await connect()
    await ws.send({"type": "create_session", "data": {"model": "gemini-3.1-flash-live-preview"}})
    error = (await ws.expect("session_error"))["error"]
    assert error["code"] == "UPSTREAM_ERROR" and "endpoint is misconfigured (HTTP 404)" in error["message"]
    assert gemini_sim.records(type="ws_rejected")[0]["status"] == 404
