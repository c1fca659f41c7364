"""The live bridge: one browser socket ⇄ one Gemini Live session (spanning as many Gemini connections as it needs).

``LiveBridge`` is what the consumer talks to: it parses and answers browser messages and owns at most one
``LiveRun`` (a live session) at a time. A ``LiveRun`` holds the Gemini connection and three kinds of task:

- the lifecycle task: connect (retrying with exponential backoff where that can help), load context, then relay
  until something ends the session; on ``goAway`` it resumes with the latest handle before the deadline, on a
  ``configure_vad`` it resumes with the new settings, on a dropped connection it resumes and tells the browser;
- the sender: drains the bounded inbound queue into Gemini, waiting while a reconnection is under way (the queue
  is the bounded buffer) and replaying what Gemini had not consumed when its connection ended;
- helpers: tool calls, persisting resumption handles, and the recorder's writer.

Audio never crosses the channel layer; the only awaits on the audio path are the socket sends.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any, Literal, NamedTuple, ParamSpec, Protocol, TypeVar, cast

from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone
from google.genai import types

from conversations.audio import AudioError as ConversationsAudioError
from conversations.audio import wav_pcm16, wav_read
from conversations.models import Conversation, LiveSession, Message, User
from gemini.catalogue import LiveModel, live_model
from gemini.client import live_client
from gemini.errors import UpstreamFailure, classify, is_upstream_error
from gemini.wire import GeminiWire, ModelAudio
from live import db as live_db
from live import memory, metrics, services, tools
from live.config import SessionPlan, plan_session, validate_model_name, validate_vad
from live.context import load_history
from live.protocol import (
    CLOSE_TOO_FAST,
    INPUT_AUDIO_MIME,
    INPUT_SAMPLE_RATE,
    OUTPUT_SAMPLE_RATE,
    PROTOCOL_VERSION,
    SUPPORTED_VIDEO_MIMES,
    AudioError,
    ClientMessage,
    ErrorCode,
    ProtocolError,
    SessionConfig,
    VadConfig,
    decode_base64,
    error_for,
    now_iso,
    parse_client_message,
    session_error,
)
from live.recorder import Recorder

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
StopReason = Literal["client", "admin", "disconnect", "backpressure", "error", "upstream"]


class Outlet(Protocol):
    """What the bridge needs from the socket it serves (the consumer implements it)."""

    channel_name: str

    async def send_json(self, message: Mapping[str, Any]) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close_socket(self, code: int) -> None: ...

    async def group_add(self, group: str) -> None: ...

    async def group_discard(self, group: str) -> None: ...


def _live_model(name: str) -> LiveModel:
    # A model missing from the catalogue is tried with the newest models' behaviour; Gemini says if it is unknown.
    return live_model(name) or LiveModel(name, name, True, True, True)


def _seconds(duration: str | None, default: float) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", duration or "")
    return float(match.group(1)) if match else default


_HANDLED_CONTENT_FIELDS = frozenset(
    {"model_turn", "input_transcription", "output_transcription", "interrupted", "generation_complete", "turn_complete"}
)
CONTROL_HEADROOM = 64  # inbound queue places kept for non-audio items
MAX_TOOL_CALLS = 8  # running at once per session
TRAILING_SILENCE_MS = 1200  # after a 3.8 audioStreamEnd: more than Gemini's default end-of-speech silence
SILENCE_100_MS = bytes(INPUT_SAMPLE_RATE // 10 * 2)
UNCONSUMED_ITEMS = 250  # sent but not yet covered by a resumption handle: replayed after a reconnect (~10 s)


class _Fatal(Exception):
    def __init__(self, failure: UpstreamFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class _Item(NamedTuple):
    """One thing to send to Gemini, in order.

    A tuple, not a dataclass: up to ``UNCONSUMED_ITEMS`` of them per session outlive a few collections, and a tuple
    of bytes and strings is untracked by the garbage collector, so they do not pile up in its oldest generation
    (whose full passes stalled every socket for tens of ms).
    """

    kind: Literal[
        "audio",
        "text",
        "video",
        "activity_start",
        "activity_end",
        "audio_stream_end",
        "tool_response",
        "history",  # turns Gemini answered but its resumption handle did not yet cover, restored after a reconnect
        "wake",  # no-op: wakes an idle sender when there is something to send again
    ]
    data: Any = None
    mime: str = ""
    turn_complete: bool = True


class _Exchange:
    """The text of one user turn and the model's answer, for restoring it as history after a reconnect."""

    __slots__ = ("heard", "model", "transcribed")

    def __init__(self) -> None:
        self.heard: list[str] = []  # typed text and the transcription of what was said
        self.model: list[str] = []  # what the model said (transcription) or wrote
        self.transcribed = False  # Gemini has transcribed speech of this turn

    def contents(self) -> list[types.Content]:
        turns = []
        for role, pieces in (("user", self.heard), ("model", self.model)):
            text = "".join(pieces).strip()
            if text:
                turns.append(types.Content(role=role, parts=[types.Part(text=text)]))
        return turns


class AudioRateGuard:
    """Notice a client sending audio far faster than real time (a flood, not a person talking).

    A token bucket of audio seconds: it refills at ``factor`` seconds of audio per second of wall time and holds at
    most ``burst_seconds``, so however long someone has talked, at most that much arrives at once. Hand-written
    because each frame needs an immediate yes or no (async limiters such as aiolimiter make the caller wait).
    """

    def __init__(self, *, factor: float, burst_seconds: float, close_after_seconds: float) -> None:
        self.factor = factor
        self.burst = burst_seconds
        self.close_after = close_after_seconds
        self._credit = burst_seconds
        self._last: float | None = None
        self.accepted = 0.0
        self.dropped = 0.0

    def check(self, seconds: float, now: float) -> Literal["ok", "drop", "close"]:
        """Admit ``seconds`` of audio arriving at ``now``, or say to drop it (or to close: it keeps flooding)."""
        if self._last is not None:
            self._credit = min(self.burst, self._credit + max(0.0, now - self._last) * self.factor)
        self._last = now
        if seconds <= self._credit:
            self._credit -= seconds
            self.accepted += seconds
            return "ok"
        self.dropped += seconds
        return "close" if self.dropped > self.close_after else "drop"


class LiveBridge:
    """Serve one browser socket: parse, validate and answer its messages; run its live session."""

    def __init__(self, *, user: User, outlet: Outlet) -> None:
        self.user = user
        self.outlet = outlet
        self.run: LiveRun | None = None
        self._throttled: dict[str, float] = {}
        self._closing = False

    # -- entry points used by the consumer -------------------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        """Handle one JSON text frame; every failure is answered on the socket, never raised."""
        try:
            if _utf8_length(text) > settings.LIVE_MAX_FRAME_BYTES:
                raise ProtocolError(
                    ErrorCode.FRAME_TOO_LARGE,
                    f"Messages are limited to {settings.LIVE_MAX_FRAME_BYTES} bytes; send audio in smaller chunks.",
                )
            message = parse_client_message(text)
            metrics.message("in", message["type"])
            await self._dispatch(message)
        except ProtocolError as exc:
            await self.send(error_for(self._session_id(), exc))
        except Exception:
            logger.exception("live: handling a client message failed")
            await self.send(
                session_error(self._session_id(), ErrorCode.INTERNAL_ERROR, "The server failed; the error is logged.")
            )

    async def handle_bytes(self, data: bytes) -> None:
        """Handle one binary frame: PCM16LE 16 kHz mono audio from the microphone."""
        try:
            if len(data) > settings.LIVE_MAX_FRAME_BYTES:
                raise ProtocolError(
                    ErrorCode.FRAME_TOO_LARGE,
                    f"Frames are limited to {settings.LIVE_MAX_FRAME_BYTES} bytes; send 20-100 ms of audio each.",
                )
            run = self.run
            if run is None:
                await self._throttled_error(
                    "no-session",
                    ProtocolError(
                        ErrorCode.NO_ACTIVE_SESSION,
                        "No live session is open on this connection; send create_session before audio.",
                    ),
                )
                return
            if len(data) % 2:
                raise AudioError(
                    ErrorCode.AUDIO_DECODE_FAILED, "Binary frames must be PCM16LE: an even number of bytes."
                )
            metrics.message("in", "audio")
            await self._audio_in(run, data)
        except ProtocolError as exc:
            await self.send(error_for(self._session_id(), exc))
        except Exception:
            logger.exception("live: handling a binary frame failed")
            await self.send(
                session_error(self._session_id(), ErrorCode.INTERNAL_ERROR, "The server failed; the error is logged.")
            )

    async def shutdown(self) -> None:
        """The socket is gone: stop the session (resumable), flush what was recorded, stop every task."""
        self._closing = True
        run = self.run
        if run is not None:
            await run.stop("disconnect")

    async def end_from_control(self, session_id: str) -> None:
        """End the live session because staff asked (a channel-layer message to its group)."""
        run = self.run
        if run is not None and run.public_id == session_id:
            await run.stop("admin")

    def db(self, func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
        """``func`` (a service) as an awaitable run in this user's database lane (``live.db``)."""
        return live_db.for_user(self.user.pk, func)

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send a JSON message to the browser unless the socket is gone."""
        if not self._closing:
            await self.outlet.send_json(message)

    async def send_audio(self, pcm: bytes) -> None:
        """Send model audio to the browser as a binary frame."""
        if not self._closing:
            await self.outlet.send_bytes(pcm)

    # -- dispatch --------------------------------------------------------------------------------------------------

    def _session_id(self) -> str | None:
        return self.run.public_id if self.run is not None else None

    async def _throttled_error(self, key: str, error: ProtocolError, every: float = 1.0) -> None:
        """Answer repeated errors of one kind (e.g. per audio frame) at most once per ``every`` seconds."""
        now = time.monotonic()
        if now - self._throttled.get(key, -1e9) >= every:
            self._throttled[key] = now
            await self.send(error_for(self._session_id(), error))

    def _require_run(self, session_id: str | None) -> LiveRun:
        run = self.run
        if run is None:
            raise ProtocolError(
                ErrorCode.NO_ACTIVE_SESSION, "No live session is open on this connection; send create_session first."
            )
        if session_id is not None and session_id != run.public_id:
            raise ProtocolError(
                ErrorCode.SESSION_NOT_FOUND, f"Session {session_id[:60]!r} is not open on this connection."
            )
        return run

    async def _dispatch(self, message: ClientMessage) -> None:
        kind = message["type"]
        if kind == "ping":
            await self.send({"type": "pong", "protocolVersion": PROTOCOL_VERSION, "timestamp": now_iso()})
        elif kind == "create_session":
            await self._create(message.get("data") or {})  # type: ignore[arg-type]
        elif kind == "resume_session":
            await self._resume(message["data"])  # type: ignore[typeddict-item]
        else:
            session_id = message.get("sessionId")
            run = self._require_run(session_id if isinstance(session_id, str) else None)
            if kind == "end_session":
                await run.stop("client")
            elif kind == "send_message":
                await self._send_message(run, message["data"])  # type: ignore[typeddict-item]
            elif kind == "activity_start":
                run.activity(start=True)
            elif kind == "activity_end":
                run.activity(start=False)
            elif kind == "configure_vad":
                run.configure_vad(validate_vad(cast(VadConfig, message["data"])))  # type: ignore[typeddict-item]

    async def _create(self, data: Mapping[str, Any]) -> None:
        if self.run is not None:
            raise ProtocolError(
                ErrorCode.SESSION_ALREADY_ACTIVE,
                f"Session {self.run.public_id} is already open on this connection; end it first.",
            )
        started = time.monotonic()
        # Everything is checked before anything is stored: a refused create_session leaves nothing behind.
        model = _live_model(validate_model_name(data.get("model") or settings.GEMINI_LIVE_MODEL))
        config = cast(SessionConfig, data.get("config") or {})
        plan = plan_session(model=model, config=config, available_tools=tools.tool_declarations())
        load_context = bool(data.get("loadConversationContext", False))
        row = await self.db(services.live_session_create)(
            user=self.user,
            conversation_id=data.get("conversationId"),
            model=model.name,
            config={"request": dict(config), "loadConversationContext": load_context},
            channel_name=self.outlet.channel_name,
        )
        assert row.conversation is not None
        # From here the session's own ending (failed, ended or detached before it opened: see
        # services.live_session_update) takes back a conversation it created and never used.
        self.run = LiveRun(
            bridge=self,
            row=row,
            conversation=row.conversation,
            plan=plan,
            load_context=load_context,
            handle=None,
            resumed=False,
            started=started,
        )
        self.run.start()

    async def _resume(self, data: Mapping[str, Any]) -> None:
        if self.run is not None:
            raise ProtocolError(
                ErrorCode.SESSION_ALREADY_ACTIVE,
                f"Session {self.run.public_id} is already open on this connection; end it first.",
            )
        started = time.monotonic()
        row = await self.db(services.live_session_claim)(
            user=self.user, session_id=data["sessionId"], channel_name=self.outlet.channel_name
        )
        stored = row.config or {}
        request: dict[str, Any] = dict(stored.get("request") or {})
        if "binaryAudio" in data:
            request["binaryAudio"] = data["binaryAudio"]
        try:
            plan = plan_session(model=_live_model(row.model), config=request, available_tools=tools.tool_declarations())  # type: ignore[arg-type]
        except ProtocolError:
            await self.db(services.live_session_update)(session_id=row.pk, status="ended")
            raise
        handle = row.resumption_handle or None
        issued = row.resumption_handle_issued_at
        if handle and issued and timezone.now() - issued > timedelta(seconds=settings.LIVE_RESUMPTION_TTL_SECONDS):
            handle = None  # expired: start afresh and reload the conversation instead
        assert row.conversation is not None
        self.run = LiveRun(
            bridge=self,
            row=row,
            conversation=row.conversation,
            plan=plan,
            load_context=handle is None,
            handle=handle,
            resumed=True,
            started=started,
        )
        self.run.start()

    async def _send_message(self, run: LiveRun, data: Mapping[str, Any]) -> None:
        handled = False
        if "audioChunk" in data:
            mime = (data.get("mimeType") or INPUT_AUDIO_MIME).replace(" ", "").lower()
            pcm = _decode_audio(data["audioChunk"], mime)
            await self._audio_in(run, pcm)
            # Streaming audio leaves turnComplete out (or false); true ends the user's turn.
            if data.get("turnComplete") is True and "text" not in data:
                run.enqueue(_Item("audio_stream_end") if run.plan.vad_enabled else _Item("activity_end"))
            handled = True
        for key in ("screenData", "videoFrame"):
            if key in data:
                image = decode_base64(data[key], what=key)
                mime = data.get("imageMimeType") or _sniff_image(image)
                if mime not in SUPPORTED_VIDEO_MIMES:
                    raise ProtocolError(
                        ErrorCode.INVALID_MESSAGE,
                        f"{key} must be a JPEG, PNG or WebP image ({', '.join(SUPPORTED_VIDEO_MIMES)}).",
                    )
                run.enqueue(_Item("video", image, mime))
                handled = True
        if "text" in data:
            text = data["text"].strip()
            if not text:
                raise ProtocolError(ErrorCode.INVALID_MESSAGE, "send_message text is empty.")
            run.enqueue(_Item("text", text, turn_complete=bool(data.get("turnComplete", True))))
            await run.recorder.typed_text(text)
            handled = True
        if not handled:
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE, "send_message needs text, audioChunk, screenData or videoFrame."
            )

    async def _audio_in(self, run: LiveRun, pcm: bytes) -> None:
        verdict = run.rate_guard.check(len(pcm) / 2 / INPUT_SAMPLE_RATE, time.monotonic())
        if verdict == "ok":
            run.user_audio(pcm)
            return
        if verdict == "drop":
            await self._throttled_error(
                "rate",
                ProtocolError(
                    ErrorCode.BACKPRESSURE,
                    "Audio is arriving far faster than real time; frames are being dropped. "
                    "Send microphone audio as it is captured.",
                ),
                every=2.0,
            )
            return
        await self.send(
            session_error(
                run.public_id,
                ErrorCode.BACKPRESSURE,
                "Audio kept arriving far faster than real time; the session is closed.",
            )
        )
        await run.stop("backpressure")
        self._closing = True
        await self.outlet.close_socket(CLOSE_TOO_FAST)


def _utf8_length(text: str) -> int:
    """The size of a text frame as it came over the wire (UTF-8), without encoding it when it is ASCII."""
    if text.isascii():
        return len(text)
    # surrogatepass: a test client may hand the app any str; a real socket's text is valid UTF-8.
    return len(text.encode("utf-8", "surrogatepass"))


def _decode_audio(value: str, mime: str) -> bytes:
    """Decode a base64 audioChunk to PCM16LE 16 kHz mono, or raise an AudioError saying what is supported."""
    data = decode_base64(value, what="audioChunk", audio=True)
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return _wav_pcm(data)
    if data[:4] in (b"OggS", b"fLaC", b"\x1aE\xdf\xa3") or data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3"):
        raise AudioError(
            ErrorCode.UNSUPPORTED_AUDIO_FORMAT, "Compressed audio (Ogg, FLAC, WebM, MP3) is not accepted; send PCM16."
        )
    if not mime.startswith("audio/pcm") or ("rate=" in mime and "rate=16000" not in mime):
        raise AudioError(ErrorCode.UNSUPPORTED_AUDIO_FORMAT, f"Audio of type {mime[:60]!r} is not accepted.")
    if len(data) % 2:
        raise AudioError(ErrorCode.AUDIO_DECODE_FAILED, "audioChunk is not PCM16LE (an odd number of bytes).")
    return data


def _wav_pcm(data: bytes) -> bytes:
    try:
        info = wav_read(data)
        pcm, rate = wav_pcm16(data)
    # The stdlib's wave raises more than wave.Error on a damaged file (RuntimeError for a chunk that claims more
    # bytes than there are, ...); parsing bytes in memory has no other failure than the file being damaged.
    except (ConversationsAudioError, RuntimeError, ValueError, OverflowError, OSError):
        raise AudioError(ErrorCode.AUDIO_DECODE_FAILED, "audioChunk is a damaged WAV file.") from None
    if info.channels != 1 or rate != INPUT_SAMPLE_RATE:
        raise AudioError(
            ErrorCode.UNSUPPORTED_AUDIO_FORMAT,
            f"WAV audio must be mono 16-bit 16 kHz (got {info.channels} channel(s), {rate} Hz).",
        )
    return pcm


def _sniff_image(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


class LiveRun:
    """One live session on one socket: the Gemini connection(s), the relay tasks and the recorder."""

    def __init__(
        self,
        *,
        bridge: LiveBridge,
        row: LiveSession,
        conversation: Conversation,
        plan: SessionPlan,
        load_context: bool,
        handle: str | None,
        resumed: bool,
        started: float,
    ) -> None:
        self.bridge = bridge
        self.user = bridge.user
        self.pk = row.pk
        self.public_id = row.public_id
        self.conversation = conversation
        self.plan = plan
        self.load_context = load_context
        self.resumed = resumed
        self._handle = handle
        self._started = started
        # Audio may fill the queue up to its bound; text, push-to-talk and tool results have room of their own on
        # top, so a flood of audio never costs a typed message or a turn boundary.
        self._audio_bound = settings.LIVE_INBOUND_QUEUE_ITEMS
        self.inbound: asyncio.Queue[_Item] = asyncio.Queue(maxsize=self._audio_bound + CONTROL_HEADROOM)
        self.rate_guard = AudioRateGuard(
            factor=settings.LIVE_AUDIO_RATE_FACTOR,
            burst_seconds=settings.LIVE_AUDIO_BURST_SECONDS,
            close_after_seconds=settings.LIVE_AUDIO_FLOOD_CLOSE_SECONDS,
        )
        self.recorder = Recorder(
            conversation=conversation,
            live_config={
                "model": plan.model.name,
                "sessionId": row.public_id,
                "responseModalities": list(plan.browser_modalities),
            },
            on_saved=self._announce_saved,
            pad_ms=settings.LIVE_RECORD_PAD_MS,
            silence_rms=settings.LIVE_SILENCE_RMS,
        )
        self._client: Any = None
        self._session: Any = None  # google.genai.live.AsyncSession
        self._wire: GeminiWire | None = None  # the same connection, for the per-chunk messages
        self._stack: AsyncExitStack | None = None
        self._ready = asyncio.Event()  # set while a Gemini connection is open for sending
        self._switch = asyncio.Event()
        self._switch_on_handle = False  # move to a new connection when the next resumption handle arrives
        self._main: asyncio.Task[None] | None = None
        self._finishing: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._helpers: set[asyncio.Task[Any]] = set()
        self._tool_tasks: dict[str, asyncio.Task[None]] = {}
        self._resend: collections.deque[_Item] = collections.deque()
        self._unconsumed: collections.deque[tuple[int, _Item]] = collections.deque(maxlen=UNCONSUMED_ITEMS)
        self._client_index = 0
        # Exactly once across reconnects: what Gemini answered since its latest resumption handle (which a resume
        # would forget, and replaying the input would have answered twice) is restored as history instead.
        self._answered: list[types.Content] = []
        self._exchange = _Exchange()  # the turn under way: what the user said or typed, what the model answered
        self._reply_from_index: int | None = None  # the last input sent before the model began its reply
        self._failures_in_a_row = 0  # Gemini failures since a turn last completed
        self._pending_handle: str | None = None
        self._handle_saver: asyncio.Task[None] | None = None
        self._model_busy = False
        self._switch_pending = False  # move to a new connection when the model's turn completes
        self._vad_ack_pending = False
        self._connection_vad_enabled = plan.vad_enabled  # what the open Gemini connection was set up with
        self._switch_timers: list[asyncio.Task[None]] = []
        self._stop_reason: StopReason | None = None
        self._active_counted = False
        self._awaiting_reply_since: float | None = None  # when the user last said or typed something unanswered
        self._counters = {"messages_in": 0, "messages_out": 0, "audio_seconds_in": 0.0, "audio_seconds_out": 0.0}
        self._reconnects = 0
        self._drops_warned = 0.0

    # -- control ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the lifecycle task."""
        self.recorder.start()
        self._main = asyncio.create_task(self._lifecycle(), name=f"live-run-{self.public_id}")

    async def stop(self, reason: StopReason) -> None:
        """End the session (idempotent) and wait until everything is flushed."""
        if self._stop_reason is None:
            self._stop_reason = reason
        main = self._main
        if main is None or asyncio.current_task() is main:
            return
        # asyncio.wait_for on Python 3.11 can swallow a cancellation that lands as its inner task completes: cancel
        # until the lifecycle task has actually ended, or stop() (and the socket) would wait forever.
        while not main.done():
            main.cancel()
            await asyncio.wait({main}, timeout=1.0)
        if self._finishing is not None:
            await self._finishing

    def enqueue(self, item: _Item) -> None:
        """Queue something for Gemini; when full, audio is dropped and the browser told (BACKPRESSURE)."""
        media = item.kind in ("audio", "video")
        full = self.inbound.qsize() >= self._audio_bound if media else self.inbound.full()
        if not full:
            self.inbound.put_nowait(item)
            self._counters["messages_in"] += 1
            return
        if not media:
            raise ProtocolError(
                ErrorCode.BACKPRESSURE,
                "Gemini is not keeping up (or is reconnecting); this message was not delivered. Try again shortly.",
            )
        now = time.monotonic()
        if now - self._drops_warned > 2.0:
            self._drops_warned = now
            self._spawn(
                self.bridge.send(
                    session_error(
                        self.public_id,
                        ErrorCode.BACKPRESSURE,
                        "Gemini is not keeping up (or is reconnecting); audio and video are being dropped. Slow down.",
                    )
                )
            )

    def user_audio(self, pcm: bytes) -> None:
        """Record and forward one frame of microphone audio."""
        seconds = len(pcm) / 2 / INPUT_SAMPLE_RATE
        self._counters["audio_seconds_in"] += seconds
        metrics.audio_seconds("in", seconds)
        if self.recorder.user_audio(pcm):
            self._awaiting_reply_since = time.monotonic()  # the reply is timed from the end of speech
        self.enqueue(_Item("audio", pcm))

    def activity(self, *, start: bool) -> None:
        """Push-to-talk: the user pressed (start) or released the talk button."""
        if self.plan.vad_enabled:
            raise ProtocolError(
                ErrorCode.INVALID_STATE,
                "Push-to-talk needs voice activity detection off: send configure_vad {enabled: false} first.",
            )
        if not start:
            self._awaiting_reply_since = time.monotonic()
            self._spawn(self.recorder.user_activity_end())
        self.enqueue(_Item("activity_start" if start else "activity_end"))

    def configure_vad(self, vad: VadConfig) -> None:
        """Apply new VAD settings by resuming the Gemini session with them.

        Switching between automatic detection and push-to-talk applies at once (after the handle that covers what
        was already sent, up to a second): input that follows (e.g. an activity_start) waits for the new
        connection, since the old one would refuse it. Tuning (sensitivity, silence) waits for the model to finish
        speaking rather than cutting it off.
        """
        mode_change = bool(vad.get("enabled", True)) != self._connection_vad_enabled
        self.plan.vad = vad
        self._vad_ack_pending = True
        if mode_change:
            self._ready.clear()
        if self._model_busy and not mode_change:
            self._switch_pending = True
        elif self._unconsumed or self._answered:
            # Gemini has not yet sent the handle covering what it was last sent (it follows turnComplete): resuming
            # from the older one would need a replay (see _queue_replay). Wait for it, briefly.
            self._switch_after_handle()
        else:
            self._request_switch()

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def _lifecycle(self) -> None:
        failure: UpstreamFailure | None = None
        try:
            await self._open(initial=True)
            self._sender = asyncio.create_task(self._send_loop(), name=f"live-send-{self.public_id}")
            while True:
                reason, exc = await self._pump()
                await self._reconnect(reason, exc)
        except _Fatal as fatal:
            failure = fatal.failure
            if self._stop_reason is None:
                self._stop_reason = "error"
        except asyncio.CancelledError:
            pass  # stop(): the reason is set
        except Exception as exc:  # a bug: end cleanly, keep what was recorded, tell the browser
            logger.exception("live: session %s crashed", self.public_id)
            failure = UpstreamFailure(
                ErrorCode.INTERNAL_ERROR, "The server failed; the error is logged.", False, detail=repr(exc)
            )
            self._stop_reason = self._stop_reason or "error"
        finally:
            # Flushing must finish even if this task is cancelled again meanwhile; stop() awaits it.
            self._finishing = asyncio.ensure_future(self._finish(failure))
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._finishing)

    async def _open(self, *, initial: bool) -> None:
        """Connect to Gemini (resuming with the handle if there is one), retrying where that can help."""
        attempts = settings.LIVE_UPSTREAM_MAX_RETRIES
        delay = settings.LIVE_UPSTREAM_BACKOFF_SECONDS
        with_history = False
        for attempt in range(attempts + 1):
            handle = self._handle
            fresh = handle is None
            # A new session asks for history if the browser did; a resumed or restarted one needs it whenever
            # it cannot resume Gemini's state (no handle, or the handle was refused).
            with_history = fresh and (self.load_context if initial and not self.resumed else True)
            try:
                await self._connect(handle=handle, with_history=with_history)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = classify(exc)
                await self._close_upstream()
                if not fresh and failure.code in (ErrorCode.INVALID_CONFIG, ErrorCode.UPSTREAM_ERROR):
                    # The handle was refused (expired or unknown): start afresh with the conversation reloaded.
                    logger.info("live: %s resumption refused (%s); starting afresh", self.public_id, failure.detail)
                    self._handle = None
                    continue
                metrics.upstream_error(failure.code)
                if not failure.retryable or attempt == attempts:
                    raise _Fatal(failure) from exc
                await asyncio.sleep(delay * 2**attempt)
        if initial:
            await self._announce_open(context_reloaded=with_history)
        elif with_history:
            # Started afresh: the conversation reloaded from the database already holds the answered turns.
            self._resend = collections.deque(item for item in self._resend if item.kind != "history")
        if with_history:
            try:
                await self._load_context(announce=initial and not self.resumed)
            except Exception as exc:
                raise _Fatal(classify(exc)) from exc

    async def _connect(self, *, handle: str | None, with_history: bool) -> None:
        if self._client is None:
            self._client = live_client()
        config = self.plan.connect_config(
            handle=handle, with_history=with_history, transparent=bool(self._client.vertexai)
        )
        stack = AsyncExitStack()
        self._stack = stack
        self._session = await asyncio.wait_for(
            stack.enter_async_context(self._client.aio.live.connect(model=self.plan.model.name, config=config)),
            timeout=settings.LIVE_CONNECT_TIMEOUT_SECONDS,
        )
        self._wire = GeminiWire(self._session)
        self._connection_vad_enabled = self.plan.vad_enabled
        self._client_index = 0
        self._unconsumed.clear()

    async def _close_upstream(self) -> None:
        self._ready.clear()
        ws = getattr(self._session, "_ws", None)  # the SDK's websockets connection (gemini.wire relies on it too)
        stack, self._stack, self._session, self._wire = self._stack, None, None, None
        if stack is not None:
            try:
                await asyncio.wait_for(stack.aclose(), timeout=5)
            except Exception:  # TimeoutError included
                # The closing handshake did not finish: e.g. Gemini's close frame sits behind frames nobody read
                # (the session stopped mid-reply, or a browser that stopped reading held the relay up), and
                # websockets stopped reading at its queue's high-water mark. Drop the connection, or it and its
                # keepalive task would linger for another ~25 s.
                transport = getattr(ws, "transport", None)
                if transport is not None:
                    transport.abort()

    async def _load_context(self, *, announce: bool) -> None:
        """Send the conversation's recent messages as turns; on a mid-session restart, without asking for a reply."""
        if not announce:
            await self.recorder.drain()  # the history must include what this session already recorded
        history = await self.bridge.db(load_history)(self.conversation)
        batches = history.batches()
        for turns, last in batches:
            await self._session.send_client_content(turns=turns, turn_complete=last and announce)
            self._client_index += 1
        if announce:
            if history.turns:
                await self.bridge.send(
                    {
                        "type": "context_loaded",
                        "sessionId": self.public_id,
                        "conversationId": self.conversation.public_id,
                        "messagesLoaded": history.messages_loaded,
                        "turnsLoaded": len(history.turns),
                        "batches": len(batches),
                        "timestamp": now_iso(),
                    }
                )
            else:
                await self.bridge.send(
                    {
                        "type": "context_load_skipped",
                        "sessionId": self.public_id,
                        "conversationId": self.conversation.public_id,
                        "reason": "The conversation has no messages yet.",
                        "timestamp": now_iso(),
                    }
                )

    async def _announce_open(self, *, context_reloaded: bool) -> None:
        await self.bridge.db(services.live_session_update)(session_id=self.pk, status="active", seen=True)
        await self.bridge.outlet.group_add(services.live_session_group(self.public_id))
        self._spawn(self._heartbeat())
        metrics.session_active(1)
        self._active_counted = True
        self._ready.set()
        if self.resumed:
            await self.bridge.send(
                {
                    "type": "session_resumed",
                    "sessionId": self.public_id,
                    "conversationId": self.conversation.public_id,
                    "model": self.plan.model.name,
                    "contextReloaded": context_reloaded,
                    "config": self.plan.effective(),
                    "timestamp": now_iso(),
                }
            )
            return
        metrics.session_created()
        metrics.observe_time_to_session_created(time.monotonic() - self._started)
        # session_created goes out before context_loaded (seed order).
        await self.bridge.send(
            {
                "type": "session_created",
                "sessionId": self.public_id,
                "model": self.plan.model.name,
                "provider": "google",
                "conversationId": self.conversation.public_id,
                "protocolVersion": PROTOCOL_VERSION,
                "config": self.plan.effective(),
                "notices": list(self.plan.notices),
                "timestamp": now_iso(),
            }
        )

    async def _pump(self) -> tuple[str, BaseException | None]:
        """Relay Gemini's messages until the connection must change; say why."""
        assert self._wire is not None
        receiver = asyncio.create_task(self._receive_loop(self._wire), name=f"live-recv-{self.public_id}")
        switch = asyncio.create_task(self._switch.wait())
        try:
            done, _ = await asyncio.wait({receiver, switch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiver, switch):
                task.cancel()
            await asyncio.gather(receiver, switch, return_exceptions=True)
        if switch in done:
            self._switch.clear()
            return "switch", None
        exc = receiver.exception() if not receiver.cancelled() else None
        return "error", exc

    async def _reconnect(self, reason: str, exc: BaseException | None) -> None:
        """Move the session to a new Gemini connection (resuming with the latest handle)."""
        if exc is not None and not is_upstream_error(exc):
            raise exc  # a bug on this side, not Gemini's doing: end the session as a crash (everything is flushed)
        failure = classify(exc) if exc is not None else None
        if failure is not None:
            metrics.upstream_error(failure.code)
            self._failures_in_a_row += 1
            # Mid-session, "not found" (1008) is the sporadic "Requested entity was not found" (js-genai#1236), not
            # a model that setup just accepted: resume, and let the resumed setup say if it is real. Whatever keeps
            # failing with no turn completed in between (a poisoned replay, say) ends the session.
            retry = failure.retryable or failure.code is ErrorCode.MODEL_NOT_FOUND
            if not retry or self._failures_in_a_row > settings.LIVE_UPSTREAM_MAX_RETRIES:
                raise _Fatal(failure)
            logger.info("live: %s lost Gemini (%s); resuming", self.public_id, failure.detail)
            await self.bridge.send(
                {
                    "type": "session_reconnecting",
                    "sessionId": self.public_id,
                    "reason": str(failure.code),
                    "timestamp": now_iso(),
                }
            )
        self._switch_pending = self._switch_on_handle = False
        for timer in self._switch_timers:
            timer.cancel()
        self._switch_timers.clear()
        if self._model_busy:
            # Whatever the model was saying is cut off by the switch: keep it, flagged, and tell the browser the
            # turn is over (as after a barge-in) so it does not wait for the rest.
            self.recorder.interrupted()
            await self.recorder.turn_complete()
            self._model_busy = False
            await self.bridge.send(
                {
                    "type": "session_message",
                    "sessionId": self.public_id,
                    "data": {"serverContent": {"interrupted": True, "turnComplete": True}},
                    "timestamp": now_iso(),
                }
            )
        await self._close_upstream()
        self._queue_replay()
        had_handle = self._handle is not None
        await self._open(initial=False)
        self._reconnects += 1
        metrics.reconnect()
        self._ready.set()
        if self._vad_ack_pending:
            self._vad_ack_pending = False
            await self.bridge.send(
                {
                    "type": "vad_configured",
                    "sessionId": self.public_id,
                    "vad": dict(self.plan.vad),
                    "timestamp": now_iso(),
                }
            )
        if failure is not None:
            await self.bridge.send(
                {
                    "type": "session_resumed",
                    "sessionId": self.public_id,
                    "conversationId": self.conversation.public_id,
                    "model": self.plan.model.name,
                    "contextReloaded": not had_handle or self._handle is None,
                    "timestamp": now_iso(),
                }
            )

    def _request_switch(self) -> None:
        self._switch.set()

    def _queue_replay(self) -> None:
        """Queue, before any newer input, what the new connection must get for Gemini to be where the old one was.

        A resume restores Gemini as of its latest handle. Since then it answered some turns (``_answered``: restored
        as history, not replayed, or they would be answered twice) and took input it never answered (replayed, in
        order, so it is answered now: a turn whose reply was cut is answered after the resume). Audio it already
        transcribed will be transcribed again; the recorder keeps the first transcription.
        """
        replay = [item for _, item in self._unconsumed]
        if self._answered:
            replay.insert(0, _Item("history", list(self._answered)))
        self._answered = []
        self._unconsumed.clear()
        if self._exchange.transcribed and any(item.kind == "audio" for item in replay):
            self.recorder.expect_repeated_transcription()
        self._exchange = _Exchange()  # refilled as the replay is sent and transcribed again
        self._reply_from_index = None
        self._resend.extendleft(reversed(replay))
        if self._resend and self.inbound.empty():
            self.inbound.put_nowait(_Item("wake"))  # the sender may be idle, waiting for new input

    async def _finish(self, failure: UpstreamFailure | None) -> None:
        """Stop every task, close Gemini, flush the recorder, record the ending, tell the browser."""
        reason: StopReason = self._stop_reason or "upstream"
        tasks = [t for t in (self._sender, self._handle_saver) if t is not None] + self._switch_timers
        tasks += list(self._tool_tasks.values()) + list(self._helpers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_upstream()
        if self._model_busy:
            self.recorder.interrupted()
        try:
            await self.recorder.close()
        except Exception:
            logger.exception("live: flushing the recording of %s failed", self.public_id)
        if self._active_counted:
            metrics.session_active(-1)
        memory.release_soon()
        status = {
            "disconnect": LiveSession.Status.DETACHED,
            "error": LiveSession.Status.FAILED,
        }.get(reason, LiveSession.Status.ENDED)
        try:
            await self.bridge.db(services.live_session_update)(
                session_id=self.pk,
                status=status,
                handle=self._handle if reason == "disconnect" else None,
                error_code=str(failure.code) if failure else ("BACKPRESSURE" if reason == "backpressure" else None),
                error=(failure.detail or failure.message) if failure else None,
                counters=self._counters,
                reconnects=self._reconnects,
            )
        except Exception:
            logger.exception("live: recording the end of %s failed", self.public_id)
        with contextlib.suppress(Exception):
            await self.bridge.outlet.group_discard(services.live_session_group(self.public_id))
        if self.bridge.run is self:
            self.bridge.run = None
        if failure is not None:
            await self.bridge.send(
                session_error(self.public_id, failure.code, failure.message, retry_after_ms=failure.retry_after_ms)
            )
        if reason != "disconnect":
            ended_reason = {"error": "error"}.get(reason, reason)
            await self.bridge.send(
                {"type": "session_ended", "sessionId": self.public_id, "reason": ended_reason, "timestamp": now_iso()}
            )

    # -- Gemini → browser ------------------------------------------------------------------------------------------

    async def _receive_loop(self, wire: GeminiWire) -> None:
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
        self._counters["messages_out"] += 1
        metrics.message("out", "session_message")
        await self.bridge.send(
            {"type": "session_message", "sessionId": self.public_id, "data": data, "timestamp": now_iso()}
        )

    async def _on_server_message(self, msg: types.LiveServerMessage) -> None:
        data: dict[str, Any] = {}
        content = msg.server_content
        if content is not None:
            payload = await self._on_server_content(content)
            if payload:
                data["serverContent"] = payload
        if msg.usage_metadata is not None:
            usage = msg.usage_metadata.model_dump(mode="json", by_alias=True, exclude_none=True)
            self.recorder.usage(usage)
            data["usageMetadata"] = usage
        if content is not None and content.turn_complete:
            await self.recorder.turn_complete()
            self._model_busy = False
            self._turn_answered()
            if self._switch_pending:
                self._switch_pending = False
                self._switch_after_handle()
        if msg.tool_call is not None:
            for call in msg.tool_call.function_calls or []:
                self._start_tool(call)
            data["toolCall"] = msg.tool_call.model_dump(mode="json", by_alias=True, exclude_none=True)
        if msg.tool_call_cancellation is not None:
            for call_id in msg.tool_call_cancellation.ids or []:
                task = self._tool_tasks.get(call_id)
                if task is not None:
                    task.cancel()
            data["toolCallCancellation"] = msg.tool_call_cancellation.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
        if msg.session_resumption_update is not None:
            self._on_resumption_update(msg.session_resumption_update)
        if msg.go_away is not None:
            self._on_go_away(_seconds(msg.go_away.time_left, 10.0))
        if data:
            await self._send_data(data)

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
                self._replying()
                self._exchange.model.append(part.text)
                self.recorder.model_text(part.text)
                if not self.plan.text_via_transcription:
                    parts_out.append({"text": part.text})
        if content.input_transcription is not None and content.input_transcription.text:
            self._exchange.heard.append(content.input_transcription.text)
            self._exchange.transcribed = True
            self.recorder.input_transcription(content.input_transcription.text)
        if content.output_transcription is not None:
            self._output_transcription(content.output_transcription.text or "", parts_out)
        if content.interrupted:
            self.recorder.interrupted()
            self._model_busy = False
        if parts_out:
            payload["modelTurn"] = {"role": "model", "parts": parts_out}
        return payload

    def _output_transcription(self, text: str, parts_out: list[dict[str, Any]]) -> None:
        if text:
            self._replying()
            self._exchange.model.append(text)
            self.recorder.output_transcription(text)
            if self.plan.text_via_transcription:
                parts_out.append({"text": text})

    async def _model_audio(self, pcm: bytes, mime: str, parts_out: list[dict[str, Any]]) -> None:
        self._replying()
        seconds = len(pcm) / 2 / OUTPUT_SAMPLE_RATE
        self._counters["audio_seconds_out"] += seconds
        metrics.audio_seconds("out", seconds)
        if self._awaiting_reply_since is not None:
            metrics.observe_time_to_first_audio(time.monotonic() - self._awaiting_reply_since)
            self._awaiting_reply_since = None
        await self.recorder.model_audio(pcm)
        if not self.plan.forwards_audio:
            return
        metrics.message("out", "audio")
        if self.plan.binary_audio:
            await self.bridge.send_audio(pcm)
        else:
            parts_out.append(
                {"inlineData": {"mimeType": mime or "audio/pcm;rate=24000", "data": base64.b64encode(pcm).decode()}}
            )

    def _replying(self) -> None:
        """The model is producing its reply: note the input it is answering (everything sent so far)."""
        if self._reply_from_index is None:
            self._reply_from_index = self._client_index
        self._model_busy = True

    def _turn_answered(self) -> None:
        """A turn is complete: the input sent before its reply began is consumed and answered, so a reconnect before
        the next handle restores the exchange as history instead of replaying it."""
        self._failures_in_a_row = 0
        cut = self._reply_from_index
        self._reply_from_index = None
        if cut is None:
            return
        while self._unconsumed and self._unconsumed[0][0] <= cut:
            self._unconsumed.popleft()
        self._answered.extend(self._exchange.contents())
        self._exchange = _Exchange()

    def _on_resumption_update(self, update: types.LiveServerSessionResumptionUpdate) -> None:
        index = update.last_consumed_client_message_index
        if index is not None:
            while self._unconsumed and self._unconsumed[0][0] <= index:
                self._unconsumed.popleft()
        elif update.resumable and update.new_handle:
            self._unconsumed.clear()  # no index reported: the handle covers everything sent so far
        if update.resumable and update.new_handle:
            self._answered = []  # a handle issued after a turn completed covers that turn
            self._handle = update.new_handle
            self._save_handle(update.new_handle)
            if self._switch_on_handle:
                self._request_switch()

    def _on_go_away(self, time_left: float) -> None:
        """Gemini will close this connection in ``time_left`` seconds: move before then, between turns if we can."""
        margin = min(5.0, time_left / 2)
        self._switch_timers.append(self._spawn(self._switch_at(max(0.0, time_left - margin))))
        if self._model_busy:
            self._switch_pending = True  # switch when the turn completes (and its handle arrives)
        else:
            self._request_switch()

    def _switch_after_handle(self) -> None:
        # The handle that includes the turn just completed follows turnComplete; wait briefly for it. Input that
        # arrives meanwhile waits for the new connection: sent on the old one, it could be consumed (and covered by
        # that handle) but never answered there, and so be lost.
        self._ready.clear()
        self._switch_on_handle = True
        self._switch_timers.append(self._spawn(self._switch_at(1.0)))

    async def _switch_at(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._request_switch()

    async def _heartbeat(self) -> None:
        """Tell the database this process still holds the session (see services._detach_stale_sessions)."""
        update = self.bridge.db(services.live_session_update)
        while True:
            await asyncio.sleep(settings.LIVE_HEARTBEAT_SECONDS)
            try:
                await update(session_id=self.pk, seen=True)
            except Exception:
                logger.exception("live: heartbeat of %s failed", self.public_id)

    def _save_handle(self, handle: str) -> None:
        self._pending_handle = handle
        if self._handle_saver is None or self._handle_saver.done():
            self._handle_saver = asyncio.create_task(self._handle_save_loop())

    async def _handle_save_loop(self) -> None:
        # One writer, latest handle wins: a burst of updates costs one or two writes, never a growing backlog.
        while self._pending_handle is not None:
            handle, self._pending_handle = self._pending_handle, None
            try:
                await self.bridge.db(services.live_session_update)(session_id=self.pk, handle=handle)
            except Exception:
                logger.exception("live: storing the resumption handle of %s failed", self.public_id)

    # -- tools -----------------------------------------------------------------------------------------------------

    def _start_tool(self, call: types.FunctionCall) -> None:
        call_id = call.id or f"call-{len(self._tool_tasks)}"
        if len(self._tool_tasks) >= MAX_TOOL_CALLS:
            refusal = types.FunctionResponse(id=call.id, name=call.name, response={"error": "too many calls at once"})
            self._spawn(self.inbound.put(_Item("tool_response", refusal)))
            return
        self._tool_tasks[call_id] = asyncio.create_task(self._run_tool(call_id, call))

    async def _run_tool(self, call_id: str, call: types.FunctionCall) -> None:
        name = call.name or ""
        args = dict(call.args or {})
        called_at = await self.recorder.tool_call(call_id=call.id, name=name, args=args)
        try:
            try:
                response = await asyncio.wait_for(
                    tools.tool_execute(user=self.user, name=name, args=args),
                    timeout=settings.LIVE_TOOL_TIMEOUT_SECONDS,
                )
            except TimeoutError:
                response = {"error": f"{name} took too long"}
        except asyncio.CancelledError:
            await asyncio.shield(
                self.recorder.tool_result(
                    call_id=call.id, name=name, args=args, response=None, called_at=called_at, cancelled=True
                )
            )
            raise
        finally:
            self._tool_tasks.pop(call_id, None)
        function_response = types.FunctionResponse(id=call.id, name=name, response=response)
        await self.inbound.put(_Item("tool_response", function_response))
        await self.recorder.tool_result(call_id=call.id, name=name, args=args, response=response, called_at=called_at)
        await self.bridge.send(
            {
                "type": "session_message",
                "sessionId": self.public_id,
                "data": {"toolResponse": {"functionResponses": [{"id": call.id, "name": name, "response": response}]}},
                "timestamp": now_iso(),
            }
        )

    # -- browser → Gemini ------------------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        held: _Item | None = None  # taken from the inbound queue, not yet sent
        while True:
            if held is None and not self._resend:
                held = await self.inbound.get()
                if held.kind == "wake":
                    held = None
                    continue
            await self._ready.wait()
            # What the last connection did not consume goes first, in order, before anything newer.
            replayed = bool(self._resend)
            if replayed:
                item = self._resend.popleft()
            else:
                assert held is not None
                item, held = held, None
            wire = self._wire
            assert wire is not None
            try:
                await self._send_item(wire, item)
            except (ValueError, TypeError) as exc:  # the SDK refused it before sending: drop it, say why
                await self.bridge.send(
                    session_error(self.public_id, ErrorCode.INVALID_MESSAGE, f"Gemini cannot take this: {exc}")
                )
                continue
            except Exception:
                # The connection is going away; the lifecycle task resumes it and this item goes again, in its place:
                # after whatever the old connection had not consumed (all of which was sent before it).
                if self._wire is wire:
                    self._ready.clear()
                    self._unconsumed.append((self._client_index + 1_000_000, item))
                elif replayed:
                    self._resend.appendleft(item)
                else:
                    self._resend.append(item)
                continue
            self._client_index += 1
            self._unconsumed.append((self._client_index, item))

    async def _send_item(self, wire: GeminiWire, item: _Item) -> None:
        kind = item.kind
        session = wire.session
        if kind == "audio":
            await wire.send_audio(item.data)
        elif kind == "text":
            self._awaiting_reply_since = time.monotonic()
            self._exchange.heard.append(item.data)
            if self.plan.model.text_via_realtime_input:
                await session.send_realtime_input(text=item.data)
            else:
                await session.send_client_content(
                    turns=types.Content(role="user", parts=[types.Part(text=item.data)]),
                    turn_complete=item.turn_complete,
                )
        elif kind == "video":
            await session.send_realtime_input(video=types.Blob(data=item.data, mime_type=item.mime))
        elif kind in ("activity_start", "activity_end") and self._connection_vad_enabled:
            pass  # push-to-talk from before a switch back to automatic detection: Gemini would refuse it (1007)
        elif kind == "audio_stream_end" and not self._connection_vad_enabled:
            pass  # only with automatic detection; in push-to-talk activity_end ends the turn
        elif kind == "activity_start":
            await session.send_realtime_input(activity_start=types.ActivityStart())
        elif kind == "activity_end":
            await session.send_realtime_input(activity_end=types.ActivityEnd())
        elif kind == "audio_stream_end":
            if not self.plan.model.stream_end_ends_turn:
                # 3.8 ends the turn on trailing silence only: give it the silence a paused microphone would.
                silence_ms = int(self.plan.vad.get("silenceThreshold") or 0) + TRAILING_SILENCE_MS
                for _ in range(0, silence_ms, 100):
                    await wire.send_audio(SILENCE_100_MS)
            await session.send_realtime_input(audio_stream_end=True)
        elif kind == "tool_response":
            await session.send_tool_response(function_responses=[item.data])
        elif kind == "history":
            await session.send_client_content(turns=item.data, turn_complete=False)

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)
        return task

    async def _announce_saved(self, message: Message) -> None:
        """Tell every open socket of this user (any process) that a message was stored."""
        layer = get_channel_layer()
        if layer is not None:
            await layer.group_send(
                services.user_group(self.user.pk), services.message_saved_event(message, session_id=self.public_id)
            )
