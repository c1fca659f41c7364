"""What the client sends after setup: ordered turns, streamed audio/video/text, activity markers, context updates."""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING, Any

from .. import audio, model, wire
from .errors import INVALID, MEDIA_CHUNKS_DEPRECATED, Close
from .replies import Turn
from .vad import VoiceActivity, windows

if TYPE_CHECKING:
    from .session import LiveSession

ECHO_TAG = b"APSBENCH"  # bench/frames.py: frames whose timestamps echo mode fills in
_CLIENT_KEYS = ("setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate")


class Inputs:
    """One session's client messages after setup, and what has been heard and seen so far."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.vad = VoiceActivity()
        self.activity = False  # inside activityStart/activityEnd (manual detection)
        self.turn_audio_s = 0.0  # audio inside the current activityStart/activityEnd
        self.audio_in_s = 0.0
        self.frames_total = 0
        self.frames_unacknowledged = 0
        self.transcribing = False  # the turn's first transcription piece went out while it was being heard

    def dispatch(self, message: dict[str, Any]) -> None:
        """Act on one client message (after setup)."""
        if len(message) != 1:
            raise Close(1007, INVALID)
        [(kind, body)] = message.items()
        if kind not in _CLIENT_KEYS or kind == "setup" or not isinstance(body, dict):
            raise Close(1007, INVALID)
        if kind == "clientContent":
            self.client_content(body)
        elif kind == "realtimeInput":
            self.realtime_input(body)
        elif kind == "toolResponse":
            self.session.tools.response(body)
        else:
            self.context_update(body)

    def client_content(self, body: dict[str, Any]) -> None:
        """Ordered turns: history, and a reply when the turn is complete and the user spoke last."""
        session = self.session
        cfg = session.config
        if not cfg.model.accepts_text_input:
            raise Close(1007, INVALID)
        # Since about 2026-09-15, 3.1 and 3.8 take clientContent at any point, with or without historyConfig
        # (livekit/agents#7289; google-genai 3.6.1's live tests), but not a turn without a role.
        turns = body.get("turns") or []
        if isinstance(turns, dict):
            turns = [turns]
        if not isinstance(turns, list):
            raise Close(1007, INVALID)
        for turn in turns:
            parts = turn.get("parts") if isinstance(turn, dict) else None
            if not isinstance(parts, list) or turn.get("role", "user") not in ("user", "model"):
                raise Close(1007, INVALID)
            if cfg.model.generation3 and not turn.get("role"):
                raise Close(1007, INVALID)
            for part in parts:
                if not isinstance(part, dict) or not part:
                    raise Close(1007, INVALID)
                if "text" in part and (not isinstance(part["text"], str) or not part["text"].strip()):
                    raise Close(1007, INVALID)
            session.history.append({"role": turn.get("role", "user"), "parts": parts})
        if body.get("turnComplete") and session.history and session.history[-1]["role"] == "user":
            session.replies.start_turn(Turn(), force_interrupt=True)

    def realtime_input(self, body: dict[str, Any]) -> None:
        """Streaming input: audio (VAD), video (counted), text, activity markers, end of audio stream."""
        session = self.session
        cfg = session.config
        if not body:
            raise Close(1007, INVALID)
        self._media(body)
        if "activityStart" in body:
            if cfg.auto_vad:
                raise Close(1007, INVALID)
            self.activity = True
            self.turn_audio_s = 0.0
            if session.replies.generating and cfg.interrupts:
                session.replies.interrupt()
        if "activityEnd" in body:
            if cfg.auto_vad:
                raise Close(1007, INVALID)
            if self.activity:
                self.activity = False
                self.end_audio_turn(self.turn_audio_s)
        if "audioStreamEnd" in body and cfg.auto_vad and self.vad.in_speech and cfg.model.stream_end_ends_turn:
            self.end_speech()  # 3.8: not the end of the turn; the silence that follows is
        if "text" in body:
            text = body["text"]
            if not isinstance(text, str) or not text.strip() or not cfg.model.accepts_text_input:
                raise Close(1007, INVALID)
            session.replies.start_turn(Turn(parts=[{"text": text}]))

    def _media(self, body: dict[str, Any]) -> None:
        """The audio and video blobs of a realtimeInput: audio is heard, video frames are counted."""
        cfg = self.session.config
        blobs: list[dict[str, Any]] = []
        for key in ("audio", "video"):
            if key in body:
                blobs.append(body[key])
        chunks = body.get("mediaChunks")
        if chunks is not None:
            if cfg.model.generation3:
                raise Close(1007, MEDIA_CHUNKS_DEPRECATED)
            if not isinstance(chunks, list):
                raise Close(1007, INVALID)
            blobs.extend(chunks)
        for blob in blobs:
            if not isinstance(blob, dict):
                raise Close(1007, INVALID)
            mime = str(blob.get("mimeType") or "")
            try:
                data = wire.b64decode(blob.get("data", ""))
            except wire.InvalidArgument:
                raise Close(1007, INVALID) from None
            if mime.startswith("audio/"):
                self.hear(data, mime)
            elif mime.startswith("image/") or mime.startswith("video/"):
                self.frames_total += 1
                self.frames_unacknowledged += 1
            else:
                raise Close(1007, INVALID)

    def context_update(self, body: dict[str, Any]) -> None:
        """Mid-session system instruction / tools."""
        cfg = self.session.config
        if "systemInstruction" in body:
            cfg.system_instruction = model.instruction_text(body["systemInstruction"])
        if "tools" in body:
            cfg.functions = model.declared_functions(body["tools"])

    def video_note(self) -> str:
        """What the model says about video frames shared since its last reply ("" when there are none)."""
        if not self.frames_unacknowledged:
            return ""
        self.frames_unacknowledged = 0
        return f"I can see the {self.frames_total} video frames you have shared so far."

    # -- audio ------------------------------------------------------------------------------------------------------
    def hear(self, pcm: bytes, mime: str) -> None:
        """Feed input audio to voice activity detection (or to the manual activity turn)."""
        session = self.session
        cfg = session.config
        if not mime.startswith("audio/pcm") and not mime.startswith("audio/l16"):
            return  # other encodings are accepted but not decoded
        if session.sim.options.echo:
            self.echo(pcm)
            return
        rate = audio.input_rate(mime)
        seconds = audio.duration(pcm, rate)
        self.audio_in_s += seconds
        if not cfg.auto_vad:
            if self.activity:
                self.turn_audio_s += seconds
            return
        for piece, ms in windows(pcm, rate):
            voiced = audio.level(piece) >= session.sim.options.vad_threshold
            event = self.vad.step(voiced, ms, start_ms=cfg.start_ms, silence_ms=cfg.silence_ms)
            if event == "start":
                self.begin_audio_turn()
                if session.replies.generating and cfg.interrupts:
                    session.replies.interrupt()
            elif event == "end":
                self.end_speech()

    def end_speech(self) -> None:
        """VAD decided the user stopped speaking."""
        heard = self.vad.heard_seconds
        self.vad = VoiceActivity()
        self.end_audio_turn(heard)

    def begin_audio_turn(self) -> None:
        """Speech began (voice activity detection): Gemini streams the transcript while it hears, so the first piece
        goes now. The simulator cannot make out words, so the pieces are its description of the turn, cut in two:
        ``(`` now and the rest at the end; joined they are the same text as ever."""
        cfg = self.session.cfg
        if cfg is not None and cfg.input_transcription and not self.transcribing:
            self.transcribing = True
            self.session.send({"serverContent": {"inputTranscription": {"text": "("}}})

    def end_audio_turn(self, seconds: float) -> None:
        """A spoken turn is over: transcribe (describe) it and reply."""
        cfg = self.session.cfg
        text = f"({seconds:.1f} seconds of speech)"
        if cfg is not None and cfg.input_transcription:
            rest = text[1:] if self.transcribing else text  # "(" went out when the speech began
            self.session.send({"serverContent": {"inputTranscription": {"text": rest, "finished": True}}})
        self.transcribing = False
        self.session.replies.start_turn(Turn(parts=[{"text": text}], heard=seconds))

    def echo(self, pcm: bytes) -> None:
        """Echo mode (benchmarks): answer input audio at once with the same bytes as model audio, no VAD or turns.

        A frame tagged as ``bench/frames.py`` describes (``APSBENCH`` first) gets this server's receive and send
        times (CLOCK_MONOTONIC ns) at bytes 24-40, so a load generator can split round trips into one-way latencies.
        """
        if pcm[:8] == ECHO_TAG and len(pcm) >= 40:
            pcm = pcm[:24] + struct.pack("<QQ", self.session.received_ns, time.monotonic_ns()) + pcm[40:]
        inline = {"mimeType": audio.OUTPUT_MIME, "data": wire.b64encode(pcm)}
        self.session.send({"serverContent": {"modelTurn": {"parts": [{"inlineData": inline}]}}})
