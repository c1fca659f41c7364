"""Bad input, limits and abuse: every case answered on the same socket, which stays usable."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave

import pytest
from channels.db import database_sync_to_async

from conversations.models import Message
from live.lease import worker_name
from live.models import LiveSession, LiveWorker
from tests.factories import LiveSessionFactory
from tests.live.conftest import MODEL, dead_worker, live_worker, silence, speech

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def wav16k(pcm: bytes, rate: int = 16000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buffer.getvalue()


async def assert_usable(ws) -> None:
    """The socket still answers, and its session (if any) still talks to Gemini."""
    await ws.send({"type": "ping"})
    await ws.expect("pong")


BAD_BEFORE_SESSION = [
    ("{not json", "session_error", "INVALID_JSON"),
    ("[1, 2]", "session_error", "INVALID_MESSAGE"),
    ('{"data": {}}', "session_error", "INVALID_MESSAGE"),
    ('{"type": "launch_rockets"}', "session_error", "UNKNOWN_MESSAGE_TYPE"),
    ('{"type": "send_message", "data": {"text": "hi"}}', "session_error", "NO_ACTIVE_SESSION"),
    ('{"type": "end_session"}', "session_error", "NO_ACTIVE_SESSION"),
    ('{"type": "create_session", "data": {"model": 7}}', "session_error", "INVALID_MESSAGE"),
    (
        '{"type": "create_session", "data": {"config": {"responseModalities": ["VIDEO"]}}}',
        "session_error",
        "INVALID_MESSAGE",
    ),
    ('{"type": "create_session", "data": {"loadConversationContext": "yes"}}', "session_error", "INVALID_MESSAGE"),
    ('{"type": "create_session", "data": {"config": {"tools": ["rm_rf"]}}}', "session_error", "INVALID_CONFIG"),
    (
        '{"type": "create_session", "data": {"config": {"contextWindowCompression": {"maxTokens": 10}}}}',
        "session_error",
        "INVALID_CONFIG",
    ),
    (
        '{"type": "create_session", "data": {"config": {"contextWindowCompression": {"compressionRatio": 1.5}}}}',
        "session_error",
        "INVALID_CONFIG",
    ),
    ('{"type": "create_session", "data": {"config": {"vad": {"sensitivity": 3}}}}', "session_error", "INVALID_CONFIG"),
    ('{"type": "resume_session", "data": {"sessionId": "live_nope"}}', "session_error", "SESSION_NOT_FOUND"),
    ('{"type": "resume_session", "data": {}}', "session_error", "INVALID_MESSAGE"),
]


@pytest.mark.parametrize(("frame", "kind", "code"), BAD_BEFORE_SESSION)
async def test_bad_input_without_a_session(gemini_sim, connect, frame, kind, code):
    ws = await connect()
    await ws.send_raw(frame)
    error = await ws.expect(kind)
    assert error["error"]["code"] == code
    assert error["error"]["message"] and "Traceback" not in error["error"]["message"]
    assert error["timestamp"]
    await assert_usable(ws)
    assert gemini_sim.records(type="connect") == []


async def test_bad_input_during_a_session_keeps_it_usable(gemini_sim, connect, settings):
    settings.LIVE_MAX_FRAME_BYTES = 64 * 1024
    ws = await connect()
    created = await ws.create(model=MODEL)
    sid = created["sessionId"]
    cases = [
        (
            {"type": "send_message", "sessionId": "live_someone_else", "data": {"text": "hi"}},
            "session_error",
            "SESSION_NOT_FOUND",
        ),
        ({"type": "send_message", "data": {"text": 5}}, "session_error", "INVALID_MESSAGE"),
        ({"type": "send_message", "data": {"text": "hi", "turnComplete": "yes"}}, "session_error", "INVALID_MESSAGE"),
        ({"type": "send_message", "data": {}}, "session_error", "INVALID_MESSAGE"),
        ({"type": "send_message", "data": {"text": "   "}}, "session_error", "INVALID_MESSAGE"),
        ({"type": "send_message", "data": {"audioChunk": "%%% not base64 %%%"}}, "audio_error", "AUDIO_DECODE_FAILED"),
        ({"type": "send_message", "data": {"audioChunk": b64(b"hello")}}, "audio_error", "AUDIO_DECODE_FAILED"),
        (
            {"type": "send_message", "data": {"audioChunk": b64(b"OggS" + b"\0" * 60)}},
            "audio_error",
            "UNSUPPORTED_AUDIO_FORMAT",
        ),
        (
            {"type": "send_message", "data": {"audioChunk": b64(silence(0.1)), "mimeType": "audio/webm"}},
            "audio_error",
            "UNSUPPORTED_AUDIO_FORMAT",
        ),
        (
            {"type": "send_message", "data": {"audioChunk": b64(wav16k(silence(0.1), rate=44100))}},
            "audio_error",
            "UNSUPPORTED_AUDIO_FORMAT",
        ),
        ({"type": "send_message", "data": {"screenData": b64(b"just some text")}}, "session_error", "INVALID_MESSAGE"),
        ({"type": "activity_start"}, "session_error", "INVALID_STATE"),
        ({"type": "configure_vad", "data": {"silenceThreshold": -5}}, "session_error", "INVALID_CONFIG"),
        ({"type": "configure_vad", "data": {"sensitivity": "high"}}, "session_error", "INVALID_MESSAGE"),
        ({"type": "create_session", "data": {"model": MODEL}}, "session_error", "SESSION_ALREADY_ACTIVE"),
        ({"type": "resume_session", "data": {"sessionId": sid}}, "session_error", "SESSION_ALREADY_ACTIVE"),
        ({"type": "end_session", "sessionId": "live_someone_else"}, "session_error", "SESSION_NOT_FOUND"),
    ]
    for message, kind, code in cases:
        await ws.send(message)
        error = await ws.expect(kind)
        assert error["error"]["code"] == code, message
        assert error["sessionId"] == sid
        if kind == "audio_error":
            assert "audio/pcm;rate=16000" in error["error"]["supportedFormats"]
    await ws.send_raw(json.dumps({"type": "send_message", "data": {"text": "x" * 70_000}}))
    assert (await ws.expect("session_error"))["error"]["code"] == "FRAME_TOO_LARGE"
    await ws.communicator.send_to(bytes_data=b"\0" * 70_000)
    assert (await ws.expect("session_error"))["error"]["code"] == "FRAME_TOO_LARGE"
    await ws.communicator.send_to(bytes_data=b"\0" * 641)
    odd = await ws.expect("audio_error")
    assert odd["error"]["code"] == "AUDIO_DECODE_FAILED" and odd["error"]["supportedFormats"]

    # Still the same, working session.
    await ws.send({"type": "send_message", "sessionId": sid, "data": {"text": "Hello"}})
    await ws.until_turn_complete()
    assert not ws.of_type("session_ended")


async def test_accepted_audio_and_image_forms(gemini_sim, connect):
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"audioChunk": b64(speech(0.5)), "turnComplete": False}})
    await ws.send({"type": "send_message", "data": {"audioChunk": b64(wav16k(silence(1.0))), "mimeType": "audio/wav"}})
    heard = await ws.until_turn_complete()
    transcripts = [
        m["data"]["serverContent"]["inputTranscription"]["text"]
        for m in heard
        if isinstance(m, dict) and "inputTranscription" in m.get("data", {}).get("serverContent", {})
    ]
    assert "".join(transcripts) == "(0.5 seconds of speech)"  # heard as it is spoken, in pieces
    await ws.send({"type": "send_message", "data": {"screenData": b64(JPEG), "text": "What do you see?"}})
    turn = await ws.until_turn_complete()
    assert "I can see the 1 video frames" in "".join(
        m["data"]["serverContent"].get("outputTranscription", {}).get("text", "")
        for m in turn
        if isinstance(m, dict) and m["type"] == "session_message" and "serverContent" in m["data"]
    )
    video = [
        m for m in gemini_sim.client_messages() if "video" in str(m.get("realtime_input", m.get("realtimeInput", "")))
    ]
    assert len(video) == 1
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")
    stored = await database_sync_to_async(list)(
        Message.objects.filter(conversation__public_id=created["conversationId"]).order_by("created_at", "id")
    )
    assert [m.role for m in stored] == ["user", "model", "user", "model"]
    assert stored[0].audio_duration == pytest.approx(0.8, abs=0.05)  # 0.5 s of speech + 0.3 s after it


async def test_audio_before_create_session_is_answered_once_a_second(gemini_sim, connect):
    ws = await connect()
    for _ in range(20):
        await ws.communicator.send_to(bytes_data=silence(0.04))
    errors = [m for m in await ws.drain() if isinstance(m, dict)]
    assert [e["error"]["code"] for e in errors] == ["NO_ACTIVE_SESSION"]
    await assert_usable(ws)


async def test_per_user_session_limit_counts_sessions_of_every_process(gemini_sim, connect, live_user, settings):
    settings.LIVE_MAX_SESSIONS_PER_USER = 3
    # A session held by another server process (only the database knows about it).
    await database_sync_to_async(LiveSessionFactory)(user=live_user, status=LiveSession.Status.ACTIVE)
    first, second, third = await connect(), await connect(), await connect()
    a = await first.create(model=MODEL)
    await second.create(model=MODEL)
    await third.send({"type": "create_session", "data": {"model": MODEL}})
    error = await third.expect("session_error")
    assert error["error"]["code"] == "SESSION_LIMIT_REACHED" and "3" in error["error"]["message"]
    assert len(gemini_sim.records(type="connect")) == 2
    await first.send({"type": "end_session", "sessionId": a["sessionId"]})
    await first.expect("session_ended")
    await third.create(model=MODEL)
    # Another user is not affected.
    from tests.factories import UserFactory

    stranger = await database_sync_to_async(UserFactory)()
    await (await connect(stranger)).create(model=MODEL)


async def test_audio_far_faster_than_real_time_gets_backpressure_then_closed(gemini_sim, connect, settings):
    settings.LIVE_AUDIO_BURST_SECONDS = 1.0
    settings.LIVE_AUDIO_FLOOD_CLOSE_SECONDS = 2.0
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send_audio(speech(0.8) + silence(4.0))  # nearly 5 s of audio in a few milliseconds
    received = []
    while (item := await ws.next()) is not None:
        received.append(item)
    errors = [m for m in received if isinstance(m, dict) and m["type"] == "session_error"]
    # A warning (repeated at most every 2 s: how many depends on how fast this machine is), then the end.
    assert {e["error"]["code"] for e in errors} == {"BACKPRESSURE"} and len(errors) >= 2
    assert "dropped" in errors[0]["error"]["message"] and "closed" in errors[-1]["error"]["message"]
    assert ws.closed_code == 4408
    row = await database_sync_to_async(LiveSession.objects.get)(public_id=created["sessionId"])
    assert row.status == LiveSession.Status.ENDED and row.last_error_code == "BACKPRESSURE"
    # What was accepted before the flood is kept.
    stored = await database_sync_to_async(list)(
        Message.objects.filter(conversation__public_id=created["conversationId"]).order_by("created_at", "id")
    )
    assert stored[0].role == "user" and stored[0].audio_duration >= 0.8


async def test_compression_resolution_and_voice_reach_gemini_setup(gemini_sim, connect):
    ws = await connect()
    await ws.create(
        model=MODEL,
        config={
            "mediaResolution": "LOW",
            "contextWindowCompression": {"enabled": True, "maxTokens": 8192, "compressionRatio": 0.5},
            "speechConfig": {"voiceConfig": {"voiceName": "Aoede", "languageCode": "en-US", "speakingRate": 1.2}},
            "systemInstruction": "Be brief.",
            "vad": {"enabled": True, "sensitivity": 0.2, "silenceThreshold": 400},
        },
    )
    setup = gemini_sim.client_messages()[0]["setup"]
    flat = json.dumps(setup)
    assert setup["generationConfig"]["mediaResolution"] == "MEDIA_RESOLUTION_LOW"
    compression = setup["contextWindowCompression"]
    assert compression.get("trigger_tokens", compression.get("triggerTokens")) in (8192, "8192")
    assert "4096" in json.dumps(compression)
    assert "Aoede" in flat and "en-US" in flat and "Be brief." in flat
    assert "START_SENSITIVITY_LOW" in flat and "END_SENSITIVITY_LOW" in flat and "400" in flat
    assert "speakingRate" not in flat
    notices = ws.of_type("session_created")[0]["notices"]
    assert any("speakingRate" in n for n in notices)


async def test_input_gemini_cannot_take_is_dropped_with_backpressure_not_buffered_forever(
    gemini_sim, connect, settings
):
    settings.LIVE_INBOUND_QUEUE_ITEMS = 20
    settings.LIVE_AUDIO_BURST_SECONDS = 1000.0
    ws = await connect()
    await ws.create(model=MODEL)
    gemini_sim.inject_fault("stall", when="now", seconds=8)
    # 800 frames of 16 KB while Gemini reads nothing: more than the socket buffers between us and it can hold.
    await ws.send_audio(silence(400.0), ms=500)
    error = await ws.expect("session_error")
    assert error["error"]["code"] == "BACKPRESSURE"
    assert "dropped" in error["error"]["message"]
    await assert_usable(ws)
    # Once Gemini reads again, the session carries on.
    await ws.send({"type": "send_message", "data": {"text": "Hello"}})
    await ws.until_turn_complete(within=20)


async def test_sessions_of_a_dead_process_stop_counting_and_can_be_resumed(gemini_sim, connect, live_user, settings):
    settings.LIVE_MAX_SESSIONS_PER_USER = 1
    orphan = await database_sync_to_async(LiveSessionFactory)(
        user=live_user, status=LiveSession.Status.ACTIVE, worker=await dead_worker()
    )
    ws = await connect()
    created = await ws.create(model=MODEL)  # the orphan no longer counts
    await orphan.arefresh_from_db()
    assert orphan.status == LiveSession.Status.DETACHED and orphan.last_error_code == "SERVER_GONE"
    row = await database_sync_to_async(LiveSession.objects.get)(public_id=created["sessionId"])
    assert row.worker == worker_name()
    # A live holder (this process, its lease renewed) still counts.
    other = await connect()
    await other.send({"type": "create_session", "data": {"model": MODEL}})
    assert (await other.expect("session_error"))["error"]["code"] == "SESSION_LIMIT_REACHED"
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")
    await other.send({"type": "resume_session", "data": {"sessionId": orphan.public_id}})
    resumed = await other.expect("session_resumed")
    assert resumed["contextReloaded"] is True  # its handle died with it: the conversation is reloaded instead


async def test_an_open_session_keeps_its_process_lease_renewed(gemini_sim, connect, settings):
    settings.LIVE_LEASE_SECONDS = 0.4
    ws = await connect()
    created = await ws.create(model=MODEL)
    row = await database_sync_to_async(LiveSession.objects.get)(public_id=created["sessionId"])
    lease_of = database_sync_to_async(lambda: LiveWorker.objects.get(name=row.worker).expires_at)
    first = await lease_of()
    await asyncio.sleep(1.0)  # more than twice the lease: only renewals keep it
    assert await lease_of() > first
    held = database_sync_to_async(lambda: LiveSession.objects.held().filter(pk=row.pk).exists())
    assert await held()


async def test_a_session_whose_process_died_can_be_taken_over_directly(gemini_sim, connect, live_user, settings):
    settings.LIVE_LEASE_SECONDS = 0.5
    orphan = await database_sync_to_async(LiveSessionFactory)(
        user=live_user, status=LiveSession.Status.ACTIVE, worker=await dead_worker()
    )
    fresh = await database_sync_to_async(LiveSessionFactory)(
        user=live_user, status=LiveSession.Status.ACTIVE, worker=await live_worker()
    )
    ws = await connect()
    await ws.send({"type": "resume_session", "data": {"sessionId": fresh.public_id}})
    error = (await ws.expect("session_error"))["error"]
    assert error["code"] == "SESSION_IN_USE" and 0 < error["retryAfter"] <= 600
    await ws.send({"type": "resume_session", "data": {"sessionId": orphan.public_id}})
    assert (await ws.expect("session_resumed"))["sessionId"] == orphan.public_id
