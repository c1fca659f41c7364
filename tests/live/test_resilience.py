"""Surviving Gemini: goAway, dropped connections, resumption from a new socket, each kind of close → session_error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from live.models import LiveSession
from tests.live.conftest import MODEL, messages_of, session_row

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def said(turn: list[Any]) -> str:
    return "".join(
        m["data"]["serverContent"].get("outputTranscription", {}).get("text", "")
        for m in turn
        if isinstance(m, dict) and m["type"] == "session_message" and "serverContent" in m["data"]
    )


def setups(gemini_sim: Any) -> list[dict[str, Any]]:
    return [m["setup"] for m in gemini_sim.client_messages() if "setup" in m]


async def test_go_away_is_invisible_to_the_browser_and_loses_nothing(gemini_sim, connect):
    gemini_sim.set_options(connection_lifetime=1.5, go_away_before=1.0)
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "My name is Ada"}})
    await ws.until_turn_complete()
    await asyncio.sleep(1.2)  # goAway arrived and the bridge moved to a new connection
    await ws.send({"type": "send_message", "data": {"text": "What is my name?"}})
    assert "Your name is Ada" in said(await ws.until_turn_complete())
    await asyncio.sleep(1.2)  # and again
    await ws.send({"type": "send_message", "data": {"text": "Who am I?"}})
    assert "Your name is Ada" in said(await ws.until_turn_complete())
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")

    kinds = {m["type"] for m in ws.received if isinstance(m, dict)}
    assert not kinds & {"session_reconnecting", "session_resumed", "session_error"}
    resumed = setups(gemini_sim)[1:]
    assert len(resumed) >= 2 and all(s["sessionResumption"]["handle"] for s in resumed)
    assert [c["code"] for c in gemini_sim.records(type="close")].count(1011) == 0, "left before Gemini's deadline"
    stored = await messages_of(created["conversationId"])
    assert [m.role for m in stored] == ["user", "model"] * 3
    row = await session_row(created["sessionId"])
    assert row.reconnects >= 2


async def test_go_away_during_a_model_turn_waits_for_the_turn(gemini_sim, connect):
    # goAway 0.5 s into each connection, while the story (about 1 s at 8x) is being told.
    gemini_sim.set_options(realtime_factor=8, connection_lifetime=3.0, go_away_before=2.5)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send({"type": "send_message", "data": {"text": "Tell me a story in 2 sentences"}})
    turn = await ws.until_turn_complete()
    audio = b"".join(m for m in turn if isinstance(m, bytes))
    await ws.send({"type": "send_message", "data": {"text": "Thanks"}})
    await ws.until_turn_complete()
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")
    assert not ws.of_type("session_error") and not ws.of_type("session_reconnecting")
    stored = await messages_of(created["conversationId"])
    assert [(m.role, m.interrupted) for m in stored][:2] == [("user", False), ("model", False)]
    assert stored[1].audio_duration == pytest.approx(len(audio) / 48000, abs=0.001)
    assert len(setups(gemini_sim)) >= 2, "the bridge moved to a new connection after the turn"


async def test_dropped_gemini_connection_is_resumed_and_the_browser_told(gemini_sim, connect):
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "My name is Ada"}})
    await ws.until_turn_complete()
    gemini_sim.inject_fault("drop", when="now")
    reconnecting = await ws.expect("session_reconnecting")
    assert reconnecting["reason"] == "UPSTREAM_UNAVAILABLE"
    resumed = await ws.expect("session_resumed")
    assert resumed["sessionId"] == created["sessionId"] and resumed["contextReloaded"] is False
    await ws.send({"type": "send_message", "data": {"text": "What is my name?"}})
    assert "Your name is Ada" in said(await ws.until_turn_complete())


async def test_resume_session_from_a_new_socket(gemini_sim, connect):
    first = await connect()
    created = await first.create(model=MODEL, config={"binaryAudio": True})
    await first.send({"type": "send_message", "data": {"text": "My name is Ada"}})
    await first.until_turn_complete()
    await first.close()
    row = await session_row(created["sessionId"])
    assert row.status == LiveSession.Status.DETACHED and row.resumption_handle

    second = await connect()
    await second.send(
        {"type": "resume_session", "data": {"sessionId": created["sessionId"], "resumeHandle": "ignored-by-server"}}
    )
    resumed = await second.expect("session_resumed")
    assert resumed["conversationId"] == created["conversationId"]
    assert resumed["contextReloaded"] is False
    assert resumed["config"]["binaryAudio"] is True
    await second.send({"type": "send_message", "sessionId": created["sessionId"], "data": {"text": "What is my name?"}})
    turn = await second.until_turn_complete()
    assert "Your name is Ada" in said(turn)
    assert setups(gemini_sim)[-1]["sessionResumption"]["handle"] == row.resumption_handle
    await second.send({"type": "end_session"})
    await second.expect("session_ended")
    assert [m.role for m in await messages_of(created["conversationId"])] == ["user", "model"] * 2


async def test_hold_mode_survives_a_resume_from_a_new_socket(gemini_sim, connect):
    """Push-to-talk chosen mid-session is kept with the session: the browser that resumes it gets Hold mode back,
    and so does Gemini's new setup."""
    first = await connect()
    created = await first.create(model=MODEL)
    await first.send({"type": "configure_vad", "data": {"enabled": False}})
    assert (await first.expect("vad_configured"))["vad"]["enabled"] is False
    await first.close()
    row = await session_row(created["sessionId"])
    assert row.config["request"]["vad"] == {"enabled": False}

    second = await connect()
    await second.send({"type": "resume_session", "data": {"sessionId": created["sessionId"]}})
    resumed = await second.expect("session_resumed")
    assert resumed["config"]["vad"]["enabled"] is False
    realtime_input = setups(gemini_sim)[-1]["realtimeInputConfig"]
    detection = realtime_input.get("automaticActivityDetection") or realtime_input["automatic_activity_detection"]
    assert detection["disabled"] is True
    await second.send({"type": "activity_start"})  # push-to-talk is accepted again, no INVALID_STATE
    await second.send({"type": "end_session"})
    assert (await second.expect("session_ended"))["reason"] == "client"


async def _detached_with_a_handle_gemini_refuses(connect: Any) -> dict[str, Any]:
    """A session that heard "My name is Ada", whose socket went, and whose stored handle Gemini will not know."""
    first = await connect()
    created: dict[str, Any] = await first.create(model=MODEL)
    await first.send({"type": "send_message", "data": {"text": "My name is Ada"}})
    await first.until_turn_complete()
    await first.close()
    await database_sync_to_async(LiveSession.objects.filter(public_id=created["sessionId"]).update)(
        resumption_handle="no-such-handle"
    )
    return created


async def test_resume_with_an_expired_handle_reloads_the_conversation(gemini_sim, connect):
    created = await _detached_with_a_handle_gemini_refuses(connect)
    second = await connect()
    await second.send({"type": "resume_session", "data": {"sessionId": created["sessionId"]}})
    resumed = await second.expect("session_resumed")
    assert resumed["contextReloaded"] is True
    await second.send({"type": "send_message", "data": {"text": "What is my name?"}})
    assert "Your name is Ada" in said(await second.until_turn_complete())


async def test_resume_of_someone_elses_or_an_open_session_is_refused(gemini_sim, connect):
    from tests.factories import LiveSessionFactory

    other = await database_sync_to_async(LiveSessionFactory)(status=LiveSession.Status.DETACHED)
    ws = await connect()
    await ws.send({"type": "resume_session", "data": {"sessionId": other.public_id}})
    assert (await ws.expect("session_error"))["error"]["code"] == "SESSION_NOT_FOUND"
    created = await ws.create(model=MODEL)
    ws2 = await connect()
    await ws2.send({"type": "resume_session", "data": {"sessionId": created["sessionId"]}})
    assert (await ws2.expect("session_error"))["error"]["code"] == "SESSION_IN_USE"


@pytest.mark.parametrize(
    ("fault", "code", "retry_after"),
    [
        ({"code": 1007, "reason": "Request contains an invalid argument."}, "INVALID_CONFIG", False),
        ({"code": 1008, "reason": "models/x is not found for API version v1beta."}, "MODEL_NOT_FOUND", False),
        ({"code": 1007, "reason": "API key not valid. Please pass a valid API key."}, "UPSTREAM_AUTH_FAILED", False),
        ({"code": 1011, "reason": "Resource has been exhausted (e.g. check quota)."}, "RATE_LIMIT_EXCEEDED", True),
        ({"code": 1011, "reason": "Internal error occurred.", "count": 10}, "UPSTREAM_UNAVAILABLE", True),
        ({"code": 1000, "reason": "", "count": 10}, "UPSTREAM_UNAVAILABLE", True),
    ],
)
async def test_each_gemini_close_at_setup_maps_to_its_session_error(gemini_sim, connect, fault, code, retry_after):
    gemini_sim.inject_fault("close", when="setup", **fault)
    ws = await connect()
    await ws.send({"type": "create_session", "data": {"model": MODEL}})
    error = await ws.expect("session_error")
    assert error["error"]["code"] == code
    assert error["error"]["message"]
    assert ("retryAfter" in error["error"]) is retry_after
    ended = await ws.expect("session_ended")
    assert ended["reason"] == "error" and ended["sessionId"] == error["sessionId"]
    row = await session_row(error["sessionId"])
    assert row.status == LiveSession.Status.FAILED and row.last_error_code == code
    # The socket stays usable.
    await ws.send({"type": "ping"})
    await ws.expect("pong")


async def test_real_gemini_refusals_map_to_their_codes(gemini_sim, connect):
    ws = await connect()
    await ws.send({"type": "create_session", "data": {"model": "gemini-0-no-such-live"}})
    assert (await ws.expect("session_error"))["error"]["code"] == "MODEL_NOT_FOUND"
    gemini_sim.set_options(api_keys={"the-real-key"})
    await ws.send({"type": "create_session", "data": {"model": MODEL}})
    assert (await ws.expect("session_error"))["error"]["code"] == "UPSTREAM_AUTH_FAILED"


async def test_a_transient_setup_failure_is_retried_with_backoff(gemini_sim, connect):
    gemini_sim.inject_fault("close", when="setup", code=1011, reason="Internal error occurred.", count=2)
    ws = await connect()
    created = await ws.create(model=MODEL)
    assert created["sessionId"]
    assert len(setups(gemini_sim)) == 3
    assert not ws.of_type("session_error")


async def test_gemini_failing_mid_session_for_good_ends_it_cleanly(gemini_sim, connect):
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "Hello"}})
    await ws.until_turn_complete()
    gemini_sim.inject_fault("close", when="setup", code=1008, reason="models/x is not found for API version v1.")
    gemini_sim.inject_fault("close", when="now", code=1011, reason="Internal error occurred.")
    await ws.expect("session_reconnecting")
    error = await ws.expect("session_error")
    assert error["error"]["code"] == "MODEL_NOT_FOUND"
    await ws.expect("session_ended", reason="error")
    assert [m.role for m in await messages_of(created["conversationId"])] == ["user", "model"]


async def test_a_crash_in_the_bridge_ends_the_session_and_keeps_what_was_said(gemini_sim, connect, monkeypatch):
    from live.recorder import Recorder

    def broken_usage(self, usage):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Recorder, "usage", broken_usage)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send({"type": "send_message", "data": {"text": "Hello"}})
    error = await ws.expect("session_error")
    assert error["error"]["code"] == "INTERNAL_ERROR" and "a bug" not in error["error"]["message"]
    await ws.expect("session_ended", reason="error")
    stored = await messages_of(created["conversationId"])
    assert [m.role for m in stored] == ["user", "model"]
    assert stored[1].audio_duration > 0 and stored[1].interrupted  # cut off by the crash, kept and flagged
    row = await session_row(created["sessionId"])
    assert row.status == LiveSession.Status.FAILED and row.last_error_code == "INTERNAL_ERROR"
    await ws.send({"type": "ping"})
    await ws.expect("pong")


async def test_tool_call_cancellation_is_honoured(gemini_sim, connect, monkeypatch):
    from live import tools

    started = asyncio.Event()

    async def slow_tool(*, user, name, args):
        started.set()
        await asyncio.sleep(30)
        return {"result": "too late"}

    monkeypatch.setattr(tools, "tool_execute", slow_tool)
    gemini_sim.set_options(realtime_factor=1)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"tools": ["calculator"]})
    await ws.send({"type": "send_message", "data": {"text": "Use the calculator for 15 * 23"}})
    await asyncio.wait_for(started.wait(), 10)
    from tests.live.conftest import silence, speech

    await ws.send_audio(speech(0.5) + silence(1.0))  # barge in while the tool runs: Gemini cancels the call
    cancellation = await ws.expect("session_message")
    while "toolCallCancellation" not in cancellation["data"]:
        cancellation = await ws.expect("session_message")
    await ws.until_turn_complete()
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")
    assert not [m for m in gemini_sim.client_messages() if "tool_response" in m or "toolResponse" in m]
    stored = await messages_of(created["conversationId"])
    tool_rows = [m for m in stored if m.role == "tool"]
    assert len(tool_rows) == 1 and tool_rows[0].tool_data["cancelled"] is True
    assert tool_rows[0].tool_data["response"] is None


async def test_go_away_without_a_usable_handle_restarts_with_the_conversation(gemini_sim, connect):
    # Handles die with their connection here, so the bridge must start afresh and reload what was said.
    gemini_sim.set_options(resumption_ttl=0, connection_lifetime=1.5, go_away_before=1.0)
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "My name is Ada"}})
    await ws.until_turn_complete()
    await asyncio.sleep(1.2)
    await ws.send({"type": "send_message", "data": {"text": "What is my name?"}})
    assert "Your name is Ada" in said(await ws.until_turn_complete())
    kinds = {m["type"] for m in ws.received if isinstance(m, dict)}
    assert not kinds & {"session_reconnecting", "session_resumed", "session_error"}
    history = [m.get("client_content") or m.get("clientContent") for m in gemini_sim.client_messages()]
    reloaded = [h for h in history if h]
    assert reloaded and reloaded[-1].get("turnComplete", reloaded[-1].get("turn_complete")) is False
    assert [t["parts"][0]["text"] for t in reloaded[-1]["turns"]][:2] == [
        "My name is Ada",
        "Nice to meet you, Ada. I'll remember your name.",
    ]
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")
    assert [m.role for m in await messages_of(created["conversationId"])] == ["user", "model"] * 2


async def test_a_refused_handle_starts_afresh_even_on_the_last_connect_attempt(gemini_sim, connect, settings):
    # The refused handle is not a failure to retry: dropping it and starting afresh must not use up an attempt, or a
    # refusal on the last one (here: after one transient setup failure, with one retry allowed) ends the session.
    settings.LIVE_UPSTREAM_MAX_RETRIES = 1
    created = await _detached_with_a_handle_gemini_refuses(connect)
    gemini_sim.inject_fault("close", when="setup", code=1011, reason="Internal error occurred.", count=1)
    second = await connect()
    await second.send({"type": "resume_session", "data": {"sessionId": created["sessionId"]}})
    resumed = await second.expect("session_resumed")
    assert resumed["contextReloaded"] is True
    await second.send({"type": "send_message", "data": {"text": "What is my name?"}})
    assert "Your name is Ada" in said(await second.until_turn_complete())
