"""Changing voice-activity settings while Gemini is answering: the session stays up and the setting applies."""

from __future__ import annotations

from tests.live.conftest import speech

MODEL = "gemini-3.1-flash-live-preview"


async def test_switching_hold_back_to_automatic_mid_answer_keeps_the_session(gemini_sim, connect):
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
    await ws.send({"type": "configure_vad", "data": {"enabled": True}})
    configured = await ws.expect("vad_configured")
    assert configured["vad"]["enabled"] is True
    await ws.send({"type": "send_message", "data": {"text": "Still there?"}})
    await ws.until_turn_complete()
    assert not ws.of_type("session_error"), ws.of_type("session_error")
    assert not ws.of_type("session_ended")


async def test_switching_back_while_holding_the_button_mid_answer_keeps_the_session(gemini_sim, connect):
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
    await ws.send({"type": "activity_start"})  # presses Hold again while the model answers
    await ws.send_audio(speech(0.3))
    await ws.send({"type": "configure_vad", "data": {"enabled": True}})
    configured = await ws.expect("vad_configured")
    assert configured["vad"]["enabled"] is True
    await ws.send({"type": "send_message", "data": {"text": "Still there?"}})
    await ws.until_turn_complete()
    assert not ws.of_type("session_error"), ws.of_type("session_error")
    assert not ws.of_type("session_ended")
