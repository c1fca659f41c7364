"""The Live API (BidiGenerateContent) over WebSocket: auth, setup validation, turns, audio, VAD, tools, resumption.

Connection: the upgrade is accepted on the Live paths (else HTTP 404, ``v1`` included: see ``route``); the first
client frame must be ``setup``. Sources for every rule here: ``docs/gemini-fidelity.md``.
Then credentials and setup are checked, and failures close the socket the way the service does:

====================================================================  =====  ======================================
situation                                                              code   reason
====================================================================  =====  ======================================
no API key (Gemini API)                                                1008   Method doesn't allow unregistered …
bad key, or an ``auth_tokens/…`` token on the non-Constrained path     1007   API key not valid. Please pass a …
unknown/expired ephemeral token; no new sessions after newSession…     1007   (see ``gemini_sim.tokens``)
ephemeral token used up                                                1011   Token has been used too many times
Vertex without ``Authorization: Bearer``                               1008   Request is missing required …
unknown model, or not a Live model / not on this API                   1008   models/X is not found for API …
TEXT on a native-audio model, AUDIO on transcribe-live                 1007   The requested combination of …
unknown voice, malformed JSON, first frame not ``setup``, more than    1007   Request contains an invalid argument.
one field per message, empty text part, activityStart/End while
automatic activity detection is on, a clientContent turn without a
role (3.x), tools or typed input on transcribe/translate models
realtimeInput.mediaChunks on 3.x models                                1007   realtime_input.media_chunks is …
unknown/expired resumption handle, or resuming with another model      1007   Request contains an invalid argument.
(or a transcribe-live session past its 10 minutes)
connection lifetime or model session cap reached (after ``goAway``)    1011   Deadline expired before operation …
the session's ephemeral token expires                                  1007   The ephemeral token has expired.
injected faults (``Simulator.add_fault``)                              any    as injected; ``drop`` gives 1006
====================================================================  =====  ======================================

Server messages are camelCase JSON in binary frames: ``setupComplete {sessionId}`` first, then per reply
``[inputTranscription]`` → ``modelTurn`` (24 kHz PCM chunks, each with its ``outputTranscription`` piece, or text
parts for TEXT) → ``generationComplete`` → ``turnComplete`` + ``usageMetadata`` → ``sessionResumptionUpdate``
(when ``sessionResumption`` was set up; also one right after ``setupComplete``). A barge-in sends
``interrupted`` then ``turnComplete`` (and ``toolCallCancellation`` for pending function calls).

Voice activity detection runs on the input PCM energy, in audio time (so tests may send audio as fast as they
like): speech (mean |sample| ≥ ``vad_threshold`` for ``prefixPaddingMs``, default 20 ms, 60 ms with LOW start
sensitivity) then ``silenceDurationMs`` of silence ends the turn; ``audioStreamEnd`` ends it at once (not on 3.8,
where only the silence does). Speech
while the model is answering interrupts it unless ``activityHandling`` is ``NO_INTERRUPTION`` (then the turn waits
for the reply to finish). With ``automaticActivityDetection.disabled``, ``activityStart``/``activityEnd`` bound
the turn and ``activityStart`` interrupts. The input transcription describes what was heard, e.g.
``(1.2 seconds of speech)``.

Tools: when a request names a declared function, the model sends ``toolCall`` (ids ``function-call-…``) and waits
for the ``toolResponse``, then answers with the result. NON_BLOCKING functions (declared so, or by default on 3.8)
don't wait: the model says "Let me check that for you." and ends its turn; the result is answered as its
``scheduling`` says (WHEN_IDLE, the default: after the current reply; INTERRUPT: at once; SILENT: no reply).
3.8 Extended Thinking also reports ``interactionStatus`` IN_PROGRESS/IDLE.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import audio, catalogue, model, wire
from .rest import BAD_KEY, UNREGISTERED

if TYPE_CHECKING:
    from .server import Fault, Simulator, WebSocket

_PATH = re.compile(
    r"^/ws/(?:google\.ai\.generativelanguage\.(v1|v1alpha|v1beta)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)"
    r"|google\.cloud\.aiplatform\.(v1|v1beta1)\.LlmBidiService/BidiGenerateContent)$"
)
GEMINI_LIVE_VERSIONS = ("v1beta", "v1alpha")  # google-genai 3.6.1 tests/live_api/conftest.py: Live only on v1beta
CONSTRAINED_VERSION = "v1alpha"  # ephemeral tokens: the SDK's "ephemeral token support is in v1alpha only"
INVALID = "Request contains an invalid argument."
# google-genai 3.6.1 tests/live_api/test_live_session.py (2026-11); before, "Cannot extract voices from a non-audio
# request." (livekit/livekit#4103, 2025).
UNSUPPORTED_MODALITIES = "The requested combination of response modalities ({}) is not supported by the model"
MEDIA_CHUNKS_DEPRECATED = "realtime_input.media_chunks is deprecated. Use audio, video, or text instead"
DEADLINE = "Deadline expired before operation could complete."
VERTEX_UNAUTHENTICATED = "Request is missing required authentication credential. Expected OAuth 2 access token."
AUDIO_TOKENS_PER_S = 25
VAD_WINDOW_MS = 40
VIDEO_TOKENS_PER_FRAME = 258
ECHO_TAG = b"APSBENCH"  # bench/frames.py: frames whose timestamps echo mode fills in
_CLIENT_KEYS = ("setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate")
_ACTIVITY_HANDLING = (None, "ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION")


@dataclass(frozen=True)
class Route:
    """Which Live endpoint a connection came in on."""

    api: str  # catalogue.GEMINI or catalogue.VERTEX
    version: str
    constrained: bool = False


def route(path: str) -> Route | None:
    """Match a handshake path (query ignored, leading slashes normalised); None means 404.

    The Gemini API serves Live on ``v1beta`` and ``v1alpha`` only (``v1`` is a 404 like any wrong path), and the
    ephemeral-token endpoint ``BidiGenerateContentConstrained`` on ``v1alpha`` only; Vertex on ``v1``/``v1beta1``.
    """
    bare = "/" + path.split("?", 1)[0].lstrip("/")
    m = _PATH.match(bare)
    if m is None:
        return None
    if m.group(1):
        version, constrained = m.group(1), m.group(2).endswith("Constrained")
        if version not in GEMINI_LIVE_VERSIONS or (constrained and version != CONSTRAINED_VERSION):
            return None
        return Route(catalogue.GEMINI, version, constrained)
    return Route(catalogue.VERTEX, m.group(3))


class Close(Exception):
    """End the session with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


@dataclass
class Snapshot:
    """Conversation state behind one resumption handle."""

    history: list[dict[str, Any]]
    model: str
    session_id: str
    expires_at: float | None = None  # set when the issuing session ends
    started_at: float = 0.0  # when the session (its first connection) began


@dataclass
class Turn:
    """A user turn waiting for a reply."""

    parts: list[dict[str, Any]] | None = None  # appended to history when the reply starts (None: already there)
    heard: float | None = None  # seconds of speech, for audio turns


@dataclass
class Vad:
    """Voice-activity state, measured in audio time."""

    in_speech: bool = False
    voiced_ms: float = 0.0
    silence_ms: float = 0.0
    speech_ms: float = 0.0


@dataclass
class Config:
    """The parts of a validated setup the session acts on."""

    model: catalogue.Model
    model_name: str
    modalities: list[str]
    voice: str
    system_instruction: str
    functions: list[dict[str, Any]]
    auto_vad: bool
    interrupts: bool
    start_ms: float
    silence_ms: float
    input_transcription: bool
    output_transcription: bool
    resumption: bool
    transparent: bool
    handle: str | None
    raw: dict[str, Any] = field(default_factory=dict)


def _section(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """A sub-message of the setup: absent is empty, anything but an object is an invalid argument."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Close(1007, INVALID)
    return value


def _millis(value: Any) -> float:
    """An int32 milliseconds field (proto-JSON allows numbers as strings); 0 when absent."""
    if value is None:
        return 0.0
    try:
        ms = float(value)
    except (TypeError, ValueError):
        raise Close(1007, INVALID) from None
    if ms < 0:
        raise Close(1007, INVALID)
    return ms


class LiveSession:
    """One Live connection."""

    def __init__(
        self, sim: Simulator, ws: WebSocket, route: Route, *, query: dict[str, str], headers: dict[str, str]
    ) -> None:
        self.sim = sim
        self.ws = ws
        self.route = route
        self.query = query
        self.headers = headers
        self.id = sim.next_session_id()
        self.started_at = time.time()  # the session's start (a resumed session keeps its first connection's)
        self.history: list[dict[str, Any]] = []
        self.cfg: Config | None = None
        self.vad = Vad()
        self.activity = False  # inside activityStart/activityEnd (manual detection)
        self.queue: collections.deque[Turn] = collections.deque()
        self.gen_task: asyncio.Task[None] | None = None
        self.timer_task: asyncio.Task[None] | None = None
        self.expiry_task: asyncio.Task[None] | None = None
        self.main_task: asyncio.Task[Any] | None = None
        self.close_request: tuple[int, str] | None = None
        self.pending_calls: dict[str, dict[str, Any] | None] = {}
        self.call_names: dict[str, str] = {}
        self.background_calls: dict[str, str] = {}  # NON_BLOCKING calls still running: id -> name
        self.tool_done = asyncio.Event()
        self.spoken: list[str] = []
        self.handles: list[str] = []
        self.messages_in = 0
        self.frames_total = 0
        self.frames_unacknowledged = 0
        self.audio_in_s = 0.0
        self.turn_audio_s = 0.0
        self.replies = 0
        self.stall_until = 0.0
        self.ended = False
        self.received_ns = 0  # when the latest client message arrived (CLOCK_MONOTONIC ns), for echo mode

    # -- plumbing ---------------------------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        """Send one server message (camelCase JSON, binary frame)."""
        self.ws.send(wire.dumps(message))

    def request_close(self, code: int, reason: str) -> None:
        """Close from any task: the reading task does the closing handshake."""
        if self.close_request is None and not self.ended:
            self.close_request = (code, reason)
            if self.main_task is not None:
                self.main_task.cancel()

    def abort(self) -> None:
        """Cut the connection without a close frame."""
        self.ws.abort()
        if self.main_task is not None and not self.ended:
            self.main_task.cancel()

    def trigger(self, fault: Fault) -> None:
        """Apply a fault to this session now."""
        self.sim.recorder.add({"type": "fault", "session": self.id, "kind": fault.kind, "when": fault.when})
        if fault.kind == "close":
            self.request_close(fault.code, fault.reason)
        elif fault.kind == "drop":
            self.abort()
        elif fault.kind == "stall":
            self.stall_until = time.monotonic() + fault.seconds

    async def fault_point(self, when: str) -> None:
        """Fire a queued fault for this point, if any (a stall sleeps right here)."""
        fault = self.sim.take_fault(when)
        if fault is None:
            return
        self.trigger(fault)
        if fault.kind == "stall":
            await self.stalled()
        elif fault.kind in ("close", "drop"):
            await asyncio.sleep(3600)  # this task is cancelled as the session ends

    async def stalled(self) -> None:
        """Sleep out an injected stall."""
        remaining = self.stall_until - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def recv_message(self) -> dict[str, Any] | None:
        """Next client message as a dict (recorded as sent); None when the client is gone."""
        raw = await self.ws.recv()
        if raw is None:
            return None
        self.received_ns = time.monotonic_ns()
        self.messages_in += 1
        try:
            message = json.loads(raw)
        except ValueError:
            self.sim.recorder.add({"type": "frame", "session": self.id, "raw": str(raw)[:2000]})
            raise Close(1007, INVALID) from None
        self.sim.recorder.add({"type": "frame", "session": self.id, "message": message})
        if not isinstance(message, dict):
            raise Close(1007, INVALID)
        return message

    # -- lifecycle --------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until either side ends it."""
        self.main_task = asyncio.current_task()
        self.sim.recorder.add(
            {
                "type": "connect",
                "session": self.id,
                "path": self.ws_path(),
                "query": self.query,
                "headers": self.headers,
            }
        )
        code, reason = 1000, ""
        try:
            await self.serve()
        except Close as exc:
            code, reason = exc.code, exc.reason
        except asyncio.CancelledError:
            if self.close_request is None:  # aborted (drop fault, simulator stopping)
                await asyncio.shield(self.shutdown_tasks())
                self.finish(None, "")
                if self.ws.closed:
                    return
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            code, reason = self.close_request
        except Exception:  # a bug here must look like the service's internal error, not hang the client
            logging.getLogger("gemini_sim").exception("gemini_sim: live session failed")
            code, reason = 1011, "Internal error occurred."
        await self.shutdown_tasks()
        if not self.ws.closed:
            reason = reason.encode()[:123].decode("utf-8", "ignore")
            await self.ws.close(code, reason)
            self.finish(code, reason)
        else:
            self.finish(None, "")

    def ws_path(self) -> str:
        """The route, for records."""
        return f"{self.route.api}:{self.route.version}{':constrained' if self.route.constrained else ''}"

    def finish(self, code: int | None, reason: str) -> None:
        """Bookkeeping once the connection is over: handles start their 2 h (TTL) clock."""
        self.ended = True
        expiry = time.time() + self.sim.options.resumption_ttl
        for handle in self.handles:
            snap = self.sim.handles.get(handle)
            if snap is not None:
                snap.expires_at = expiry
        self.sim.recorder.add({"type": "close", "session": self.id, "code": code, "reason": reason})

    async def shutdown_tasks(self) -> None:
        """Stop the reply and timer tasks."""
        for task in (self.gen_task, self.timer_task, self.expiry_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def serve(self) -> None:
        """Setup, then the message loop."""
        first = await self.recv_message()
        if first is None:
            return
        message = wire.camelize(first)
        if list(message) != ["setup"] or not isinstance(message["setup"], dict):
            raise Close(1007, INVALID)
        setup = message["setup"]
        resumption = setup.get("sessionResumption")
        token = self.authenticate(resuming=isinstance(resumption, dict) and bool(resumption.get("handle")))
        if token is not None:
            setup = token.constrain(setup)
            self.sim.recorder.add({"type": "effective_setup", "session": self.id, "setup": setup})
        try:
            self.cfg = self.configure(setup)
        except wire.InvalidArgument:
            raise Close(1007, INVALID) from None
        await self.fault_point("setup")
        self.send({"setupComplete": {"sessionId": self.id}})
        self.timer_task = asyncio.create_task(self.lifetime())
        if token is not None:
            self.expiry_task = asyncio.create_task(self.token_expiry(token.expire_time))
        if self.cfg.resumption:
            self.issue_handle()
        first_message = True
        while True:
            message = await self.recv_message()
            if message is None:
                return
            if first_message:
                first_message = False
                await self.fault_point("message")
            if self.stall_until:
                await self.stalled()
            try:
                self.dispatch(wire.camelize(message))
            except wire.InvalidArgument:
                raise Close(1007, INVALID) from None

    def authenticate(self, *, resuming: bool) -> Any:
        """Check credentials for this route; return the ephemeral token when there is one."""
        auth = self.headers.get("authorization", "")
        scheme, _, credential = auth.partition(" ")
        key = self.headers.get("x-goog-api-key") or self.query.get("key")
        if self.route.api == catalogue.VERTEX:
            if not ((scheme.lower() == "bearer" and credential.strip()) or key):
                raise Close(1008, VERTEX_UNAUTHENTICATED)
            return None
        if self.route.constrained:
            name = self.query.get("access_token") or (credential.strip() if scheme.lower() == "token" else "") or key
            if not name:
                raise Close(1008, UNREGISTERED)
            token, failure = self.sim.tokens.check_and_use(name, resuming=resuming)
            if failure is not None:
                raise Close(*failure)
            return token
        if not key:
            raise Close(1008, UNREGISTERED)
        allowed = self.sim.options.api_keys
        if key.startswith("auth_tokens/") or (allowed is not None and key not in allowed):
            raise Close(1007, BAD_KEY)
        return None

    def configure(self, setup: dict[str, Any]) -> Config:
        """Validate a (camelCase) setup like the service and restore resumed state."""
        name = setup.get("model")
        if not isinstance(name, str) or not name.strip():
            raise Close(1007, INVALID)
        found = catalogue.find(name, self.route.api)
        if found is None or not found.live:
            shown = name if "/" in name else f"models/{name}"
            raise Close(
                1008, f"{shown} is not found for API version {self.route.version}, or is not supported for "
                "bidiGenerateContent."
            )  # fmt: skip
        gen = _section(setup, "generationConfig")
        modalities = gen.get("responseModalities") or ["TEXT" if found.text_only else "AUDIO"]
        if not isinstance(modalities, list):
            raise Close(1007, INVALID)
        modalities = [str(m).upper() for m in modalities]
        if any(m not in ("AUDIO", "TEXT") for m in modalities):
            raise Close(1007, INVALID)
        if ("TEXT" in modalities and found.audio_only) or ("AUDIO" in modalities and found.text_only):
            raise Close(1007, UNSUPPORTED_MODALITIES.format(", ".join(dict.fromkeys(modalities))))
        if len(set(modalities)) > 1:
            raise Close(1007, INVALID)
        functions = model.declared_functions(setup.get("tools"))
        if setup.get("tools") and not found.tools:
            raise Close(1007, INVALID)
        speech = _section(gen, "speechConfig")
        if speech.get("multiSpeakerVoiceConfig"):
            raise Close(1007, INVALID)
        voice = catalogue.DEFAULT_VOICE
        requested = wire.get_path(speech, "voiceConfig.prebuiltVoiceConfig.voiceName")
        if requested is not None:
            match = [v for v in catalogue.VOICES if v.lower() == str(requested).lower()]
            if not match:
                raise Close(1007, INVALID)
            voice = match[0]
        rtc = _section(setup, "realtimeInputConfig")
        aad = _section(rtc, "automaticActivityDetection")
        handling = rtc.get("activityHandling")
        if handling not in _ACTIVITY_HANDLING:
            raise Close(1007, INVALID)
        low_start = aad.get("startOfSpeechSensitivity") == "START_SENSITIVITY_LOW"
        start_ms = _millis(aad.get("prefixPaddingMs")) or (60 if low_start else 20)
        silence_ms = _millis(aad.get("silenceDurationMs")) or self.sim.options.silence_ms
        resumption = setup.get("sessionResumption")
        if resumption is not None and not isinstance(resumption, dict):
            raise Close(1007, INVALID)
        _section(setup, "historyConfig")
        handle = (resumption or {}).get("handle") or None
        cfg = Config(
            model=found,
            model_name=found.name,
            modalities=modalities,
            voice=voice,
            system_instruction=model.instruction_text(setup.get("systemInstruction")),
            functions=functions,
            auto_vad=not aad.get("disabled", False),
            interrupts=handling != "NO_INTERRUPTION",
            start_ms=float(start_ms),
            silence_ms=float(silence_ms),
            input_transcription="inputAudioTranscription" in setup,
            output_transcription="outputAudioTranscription" in setup,
            resumption=resumption is not None,
            transparent=bool((resumption or {}).get("transparent")),
            handle=handle,
            raw=setup,
        )
        if handle is not None:
            snap = self.sim.handles.get(handle)
            if snap is None or (snap.expires_at is not None and time.time() > snap.expires_at):
                raise Close(1007, INVALID)
            if snap.model != found.name:
                raise Close(1007, INVALID)
            if self.session_cap(found) is not None and time.time() >= snap.started_at + self.session_cap(found):
                raise Close(1007, INVALID)  # transcribe-live: the session's 10 minutes are over, resumption too
            self.history = list(snap.history)  # turns are never mutated once appended
            self.replies = sum(1 for t in self.history if t.get("role") == "model")
            self.started_at = snap.started_at
        return cfg

    def session_cap(self, found: catalogue.Model) -> float | None:
        """Seconds a whole session (resumptions included) may last on this model, if it is capped."""
        if found.max_session_seconds is None:
            return None
        return found.max_session_seconds * self.sim.options.session_cap_factor

    async def token_expiry(self, expire_time: float) -> None:
        """An ephemeral token's session ends when the token expires."""
        await asyncio.sleep(max(0.0, expire_time - time.time()))
        self.request_close(1007, "The ephemeral token has expired.")

    async def lifetime(self) -> None:
        """goAway ``go_away_before`` seconds before the connection lifetime (or the model's session cap) ends, then
        close."""
        opts = self.sim.options
        life = max(0.0, opts.connection_lifetime)
        cap = self.session_cap(self.cfg.model) if self.cfg is not None else None
        if cap is not None:
            life = max(0.0, min(life, self.started_at + cap - time.time()))
        before = min(max(0.0, opts.go_away_before), life)
        await asyncio.sleep(life - before)
        self.send({"goAway": {"timeLeft": wire.duration(before)}})
        await asyncio.sleep(before)
        self.request_close(1011, DEADLINE)

    def issue_handle(self) -> None:
        """Send a sessionResumptionUpdate with a new handle for the current state."""
        handle = secrets.token_urlsafe(32)
        self.sim.handles[handle] = Snapshot(
            list(self.history), self.cfg.model_name if self.cfg else "", self.id, started_at=self.started_at
        )
        self.handles.append(handle)
        update: dict[str, Any] = {"newHandle": handle, "resumable": True}
        if self.cfg is not None and self.cfg.transparent:
            update["lastConsumedClientMessageIndex"] = str(max(0, self.messages_in - 1))
        self.send({"sessionResumptionUpdate": update})
        if len(self.sim.handles) % 256 == 0:
            self.purge_handles()

    def purge_handles(self) -> None:
        """Forget expired handles."""
        now = time.time()
        for key in [k for k, s in self.sim.handles.items() if s.expires_at is not None and s.expires_at < now]:
            self.sim.handles.pop(key, None)

    # -- client messages --------------------------------------------------------------------------------------------
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
            self.tool_response(body)
        else:
            self.context_update(body)

    def client_content(self, body: dict[str, Any]) -> None:
        """Ordered turns: history, and a reply when the turn is complete and the user spoke last."""
        cfg = self.cfg
        assert cfg is not None
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
            self.history.append({"role": turn.get("role", "user"), "parts": parts})
        if body.get("turnComplete") and self.history and self.history[-1]["role"] == "user":
            self.start_turn(Turn(), force_interrupt=True)

    def realtime_input(self, body: dict[str, Any]) -> None:
        """Streaming input: audio (VAD), video (counted), text, activity markers, end of audio stream."""
        cfg = self.cfg
        assert cfg is not None
        if not body:
            raise Close(1007, INVALID)
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
        if "activityStart" in body:
            if cfg.auto_vad:
                raise Close(1007, INVALID)
            self.activity = True
            self.turn_audio_s = 0.0
            if self.generating and cfg.interrupts:
                self.interrupt()
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
            self.start_turn(Turn(parts=[{"text": text}]))

    def echo(self, pcm: bytes) -> None:
        """Echo mode (benchmarks): answer input audio at once with the same bytes as model audio, no VAD or turns.

        A frame tagged as ``bench/frames.py`` describes (``APSBENCH`` first) gets this server's receive and send
        times (CLOCK_MONOTONIC ns) at bytes 24-40, so a load generator can split round trips into one-way latencies.
        """
        if pcm[:8] == ECHO_TAG and len(pcm) >= 40:
            pcm = pcm[:24] + struct.pack("<QQ", self.received_ns, time.monotonic_ns()) + pcm[40:]
        inline = {"mimeType": audio.OUTPUT_MIME, "data": wire.b64encode(pcm)}
        self.send({"serverContent": {"modelTurn": {"parts": [{"inlineData": inline}]}}})

    def hear(self, pcm: bytes, mime: str) -> None:
        """Feed input audio to voice activity detection (or to the manual activity turn)."""
        cfg = self.cfg
        assert cfg is not None
        if not mime.startswith("audio/pcm") and not mime.startswith("audio/l16"):
            return  # other encodings are accepted but not decoded
        if self.sim.options.echo:
            self.echo(pcm)
            return
        rate = audio.input_rate(mime)
        seconds = audio.duration(pcm, rate)
        self.audio_in_s += seconds
        if not cfg.auto_vad:
            if self.activity:
                self.turn_audio_s += seconds
            return
        window = 2 * rate * VAD_WINDOW_MS // 1000  # long chunks are judged window by window
        for start in range(0, len(pcm), window):
            piece = pcm[start : start + window]
            self.detect(piece, 1000.0 * audio.duration(piece, rate))

    def detect(self, pcm: bytes, ms: float) -> None:
        """Voice activity detection on one window of audio."""
        cfg = self.cfg
        assert cfg is not None
        vad = self.vad
        voiced = audio.level(pcm) >= self.sim.options.vad_threshold
        if not vad.in_speech:
            if not voiced:
                vad.voiced_ms = 0.0
                return
            vad.voiced_ms += ms
            if vad.voiced_ms >= cfg.start_ms:
                vad.in_speech = True
                vad.speech_ms = vad.voiced_ms
                vad.silence_ms = 0.0
                if self.generating and cfg.interrupts:
                    self.interrupt()
            return
        vad.speech_ms += ms
        vad.silence_ms = 0.0 if voiced else vad.silence_ms + ms
        if vad.silence_ms >= cfg.silence_ms:
            self.end_speech()

    def end_speech(self) -> None:
        """VAD decided the user stopped speaking."""
        vad = self.vad
        heard = max(0.0, vad.speech_ms - vad.silence_ms) / 1000
        self.vad = Vad()
        self.end_audio_turn(heard)

    def end_audio_turn(self, seconds: float) -> None:
        """A spoken turn is over: transcribe (describe) it and reply."""
        text = f"({seconds:.1f} seconds of speech)"
        if self.cfg is not None and self.cfg.input_transcription:
            self.send({"serverContent": {"inputTranscription": {"text": text, "finished": True}}})
        self.start_turn(Turn(parts=[{"text": text}], heard=seconds))

    def tool_response(self, body: dict[str, Any]) -> None:
        """Function results: resume the reply waiting for them."""
        responses = body.get("functionResponses") or []
        if isinstance(responses, dict):
            responses = [responses]
        if not isinstance(responses, list):
            raise Close(1007, INVALID)
        fault = self.sim.take_fault("tool_response")
        if fault is not None:
            self.trigger(fault)
        for r in responses:
            if not isinstance(r, dict):
                raise Close(1007, INVALID)
            call_id = r.get("id")
            if (self.route.api == catalogue.GEMINI and not call_id) or not isinstance(call_id, str | None):
                raise Close(1007, INVALID)
            if not call_id:  # Vertex tolerates a missing id: match the pending call by name
                name = r.get("name")
                waiting = [k for k, v in self.pending_calls.items() if v is None and self.call_names.get(k) == name]
                call_id = waiting[0] if waiting else None
            if call_id in self.pending_calls:
                self.pending_calls[call_id] = r
            elif call_id in self.background_calls:
                self.background_result(call_id, r)
        if self.pending_calls and all(v is not None for v in self.pending_calls.values()):
            self.tool_done.set()

    def non_blocking(self, name: str) -> bool:
        """Whether a function runs in the background (NON_BLOCKING), from its declaration or the model's default."""
        assert self.cfg is not None
        decl = next((f for f in self.cfg.functions if f.get("name") == name), {})
        behavior = decl.get("behavior")
        if behavior in ("NON_BLOCKING", "BLOCKING"):
            return behavior == "NON_BLOCKING"
        return self.cfg.model.async_tools_default

    def background_result(self, call_id: str, response: dict[str, Any]) -> None:
        """A NON_BLOCKING function's result: answer as its ``scheduling`` says (default WHEN_IDLE)."""
        scheduling = response.get("scheduling") or "WHEN_IDLE"
        if scheduling not in ("SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT"):
            raise Close(1007, INVALID)
        if not response.get("willContinue"):
            self.background_calls.pop(call_id, None)
        parts = [{"functionResponse": response}]
        if scheduling == "SILENT":
            self.history.append({"role": "user", "parts": parts})
        elif scheduling == "INTERRUPT":
            self.start_turn(Turn(parts=parts), force_interrupt=True)
        else:
            self.start_turn(Turn(parts=parts), wait=True)

    def context_update(self, body: dict[str, Any]) -> None:
        """Mid-session system instruction / tools."""
        assert self.cfg is not None
        if "systemInstruction" in body:
            self.cfg.system_instruction = model.instruction_text(body["systemInstruction"])
        if "tools" in body:
            self.cfg.functions = model.declared_functions(body["tools"])

    # -- replies ----------------------------------------------------------------------------------------------------
    @property
    def generating(self) -> bool:
        """Whether a reply is under way."""
        return self.gen_task is not None and not self.gen_task.done()

    def start_turn(self, turn: Turn, *, force_interrupt: bool = False, wait: bool = False) -> None:
        """Reply to a user turn: barge in on a reply under way, or queue behind it (NO_INTERRUPTION, ``wait``)."""
        assert self.cfg is not None
        if self.generating:
            if (self.cfg.interrupts or force_interrupt) and not wait:
                self.interrupt()
            else:
                self.queue.append(turn)
                return
        self.queue.append(turn)
        self.gen_task = asyncio.create_task(self.reply_loop())

    def interrupt(self) -> None:
        """Barge-in: stop the reply, cancel pending function calls, send interrupted then turnComplete."""
        task = self.gen_task
        if task is None or task.done():
            return
        task.cancel()
        self.gen_task = None
        if self.pending_calls:
            self.send({"toolCallCancellation": {"ids": list(self.pending_calls)}})
            self.pending_calls = {}
        if self.spoken:
            self.history.append({"role": "model", "parts": [{"text": " ".join(self.spoken)}]})
            self.spoken = []
        self.send({"serverContent": {"interrupted": True}})
        self.send({"serverContent": self.done({"turnComplete": True})})

    def done(self, content: dict[str, Any]) -> dict[str, Any]:
        """Mark the end of an interaction (IDLE) on models that report interactionStatus."""
        if self.cfg is not None and self.cfg.model.interaction_status:
            content["interactionStatus"] = "IDLE"
        return content

    async def reply_loop(self) -> None:
        """Answer queued turns one after another."""
        try:
            while self.queue:
                turn = self.queue.popleft()
                if turn.parts is not None:
                    self.history.append({"role": "user", "parts": turn.parts})
                await self.reply(turn)
        except Exception:  # a bug must look like the service's internal error, not a silent hang
            logging.getLogger("gemini_sim").exception("gemini_sim: reply failed")
            self.request_close(1011, "Internal error occurred.")

    async def reply(self, turn: Turn) -> None:
        """One model turn: function calls if asked for, then speech (or text), then completion and usage."""
        cfg = self.cfg
        assert cfg is not None
        opts = self.sim.options
        await self.fault_point("turn")
        if cfg.model.interaction_status:
            self.send({"serverContent": {"interactionStatus": "IN_PROGRESS"}})
        if opts.latency > 0 and opts.realtime_factor > 0:
            await asyncio.sleep(opts.latency / opts.realtime_factor)
        note = ""
        if self.frames_unacknowledged:
            note = f"I can see the {self.frames_total} video frames you have shared so far."
            self.frames_unacknowledged = 0
        prompt_tokens = model.history_tokens(self.history) + model.estimate_tokens(cfg.system_instruction)
        if not cfg.model.conversational:
            await self.finish_reply(self.transcribe_or_translate(turn), prompt_tokens)
            return
        answer = model.respond(
            self.history,
            model=cfg.model_name,
            system_instruction=cfg.system_instruction,
            functions=cfg.functions,
            note=note,
            heard=turn.heard,
        )
        if answer.calls and self.non_blocking(answer.calls[0][0]):
            calls: list[dict[str, Any]] = [
                {"id": f"function-call-{secrets.token_hex(8)}", "name": name, "args": args}
                for name, args in answer.calls
            ]
            self.background_calls.update({c["id"]: c["name"] for c in calls})
            self.send({"toolCall": {"functionCalls": calls}})
            self.history.append({"role": "model", "parts": [{"functionCall": c} for c in calls]})
            answer = model.Reply(text="Let me check that for you.")
        if answer.calls:
            calls = [
                {"id": f"function-call-{secrets.token_hex(8)}", "name": name, "args": args}
                for name, args in answer.calls
            ]
            self.pending_calls = {c["id"]: None for c in calls}
            self.call_names = {c["id"]: c["name"] for c in calls}
            self.tool_done.clear()
            self.send({"toolCall": {"functionCalls": calls}})
            self.history.append({"role": "model", "parts": [{"functionCall": c} for c in calls]})
            await self.tool_done.wait()
            results = [r for r in self.pending_calls.values() if r is not None]
            self.pending_calls = {}
            self.history.append({"role": "user", "parts": [{"functionResponse": r} for r in results]})
            answer = model.respond(self.history, model=cfg.model_name, system_instruction=cfg.system_instruction)
        await self.finish_reply(answer.text, prompt_tokens)

    def transcribe_or_translate(self, turn: Turn) -> str:
        """What transcribe-live and live-translate say for a turn (the simulator hears no words, only speech)."""
        assert self.cfg is not None
        heard = f"{turn.heard or 0.0:.1f} seconds of speech"
        return f"({heard})" if self.cfg.model.text_only else f"(a translation of {heard})"

    async def finish_reply(self, text: str, prompt_tokens: int) -> None:
        """Speak (or write) the reply, then generationComplete, turnComplete with usage, and a new handle."""
        cfg = self.cfg
        assert cfg is not None
        out_tokens = await self.speak(text)
        self.history.append({"role": "model", "parts": [{"text": text}]})
        self.spoken = []
        self.replies += 1
        self.send({"serverContent": {"generationComplete": True}})
        audio_in = round(self.audio_in_s * AUDIO_TOKENS_PER_S)
        video_in = self.frames_total * VIDEO_TOKENS_PER_FRAME
        prompt_details = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
        if audio_in:
            prompt_details.append({"modality": "AUDIO", "tokenCount": audio_in})
        if video_in:
            prompt_details.append({"modality": "VIDEO", "tokenCount": video_in})
        prompt_total = prompt_tokens + audio_in + video_in
        out_modality = "AUDIO" if "AUDIO" in cfg.modalities else "TEXT"
        self.send(
            {
                "serverContent": self.done({"turnComplete": True}),
                "usageMetadata": {
                    "promptTokenCount": prompt_total,
                    "responseTokenCount": out_tokens,
                    "totalTokenCount": prompt_total + out_tokens,
                    "promptTokensDetails": prompt_details,
                    "responseTokensDetails": [{"modality": out_modality, "tokenCount": out_tokens}],
                },
            }
        )
        if cfg.resumption:
            delay = self.sim.options.handle_delay
            if delay > 0:
                asyncio.get_running_loop().call_later(delay, self._issue_handle_if_open)
            else:
                self.issue_handle()

    def _issue_handle_if_open(self) -> None:
        if not self.ended and self.close_request is None:
            self.issue_handle()

    async def speak(self, text: str) -> int:
        """Stream the reply: audio chunks with transcript pieces (AUDIO) or text chunks (TEXT); return tokens."""
        cfg = self.cfg
        assert cfg is not None
        opts = self.sim.options
        words = text.split()
        self.spoken = []
        if "AUDIO" not in cfg.modalities:
            step = 8
            for i in range(0, len(words), step):
                piece = " ".join(words[i : i + step]) + (" " if i + step < len(words) else "")
                self.send({"serverContent": {"modelTurn": {"parts": [{"text": piece}]}}})
                self.spoken.extend(words[i : i + step])
                await self.ws.drain()
            return model.estimate_tokens(text)
        pcm = audio.synthesize(text, cfg.voice)
        rate = audio.OUTPUT_RATE
        chunk_bytes = max(2, int(rate * opts.audio_chunk_ms / 1000) * 2)
        n = max(1, -(-len(pcm) // chunk_bytes))
        chunk_s = chunk_bytes / 2 / rate
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(n):
            if self.stall_until:
                await self.stalled()
            factor = self.sim.options.realtime_factor
            if factor > 0:
                delay = start + i * chunk_s / factor - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            piece_words = words[i * len(words) // n : (i + 1) * len(words) // n]
            content: dict[str, Any] = {
                "modelTurn": {
                    "parts": [
                        {
                            "inlineData": {
                                "mimeType": audio.OUTPUT_MIME,
                                "data": wire.b64encode(pcm[i * chunk_bytes : (i + 1) * chunk_bytes]),
                            }
                        }
                    ]
                }
            }
            said = {"text": " ".join(piece_words) + (" " if i < n - 1 else "")} if cfg.output_transcription else None
            if said and piece_words and cfg.model.combined_parts:
                content["outputTranscription"] = said
            self.send({"serverContent": content})
            if said and piece_words and not cfg.model.combined_parts:
                self.send({"serverContent": {"outputTranscription": said}})
            self.spoken.extend(piece_words)
            await self.ws.drain()
            if factor <= 0:
                await asyncio.sleep(0)  # let barge-in and other sessions in
            if i == 0:
                await self.fault_point("audio")
        factor = self.sim.options.realtime_factor
        if factor > 0:  # the model is "speaking" until its last chunk has played
            delay = start + n * chunk_s / factor - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        return round(audio.duration(pcm, rate) * AUDIO_TOKENS_PER_S)
