"""``Options.empty_turns``: replies that come back empty, as Gemini's sometimes do (Live and REST)."""

from __future__ import annotations

import pytest
from google.genai import types

from .conftest import client_for
from .livekit import collect

NATIVE = "gemini-2.5-flash-native-audio-latest"
CONFIG = types.LiveConnectConfig(
    response_modalities=[types.Modality.AUDIO], output_audio_transcription=types.AudioTranscriptionConfig()
)


def _user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def test_an_empty_live_turn_is_a_turn_complete_with_nothing_before_it(make_sim):
    """One empty turn: turnComplete (with usage) and no modelTurn parts, no transcript; the next turn answers."""
    sim = make_sim(realtime_factor=0, latency=0, empty_turns=1)
    async with client_for(sim).aio.live.connect(model=NATIVE, config=CONFIG) as session:
        await session.send_client_content(turns=_user("Hello there"), turn_complete=True)
        empty = await collect(session)
        await session.send_client_content(turns=_user("Hello there"), turn_complete=True)
        answered = await collect(session)
    assert empty.turn_complete and not empty.audio and not empty.text
    assert not [m for m in empty.messages if m.server_content and m.server_content.model_turn]
    assert empty.usage is not None
    assert answered.audio and answered.text.startswith("Hello")
    assert sim.options.empty_turns == 0  # used up


@pytest.mark.parametrize("stream", [False, True])
async def test_an_empty_rest_reply_has_no_content(make_sim, stream: bool):
    """generateContent (and its stream) answer with a finished candidate and no content; then normally again."""
    sim = make_sim(empty_turns=1)
    client = client_for(sim)
    try:
        if stream:
            chunks = [
                c
                async for c in await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi")
            ]
            response = chunks[-1]
            assert len(chunks) == 1
        else:
            response = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="Hi")
        assert response.candidates and response.candidates[0].content is None
        assert response.candidates[0].finish_reason == types.FinishReason.STOP
        assert response.text is None
        again = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="Hi")
        assert again.text
    finally:
        await client.aio.aclose()
