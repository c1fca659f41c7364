"""A live session held from a terminal, through the web page's own bridge.

``LiveTest`` drives a ``live.session.LiveClient`` (what ``live.consumers.LiveConsumer`` hands every browser frame
to) with the page's messages: the ``create_session`` of ``live.cli.choices``, ``send_message`` text turns, and
spoken turns as binary PCM16 16 kHz frames paced in real time. ``TerminalOutlet`` stands where the socket would be:
what the client sends is queued and read by one pump task, which turns it into events (``emit``), and it joins the
channel-layer groups the consumer joins, so the session's saved messages are announced (``message_saved``) and
staff can end it from the admin. Recording, storing and the ``LiveSession`` row are the bridge's own.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer

from conversations.audio import INPUT_SAMPLE_RATE, OUTPUT_SAMPLE_RATE, AudioError, pcm16_to_wav, wav_to_pcm16
from conversations.events import SavedMessageData, user_group
from gemini.diagnostics import explain_live_failure
from gemini.errors import UpstreamFailure
from live.cli.choices import LiveTestChoices
from live.selectors import live_session_messages
from live.server_messages import ServerMessage, message_saved
from live.session import LiveClient
from live.session.run import LiveRun
from live.transport import CONTROL_STOP, CONTROL_STOP_TIMEOUT_SECONDS

logger = logging.getLogger(__name__)

FRAME_MS = 40  # what the page's AudioWorklet sends per binary frame
TRAILING_SILENCE_SECONDS = 1.0  # after a spoken file, so Gemini's voice activity detection hears the turn end
INBOX_SIZE = 10_000  # bounded like a socket's buffer: about 400 s of model audio unread before the bridge waits

Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Turn:
    """One turn to send: typed text, or a WAV file spoken."""

    kind: Literal["text", "audio"]
    value: str  # the text, or the file's path
    pcm: bytes = b""  # a spoken turn's audio, PCM16 16 kHz mono (``read_speech``)
    typed: bool = False  # typed at the prompt (already on the screen)


class LiveTestFailed(Exception):
    """The session did not work: why, and (from ``gemini.errors``) the classified Gemini failure, if it was one."""

    def __init__(
        self, message: str, *, code: str = "", failure: UpstreamFailure | None = None, refused: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.failure = failure
        self.refused = refused  # refused before Gemini was asked (settings, input): a usage error


@dataclass
class Outcome:
    """What a session that worked did."""

    session_id: str
    conversation_id: str
    turns: int
    stored: list[dict[str, Any]]
    audio_seconds: float
    saved_audio: str | None = None


class TerminalOutlet:
    """The ``live.session.client.Outlet`` of a terminal: sends are queued for the pump; groups are joined on the
    channel layer (when there is one) and its messages queued too."""

    def __init__(self, layer: BaseChannelLayer | None, channel_name: str) -> None:
        self.layer = layer
        self.channel_name = channel_name
        self.inbox: asyncio.Queue[dict[str, Any] | bytes] = asyncio.Queue(maxsize=INBOX_SIZE)
        self.groups: set[str] = set()

    async def send_json(self, message: ServerMessage) -> None:
        await self.inbox.put(dict(message))

    async def send_bytes(self, data: bytes) -> None:
        await self.inbox.put(data)

    async def close_socket(self, code: int) -> None:
        await self.inbox.put({"type": "socket_closed", "code": code})

    async def group_add(self, group: str) -> None:
        if self.layer is not None:
            self.groups.add(group)
            await self.layer.group_add(group, self.channel_name)

    async def group_discard(self, group: str) -> None:
        if self.layer is not None:
            self.groups.discard(group)
            await self.layer.group_discard(group, self.channel_name)


@dataclass
class _State:
    created: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    ended: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    turns_complete: int = 0
    model_audio: bytearray = field(default_factory=bytearray)
    reply: list[str] = field(default_factory=list)
    turn_audio_bytes: int = 0


class LiveTest:
    """One live session from a terminal: open it, send the turns, show what comes back, end it, report."""

    def __init__(
        self,
        choices: LiveTestChoices,
        *,
        emit: Emit,
        turn_timeout: float,
        save_audio: Path | None = None,
        realtime: bool = True,
    ) -> None:
        self.choices = choices
        self.emit = emit
        self.turn_timeout = turn_timeout
        self.save_audio = save_audio
        self.realtime = realtime
        self.state = _State()
        self._changed = asyncio.Event()
        self._text_modality = "TEXT" in choices.modalities
        self.client: LiveClient | None = None
        self.run_: LiveRun | None = None

    async def run(self, turns: AsyncIterator[Turn]) -> Outcome:
        """Hold the session; return what it did, or raise ``LiveTestFailed``."""
        layer = get_channel_layer()
        channel_name = await layer.new_channel("live_test.") if layer is not None else f"live_test.{uuid.uuid4().hex}"
        outlet = TerminalOutlet(layer, channel_name)
        self.client = client = LiveClient(user=self.choices.user, outlet=outlet)
        pump = asyncio.create_task(self._pump(outlet), name="live-test-pump")
        control = asyncio.create_task(self._control(layer, channel_name), name="live-test-control")
        try:
            await outlet.group_add(user_group(self.choices.user.pk))
            try:
                return await self._session(client, turns)
            except LiveTestFailed:
                # Over for this terminal: ended as the page's end_session ends it, not left resumable (detached).
                if client.run is not None:
                    await client.handle_text(json.dumps({"type": "end_session"}))
                raise
        finally:
            await client.shutdown()  # a session still open (a failure, an interruption) is stopped and flushed
            for group in sorted(outlet.groups):
                try:
                    await outlet.group_discard(group)
                except Exception:  # the session is over; a layer that fails now changes nothing
                    logger.debug("live_test: leaving %s failed", group, exc_info=True)
            await self._stop_control(layer, channel_name, control)
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _session(self, client: LiveClient, turns: AsyncIterator[Turn]) -> Outcome:
        state = self.state
        await client.handle_text(json.dumps(self.choices.create_session()))
        self.run_ = client.run
        await self._until(lambda: state.created is not None or bool(state.errors), "session_created")
        if state.created is None:
            raise self._failure("The session was not created.")
        session_id = state.created["sessionId"]
        if self.choices.load_context:
            await self._until(lambda: state.context is not None or state.ended is not None, "context")
        count = 0
        async for turn in turns:
            if state.ended is not None:
                break
            answered = state.turns_complete + 1
            if turn.kind == "text":
                self.emit({"type": "user_text", "text": turn.value, "typed": turn.typed})
                await client.handle_text(json.dumps({"type": "send_message", "data": {"text": turn.value}}))
            else:
                await self._speak(client, turn)
            await self._until(functools.partial(_answered, state, answered), "answer")
            if state.ended is not None:
                break
            count += 1
        if state.ended is None:
            await client.handle_text(json.dumps({"type": "end_session", "sessionId": session_id}))
            await self._until(lambda: state.ended is not None, "session_ended")
        assert state.ended is not None
        if state.ended.get("reason") not in ("client", None):
            raise self._failure(f"The session ended early ({state.ended.get('reason')}).")
        stored = await self._stored(session_id)
        outcome = Outcome(
            session_id=session_id,
            conversation_id=state.created["conversationId"],
            turns=count,
            stored=stored,
            audio_seconds=len(state.model_audio) / 2 / OUTPUT_SAMPLE_RATE,
        )
        if self.save_audio is not None:
            outcome.saved_audio = self._write_audio(self.save_audio)
        return outcome

    # -- sending -------------------------------------------------------------------------------------------------

    async def _speak(self, client: LiveClient, turn: Turn) -> None:
        """Send a WAV file as the page sends the microphone: PCM16 16 kHz mono binary frames, in real time."""
        pcm = turn.pcm
        seconds = len(pcm) / 2 / INPUT_SAMPLE_RATE
        self.emit({"type": "user_audio", "file": turn.value, "seconds": round(seconds, 3)})
        step = INPUT_SAMPLE_RATE * 2 * FRAME_MS // 1000
        pcm += bytes(2 * int(TRAILING_SILENCE_SECONDS * INPUT_SAMPLE_RATE))
        started = time.monotonic()
        for n, offset in enumerate(range(0, len(pcm), step)):
            await client.handle_bytes(pcm[offset : offset + step])
            if self.realtime:
                # Paced by the clock, not by sleeping a frame's length each time: late frames catch up.
                await asyncio.sleep(max(0.0, started + (n + 1) * FRAME_MS / 1000 - time.monotonic()))
        # The microphone stopped (the page's turnComplete on the last chunk: audioStreamEnd to Gemini).
        last = base64.b64encode(bytes(step)).decode()
        await client.handle_text(
            json.dumps({"type": "send_message", "data": {"audioChunk": last, "turnComplete": True}})
        )

    # -- receiving -----------------------------------------------------------------------------------------------

    async def _pump(self, outlet: TerminalOutlet) -> None:
        while True:
            item = await outlet.inbox.get()
            try:
                self._receive(item)
            except Exception:  # a message this runner does not understand must not stop the session
                logger.exception("live_test: handling %r failed", item if isinstance(item, dict) else "audio")
            self._changed.set()

    def _receive(self, item: dict[str, Any] | bytes) -> None:
        state = self.state
        if isinstance(item, bytes):
            state.model_audio += item
            state.turn_audio_bytes += len(item)
            return
        kind = item.get("type")
        if kind == "session_created":
            state.created = item
            self.emit(_pick(item, "type", "sessionId", "conversationId", "model", "notices", "config"))
        elif kind in ("context_loaded", "context_load_skipped"):
            state.context = item
            self.emit({k: v for k, v in item.items() if k != "timestamp"})
        elif kind == "session_message":
            self._server_content(item.get("data") or {})
        elif kind in ("session_error", "audio_error"):
            state.errors.append(item)
            error = item.get("error") or {}
            self.emit({"type": "error", "code": error.get("code", ""), "message": error.get("message", "")})
        elif kind == "session_ended":
            state.ended = item
            self.emit(_pick(item, "type", "sessionId", "reason"))
        elif kind == "socket_closed":
            state.ended = state.ended or {"type": "session_ended", "reason": f"closed ({item.get('code')})"}
        elif kind == "message_saved":
            message = item.get("message") or {}
            self.emit(
                {
                    "type": "message_saved",
                    "sessionId": item.get("sessionId"),
                    "conversationId": item.get("conversationId"),
                    "id": message.get("id"),
                    "role": message.get("role"),
                    "text": message.get("text"),
                    "hasAudio": message.get("hasAudio"),
                    "audioDuration": message.get("audioDuration"),
                }
            )
        elif kind in ("session_reconnecting", "session_resumed", "turn_silent", "vad_configured"):
            self.emit({k: v for k, v in item.items() if k != "timestamp"})

    def _server_content(self, data: dict[str, Any]) -> None:
        state = self.state
        content = data.get("serverContent") or {}
        heard = (content.get("inputTranscription") or {}).get("text")
        if heard:
            self.emit({"type": "input_transcription", "text": heard})
        pieces = [p["text"] for p in (content.get("modelTurn") or {}).get("parts", []) if p.get("text")]
        if not self._text_modality:  # audio only: the model's words are its transcription
            said = (content.get("outputTranscription") or {}).get("text")
            pieces = [said] if said else []
        for piece in pieces:
            state.reply.append(piece)
            self.emit({"type": "model_text", "text": piece})
        if data.get("toolCall"):
            for call in data["toolCall"].get("functionCalls", []):
                self.emit({"type": "tool_call", "name": call.get("name"), "args": call.get("args")})
        if content.get("interrupted"):
            self.emit({"type": "interrupted"})
        if content.get("turnComplete"):
            self.emit(
                {
                    "type": "turn_complete",
                    "text": "".join(state.reply),
                    "audioSeconds": round(state.turn_audio_bytes / 2 / OUTPUT_SAMPLE_RATE, 3),
                }
            )
            state.reply.clear()
            state.turn_audio_bytes = 0
            state.turns_complete += 1

    async def _control(self, layer: BaseChannelLayer | None, channel_name: str) -> None:
        """Relay the channel layer's messages as the consumer does (``message.saved``, staff's ``live.end``)."""
        if layer is None:
            return
        while True:
            try:
                message = await layer.receive(channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the layer failing does not end the session (as in live.transport)
                logger.warning("live_test: receiving from the channel layer failed (%s)", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            if message.get("type") == CONTROL_STOP:
                return
            if message.get("type") == "message.saved":
                saved = message_saved(
                    session_id=message.get("sessionId"),
                    conversation_id=cast(str, message.get("conversationId")),
                    message=cast(SavedMessageData, message.get("message")),
                )
                self._receive(dict(saved))
                self._changed.set()
            elif message.get("type") == "live.end" and self.client is not None:
                await self.client.end_from_control(str(message.get("session_id", "")))

    async def _stop_control(
        self, layer: BaseChannelLayer | None, channel_name: str, control: asyncio.Task[None]
    ) -> None:
        """End the control loop by a message to its own channel: a channels_redis receive cancelled while it reads
        Redis does not end (see ``live.transport.ChannelsSocket._stop_control``)."""
        if layer is not None and not control.done():
            try:
                await asyncio.wait_for(layer.send(channel_name, {"type": CONTROL_STOP}), CONTROL_STOP_TIMEOUT_SECONDS)
                await asyncio.wait({control}, timeout=CONTROL_STOP_TIMEOUT_SECONDS)
            except Exception as exc:  # the layer is unreachable: there is no receive to finish cleanly
                logger.debug("live_test: stopping the control loop by message failed (%s)", type(exc).__name__)
        control.cancel()
        await asyncio.gather(control, return_exceptions=True)

    async def _until(self, done: Callable[[], bool], what: str) -> None:
        """Wait until ``done()`` (checked after each message), at most ``turn_timeout``."""
        timeout = self.turn_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                raise self._failure(f"No {what} within {timeout:g} s.", code="TIMEOUT")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                continue

    # -- the end -------------------------------------------------------------------------------------------------

    def _failure(self, fallback: str, *, code: str = "") -> LiveTestFailed:
        """The failure that ended (or stopped) the session: the bridge's classified one, else its last error."""
        run = self.run_
        failure = run.failure if run is not None else None
        errors = self.state.errors
        if failure is not None:
            return LiveTestFailed(failure.message, code=str(failure.code), failure=failure)
        if errors:
            error = errors[-1].get("error") or {}
            # Refused by the bridge's own checks (the session never reached Gemini): the settings are wrong.
            refused = self.state.created is None
            return LiveTestFailed(error.get("message", fallback), code=str(error.get("code", code)), refused=refused)
        return LiveTestFailed(fallback, code=code)

    async def _stored(self, session_id: str) -> list[dict[str, Any]]:
        """The messages the session stored, from the database (announcements may still be on their way)."""
        messages = await database_sync_to_async(live_session_messages)(public_id=session_id)
        return [
            {
                "id": m.public_id,
                "role": m.role,
                "text": m.text or m.input_transcription or m.output_transcription,
                "audioDuration": m.audio_duration,
            }
            for m in messages
        ]

    def _write_audio(self, path: Path) -> str:
        pcm = bytes(self.state.model_audio)
        if not pcm:
            raise LiveTestFailed("The model sent no audio, so there is nothing to save.", code="NO_AUDIO")
        try:
            path.write_bytes(pcm16_to_wav(pcm, sample_rate=OUTPUT_SAMPLE_RATE).data)
        except OSError as exc:
            raise LiveTestFailed(f"Could not write {path}: {exc.strerror or exc}.", code="SAVE_AUDIO_FAILED") from exc
        return str(path)


def read_speech(path: str) -> bytes:
    """A WAV file as PCM16 16 kHz mono (any rate, width and channels), or ``LiveTestFailed`` (refused)."""
    try:
        data = Path(path).read_bytes()
        return wav_to_pcm16(data, sample_rate=INPUT_SAMPLE_RATE)
    except (OSError, AudioError) as exc:
        raise LiveTestFailed(f"--audio {path}: {exc}", code="AUDIO_FILE", refused=True) from None


def _answered(state: _State, turns: int) -> bool:
    return state.turns_complete >= turns or state.ended is not None


def _pick(item: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: item[k] for k in keys if k in item}


EXIT_OK = 0
EXIT_FAILED = 1  # the session did not work (Gemini, the bridge, a turn never answered)
EXIT_REFUSED = 2  # refused before a session: the answers, flags or input files (as argparse's usage errors)


async def live_test(
    choices: LiveTestChoices,
    *,
    turns: AsyncIterator[Turn],
    emit: Emit,
    turn_timeout: float,
    save_audio: Path | None = None,
    realtime: bool = True,
) -> int:
    """Run the live test and emit its events, the last a ``result``; return the exit status."""
    emit(choices.as_event())
    test = LiveTest(choices, emit=emit, turn_timeout=turn_timeout, save_audio=save_audio, realtime=realtime)
    try:
        outcome = await test.run(turns)
    except LiveTestFailed as failed:
        status = EXIT_REFUSED if failed.refused else EXIT_FAILED
        result: dict[str, Any] = {
            "type": "result",
            "ok": False,
            "exitStatus": status,
            "code": failed.code,
            "message": failed.message,
        }
        if failed.failure is not None:
            why, fix = await explain_live_failure(failed.failure, model=choices.model, timeout_seconds=turn_timeout)
            result |= {
                "cause": str(failed.failure.cause),
                "explanation": why,
                "fix": fix,
                "geminiSaid": failed.failure.detail[:500],
            }
        emit(result)
        return status
    emit(
        {
            "type": "result",
            "ok": True,
            "exitStatus": EXIT_OK,
            "sessionId": outcome.session_id,
            "conversationId": outcome.conversation_id,
            "turns": outcome.turns,
            "stored": outcome.stored,
            "audioSeconds": round(outcome.audio_seconds, 3),
            "savedAudio": outcome.saved_audio,
        }
    )
    return EXIT_OK
