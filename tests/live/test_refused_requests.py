"""What /live refuses at the edge, and that a refused or failed request leaves nothing behind.

The rules are docs/live-protocol.md's ("What a message may hold"): strings a database can store, finite numbers
that fit 64 bits, bounded nesting, ids checked by format (a malformed one is answered as an unknown one), frames
within LIVE_MAX_FRAME_BYTES. test_hostile_input.py throws generated messages at the same rules.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Message
from live.models import LiveSession
from tests.factories import ConversationFactory, LiveSessionFactory, UserFactory
from tests.live.conftest import MODEL, session_row

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@database_sync_to_async
def counts() -> tuple[int, int, int]:
    return Conversation.objects.count(), Message.objects.count(), LiveSession.objects.count()


async def refused(ws: Any, message: dict[str, Any] | str, kind: str = "session_error") -> dict[str, Any]:
    """Send ``message``; return the error answering it, checking that nothing was stored and the socket works."""
    before = await counts()
    start = len(ws.received)
    await ws.send_raw(message if isinstance(message, str) else json.dumps(message))
    answer = await ws.expect(kind)
    await ws.send({"type": "ping"})
    await ws.expect("pong")
    assert await counts() == before
    assert not [m for m in ws.received[start:] if isinstance(m, dict) and m["type"] == "session_created"]
    return answer.get("error", {})


def create(config: dict[str, Any] | None = None, **data: Any) -> dict[str, Any]:
    return {"type": "create_session", "data": {"model": MODEL, **data, **({"config": config} if config else {})}}


UNSTORABLE_CONFIG = [
    ({"systemInstruction": "Be brief.\u0000"}, "data.config.systemInstruction"),
    ({"speechConfig": {"voiceConfig": {"voiceName": "Puck\u0000"}}}, "data.config.speechConfig.voiceConfig.voiceName"),
    (
        {"speechConfig": {"voiceConfig": {"languageCode": "\ud83d"}}},
        "data.config.speechConfig.voiceConfig.languageCode",
    ),
    ({"speechConfig": {"languageCode": "en\u0000"}}, "data.config.speechConfig.languageCode"),
    ({"mediaResolution": "LOW\u0000"}, "data.config.mediaResolution"),
    ({"responseModalities": ["AUDIO", "\udfff"]}, "data.config.responseModalities.1"),
    ({"tools": ["calculator\u0000"]}, "data.config.tools.0"),
    ({"tools": [{"name": "calculator", "description": "\u0000"}]}, "data.config.tools.0.description"),
    ({"vad": {"enabled": True, "mode\u0000": 1}}, "data.config.vad.mode\\x00"),  # a member's name counts too
]


@pytest.mark.parametrize(("config", "field"), UNSTORABLE_CONFIG, ids=[f for _, f in UNSTORABLE_CONFIG])
async def test_a_config_string_no_database_can_store_is_invalid_config_naming_it(gemini_sim, connect, config, field):
    ws = await connect()
    error = await refused(ws, create(config))
    assert error["code"] == "INVALID_CONFIG"
    assert field in error["message"]
    assert gemini_sim.records(type="connect") == []  # refused before Gemini is asked


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (create(model=MODEL + "\u0000"), "data.model"),
        (create(userId="someone\u0000"), "data.userId"),  # ignored, but still not a string anyone may send
        ({"type": "ping", "note": "\ud800"}, "note"),
        (
            {"type": "resume_session", "data": {"sessionId": "live_0123456789abcdef01234567", "resumeHandle": "\x00"}},
            "",
        ),
    ],
)
async def test_any_other_string_no_database_can_store_is_refused(gemini_sim, connect, message, field):
    ws = await connect()
    error = await refused(ws, message)
    assert error["code"] in ("INVALID_MESSAGE", "INVALID_CONFIG")
    assert field in error["message"]


@pytest.mark.parametrize(
    "config",
    [
        '{"vad": {"sensitivity": NaN}}',
        '{"contextWindowCompression": {"compressionRatio": Infinity}}',
        '{"speechConfig": {"voiceConfig": {"speakingRate": -Infinity}}}',
        '{"speechConfig": {"voiceConfig": {"pitch": 1e999}}}',
        '{"contextWindowCompression": {"maxTokens": 18446744073709551616}}',
        '{"vad": {"silenceThreshold": ' + "9" * 5000 + "}}",
    ],
)
async def test_a_number_json_columns_cannot_hold_is_invalid_json(gemini_sim, connect, config):
    ws = await connect()
    error = await refused(ws, '{"type": "create_session", "data": {"config": ' + config + "}}")
    assert error["code"] == "INVALID_JSON"
    assert "finite" in error["message"]


async def test_deep_nesting_is_refused_however_deep(gemini_sim, connect):
    ws = await connect()
    for depth, code in ((40, "INVALID_MESSAGE"), (200_000, "INVALID_JSON")):
        error = await refused(ws, '{"type": "ping", "x": ' + "[" * depth + "]" * depth + "}")
        assert error["code"] == code
    await refused(ws, '{"type": "ping", "x": ' + "[" * 30 + "]" * 30 + "}", kind="pong")  # 31 deep: fine


async def test_a_malformed_id_is_answered_as_an_unknown_one(gemini_sim, connect):
    ws = await connect()
    other = await database_sync_to_async(UserFactory)()
    theirs = await database_sync_to_async(ConversationFactory)(owner=other)
    their_session = await database_sync_to_async(LiveSessionFactory)(user=other, status=LiveSession.Status.DETACHED)
    for conversation_id in ("conv_\u0000", "conv_\ud800", "c" * 500, theirs.public_id, "conv_0123456789abcdef01234567"):
        error = await refused(ws, create(conversationId=conversation_id))
        assert error["code"] == "CONVERSATION_NOT_FOUND", conversation_id
    for session_id in ("live_\u0000", "\udfff", their_session.public_id, "live_0123456789abcdef01234567"):
        error = await refused(ws, {"type": "resume_session", "data": {"sessionId": session_id}})
        assert error["code"] == "SESSION_NOT_FOUND", session_id


async def test_model_and_language_must_look_like_names(gemini_sim, connect):
    ws = await connect()
    for message in (
        create(model="x" * 121),
        create(model="gemini live"),
        create({"speechConfig": {"voiceConfig": {"languageCode": "english please"}}}),
    ):
        assert (await refused(ws, message))["code"] == "INVALID_CONFIG"
    assert gemini_sim.records(type="connect") == []


async def test_strings_in_a_session_are_checked_and_the_session_goes_on(gemini_sim, connect):
    ws = await connect()
    created = await ws.create(model=MODEL)
    for data, code in (
        ({"text": "hello\u0000"}, "INVALID_MESSAGE"),
        ({"text": "\ud800"}, "INVALID_MESSAGE"),
        ({"text": "hi", "imageMimeType": "image/png\u0000"}, "INVALID_MESSAGE"),
    ):
        error = await refused(ws, {"type": "send_message", "data": data})
        assert error["code"] == code and "data." in error["message"]
    # A damaged WAV (a chunk claiming more bytes than there are) is an audio error, not a crash.
    damaged = b"RIFF" + struct.pack("<I", 100) + b"WAVE" + b"junk" + struct.pack("<I", 1000)
    error = await refused(
        ws, {"type": "send_message", "data": {"audioChunk": base64.b64encode(damaged).decode()}}, "audio_error"
    )
    assert error["code"] == "AUDIO_DECODE_FAILED"
    await ws.send({"type": "send_message", "data": {"text": "Still there?"}})
    await ws.until_turn_complete()
    # Stored by the recorder's writer, which may still be at it when the reply completes (a loaded machine).
    for _ in range(50):
        said = [m.text for m in await database_sync_to_async(list)(Message.objects.filter(role="user"))]
        if said:
            break
        await asyncio.sleep(0.1)
    assert said == ["Still there?"]
    assert (await session_row(created["sessionId"])).status == LiveSession.Status.ACTIVE


async def test_frames_over_the_limit_are_refused_and_the_session_goes_on(gemini_sim, connect, settings):
    settings.LIVE_MAX_FRAME_BYTES = 512 * 1024
    ws = await connect()
    created = await ws.create(model=MODEL)
    # The limit is on bytes: 300,000 "é" are fewer characters than the limit and more bytes.
    for text in ("x" * (512 * 1024 + 1), '{"type": "send_message", "data": {"text": "' + "é" * 300_000 + '"}}'):
        error = await refused(ws, text)
        assert error["code"] == "FRAME_TOO_LARGE" and str(512 * 1024) in error["message"]
    await ws.communicator.send_to(bytes_data=bytes(512 * 1024 + 2))
    assert (await ws.expect("session_error"))["error"]["code"] == "FRAME_TOO_LARGE"
    await ws.send({"type": "send_message", "data": {"text": "Still there?"}})
    await ws.until_turn_complete()
    assert (await session_row(created["sessionId"])).status == LiveSession.Status.ACTIVE


# -- a request refused after it was accepted (Gemini, the limit, the client) leaves nothing behind -----------------


async def test_gemini_refusing_the_setup_leaves_no_conversation(gemini_sim, connect):
    ws = await connect()
    before = await counts()
    await ws.send(create(model="gemini-0-no-such-live"))
    error = await ws.expect("session_error")
    assert error["error"]["code"] == "MODEL_NOT_FOUND"
    await ws.expect("session_ended", reason="error")
    row = await session_row(error["sessionId"])
    # The failed session's row stays for staff (why it failed); the conversation made for it does not.
    assert row.status == LiveSession.Status.FAILED and row.conversation_id is None
    assert await counts() == (before[0], before[1], before[2] + 1)
    assert await database_sync_to_async(LiveSession.objects.filter(status__in=LiveSession.ACTIVE_STATUSES).count)() == 0


async def test_gemini_refusing_the_setup_keeps_a_conversation_that_was_chosen(gemini_sim, connect, live_user):
    ws = await connect()
    mine = await database_sync_to_async(ConversationFactory)(owner=live_user)  # empty, and the user's own
    await ws.send(create(model="gemini-0-no-such-live", conversationId=mine.public_id))
    error = await ws.expect("session_error")
    await ws.expect("session_ended", reason="error")
    assert (await session_row(error["sessionId"])).conversation_id == mine.pk


async def test_a_session_in_which_something_was_said_keeps_its_conversation(gemini_sim, connect):
    # (One in which nothing was said leaves none: tests/live/test_services.py.)
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "Hello"}})
    await ws.until_turn_complete()
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended", reason="client")
    assert await database_sync_to_async(Conversation.objects.filter(public_id=created["conversationId"]).exists)()


async def test_the_session_limit_leaves_no_conversation(gemini_sim, connect, settings):
    settings.LIVE_MAX_SESSIONS_PER_USER = 1
    ws = await connect()
    await ws.create(model=MODEL)
    other_socket = await connect()
    error = await refused(other_socket, create())
    assert error["code"] == "SESSION_LIMIT_REACHED"


@pytest.mark.parametrize("leave", ["end_session", "disconnect"])
async def test_leaving_before_gemini_answered_leaves_no_conversation(gemini_sim, connect, leave):
    gemini_sim.inject_fault("stall", when="setup", seconds=3)
    ws = await connect()
    before = await counts()
    await ws.send(create())
    row = None
    for _ in range(100):  # the row exists as soon as the request is accepted
        row = await database_sync_to_async(LiveSession.objects.order_by("pk").last)()
        if row is not None:
            break
        await ws.drain(0.02)
    assert row is not None and row.status == LiveSession.Status.CONNECTING
    if leave == "end_session":
        await ws.send({"type": "end_session"})
        await ws.expect("session_ended", reason="client")
    else:
        await ws.close()
        ws.closed_code = 1000
    row = await session_row(row.public_id)
    assert row.status != LiveSession.Status.CONNECTING and row.conversation_id is None
    assert await counts() == (before[0], before[1], before[2] + 1)
