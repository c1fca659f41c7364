"""The Live service as it is in December 2026 (docs/gemini-fidelity.md): API versions, 3.x clientContent and
mediaChunks rules, 3.8's audioStreamEnd, and the transcribe/translate models; on the raw protocol and through the SDK.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from google.genai import errors, types
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from .conftest import client_for
from .livekit import collect, send_audio, silence, tone
from .test_live_raw import GEN, INVALID, closed_with, recv_json, reply, transcript, ws_connect

MEDIA_CHUNKS = "realtime_input.media_chunks is deprecated. Use audio, video, or text instead"
AUDIO_CFG = types.LiveConnectConfig(
    response_modalities=[types.Modality.AUDIO], output_audio_transcription=types.AudioTranscriptionConfig()
)


def _user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def _b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


async def _open(sim, model: str, **setup_fields: Any) -> ClientConnection:
    ws = await ws_connect(sim, GEN.format(v="v1beta") + "?key=k")
    await ws.send(json.dumps({"setup": {"model": f"models/{model}", **setup_fields}}))
    assert "setupComplete" in await recv_json(ws)
    return ws


# -- API versions ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "served"),
    [
        (GEN.format(v="v1beta"), True),
        (GEN.format(v="v1alpha"), True),
        (GEN.format(v="v1"), False),  # the SDK's default version: seed 000's 404
        (GEN.format(v="v1alpha") + "Constrained", True),
        (GEN.format(v="v1beta") + "Constrained", False),
        (GEN.format(v="v1") + "Constrained", False),
        ("ws/google.cloud.aiplatform.v1.LlmBidiService/BidiGenerateContent", True),
        ("ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent", True),
    ],
)
async def test_live_is_served_on_these_paths_only(sim, path, served):
    if served:
        async with ws_connect(sim, path):
            pass
        return
    with pytest.raises(InvalidStatus) as exc:
        async with ws_connect(sim, path + "?key=k"):
            pass
    assert exc.value.response.status_code == 404
    assert sim.records(type="ws_rejected", path="/" + path + "?key=k")


async def test_the_sdk_default_version_is_a_404_and_v1beta_works(sim):
    with pytest.raises(InvalidStatus) as exc:
        async with client_for(sim, api_version=None).aio.live.connect(model="gemini-3.1-flash-live-preview"):
            pass
    assert exc.value.response.status_code == 404
    async with client_for(sim).aio.live.connect(model="gemini-3.1-flash-live-preview") as session:
        sid = session.session_id
    [connect] = sim.records(type="connect", session=sid)
    assert connect["path"] == "gemini:v1beta"


# -- clientContent on 3.x ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["gemini-3.1-flash-live-preview", "gemini-3.8-live"])
async def test_3x_takes_client_content_throughout_without_history_config(sim, model):
    async with client_for(sim).aio.live.connect(model=model, config=AUDIO_CFG) as session:
        await session.send_client_content(turns=_user("Remember the number 42. Just acknowledge it."))
        first = await collect(session)
        await session.send_client_content(turns=_user("What number did I ask you to remember?"))
        second = await collect(session)
        await session.send_client_content(turns=[_user("My name is Ada."), _user("What is my name?")])
        third = await collect(session)
    assert first.text.strip() and first.audio
    assert "42" in second.text and second.audio
    assert "Ada" in third.text


@pytest.mark.parametrize(
    ("model", "refused"), [("gemini-3.1-flash-live-preview", True), ("gemini-2.5-flash-native-audio-latest", False)]
)
async def test_a_turn_without_a_role_is_refused_on_3x(sim, model, refused):
    ws = await _open(sim, model, outputAudioTranscription={})
    async with ws:
        await ws.send(json.dumps({"clientContent": {"turns": [{"parts": [{"text": "hello"}]}], "turnComplete": True}}))
        if refused:
            assert await closed_with(ws) == (1007, INVALID)
        else:
            assert transcript(await reply(ws)).startswith("Hello")


# -- mediaChunks -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["gemini-3.1-flash-live-preview", "gemini-3.8-live", "gemini-3.5-transcribe-live"])
async def test_media_chunks_close_3x_sessions(sim, model):
    ws = await _open(sim, model)
    async with ws:
        chunk = {"mimeType": "audio/pcm;rate=16000", "data": _b64(silence(0.1))}
        await ws.send(json.dumps({"realtimeInput": {"mediaChunks": [chunk]}}))
        assert await closed_with(ws) == (1007, MEDIA_CHUNKS)


async def test_media_chunks_still_work_on_2_5(sim):
    ws = await _open(sim, "gemini-2.5-flash-native-audio-latest", inputAudioTranscription={})
    async with ws:
        pcm = tone(1.0) + silence(1.0)
        chunk = {"mimeType": "audio/pcm;rate=16000", "data": _b64(pcm)}
        await ws.send(json.dumps({"realtimeInput": {"mediaChunks": [chunk]}}))
        messages = await reply(ws)
    contents = [m.get("serverContent", {}) for m in messages]
    heard = [c["inputTranscription"]["text"] for c in contents if "inputTranscription" in c]
    assert heard == ["(", "1.0 seconds of speech)"]  # streamed while heard


async def test_the_sdk_media_argument_is_refused_by_3_1(sim):
    blob = types.Blob(data=silence(0.1), mime_type="audio/pcm;rate=16000")
    with pytest.raises(errors.APIError) as exc:
        async with client_for(sim).aio.live.connect(model="gemini-3.1-flash-live-preview") as session:
            await session.send_realtime_input(media=blob)
            await collect(session)
    assert exc.value.code == 1007
    assert MEDIA_CHUNKS in str(exc.value)


# -- audioStreamEnd ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "ends_turn"),
    [
        ("gemini-3.8-live", False),
        ("gemini-3.1-flash-live-preview", True),
        ("gemini-2.5-flash-native-audio-latest", True),
    ],
)
async def test_audio_stream_end_ends_the_turn_except_on_3_8(sim, model, ends_turn):
    cfg = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO], input_audio_transcription=types.AudioTranscriptionConfig()
    )
    async with client_for(sim).aio.live.connect(model=model, config=cfg) as session:
        await send_audio(session, tone(1.0))
        await session.send_realtime_input(audio_stream_end=True)
        if ends_turn:
            assert (await collect(session)).input_text == "(1.0 seconds of speech)"
            return
        with pytest.raises(TimeoutError):
            await collect(session, wait=0.5)  # 3.8 goes on waiting: audioStreamEnd is not the end of the turn
        await send_audio(session, silence(1.0))  # trailing silence is
        # The transcript's first piece ("(", streamed as the speech began) went to the collect that timed out.
        assert (await collect(session)).input_text == "1.0 seconds of speech)"


# -- transcribe-live and live-translate --------------------------------------------------------------------------------
async def test_transcribe_live_answers_speech_with_text(sim):
    # TEXT is its only (and default) modality
    cfg = types.LiveConnectConfig(input_audio_transcription=types.AudioTranscriptionConfig())
    async with client_for(sim).aio.live.connect(model="gemini-3.5-transcribe-live", config=cfg) as session:
        await send_audio(session, tone(1.5) + silence(1.0))
        turn = await collect(session)
    assert turn.text == "(1.5 seconds of speech)" and not turn.audio
    assert turn.input_text == "(1.5 seconds of speech)"


async def test_live_translate_answers_speech_with_speech(sim):
    async with client_for(sim).aio.live.connect(model="gemini-3.5-live-translate-preview", config=AUDIO_CFG) as session:
        await send_audio(session, tone(1.0) + silence(1.0))
        turn = await collect(session)
    assert turn.audio and turn.text == "(a translation of 1.0 seconds of speech)"


@pytest.mark.parametrize("model", ["gemini-3.5-transcribe-live", "gemini-3.5-live-translate-preview"])
@pytest.mark.parametrize(
    "message",
    [
        {"realtimeInput": {"text": "hello"}},
        {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "hello"}]}], "turnComplete": True}},
    ],
)
async def test_speech_only_models_refuse_typed_input(sim, model, message):
    ws = await _open(sim, model)
    async with ws:
        await ws.send(json.dumps(message))
        assert await closed_with(ws) == (1007, INVALID)


async def test_transcribe_live_sessions_end_at_their_cap_resumption_included(make_sim):
    sim = make_sim(session_cap_factor=0.002, go_away_before=0.4)  # 10 minutes -> 1.2 s, goAway 0.4 s before
    cfg = types.LiveConnectConfig(session_resumption=types.SessionResumptionConfig())
    client = client_for(sim)
    loop = asyncio.get_running_loop()
    started = loop.time()
    handle = None
    with pytest.raises(errors.APIError) as exc:
        async with client.aio.live.connect(model="gemini-3.5-transcribe-live", config=cfg) as session:
            async for message in session.receive():
                if message.session_resumption_update and message.session_resumption_update.new_handle:
                    handle = message.session_resumption_update.new_handle
                if message.go_away:
                    assert message.go_away.time_left == "0.400s"
    assert exc.value.code == 1011 and "Deadline expired" in str(exc.value)
    assert 1.0 < loop.time() - started < 5.0  # the cap, not the 10-minute connection lifetime
    resumed = cfg.model_copy(update={"session_resumption": types.SessionResumptionConfig(handle=handle)})
    with pytest.raises(errors.APIError) as exc:
        async with client.aio.live.connect(model="gemini-3.5-transcribe-live", config=resumed) as session:
            await collect(session)
    assert exc.value.code == 1007  # the session's time is used up: resuming does not extend it
