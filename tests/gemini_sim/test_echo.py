"""gemini_sim echo mode (benchmarks): input audio comes straight back, tagged frames get the sim's timestamps."""

from __future__ import annotations

import asyncio
import struct
import time

from google.genai import types
from google.genai.live import AsyncSession

from bench.frames import make_frame, read_stamps

from .conftest import client_for


async def next_message(session: AsyncSession) -> types.LiveServerMessage:
    """The next server message (echo mode never completes a turn, so receive() would not end)."""
    async for message in session.receive():
        return message
    raise AssertionError("the session ended")


def first_blob(message: types.LiveServerMessage) -> types.Blob:
    """The inline data of the message's first model part (the test expects model audio)."""
    content = message.server_content
    assert content is not None and content.model_turn is not None and content.model_turn.parts
    blob = content.model_turn.parts[0].inline_data
    assert blob is not None
    return blob


async def test_echo_returns_each_chunk_at_once_with_timestamps(make_sim):
    """Through the real SDK: a tagged frame comes back as model audio with receive <= send stamps."""
    sim = make_sim(echo=True, record=False)
    client = client_for(sim)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
    async with client.aio.live.connect(model="gemini-3.1-flash-live-preview", config=config) as session:
        echoed = []
        for seq in range(3):
            before = time.monotonic_ns()
            frame = make_frame(9, seq, before)
            await session.send_realtime_input(audio=types.Blob(data=frame, mime_type="audio/pcm;rate=16000"))
            message = await asyncio.wait_for(next_message(session), 5)
            blob = first_blob(message)
            assert blob.mime_type == "audio/pcm;rate=24000"
            assert blob.data is not None
            (stamp,), untagged = read_stamps(blob.data)
            assert untagged == 0
            assert (stamp.session, stamp.seq, stamp.send_ns) == (9, seq, before)
            assert before <= stamp.sim_recv_ns <= stamp.sim_send_ns <= time.monotonic_ns()
            assert blob.data[40:] == frame[40:]  # the audio itself is untouched
            echoed.append(seq)
        assert echoed == [0, 1, 2]


async def test_echo_returns_untagged_audio_unchanged(make_sim):
    """Plain audio (no tag) is echoed byte for byte; there is no VAD, no transcription, no turn."""
    sim = make_sim(echo=True, record=False)
    client = client_for(sim)
    pcm = struct.pack("<640h", *([3000, -3000] * 320))  # loud enough that VAD would start a turn
    config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
    async with client.aio.live.connect(model="gemini-3.1-flash-live-preview", config=config) as session:
        for _ in range(30):
            await session.send_realtime_input(audio=types.Blob(data=pcm, mime_type="audio/pcm;rate=16000"))
        for _ in range(30):
            message = await asyncio.wait_for(next_message(session), 5)
            content = message.server_content
            assert content is not None
            assert first_blob(message).data == pcm
            assert not content.turn_complete and content.input_transcription is None
