"""Helpers for Live tests: collect a turn from an SDK session, make 16 kHz speech/silence PCM."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from google.genai import types
from google.genai.live import AsyncSession

RATE = 16000


def tone(seconds: float, amplitude: int = 8000, freq: float = 220.0) -> bytes:
    """Voiced-looking 16 kHz PCM16LE."""
    n = int(seconds * RATE)
    return struct.pack(f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * freq * i / RATE)) for i in range(n)))


def silence(seconds: float) -> bytes:
    """16 kHz PCM16LE zeros."""
    return bytes(2 * int(seconds * RATE))


def chunks(pcm: bytes, ms: int = 40) -> list[bytes]:
    """Split PCM into ``ms`` frames, as a microphone would deliver them."""
    size = RATE * ms // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def send_audio(session: AsyncSession, pcm: bytes, ms: int = 40) -> None:
    """Stream PCM through the SDK in microphone-sized chunks."""
    for piece in chunks(pcm, ms):
        await session.send_realtime_input(audio=types.Blob(data=piece, mime_type="audio/pcm;rate=16000"))


@dataclass
class Turn:
    """Everything the server sent for one turn."""

    messages: list[types.LiveServerMessage] = field(default_factory=list)
    audio: bytes = b""
    text: str = ""  # output transcription (or TEXT parts)
    input_text: str = ""
    mime_types: set[str | None] = field(default_factory=set)
    interrupted: bool = False
    generation_complete: bool = False
    turn_complete: bool = False
    tool_call: types.LiveServerToolCall | None = None
    cancelled_ids: list[str] = field(default_factory=list)
    usage: types.UsageMetadata | None = None
    handles: list[str] = field(default_factory=list)
    go_away: types.LiveServerGoAway | None = None

    @property
    def function_calls(self) -> list[types.FunctionCall]:
        """The calls of the tool call that ended the turn (the test expects one)."""
        assert self.tool_call is not None and self.tool_call.function_calls is not None
        return self.tool_call.function_calls


async def collect(session: AsyncSession, wait: float = 10.0, stop_on_tool_call: bool = True) -> Turn:
    """Receive until turnComplete (or a toolCall), gathering what arrived."""
    turn = Turn()
    async with asyncio.timeout(wait):
        async for msg in session.receive():
            turn.messages.append(msg)
            sc = msg.server_content
            if sc is not None:
                if sc.model_turn and sc.model_turn.parts:
                    for part in sc.model_turn.parts:
                        if part.inline_data:
                            assert part.inline_data.data is not None  # an audio part always carries its bytes
                            turn.audio += part.inline_data.data
                            turn.mime_types.add(part.inline_data.mime_type)
                        if part.text:
                            turn.text += part.text
                if sc.output_transcription and sc.output_transcription.text:
                    turn.text += sc.output_transcription.text
                if sc.input_transcription and sc.input_transcription.text:
                    turn.input_text += sc.input_transcription.text
                turn.interrupted |= bool(sc.interrupted)
                turn.generation_complete |= bool(sc.generation_complete)
                turn.turn_complete |= bool(sc.turn_complete)
            if msg.usage_metadata:
                turn.usage = msg.usage_metadata
            if msg.session_resumption_update and msg.session_resumption_update.new_handle:
                turn.handles.append(msg.session_resumption_update.new_handle)
            if msg.go_away:
                turn.go_away = msg.go_away
            if msg.tool_call_cancellation:
                turn.cancelled_ids.extend(msg.tool_call_cancellation.ids or [])
            if msg.tool_call:
                turn.tool_call = msg.tool_call
                if stop_on_tool_call:
                    break
    return turn


async def say(session: AsyncSession, text: str) -> Turn:
    """Send user text the way the bridge does mid-session (realtimeInput.text) and collect the reply."""
    await session.send_realtime_input(text=text)
    return await collect(session)


async def until(
    session: AsyncSession, predicate: Callable[[types.LiveServerMessage], object], wait: float = 10.0
) -> types.LiveServerMessage:
    """Receive (across turn boundaries) until a message matches ``predicate``; return it."""
    async with asyncio.timeout(wait):
        while True:
            async for msg in session.receive():
                if predicate(msg):
                    return msg


async def next_handle(session: AsyncSession, wait: float = 10.0) -> str:
    """The next resumption handle the server sends."""
    msg = await until(session, lambda m: m.session_resumption_update and m.session_resumption_update.new_handle, wait)
    update = msg.session_resumption_update
    assert update is not None and update.new_handle  # what until() waited for
    return update.new_handle
