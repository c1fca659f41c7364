"""One browser socket of ``/live``: parse and answer its messages, and run at most one live session for it.

The consumer (``live.consumers``) hands every frame to a ``LiveClient`` and implements the ``Outlet`` it sends
through. Every failure is answered on the socket, never raised; the socket stays usable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from django.conf import settings
from django.utils import timezone

from conversations.models import User
from gemini.catalogue import LiveModel, live_model
from live import db_lanes, metrics, services, shutdown, tools
from live.lease import lease
from live.models import LiveSession
from live.protocol import (
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_FAST,
    INPUT_AUDIO_MIME,
    SUPPORTED_VIDEO_MIMES,
    AudioError,
    ClientMessage,
    ErrorCode,
    ProtocolError,
    SessionConfig,
    VadConfig,
    decode_base64,
    parse_client_message,
)
from live.server_messages import ServerMessage, error_for, pong, session_error
from live.session.ledger import Item
from live.session.media import decode_audio, pcm_seconds, sniff_image, utf8_length
from live.session.run import LiveRun
from live.session_plan import plan_session, vad_with_defaults, validate_model_name

logger = logging.getLogger(__name__)

CLAIM_POLL_SECONDS = 0.2  # how often a resume asks again while another process still holds the session
# Sent for a silent turn whose words Gemini never transcribed: it still has the audio in its context.
RETRY_WITHOUT_WORDS = "Please answer what I just said."

P = ParamSpec("P")
R = TypeVar("R")


class Outlet(Protocol):
    """What a client needs from the socket it serves (the consumer implements it)."""

    channel_name: str

    async def send_json(self, message: ServerMessage) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close_socket(self, code: int) -> None: ...

    async def group_add(self, group: str) -> None: ...

    async def group_discard(self, group: str) -> None: ...


def _live_model(name: str) -> LiveModel:
    # A model missing from the catalogue is tried with the newest models' behaviour; Gemini says if it is unknown.
    return live_model(name) or LiveModel(name, name, True, True, True)


class LiveClient:
    """Serve one browser socket: parse, validate and answer its messages; run its live session."""

    def __init__(self, *, user: User, outlet: Outlet) -> None:
        self.user = user
        self.outlet = outlet
        self.run: LiveRun | None = None
        self._throttled: dict[str, float] = {}
        self._closing = False
        shutdown.track(self)

    # -- entry points used by the consumer -------------------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        """Handle one JSON text frame; every failure is answered on the socket, never raised."""
        try:
            if utf8_length(text) > settings.LIVE_MAX_FRAME_BYTES:
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
            await self._internal_error("live: handling a client message failed")

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
            await self._internal_error("live: handling a binary frame failed")

    async def shutdown(self) -> None:
        """The socket is gone: stop the session (resumable), flush what was recorded, stop every task."""
        self._closing = True
        run = self.run
        if run is not None:
            await run.stop("disconnect")

    async def drain(self) -> bool:
        """This process is shutting down (or lost the session): hand the session over (``LiveRun.drain``), then close
        with 1012 so the page reconnects through the load balancer and another process resumes. A session already
        ending is waited for. Returns whether the session was handed over."""
        run = self.run
        if run is None:
            return False
        handed_over = await run.drain()
        if not self._closing:
            self._closing = True
            await self.outlet.close_socket(CLOSE_SERVICE_RESTART)
        return handed_over

    async def end_from_control(self, session_id: str) -> None:
        """End the live session because staff asked (a channel-layer message to its group)."""
        run = self.run
        if run is not None and run.public_id == session_id:
            await run.stop("admin")

    # -- used by the session ---------------------------------------------------------------------------------------

    def db(self, func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
        """``func`` (a service) as an awaitable run in this user's database lane (``live.db_lanes``)."""
        return db_lanes.for_user(self.user.pk, func)

    async def send(self, message: ServerMessage) -> None:
        """Send a JSON message to the browser unless the socket is gone."""
        if not self._closing:
            await self.outlet.send_json(message)

    async def send_audio(self, pcm: bytes) -> None:
        """Send model audio to the browser as a binary frame."""
        if not self._closing:
            await self.outlet.send_bytes(pcm)

    def session_over(self, run: LiveRun) -> None:
        """``run`` has ended: the socket may open another session."""
        if self.run is run:
            self.run = None

    # -- dispatch --------------------------------------------------------------------------------------------------

    def _session_id(self) -> str | None:
        return self.run.public_id if self.run is not None else None

    async def _internal_error(self, what: str) -> None:
        logger.exception(what)
        await self.send(
            session_error(self._session_id(), ErrorCode.INTERNAL_ERROR, "The server failed; the error is logged.")
        )

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

    def _refuse_second_session(self) -> None:
        if self.run is not None:
            raise ProtocolError(
                ErrorCode.SESSION_ALREADY_ACTIVE,
                f"Session {self.run.public_id} is already open on this connection; end it first.",
            )

    async def _dispatch(self, message: ClientMessage) -> None:
        kind = message["type"]
        if kind == "ping":
            await self.send(pong())
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
                run.outbound.activity(start=True)
            elif kind == "activity_end":
                run.outbound.activity(start=False)
            elif kind == "retry_turn":
                self._retry_turn(run, message["data"]["turnId"])  # type: ignore[typeddict-item]
            elif kind == "configure_vad":
                run.configure_vad(vad_with_defaults(cast(VadConfig, message["data"])))  # type: ignore[typeddict-item]

    async def _create(self, data: Mapping[str, Any]) -> None:
        self._refuse_second_session()
        if await self._draining():
            return
        started = time.monotonic()
        # Everything is checked before anything is stored: a refused create_session leaves nothing behind.
        model = _live_model(validate_model_name(data.get("model") or settings.GEMINI_LIVE_MODEL))
        config = cast(SessionConfig, data.get("config") or {})
        plan = plan_session(model=model, config=config, available_tools=tools.tool_declarations())
        load_context = bool(data.get("loadConversationContext", False))
        worker = await self.db(lease.hold)()
        row: LiveSession | None = None
        try:
            row = await self.db(services.live_session_create)(
                user=self.user,
                conversation_id=data.get("conversationId"),
                model=model.name,
                config={"request": dict(config), "loadConversationContext": load_context},
                channel_name=self.outlet.channel_name,
                worker=worker,
            )
            # From here the session's own ending (failed, ended or detached before it opened: see
            # services.live_session_finish) takes back a conversation it created and never used.
            self.run = LiveRun(
                client=self, row=row, plan=plan, load_context=load_context, handle=None, claim=None, started=started
            )
        except BaseException:
            await self._not_started(row, LiveSession.Status.FAILED)
            raise
        self.run.start()

    async def _resume(self, data: Mapping[str, Any]) -> None:
        self._refuse_second_session()
        if await self._draining():
            return
        started = time.monotonic()
        worker = await self.db(lease.hold)()
        row: LiveSession | None = None
        try:
            claim = await self._claim(data["sessionId"], worker)
            row = claim.session
            stored = row.config or {}
            request: dict[str, Any] = dict(stored.get("request") or {})
            if "binaryAudio" in data:
                request["binaryAudio"] = data["binaryAudio"]
            try:
                plan = plan_session(
                    model=_live_model(row.model),
                    config=cast(SessionConfig, request),
                    available_tools=tools.tool_declarations(),
                )
            except ProtocolError:
                await self._not_started(row, LiveSession.Status.ENDED)  # its settings are no longer valid
                row = None
                raise
            handle = row.resumption_handle or None
            issued = row.resumption_handle_issued_at
            if handle and issued and timezone.now() - issued > timedelta(seconds=settings.LIVE_RESUMPTION_TTL_SECONDS):
                handle = None  # expired: start afresh and reload the conversation instead
            self.run = LiveRun(
                client=self,
                row=row,
                plan=plan,
                load_context=handle is None,
                handle=handle,
                claim=claim,
                started=started,
            )
        except BaseException:
            await self._not_started(row, LiveSession.Status.DETACHED)  # claimed, never run: resumable again
            raise
        self.run.start()

    async def _draining(self) -> bool:
        """This process is shutting down: a session asked for now is sent elsewhere (close 1012; the page
        reconnects through the load balancer and asks again there)."""
        if not shutdown.draining():
            return False
        self._closing = True
        await self.outlet.close_socket(CLOSE_SERVICE_RESTART)
        return True

    async def _not_started(self, row: LiveSession | None, status: LiveSession.Status) -> None:
        """A session held for this socket never started: let the lease go and leave the row ``status`` (never
        open in a process that no longer runs it)."""
        lease.let_go()
        if row is not None:
            try:
                await self.db(services.live_session_finish)(live_session_pk=row.pk, status=status)
            except Exception:
                logger.exception("live: recording that %s never started failed", row.public_id)

    async def _claim(self, session_id: str, worker: str) -> services.Claim:
        """Claim the session for this socket; while another live process still holds it, wait (a lease's length at
        most) for that process to let it go (a drain, a dropped socket it has not noticed yet) or to be found dead."""
        deadline = time.monotonic() + settings.LIVE_LEASE_SECONDS + CLAIM_POLL_SECONDS
        claim = self.db(services.live_session_claim)
        while True:
            try:
                return await claim(
                    user=self.user, session_id=session_id, channel_name=self.outlet.channel_name, worker=worker
                )
            except ProtocolError as exc:
                if exc.code is not ErrorCode.SESSION_IN_USE or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(CLAIM_POLL_SECONDS)

    async def _send_message(self, run: LiveRun, data: Mapping[str, Any]) -> None:
        handled = False
        if "audioChunk" in data:
            mime = (data.get("mimeType") or INPUT_AUDIO_MIME).replace(" ", "").lower()
            pcm = decode_audio(decode_base64(data["audioChunk"], what="audioChunk", audio=True), mime)
            await self._audio_in(run, pcm)
            # Streaming audio leaves turnComplete out (or false); true ends the user's turn.
            if data.get("turnComplete") is True and "text" not in data:
                run.outbound.enqueue(Item("audio_stream_end") if run.plan.vad_enabled else Item("activity_end"))
            handled = True
        for key in ("screenData", "videoFrame"):
            if key in data:
                image = decode_base64(data[key], what=key)
                mime = data.get("imageMimeType") or sniff_image(image)
                if mime not in SUPPORTED_VIDEO_MIMES:
                    raise ProtocolError(
                        ErrorCode.INVALID_MESSAGE,
                        f"{key} must be a JPEG, PNG or WebP image ({', '.join(SUPPORTED_VIDEO_MIMES)}).",
                    )
                run.outbound.enqueue(Item("video", image, mime))
                handled = True
        if "text" in data:
            text = data["text"].strip()
            if not text:
                raise ProtocolError(ErrorCode.INVALID_MESSAGE, "send_message text is empty.")
            run.outbound.enqueue(Item("text", text, turn_complete=bool(data.get("turnComplete", True))))
            await run.recorder.typed_text(text)
            handled = True
        if not handled:
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE, "send_message needs text, audioChunk, screenData or videoFrame."
            )

    def _retry_turn(self, run: LiveRun, turn_id: str) -> None:
        """Ask Gemini again a turn it answered with nothing: its words go again as a text turn (a fixed request when
        no words were heard), not recorded as a new user message (the turn is already stored)."""
        silent = run.inbound.silent_turn(turn_id)
        run.ledger.forget_unanswered()
        run.outbound.enqueue(Item("text", silent.words or RETRY_WITHOUT_WORDS))
        run.inbound.silent = None  # asked again: a second retry_turn for it is refused
        metrics.silent_turn_retried()

    async def _audio_in(self, run: LiveRun, pcm: bytes) -> None:
        verdict = run.rate_guard.check(pcm_seconds(pcm), time.monotonic())
        if verdict == "ok":
            run.outbound.user_audio(pcm)
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
