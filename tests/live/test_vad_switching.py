"""Changing voice-activity settings while Gemini is answering: the session stays up and the setting applies."""

from __future__ import annotations

from typing import Any

from tests.live.conftest import speech

MODEL = "gemini-3.1-flash-live-preview"


async def _answering_in_hold_mode(gemini_sim: Any, connect: Any) -> Any:
    """A socket in Hold mode whose spoken turn Gemini is answering (its first audio has arrived)."""
    gemini_sim.set_options(realtime_factor=4)
    ws = await connect()
    await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send({"type": "configure_vad", "data": {"enabled": False}})
    await ws.expect("vad_configured")
    await ws.send({"type": "activity_start"})
    await ws.send_audio(speech(0.6))
    await ws.send({"type": "activity_end"})
    while not isinstance(await ws.next(), bytes):
        pass
    return ws


async def _assert_automatic_and_still_up(ws: Any) -> None:
    configured = await ws.expect("vad_configured")
    assert configured["vad"]["enabled"] is True
    await ws.send({"type": "send_message", "data": {"text": "Still there?"}})
    await ws.until_turn_complete()
    assert not ws.of_type("session_error"), ws.of_type("session_error")
    assert not ws.of_type("session_ended")


async def test_switching_hold_back_to_automatic_mid_answer_keeps_the_session(gemini_sim, connect):
    ws = await _answering_in_hold_mode(gemini_sim, connect)
    await ws.send({"type": "configure_vad", "data": {"enabled": True}})
    await _assert_automatic_and_still_up(ws)


async def test_switching_back_while_holding_the_button_mid_answer_keeps_the_session(gemini_sim, connect):
    ws = await _answering_in_hold_mode(gemini_sim, connect)
    await ws.send({"type": "activity_start"})  # presses Hold again while the model answers
    await ws.send_audio(speech(0.3))
    await ws.send({"type": "configure_vad", "data": {"enabled": True}})
    await _assert_automatic_and_still_up(ws)
