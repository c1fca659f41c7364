"""``gemini.wire``: the audio fast path says on the wire exactly what the SDK says, and reads what the SDK reads."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google import genai
from google.genai import _live_converters, types
from google.genai.live import AsyncSession

from gemini.client import live_client
from gemini.live_steps import speech_like_pcm as speech
from gemini.wire import GeminiWire, ModelAudio, _only_audio
from live.protocol import INPUT_AUDIO_MIME

MODEL = "gemini-3.1-flash-live-preview"

# Bytes whose base64 has every awkward character: "+" and "/" (standard), "-" and "_" (URL-safe), padding.
AWKWARD_PCM = bytes(range(256)) * 5 + b"\xfb\xff"


class _Socket:
    """Where a session writes: the one seam faked here, to compare two writers' bytes without a server."""

    def __init__(self, incoming: list[Any] | None = None) -> None:
        self.sent: list[str] = []
        self.incoming = list(incoming or [])

    async def send(self, message: str) -> None:
        self.sent.append(message)

    async def recv(self, decode: bool | None = None) -> Any:
        item = self.incoming.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


def _session(*, vertexai: bool) -> tuple[AsyncSession, _Socket]:
    if vertexai:
        client = genai.Client(vertexai=True, project="p", location="us-central1", credentials=_NoCredentials())  # type: ignore[arg-type]
    else:
        client = genai.Client(api_key="k")
    socket = _Socket()
    return AsyncSession(api_client=client._api_client, websocket=socket), socket  # type: ignore[arg-type]


class _NoCredentials:
    """Vertex needs credentials to build a client; nothing here talks to Google."""

    token = "t"
    valid = True
    expired = False


@pytest.mark.parametrize("vertexai", [False, True])
async def test_send_audio_writes_what_the_sdk_writes(vertexai: bool) -> None:
    sdk_session, sdk_socket = _session(vertexai=vertexai)
    wire_session, wire_socket = _session(vertexai=vertexai)
    wire = GeminiWire(wire_session)
    for pcm in (AWKWARD_PCM, b"\x00\x00", speech(0.04)):
        await sdk_session.send_realtime_input(audio=types.Blob(data=pcm, mime_type=INPUT_AUDIO_MIME))
        await wire.send_audio(pcm)
    assert wire_socket.sent == sdk_socket.sent
    assert json.loads(wire_socket.sent[0])["realtime_input"]["audio"]["mime_type"] == INPUT_AUDIO_MIME


def _sdk_parse(response: dict[str, Any]) -> types.LiveServerMessage:
    converted = _live_converters._LiveServerMessage_from_mldev(response)
    return types.LiveServerMessage._from_response(response=converted, kwargs={})


@pytest.mark.parametrize("alphabet", ["standard", "urlsafe"])
def test_audio_only_messages_decode_as_the_sdk_decodes(alphabet: str) -> None:
    encode = base64.b64encode if alphabet == "standard" else base64.urlsafe_b64encode
    second = speech(0.04, rate=24_000)
    response = {
        "serverContent": {
            "modelTurn": {
                "role": "model",
                "parts": [
                    {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": encode(AWKWARD_PCM).decode()}},
                    {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": encode(second).decode()}},
                ],
            }
        }
    }
    fast = _only_audio(response)
    sdk = _sdk_parse(response)
    assert fast is not None
    assert sdk.server_content is not None and sdk.server_content.model_turn is not None
    parts = sdk.server_content.model_turn.parts or []
    expected = [(p.inline_data.data, p.inline_data.mime_type) for p in parts if p.inline_data is not None]
    assert len(expected) == len(parts)
    assert fast.chunks == expected == [(AWKWARD_PCM, "audio/pcm;rate=24000"), (second, "audio/pcm;rate=24000")]
    assert fast.transcription is None


def test_audio_with_its_transcript_piece_takes_the_fast_path() -> None:
    piece = {"text": "Hello ", "finished": False}
    response = {
        "serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "AAAA"}}]}, "outputTranscription": piece}
    }
    fast = _only_audio(response)
    assert fast is not None and fast.chunks == [(b"\x00\x00\x00", "")] and fast.transcription == piece


@pytest.mark.parametrize(
    "response",
    [
        {},
        {"setupComplete": {}},
        {"serverContent": {"turnComplete": True}},
        {"serverContent": {"modelTurn": {"parts": []}}},
        {"serverContent": {"modelTurn": {"parts": [{"text": "hi"}]}}},
        {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": ""}}]}}},
        {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "AAAA"}, "thought": True}]}}},
        {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "AAAA", "displayName": "x"}}]}}},
        {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "AAAA"}}]}, "turnComplete": True}},
        {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "AAAA"}}]}}, "usageMetadata": {}},
        {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": 5}}]}}},
        {"serverContent": [1]},
        {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "AAAA"}}]}, "outputTranscription": 1}},
        {
            "serverContent": {
                "modelTurn": {"parts": [{"inlineData": {"data": "AAAA"}}]},
                "outputTranscription": {"text": 1},
            }
        },
        {
            "serverContent": {
                "modelTurn": {"parts": [{"inlineData": {"data": "AAAA"}}]},
                "outputTranscription": {"x": ""},
            }
        },
    ],
)
def test_anything_but_plain_audio_is_left_to_the_sdk(response: dict[str, Any]) -> None:
    assert _only_audio(response) is None


async def _round_trip(wire: GeminiWire) -> tuple[bytes, list[ModelAudio], list[Any]]:
    """Say something, then read until the model's turn is complete: (model audio, fast messages, the others)."""
    await wire.session.send_realtime_input(text="Hello there")
    audio = b""
    fast: list[ModelAudio] = []
    others: list[Any] = []
    while True:
        message = await wire.receive()
        if isinstance(message, ModelAudio):
            audio += b"".join(pcm for pcm, _ in message.chunks)
            fast.append(message)
            continue
        others.append(message)
        content = message.server_content
        for part in (content.model_turn.parts or []) if content and content.model_turn else []:
            audio += part.inline_data.data if part.inline_data and part.inline_data.data else b""
        if content and content.turn_complete:
            return audio, fast, others


@pytest.mark.parametrize("fast", [True, False])
async def test_a_turn_from_gemini_sim_reads_the_same_both_ways(gemini_sim: Any, fast: bool) -> None:
    """Against the simulator over TLS: audio arrives, the rest comes as SDK messages; the SDK-only path agrees."""
    client = live_client()
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO], output_audio_transcription=types.AudioTranscriptionConfig()
    )
    async with client.aio.live.connect(model=MODEL, config=config) as session:
        wire = GeminiWire(session)
        wire._fast = fast
        await wire.send_audio(speech(0.2))
        audio, fast_messages, others = await _round_trip(wire)
    assert len(audio) > 24_000  # more than half a second of 24 kHz PCM16
    assert len(audio) % 2 == 0
    said = [m.server_content.output_transcription.text or "" for m in others if m.server_content.output_transcription]
    said += [m.transcription["text"] for m in fast_messages if m.transcription]
    assert "".join(said).strip()
    assert all(isinstance(m, types.LiveServerMessage) for m in others)
    audio_messages = [m for m in others if m.server_content and m.server_content.model_turn]
    assert bool(audio_messages) is not fast  # the fast path took every audio message, transcript pieces and all
    sent = [
        m["realtime_input"]["audio"] for m in gemini_sim.client_messages() if "audio" in m.get("realtime_input", {})
    ]
    assert sent and base64.urlsafe_b64decode(sent[0]["data"]) == speech(0.2)


async def test_a_close_raises_the_sdk_error_with_its_code(gemini_sim: Any) -> None:
    from google.genai import errors

    client = live_client()
    async with client.aio.live.connect(model=MODEL, config=types.LiveConnectConfig()) as session:
        wire = GeminiWire(session)
        gemini_sim.inject_fault("close", when="message", code=1011, reason="Internal error occurred.")
        await wire.send_audio(speech(0.04))
        with pytest.raises(errors.APIError) as info:
            await wire.receive()
    assert info.value.code == 1011
    assert "Internal error occurred." in str(info.value)


async def test_unreadable_or_closed_input_raises_what_the_sdk_raises() -> None:
    from google.genai import errors
    from websockets.exceptions import ConnectionClosed

    session, socket = _session(vertexai=False)
    socket.incoming = [b"not json", ConnectionClosed(None, None)]
    wire = GeminiWire(session)
    with pytest.raises(ValueError, match="Failed to parse response"):
        await wire.receive()
    with pytest.raises(errors.APIError) as info:
        await wire.receive()
    assert info.value.code == 1006
