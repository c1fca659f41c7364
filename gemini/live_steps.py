"""The Live steps of ``manage.py gemini_check``: open a session, a text turn, a spoken turn, an ephemeral token."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import struct
import time
from typing import TYPE_CHECKING, Any

from google import genai
from google.genai import types

from gemini.catalogue import live_model
from gemini.client import EPHEMERAL_TOKEN_API_VERSION, ephemeral_client
from gemini.errors import Cause, classify
from gemini.report import Step, describe_connection, mask, ms_since

if TYPE_CHECKING:
    from gemini.diagnostics import Diagnosis

INPUT_RATE = 16_000
CHECK_PROMPT = "Reply with one short sentence: is this connection working?"


class LiveSteps:
    """Run the Live steps of one diagnosis, adding each outcome to its report."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        self.diagnosis = diagnosis

    def _live_config(self) -> tuple[types.LiveConnectConfig, str]:
        catalogued = live_model(self.diagnosis.model)
        modality = self.diagnosis.modality or (
            "TEXT" if catalogued is not None and not catalogued.audio_only else "AUDIO"
        )
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality(modality)],
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig() if modality == "AUDIO" else None,
        )
        return config, modality

    async def session(self, client: genai.Client, *, rest: genai.Client) -> None:
        """Connect to the Live model, wait for setupComplete, run a text turn and optionally a spoken one.

        ``client`` is the Live client; ``rest`` lists the models when the name is unknown.
        """
        config, modality = self._live_config()
        catalogued = live_model(self.diagnosis.model)
        started = time.perf_counter()
        async with Closing() as stack:
            try:
                session = await self.diagnosis.within(
                    stack.enter(client.aio.live.connect(model=self.diagnosis.model, config=config))
                )
            except Exception as exc:
                if classify(exc).cause is Cause.MODEL_NOT_FOUND and self.diagnosis.live_models is None:
                    await self.diagnosis.learn_live_models(rest)
                self.diagnosis.failed(
                    "live.connect",
                    f"could not open a Live session with {self.diagnosis.model}",
                    exc,
                    where="live",
                    started=started,
                )
                self.diagnosis.skip("live.text", "no Live session")
                if self.diagnosis.audio:
                    self.diagnosis.skip("live.audio", "no Live session")
                return
            self.diagnosis.add(
                Step(
                    "live.connect",
                    "ok",
                    f"setupComplete from {self.diagnosis.model} ({modality}) in {ms_since(started):.0f} ms",
                    details={"model": self.diagnosis.model, "modality": modality, "sessionId": session.session_id},
                    elapsed_ms=ms_since(started),
                )
            )
            if catalogued is not None and not catalogued.text_input:
                # A text turn would close the session (audio input only): the spoken turn is this model's check.
                self.diagnosis.skip(
                    "live.text", f"{self.diagnosis.model} takes audio input only; a spoken turn checks it instead"
                )
                await self._audio_turn(session, modality)
                return
            if not await self._text_turn(session, modality):
                if self.diagnosis.audio:
                    self.diagnosis.skip("live.audio", "the text turn failed")
                return
            if self.diagnosis.audio:
                await self._audio_turn(session, modality)

    async def ephemeral_token(self, client: genai.Client) -> None:
        """Mint a one-use ephemeral token (auth_tokens on v1alpha) and open a Live session with it."""
        started = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        try:
            token = await self.diagnosis.within(
                client.aio.auth_tokens.create(
                    config=types.CreateAuthTokenConfig(
                        uses=1,
                        expire_time=now + dt.timedelta(minutes=5),
                        new_session_expire_time=now + dt.timedelta(minutes=1),
                        http_options=types.HttpOptions(api_version=EPHEMERAL_TOKEN_API_VERSION),
                    )
                )
            )
        except Exception as exc:
            self.diagnosis.failed(
                "live.ephemeral", "auth_tokens.create (v1alpha) failed", exc, where="tokens", started=started
            )
            return
        config, _ = self._live_config()
        name = token.name or ""
        try:
            token_client = ephemeral_client(name)
            self.diagnosis.ephemeral_url = describe_connection(token_client).live_url
            async with Closing() as stack:
                session = await self.diagnosis.within(
                    stack.enter(token_client.aio.live.connect(model=self.diagnosis.model, config=config))
                )
        except Exception as exc:
            self.diagnosis.failed(
                "live.ephemeral",
                "a Live session with an ephemeral token failed",
                exc,
                where="ephemeral",
                started=started,
            )
            return
        self.diagnosis.add(
            Step(
                "live.ephemeral",
                "ok",
                f"token {mask(name)} (one use, 1 min to start) opened a Live session on {self.diagnosis.ephemeral_url}",
                details={
                    "liveUrl": self.diagnosis.ephemeral_url,
                    "apiVersion": EPHEMERAL_TOKEN_API_VERSION,
                    "expireTime": str(token.expire_time) if token.expire_time else None,
                    "sessionId": session.session_id,
                },
                elapsed_ms=ms_since(started),
            )
        )

    async def _text_turn(self, session: Any, modality: str) -> bool:
        started = time.perf_counter()
        catalogued = live_model(self.diagnosis.model)
        try:
            if catalogued is not None and not catalogued.text_via_realtime_input:
                await session.send_client_content(
                    turns=types.Content(role="user", parts=[types.Part(text=CHECK_PROMPT)]), turn_complete=True
                )
            else:
                await session.send_realtime_input(text=CHECK_PROMPT)
            turn = await self.diagnosis.within(receive_turn(session, started))
        except Exception as exc:
            self.diagnosis.failed("live.text", "the text turn failed", exc, where="live", started=started)
            return False
        self.diagnosis.add(turn_step("live.text", turn, modality, started))
        return True

    async def _audio_turn(self, session: Any, modality: str) -> None:
        started = time.perf_counter()
        pcm = speech_like_pcm(1.0) + bytes(2 * INPUT_RATE)  # 1 s of voice, then 1 s of silence to end the turn
        chunk = INPUT_RATE * 2 // 25  # 40 ms, as a browser's AudioWorklet sends it
        try:
            for i in range(0, len(pcm), chunk):
                await session.send_realtime_input(
                    audio=types.Blob(data=pcm[i : i + chunk], mime_type=f"audio/pcm;rate={INPUT_RATE}")
                )
            turn = await self.diagnosis.within(receive_turn(session, started))
        except Exception as exc:
            self.diagnosis.failed("live.audio", "the spoken turn failed", exc, where="live", started=started)
            return
        step = turn_step("live.audio", turn, modality, started)
        step.details["sentAudio"] = {"seconds": len(pcm) / 2 / INPUT_RATE, "sampleRate": INPUT_RATE}
        if not turn["inputTranscription"]:
            step.status = "warning"
            step.explanation = "Gemini answered but reported no input transcription of the sent audio."
        self.diagnosis.add(step)


def speech_like_pcm(seconds: float, *, rate: int = INPUT_RATE, amplitude: int = 6000) -> bytes:
    """Generate PCM16LE that a voice detector takes for speech: a voiced 140 Hz tone with a syllable envelope."""
    out = bytearray()
    for i in range(int(seconds * rate)):
        t = i / rate
        envelope = 0.6 + 0.4 * abs(math.sin(math.pi * t * 4))
        value = math.sin(2 * math.pi * 140 * t) + 0.5 * math.sin(2 * math.pi * 280 * t)
        out += struct.pack("<h", int(amplitude * envelope * value / 1.5))
    return bytes(out)


def _rate(mime_type: str | None) -> int | None:
    for part in (mime_type or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "rate" and value.isdigit():
            return int(value)
    return None


class Closing:
    """An async exit stack that never lets closing a broken session hide the diagnosis."""

    def __init__(self) -> None:
        self._managers: list[Any] = []

    async def enter(self, manager: Any) -> Any:
        value = await manager.__aenter__()
        self._managers.append(manager)
        return value

    async def __aenter__(self) -> Closing:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for manager in reversed(self._managers):
            # The session's outcome is already reported; closing it is best effort.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(manager.__aexit__(None, None, None), 5)


async def receive_turn(session: Any, started: float) -> dict[str, Any]:
    """Collect one model turn: audio bytes and rate, text, transcriptions, time to first byte."""
    turn: dict[str, Any] = {
        "bytes": 0,
        "rate": None,
        "text": "",
        "transcript": "",
        "inputTranscription": "",
        "ttfb": None,
    }
    async for message in session.receive():
        content = message.server_content
        if content is None:
            continue
        for part in (content.model_turn.parts or []) if content.model_turn else []:
            if part.inline_data and part.inline_data.data:
                turn["bytes"] += len(part.inline_data.data)
                turn["rate"] = turn["rate"] or _rate(part.inline_data.mime_type)
            if part.text:
                turn["text"] += part.text
            if turn["ttfb"] is None and (part.text or (part.inline_data and part.inline_data.data)):
                turn["ttfb"] = ms_since(started)
        if content.output_transcription and content.output_transcription.text:
            turn["transcript"] += content.output_transcription.text
        if content.input_transcription and content.input_transcription.text:
            turn["inputTranscription"] += content.input_transcription.text
        if content.turn_complete:
            break
    return turn


def turn_step(name: str, turn: dict[str, Any], modality: str, started: float) -> Step:
    rate = turn["rate"] or 24_000
    seconds = round(turn["bytes"] / 2 / rate, 3)
    text = (turn["text"] or turn["transcript"]).strip()
    details: dict[str, Any] = {
        "modality": modality,
        "timeToFirstByteMs": turn["ttfb"],
        "text": text[:500],
        "inputTranscription": turn["inputTranscription"].strip()[:500],
    }
    if modality == "AUDIO":
        details |= {"audioBytes": turn["bytes"], "sampleRate": turn["rate"], "audioSeconds": seconds}
        summary = (
            f"{turn['bytes']} bytes of audio ({seconds:.2f} s at {turn['rate'] or '?'} Hz), first byte after "
            f"{turn['ttfb'] or 0:.0f} ms; transcript {text[:60]!r}"
        )
        ok = turn["bytes"] > 0
    else:
        summary = f"reply {text[:80]!r}, first text after {turn['ttfb'] or 0:.0f} ms"
        ok = bool(text)
    step = Step(name, "ok" if ok else "failed", summary, details=details, elapsed_ms=ms_since(started))
    if not ok:
        step.cause = str(Cause.UNKNOWN)
        step.explanation = "Gemini completed the turn without any reply content."
        step.fix = "Run the check again with --verbosity 2; try another model with --model."
    return step
