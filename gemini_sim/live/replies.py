"""The model's side of the conversation: a queue of user turns, barge-in, and each reply with its usage."""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import audio, model, wire
from .errors import INTERNAL

if TYPE_CHECKING:
    from .session import LiveSession

AUDIO_TOKENS_PER_S = 25
VIDEO_TOKENS_PER_FRAME = 258
TEXT_CHUNK_WORDS = 8


@dataclass
class Turn:
    """A user turn waiting for a reply."""

    parts: list[dict[str, Any]] | None = None  # appended to history when the reply starts (None: already there)
    heard: float | None = None  # seconds of speech, for audio turns


class Replies:
    """Replies of one session, one after another; speech from the user (or a forced turn) may cut one short."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.queue: collections.deque[Turn] = collections.deque()
        self.task: asyncio.Task[None] | None = None
        self.spoken: list[str] = []  # words of the reply under way already sent, kept in history if it is cut

    @property
    def generating(self) -> bool:
        """Whether a reply is under way."""
        return self.task is not None and not self.task.done()

    def start_turn(self, turn: Turn, *, force_interrupt: bool = False, wait: bool = False) -> None:
        """Reply to a user turn: barge in on a reply under way, or queue behind it (NO_INTERRUPTION, ``wait``)."""
        cfg = self.session.config
        if self.generating:
            if (cfg.interrupts or force_interrupt) and not wait:
                self.interrupt()
            else:
                self.queue.append(turn)
                return
        self.queue.append(turn)
        self.task = asyncio.create_task(self._reply_loop())

    def interrupt(self) -> None:
        """Barge-in: stop the reply, cancel pending function calls, send interrupted then turnComplete."""
        session = self.session
        task = self.task
        if task is None or task.done():
            return
        task.cancel()
        self.task = None
        session.tools.cancel_pending()
        if self.spoken:
            session.history.append({"role": "model", "parts": [{"text": " ".join(self.spoken)}]})
            self.spoken = []
        session.send({"serverContent": {"interrupted": True}})
        session.send({"serverContent": self.turn_complete()})

    def turn_complete(self) -> dict[str, Any]:
        """The end of an interaction, marked IDLE on models that report interactionStatus."""
        content: dict[str, Any] = {"turnComplete": True}
        if self.session.cfg is not None and self.session.cfg.model.interaction_status:
            content["interactionStatus"] = "IDLE"
        return content

    async def _reply_loop(self) -> None:
        """Answer queued turns one after another."""
        try:
            while self.queue:
                turn = self.queue.popleft()
                if turn.parts is not None:
                    self.session.history.append({"role": "user", "parts": turn.parts})
                await self._reply(turn)
        except Exception:  # a bug must look like the service's internal error, not a silent hang
            logging.getLogger("gemini_sim").exception("gemini_sim: reply failed")
            self.session.request_close(1011, INTERNAL)

    async def _reply(self, turn: Turn) -> None:
        """One model turn: function calls if asked for, then speech (or text), then completion and usage."""
        session = self.session
        cfg = session.config
        opts = session.sim.options
        await session.fault_point("turn")
        if cfg.model.interaction_status:
            session.send({"serverContent": {"interactionStatus": "IN_PROGRESS"}})
        if opts.latency > 0 and opts.realtime_factor > 0:
            await asyncio.sleep(opts.latency / opts.realtime_factor)
        note = session.inputs.video_note()
        prompt_tokens = model.history_tokens(session.history) + model.estimate_tokens(cfg.system_instruction)
        if session.sim.take_empty_turn():
            await self._finish_empty(prompt_tokens)
            return
        if not cfg.model.conversational:
            await self._finish(self._transcribe_or_translate(turn), prompt_tokens)
            return
        answer = model.respond(
            session.history,
            model=cfg.model_name,
            system_instruction=cfg.system_instruction,
            functions=cfg.functions,
            note=note,
            heard=turn.heard,
        )
        if answer.calls and session.tools.non_blocking(answer.calls[0][0]):
            session.tools.start_background(answer.calls)
            answer = model.Reply(text="Let me check that for you.")
        if answer.calls:
            await session.tools.call(answer.calls)
            answer = model.respond(session.history, model=cfg.model_name, system_instruction=cfg.system_instruction)
        await self._finish(answer.text, prompt_tokens)

    def _transcribe_or_translate(self, turn: Turn) -> str:
        """What transcribe-live and live-translate say for a turn (the simulator hears no words, only speech)."""
        cfg = self.session.config
        heard = f"{turn.heard or 0.0:.1f} seconds of speech"
        return f"({heard})" if cfg.model.text_only else f"(a translation of {heard})"

    async def _finish(self, text: str, prompt_tokens: int) -> None:
        """Speak (or write) the reply, then generationComplete, turnComplete with usage, and a new handle."""
        session = self.session
        cfg = session.config
        out_tokens = await self._speak(text)
        session.history.append({"role": "model", "parts": [{"text": text}]})
        self.spoken = []
        session.send({"serverContent": {"generationComplete": True}})
        out_modality = "AUDIO" if "AUDIO" in cfg.modalities else "TEXT"
        usage = self._usage(prompt_tokens, out_tokens, out_modality)
        session.send({"serverContent": self.turn_complete(), "usageMetadata": usage})
        if cfg.resumption:
            session.resumption.issue_after_turn()

    async def _finish_empty(self, prompt_tokens: int) -> None:
        """A silent turn (``Options.empty_turns``): turnComplete with usage and nothing before it, as Gemini
        sometimes ends a turn; nothing joins the history."""
        session = self.session
        out_modality = "AUDIO" if "AUDIO" in session.config.modalities else "TEXT"
        session.send(
            {"serverContent": self.turn_complete(), "usageMetadata": self._usage(prompt_tokens, 0, out_modality)}
        )
        if session.config.resumption:
            session.resumption.issue_after_turn()

    def _usage(self, prompt_tokens: int, out_tokens: int, out_modality: str) -> dict[str, Any]:
        """``usageMetadata``: the history's text plus all audio and video heard so far in, the reply out."""
        inputs = self.session.inputs
        audio_in = round(inputs.audio_in_s * AUDIO_TOKENS_PER_S)
        video_in = inputs.frames_total * VIDEO_TOKENS_PER_FRAME
        prompt_details = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
        if audio_in:
            prompt_details.append({"modality": "AUDIO", "tokenCount": audio_in})
        if video_in:
            prompt_details.append({"modality": "VIDEO", "tokenCount": video_in})
        prompt_total = prompt_tokens + audio_in + video_in
        return {
            "promptTokenCount": prompt_total,
            "responseTokenCount": out_tokens,
            "totalTokenCount": prompt_total + out_tokens,
            "promptTokensDetails": prompt_details,
            "responseTokensDetails": [{"modality": out_modality, "tokenCount": out_tokens}],
        }

    async def _speak(self, text: str) -> int:
        """Stream the reply: audio chunks with transcript pieces (AUDIO) or text chunks (TEXT); return tokens."""
        session = self.session
        cfg = session.config
        opts = session.sim.options
        words = text.split()
        self.spoken = []
        if "AUDIO" not in cfg.modalities:
            step = TEXT_CHUNK_WORDS
            for i in range(0, len(words), step):
                piece = " ".join(words[i : i + step]) + (" " if i + step < len(words) else "")
                session.send({"serverContent": {"modelTurn": {"parts": [{"text": piece}]}}})
                self.spoken.extend(words[i : i + step])
                await session.ws.drain()
            return model.estimate_tokens(text)
        pcm = audio.synthesize(text, cfg.voice)
        rate = audio.OUTPUT_RATE
        chunk_bytes = max(2, int(rate * opts.audio_chunk_ms / 1000) * 2)
        n = max(1, -(-len(pcm) // chunk_bytes))
        chunk_s = chunk_bytes / 2 / rate
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(n):
            if session.stall_until:
                await session.stalled()
            factor = session.sim.options.realtime_factor
            if factor > 0:
                delay = start + i * chunk_s / factor - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            piece_words = words[i * len(words) // n : (i + 1) * len(words) // n]
            chunk = pcm[i * chunk_bytes : (i + 1) * chunk_bytes]
            inline = {"mimeType": audio.OUTPUT_MIME, "data": wire.b64encode(chunk)}
            content: dict[str, Any] = {"modelTurn": {"parts": [{"inlineData": inline}]}}
            said = {"text": " ".join(piece_words) + (" " if i < n - 1 else "")} if cfg.output_transcription else None
            # 3.x carries the transcript piece in the audio's own serverContent; 2.5 sends it in the next one.
            if said and piece_words and cfg.model.combined_parts:
                content["outputTranscription"] = said
            session.send({"serverContent": content})
            if said and piece_words and not cfg.model.combined_parts:
                session.send({"serverContent": {"outputTranscription": said}})
            self.spoken.extend(piece_words)
            await session.ws.drain()
            if factor <= 0:
                await asyncio.sleep(0)  # let barge-in and other sessions in
            if i == 0:
                await session.fault_point("audio")
        factor = session.sim.options.realtime_factor
        if factor > 0:  # the model is "speaking" until its last chunk has played
            delay = start + n * chunk_s / factor - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        return round(audio.duration(pcm, rate) * AUDIO_TOKENS_PER_S)
