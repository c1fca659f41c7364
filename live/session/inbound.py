"""Gemini → browser: relay each server message, feeding the recorder, the ledger, tool calls and the link."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from google.genai import types

from gemini.wire import GeminiWire, ModelAudio
from live import metrics
from live.protocol import OUTPUT_SAMPLE_RATE, ErrorCode, ProtocolError
from live.recorder import Recorder
from live.server_messages import ServerMessage, session_message, turn_silent
from live.session.ledger import Ledger
from live.session.link import Link
from live.session.media import pcm_seconds
from live.session.row import SessionRow
from live.session.stats import Counters, ReplyClock
from live.session.tool_calls import ToolCalls
from live.session_plan import SessionPlan

_HANDLED_CONTENT_FIELDS = frozenset(
    {"model_turn", "input_transcription", "output_transcription", "interrupted", "generation_complete", "turn_complete"}
)
GO_AWAY_DEFAULT_SECONDS = 10.0


class SilentTurn(NamedTuple):
    """A model turn that ended with nothing (no audio, text, transcription or tool call), until it is retried."""

    turn_id: str  # sent in turn_silent; retry_turn must name it
    words: str  # what the user said or typed in the turn it did not answer ("" if no words were heard)


def _seconds(duration: str | None, default: float) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", duration or "")
    return float(match.group(1)) if match else default


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[no-any-return]


class Inbound:
    """Translate what Gemini sends into browser messages, and note what it means for the session."""

    def __init__(
        self,
        *,
        public_id: str,
        plan: SessionPlan,
        link: Link,
        ledger: Ledger,
        recorder: Recorder,
        tool_calls: ToolCalls,
        row: SessionRow,
        counters: Counters,
        reply_clock: ReplyClock,
        send: Callable[[ServerMessage], Awaitable[None]],
        send_audio: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self.public_id = public_id
        self.plan = plan
        self.link = link
        self.ledger = ledger
        self.recorder = recorder
        self.tool_calls = tool_calls
        self.row = row
        self.counters = counters
        self.reply_clock = reply_clock
        self.send = send
        self.send_audio = send_audio
        self.model_busy = False  # the model is producing a reply
        self._turn_output = False  # the model turn under way produced something (else its end is a silent turn)
        self.silent: SilentTurn | None = None  # the latest silent turn, until retried or answered

    async def receive(self, wire: GeminiWire) -> None:
        """Relay until the connection fails (the session decides what then)."""
        while True:
            message = await wire.receive()
            if isinstance(message, ModelAudio):
                await self._on_model_audio(message)
            else:
                await self._on_server_message(message)

    async def _on_model_audio(self, message: ModelAudio) -> None:
        """The common case, a message of nothing but model audio (see ``gemini.wire``)."""
        parts_out: list[dict[str, Any]] = []
        for pcm, mime in message.chunks:
            await self._model_audio(pcm, mime, parts_out)
        payload: dict[str, Any] = {}
        said = message.transcription
        if said is not None:
            payload["outputTranscription"] = {"text": said.get("text", ""), **said}
            self._output_transcription(said.get("text", ""), parts_out)
        if parts_out:
            payload["modelTurn"] = {"role": "model", "parts": parts_out}
        if payload:
            await self._send_data({"serverContent": payload})

    async def _send_data(self, data: dict[str, Any]) -> None:
        self.counters.messages_out += 1
        metrics.message("out", "session_message")
        await self.send(session_message(session_id=self.public_id, data=data))

    async def _on_server_message(self, msg: types.LiveServerMessage) -> None:
        data: dict[str, Any] = {}
        content = msg.server_content
        if content is not None:
            payload = await self._on_server_content(content)
            if payload:
                data["serverContent"] = payload
        if msg.usage_metadata is not None:
            usage = _dump(msg.usage_metadata)
            self.recorder.usage(usage)
            data["usageMetadata"] = usage
        silent: SilentTurn | None = None
        if content is not None and content.turn_complete:
            if not self._turn_output and msg.tool_call is None:
                # Gemini sometimes ends a turn with nothing at all (5-7 % of turns in production): the browser shows
                # "No answer" and may ask again (retry_turn) with the words of the turn, which stays unanswered.
                silent = self.silent = SilentTurn(f"turn_{secrets.token_hex(6)}", self.ledger.unanswered_words())
                metrics.silent_turn()
            self._turn_output = False
            await self.recorder.turn_complete()
            self.model_busy = False
            self.ledger.turn_answered()
            self.link.turn_complete()
        if msg.tool_call is not None:
            self._turn_output = True
            for call in msg.tool_call.function_calls or []:
                self.tool_calls.start(call)
            data["toolCall"] = _dump(msg.tool_call)
        if msg.tool_call_cancellation is not None:
            self.tool_calls.cancel(msg.tool_call_cancellation.ids or [])
            data["toolCallCancellation"] = _dump(msg.tool_call_cancellation)
        if msg.session_resumption_update is not None:
            self._on_resumption_update(msg.session_resumption_update)
        if msg.go_away is not None:
            self.link.go_away(_seconds(msg.go_away.time_left, GO_AWAY_DEFAULT_SECONDS), model_busy=self.model_busy)
        if data:
            await self._send_data(data)
        if silent is not None:
            metrics.message("out", "turn_silent")
            await self.send(turn_silent(session_id=self.public_id, turn_id=silent.turn_id))

    def silent_turn(self, turn_id: str) -> SilentTurn:
        """The silent turn ``turn_id`` names, if it is still the latest and unanswered; else INVALID_STATE."""
        silent = self.silent
        if silent is None or silent.turn_id != turn_id:
            raise ProtocolError(
                ErrorCode.INVALID_STATE, "That turn cannot be asked again: it was answered, retried or superseded."
            )
        return silent

    async def _on_server_content(self, content: types.LiveServerContent) -> dict[str, Any]:
        # Built by hand for the fields every audio chunk carries (a pydantic dump per chunk is most of the relay's
        # cost); anything else Gemini sends (grounding, reasons, statuses...) is dumped as is.
        payload: dict[str, Any] = {}
        extra = content.model_fields_set - _HANDLED_CONTENT_FIELDS
        if extra:
            payload = content.model_dump(mode="json", by_alias=True, exclude_none=True, include=extra)
        for field, key in (
            ("input_transcription", "inputTranscription"),
            ("output_transcription", "outputTranscription"),
        ):
            transcription = getattr(content, field)
            if transcription is not None:
                payload[key] = {"text": transcription.text or ""}
                if transcription.finished is not None:
                    payload[key]["finished"] = transcription.finished
        for field, key in (
            ("interrupted", "interrupted"),
            ("generation_complete", "generationComplete"),
            ("turn_complete", "turnComplete"),
        ):
            value = getattr(content, field)
            if value is not None:
                payload[key] = value
        parts_out: list[dict[str, Any]] = []
        for part in (content.model_turn.parts or []) if content.model_turn else []:
            blob = part.inline_data
            if blob is not None and blob.data:
                await self._model_audio(blob.data, blob.mime_type or "", parts_out)
            elif part.text and not part.thought:
                self._replying(part.text)
                self.recorder.model_text(part.text)
                if not self.plan.text_via_transcription:
                    parts_out.append({"text": part.text})
        if content.input_transcription is not None and content.input_transcription.text:
            self.ledger.heard(content.input_transcription.text, transcribed=True)
            self.recorder.input_transcription(content.input_transcription.text)
        if content.output_transcription is not None:
            self._output_transcription(content.output_transcription.text or "", parts_out)
        if content.interrupted:
            self._turn_output = True  # cut off by the user: not a silent turn
            self.recorder.interrupted()
            self.model_busy = False
        if parts_out:
            payload["modelTurn"] = {"role": "model", "parts": parts_out}
        return payload

    def _output_transcription(self, text: str, parts_out: list[dict[str, Any]]) -> None:
        if text:
            self._replying(text)
            self.recorder.output_transcription(text)
            if self.plan.text_via_transcription:
                parts_out.append({"text": text})

    async def _model_audio(self, pcm: bytes, mime: str, parts_out: list[dict[str, Any]]) -> None:
        self._replying()
        seconds = pcm_seconds(pcm, OUTPUT_SAMPLE_RATE)
        self.counters.audio_seconds_out += seconds
        metrics.audio_seconds("out", seconds)
        self.reply_clock.model_audio()
        await self.recorder.model_audio(pcm)
        if not self.plan.forwards_audio:
            return
        metrics.message("out", "audio")
        if self.plan.binary_audio:
            await self.send_audio(pcm)
        else:
            parts_out.append(
                {"inlineData": {"mimeType": mime or "audio/pcm;rate=24000", "data": base64.b64encode(pcm).decode()}}
            )

    def _replying(self, text: str = "") -> None:
        self.ledger.replying(text)
        self.model_busy = True
        self._turn_output = True
        self.silent = None  # answered after all (or a newer turn was): nothing left to retry

    def _on_resumption_update(self, update: types.LiveServerSessionResumptionUpdate) -> None:
        new_handle = update.new_handle if update.resumable and update.new_handle else None
        self.ledger.resumption_update(
            consumed_index=update.last_consumed_client_message_index, new_handle=new_handle is not None
        )
        if new_handle is not None:
            self.row.save_handle(new_handle)
            self.link.handle_received(new_handle)
