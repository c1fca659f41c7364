"""Live API with a raw websockets client, the way a browser speaks it (query-string credentials, camelCase)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .livekit import silence, tone

NATIVE = "gemini-2.5-flash-native-audio-latest"
GEN = "ws/google.ai.generativelanguage.{v}.GenerativeService.BidiGenerateContent"
INVALID = "Request contains an invalid argument."


def wss(sim, path: str) -> str:
    return sim.base_url.replace("https://", "wss://") + "/" + path


def ws_connect(sim, path: str, **kwargs: Any) -> connect:
    return connect(wss(sim, path), ssl=sim.ssl_context, **kwargs)


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    raw = await ws.recv()
    assert isinstance(raw, bytes)  # the service sends JSON in binary frames
    return json.loads(raw)


async def setup(ws: ClientConnection, **fields: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"setup": {"model": f"models/{NATIVE}", **fields}}))
    return await recv_json(ws)


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as exc:
        for _ in range(1000):
            await ws.recv()
    close = exc.value.rcvd
    assert close is not None, "the connection ended without a close frame"
    return close.code, close.reason


async def reply(ws: ClientConnection) -> list[dict[str, Any]]:
    """Messages up to and including turnComplete."""
    out = []
    async with asyncio.timeout(10):
        while True:
            msg = await recv_json(ws)
            out.append(msg)
            if msg.get("serverContent", {}).get("turnComplete"):
                return out


def transcript(messages: list[dict[str, Any]]) -> str:
    return "".join(m.get("serverContent", {}).get("outputTranscription", {}).get("text", "") for m in messages)


async def test_browser_style_key_in_query_and_camel_case(sim):
    async with ws_connect(sim, GEN.format(v="v1beta") + "?key=browser-key") as ws:
        first = await setup(ws, generationConfig={"responseModalities": ["AUDIO"]}, outputAudioTranscription={})
        assert list(first) == ["setupComplete"]
        await ws.send(
            json.dumps(
                {
                    "clientContent": {
                        "turns": [{"role": "user", "parts": [{"text": "My name is Ada"}]}],
                        "turnComplete": True,
                    }
                }
            )
        )
        first_reply = await reply(ws)
        await ws.send(json.dumps({"realtimeInput": {"text": "what's my name?"}}))
        messages = await reply(ws)
    assert "Ada" in transcript(messages)
    audio = [
        m["serverContent"]["modelTurn"]["parts"][0]["inlineData"]
        for m in first_reply
        if "modelTurn" in m.get("serverContent", {})
    ]
    assert audio and all(a["mimeType"] == "audio/pcm;rate=24000" for a in audio)
    assert "usageMetadata" in first_reply[-1]


async def test_snake_case_setup_and_double_slash_path(sim):
    async with ws_connect(sim, "/" + GEN.format(v="v1alpha") + "?key=k") as ws:  # the SDK's "//ws/..." form
        await ws.send(
            json.dumps(
                {
                    "setup": {
                        "model": f"models/{NATIVE}",
                        "generation_config": {
                            "response_modalities": ["AUDIO"],
                            "speech_config": {"voice_config": {"prebuilt_voice_config": {"voice_name": "Aoede"}}},
                        },
                        "output_audio_transcription": {},
                    }
                }
            )
        )
        assert "setupComplete" in await recv_json(ws)
        await ws.send(json.dumps({"realtime_input": {"text": "hello"}}))
        assert transcript(await reply(ws)).startswith("Hello")


@pytest.mark.parametrize(
    "path",
    [
        "ws/google.ai.generativelanguage.v1beta.GenerativeService/BidiGenerateContent",  # seed 000's path
        "ws/google.ai.generativelanguage.v2.GenerativeService.BidiGenerateContent",
        "ws/google.ai.generativelanguage.v1beta.LiveService.Connect",
        "v1beta/models/gemini-2.5-flash:bidiGenerateContent",
    ],
)
async def test_wrong_paths_are_404_at_the_handshake(sim, path):
    with pytest.raises(InvalidStatus) as exc:
        async with ws_connect(sim, path + "?key=k"):
            pass
    assert exc.value.response.status_code == 404


@pytest.mark.parametrize(
    ("first", "code", "reason"),
    [
        ('{"clientContent": {"turnComplete": true}}', 1007, INVALID),
        ("this is not json", 1007, INVALID),
        ('{"setup": {"model": "models/gemini-2.5-flash-native-audio-latest"}, "realtimeInput": {}}', 1007, INVALID),
        ('{"setup": {}}', 1007, INVALID),
        (json.dumps({"setup": {"model": f"models/{NATIVE}", "generationConfig": {"responseModalities": ["IMAGE"]}}}),
         1007, INVALID),
        (json.dumps({"setup": {"model": f"models/{NATIVE}", "generationConfig": {
            "responseModalities": ["AUDIO", "TEXT"]}}}), 1007,
         "The requested combination of response modalities (AUDIO, TEXT) is not supported by the model"),
        (json.dumps({"setup": {"model": f"models/{NATIVE}", "realtimeInputConfig": {"activityHandling": "SOMETIMES"}}}),
         1007, INVALID),
        (json.dumps({"setup": {"model": f"models/{NATIVE}", "generationConfig": {"speechConfig": {
            "multiSpeakerVoiceConfig": {"speakerVoiceConfigs": []}}}}}), 1007, INVALID),
        (json.dumps({"setup": {"model": f"models/{NATIVE}", "sessionResumption": "yes"}}), 1007, INVALID),
        (json.dumps({"setup": {"model": f"models/{NATIVE}", "generationConfig": "AUDIO"}}), 1007, INVALID),
        (json.dumps({"setup": {"model": f"models/{NATIVE}", "realtimeInputConfig": {"automaticActivityDetection": {
            "silenceDurationMs": "soon"}}}}), 1007, INVALID),
        (json.dumps({"setup": {"model": f"models/{NATIVE}", "historyConfig": [True]}}), 1007, INVALID),
        (json.dumps({"setup": {"model": 42}}), 1007, INVALID),
        (json.dumps({"setup": {"model": "models/gemini-2.5-pro"}}), 1008,
         "models/gemini-2.5-pro is not found for API version v1beta, or is not supported for bidiGenerateContent."),
    ],
)  # fmt: skip
async def test_bad_first_frames(sim, first, code, reason):
    async with ws_connect(sim, GEN.format(v="v1beta") + "?key=k") as ws:
        await ws.send(first)
        assert await closed_with(ws) == (code, reason)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"clientContent": {"turns": [{"role": "user", "parts": [{"text": ""}]}], "turnComplete": True}}, INVALID),
        ({"realtimeInput": {"text": "hi"}, "clientContent": {"turnComplete": True}}, INVALID),
        ({"setup": {"model": f"models/{NATIVE}"}}, INVALID),
        ({"realtimeInput": {"audio": {"data": "@@not base64@@", "mimeType": "audio/pcm;rate=16000"}}}, INVALID),
        ({"realtimeInput": {"audio": {"data": "AAAA", "mimeType": "text/plain"}}}, INVALID),
        ({"toolResponse": {"functionResponses": [{"name": "f", "response": {}}]}}, INVALID),  # no id
        ({"somethingElse": {}}, INVALID),
    ],
)
async def test_invalid_messages_after_setup_close_1007(sim, message, reason):
    async with ws_connect(sim, GEN.format(v="v1beta") + "?key=k") as ws:
        await setup(ws)
        await ws.send(json.dumps(message))
        assert await closed_with(ws) == (1007, reason)


async def test_missing_key_closes_1008(sim):
    async with ws_connect(sim, GEN.format(v="v1beta")) as ws:
        await ws.send(json.dumps({"setup": {"model": f"models/{NATIVE}"}}))
        code, reason = await closed_with(ws)
    assert code == 1008
    assert reason.startswith("Method doesn't allow unregistered callers")


def _b64(data: bytes, urlsafe: bool) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()


@pytest.mark.parametrize("urlsafe", [False, True])
async def test_audio_in_either_base64_alphabet_drives_vad(sim, urlsafe):
    pcm = tone(0.5) + silence(1.0)
    encoded = _b64(pcm, urlsafe)
    assert ("-" in encoded or "_" in encoded) if urlsafe else ("+" in encoded or "/" in encoded)
    async with ws_connect(sim, GEN.format(v="v1beta") + "?key=k") as ws:
        await setup(ws, inputAudioTranscription={})
        for i in range(0, len(pcm), 1280):
            chunk = _b64(pcm[i : i + 1280], urlsafe)
            await ws.send(json.dumps({"realtimeInput": {"audio": {"data": chunk, "mimeType": "audio/pcm;rate=16000"}}}))
        messages = await reply(ws)
    heard = [
        m["serverContent"]["inputTranscription"] for m in messages if "inputTranscription" in m.get("serverContent", {})
    ]
    # Streamed while heard: "(" as the speech began, the rest (finished) at its end.
    assert heard == [{"text": "("}, {"text": "0.5 seconds of speech)", "finished": True}]


async def test_legacy_media_chunks(sim):
    pcm = tone(0.4) + silence(1.0)
    async with ws_connect(sim, GEN.format(v="v1beta") + "?key=k") as ws:
        await setup(ws, outputAudioTranscription={})
        await ws.send(
            json.dumps(
                {"realtimeInput": {"mediaChunks": [{"data": _b64(pcm, False), "mimeType": "audio/pcm;rate=16000"}]}}
            )
        )
        assert "0.4 seconds" in transcript(await reply(ws))


async def test_silence_alone_is_not_a_turn(sim):
    async with ws_connect(sim, GEN.format(v="v1beta") + "?key=k") as ws:
        await setup(ws)
        await ws.send(
            json.dumps(
                {"realtimeInput": {"audio": {"data": _b64(silence(3.0), False), "mimeType": "audio/pcm;rate=16000"}}}
            )
        )
        await ws.send(json.dumps({"realtimeInput": {"text": "hello"}}))
        messages = await reply(ws)
    assert not any("inputTranscription" in m.get("serverContent", {}) for m in messages)


async def test_ephemeral_token_in_access_token_query(sim):
    from .conftest import client_for

    maker = client_for(sim, api_version="v1alpha")
    for version in ("v1alpha",):
        token = maker.auth_tokens.create(config={"uses": 1})
        path = GEN.format(v=version) + f"Constrained?access_token={token.name}"
        async with ws_connect(sim, path) as ws:
            assert "setupComplete" in await setup(ws)
        async with ws_connect(sim, path) as ws:  # one use only
            await ws.send(json.dumps({"setup": {"model": f"models/{NATIVE}"}}))
            assert await closed_with(ws) == (1011, "Token has been used too many times")
    token = maker.auth_tokens.create(config={"uses": 1})
    async with ws_connect(sim, GEN.format(v="v1beta") + f"?key={token.name}") as ws:  # the seed 003 mistake
        await ws.send(json.dumps({"setup": {"model": f"models/{NATIVE}"}}))
        assert await closed_with(ws) == (1007, "API key not valid. Please pass a valid API key.")
    async with ws_connect(sim, GEN.format(v="v1alpha") + "Constrained?access_token=auth_tokens/forged") as ws:
        await ws.send(json.dumps({"setup": {"model": f"models/{NATIVE}"}}))
        assert await closed_with(ws) == (1007, "API key not valid. Please pass a valid API key.")


async def test_vertex_path_needs_a_bearer_token(sim):
    path = "ws/google.cloud.aiplatform.v1.LlmBidiService/BidiGenerateContent"
    model = "projects/p/locations/us-central1/publishers/google/models/gemini-live-2.5-flash-native-audio"
    async with ws_connect(sim, path) as ws:
        await ws.send(json.dumps({"setup": {"model": model}}))
        code, _ = await closed_with(ws)
    assert code == 1008
    bearer = {"Authorization": f"Bearer {sim.access_token()}"}
    async with ws_connect(sim, path, additional_headers=bearer) as ws:
        await ws.send(json.dumps({"setup": {"model": model}}))
        assert "setupComplete" in await recv_json(ws)


async def test_transparent_resumption_reports_the_last_consumed_index(sim):
    async with ws_connect(sim, GEN.format(v="v1beta") + "?key=k") as ws:
        await setup(ws, sessionResumption={"transparent": True})
        update = (await recv_json(ws))["sessionResumptionUpdate"]
        assert update["resumable"] is True and update["newHandle"]
        await ws.send(json.dumps({"realtimeInput": {"text": "hi"}}))
        await reply(ws)
        update = (await recv_json(ws))["sessionResumptionUpdate"]
    assert update["lastConsumedClientMessageIndex"] == "1"


async def test_go_away_then_close_at_the_configured_lifetime(make_sim):
    sim = make_sim(connection_lifetime=0.6, go_away_before=0.4)
    async with ws_connect(sim, GEN.format(v="v1beta") + "?key=k") as ws:
        await setup(ws)
        assert await recv_json(ws) == {"goAway": {"timeLeft": "0.400s"}}
        assert await closed_with(ws) == (1011, "Deadline expired before operation could complete.")
