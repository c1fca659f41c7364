"""The Gemini leg of a live session, message by message: google-genai's session, with a cheap path for audio.

Audio moves 25 times a second in each direction per session. For every chunk the SDK validates a pydantic
model, runs its converters and builds a ``LiveServerMessage`` (``performance-anchors.md`` §2: about 77 µs to send
and 113 µs to parse a chunk here), which made it the largest single cost of relaying a session. So, on the SDK's
own connection (it still connects, authenticates, sets up and closes the session):

- ``send_audio`` writes the same JSON text the SDK's ``send_realtime_input(audio=Blob(...))`` writes, byte for
  byte (``tests/gemini/test_wire.py`` compares the two), without the pydantic round trip;
- ``receive`` reads one message and, when it is nothing but model audio (``serverContent.modelTurn`` whose
  parts are all ``inlineData``, with or without an ``outputTranscription`` piece), returns the decoded chunks;
  any other message goes through the SDK's converters and ``LiveServerMessage`` exactly as
  ``AsyncSession.receive`` would, and a close raises the SDK's ``APIError``.

Without the SDK internals this relies on (``gemini.sdk_internals``), every call falls back to the SDK's public
methods.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from google.genai import errors, types
from websockets.exceptions import ConnectionClosed
from websockets.frames import CLOSE_CODE_EXPLANATIONS

from gemini import sdk_internals
from live.protocol import INPUT_AUDIO_MIME

_AUDIO_HEAD = '{"realtime_input": {"audio": {"data": "'
_AUDIO_TAIL = '", "mime_type": "' + INPUT_AUDIO_MIME + '"}}}'


@dataclass(frozen=True, slots=True)
class ModelAudio:
    """A message that carried only model audio: its chunks, decoded, with their MIME types, and the piece of the
    output transcription that came with them (Gemini 3.1 sends both in one message), as sent."""

    chunks: list[tuple[bytes, str]]
    transcription: dict[str, Any] | None = None


class GeminiWire:
    """One open Gemini Live connection (a ``google.genai.live.AsyncSession``) as the bridge sends and receives."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._ws: Any = sdk_internals.session_socket(session)
        api_client = sdk_internals.session_api_client(session)
        self._vertex = bool(getattr(api_client, "vertexai", False))
        self._fast = self._ws is not None and api_client is not None
        self._messages = self._sdk_messages()

    async def _sdk_messages(self) -> AsyncIterator[types.LiveServerMessage]:
        while True:  # the SDK's receive() ends after each turn
            async for message in self.session.receive():
                yield message

    async def send_audio(self, pcm: bytes) -> None:
        """Send one PCM16LE 16 kHz chunk as realtime input."""
        if self._fast:
            # The SDK's encoding: URL-safe base64 (``_common.encode_unserializable_types``), json.dumps spacing.
            await self._ws.send(_AUDIO_HEAD + base64.urlsafe_b64encode(pcm).decode("ascii") + _AUDIO_TAIL)
        else:
            await self.session.send_realtime_input(audio=types.Blob(data=pcm, mime_type=INPUT_AUDIO_MIME))

    def abort(self) -> None:
        """Drop the connection without a closing handshake (when the handshake cannot finish)."""
        transport = getattr(self._ws, "transport", None)
        if transport is not None:
            transport.abort()

    async def receive(self) -> ModelAudio | types.LiveServerMessage:
        """The next message from Gemini; raises ``errors.APIError`` (code = close code) when the socket closes."""
        if not self._fast:
            return await anext(self._messages)
        try:
            raw = await self._ws.recv(decode=False)
        except ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, CLOSE_CODE_EXPLANATIONS[1006])
            errors.APIError.raise_error(code, reason, None)
        try:
            response = json.loads(raw) if raw else {}
        except ValueError:
            raise ValueError(f"Failed to parse response: {raw!r}") from None
        audio = _only_audio(response)
        if audio is not None:
            return audio
        fields = sdk_internals.live_server_message_fields(response, vertex=self._vertex)
        if not fields and response:
            status = response.get("code")
            errors.APIError.raise_error(status if isinstance(status, int) else 0, response, None)
        return sdk_internals.live_server_message(fields)


def _only_audio(response: dict[str, Any]) -> ModelAudio | None:
    """The decoded chunks if ``response`` is only ``serverContent.modelTurn`` audio (plus its transcript piece)."""
    if len(response) != 1:
        return None
    content = response.get("serverContent")
    if type(content) is not dict or not content.keys() <= {"modelTurn", "outputTranscription"}:
        return None
    turn = content.get("modelTurn")
    if type(turn) is not dict or not turn.keys() <= {"parts", "role"}:
        return None
    parts = turn.get("parts")
    if type(parts) is not list or not parts:
        return None
    said = content.get("outputTranscription")
    if said is not None and not _plain_transcription(said):
        return None
    chunks = []
    for part in parts:
        if type(part) is not dict or len(part) != 1:
            return None
        blob = part.get("inlineData")
        if type(blob) is not dict or not blob.keys() <= {"data", "mimeType"}:
            return None
        data = blob.get("data")
        if type(data) is not str or not data:
            return None
        # urlsafe_b64decode maps "-_" to "+/" and leaves "+/" alone, so it takes both alphabets, as pydantic does.
        chunks.append((base64.urlsafe_b64decode(data), str(blob.get("mimeType") or "")))
    return ModelAudio(chunks, said)


def _plain_transcription(value: Any) -> bool:
    return (
        type(value) is dict
        and value.keys() <= {"text", "finished"}
        and type(value.get("text", "")) is str
        and type(value.get("finished", False)) is bool
    )
