"""One TLS port for everything: a small HTTP/1.1 server (REST, SSE) that hands WebSocket upgrades to a sans-I/O
``websockets`` protocol, so close codes, reasons and "drop without a close frame" are exactly under our control.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.frames import Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol

from . import tls
from .tokens import TokenStore

if TYPE_CHECKING:
    from .live import LiveSession, Snapshot

log = logging.getLogger("gemini_sim")
ws_log = logging.getLogger("gemini_sim.ws")
ws_log.setLevel(logging.WARNING)  # "connection open" per session is noise at hundreds of sessions

MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024
MAX_WS_MESSAGE = 16 * 1024 * 1024


@dataclass
class Options:
    """Run-time options; every one can be changed on a running instance (``Simulator.set_options``)."""

    api_keys: frozenset[str] | None = None  # None: any non-empty key is accepted
    connection_lifetime: float = 600.0  # seconds a Live connection lasts before the server ends it
    go_away_before: float = 60.0  # goAway is sent this many seconds before the end (its timeLeft)
    realtime_factor: float = 1.0  # reply audio pacing: 1 = real time, 4 = four times faster, 0 = no pacing
    audio_chunk_ms: int = 100  # milliseconds of 24 kHz audio per modelTurn message
    latency: float = 0.15  # seconds before a reply starts (scaled by realtime_factor; 0 with it)
    stream_delay: float = 0.05  # seconds between SSE chunks of :streamGenerateContent (not scaled)
    resumption_ttl: float = 7200.0  # resumption handles stay valid this long after a session ends
    handle_delay: float = 0.0  # seconds from a turnComplete to the sessionResumptionUpdate that covers the turn
    vad_threshold: float = 500.0  # mean |sample| above which 16-bit input audio counts as speech
    silence_ms: int = 800  # default silenceDurationMs ending a spoken turn
    record: bool = True  # keep client frames/requests in memory for ``records()`` (bounded)
    record_limit: int = 5000
    record_path: str | None = None  # also append them as JSON lines to this file
    session_cap_factor: float = 1.0  # scales per-model session caps (transcribe-live's 10 minutes), for tests
    echo: bool = False  # benchmarks: answer each input audio chunk at once with the same bytes (see live.inputs)
    # The next N replies come back empty, as Gemini's sometimes do: a Live turn is a turnComplete with no modelTurn
    # parts (no audio, no text, no transcription); a REST reply has a candidate with no content. Each uses one up.
    empty_turns: int = 0
    access_token_lifetime: float = 3599.0  # seconds an OAuth access token from /token lasts (Google: 3599)

    def update(self, **changes: Any) -> None:
        """Change options by name (unknown names are an error)."""
        names = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise TypeError(f"unknown simulator option {key!r}")
            if key == "api_keys" and value is not None:
                value = frozenset([value] if isinstance(value, str) else value)
            setattr(self, key, value)


@dataclass
class Fault:
    """A fault to inject into Live sessions (or REST requests).

    ``kind``: ``close`` (close frame with ``code``/``reason``), ``stall`` (stop sending and reading for
    ``seconds``), ``drop`` (cut the TCP connection, no close frame; clients see 1006), ``http`` (REST only: answer
    with ``status``). ``when``: ``setup`` (after the setup frame, before setupComplete), ``message`` (on the next
    client message after setup), ``turn`` (when a reply starts), ``audio`` (after the first audio chunk of a
    reply), ``tool_response`` (on a toolResponse), ``now`` (every open session at once), ``rest`` (REST).
    ``count`` sessions/requests are affected (then the fault is used up).
    """

    kind: str = "close"
    when: str = "turn"
    code: int = 1011
    reason: str = "Internal error occurred."
    seconds: float = 5.0
    status: int = 500
    count: int = 1


FAULT_KINDS = ("close", "stall", "drop", "http")
FAULT_POINTS = ("setup", "message", "turn", "audio", "tool_response", "now", "rest")


class Recorder:
    """What clients sent: WebSocket frames and REST requests, in memory (bounded) and/or as JSON lines."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._items: collections.deque[dict[str, Any]] = collections.deque(maxlen=options.record_limit)
        self._lock = threading.Lock()
        self._file: Any = None

    def add(self, entry: dict[str, Any]) -> None:
        """Record one entry (cheap when recording is off)."""
        if not self.options.record and not self.options.record_path:
            return
        entry["time"] = time.time()
        with self._lock:
            if self.options.record:
                self._items.append(entry)
            path = self.options.record_path
            if path:
                if self._file is None or self._file.name != path:
                    if self._file is not None:
                        self._file.close()
                    self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open while recording
                self._file.write(json.dumps(entry, default=str) + "\n")
                self._file.flush()

    def items(self) -> list[dict[str, Any]]:
        """A copy of the in-memory records, oldest first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Forget the in-memory records."""
        with self._lock:
            self._items.clear()


class HttpRequest:
    """A parsed HTTP request."""

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.target = target
        parts = urlsplit(target)
        self.path = "/" + parts.path.lstrip("/")  # the SDK's base URL ends in "/" and yields "//ws/..."
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers
        self.body = body


@dataclass
class HttpResponse:
    """A complete response, or a streamed one when ``stream`` is set (sent chunked)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"
    stream: AsyncIterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}  # fmt: skip


class WebSocket:
    """A server-side WebSocket over asyncio streams, framed by websockets' sans-I/O protocol."""

    def __init__(self, protocol: ServerProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.protocol = protocol
        self.reader = reader
        self.writer = writer
        self.closed = False
        self._fragments: list[bytes] = []
        self._text = False
        self._events: collections.deque[Any] = collections.deque()

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)

    async def recv(self) -> str | bytes | None:
        """Return the next text (str) or binary (bytes) message, or None once the connection is gone."""
        while True:
            while self._events:
                frame = self._events.popleft()
                if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                    self._fragments = [frame.data]
                    self._text = frame.opcode is Opcode.TEXT
                elif frame.opcode is Opcode.CONT:
                    self._fragments.append(frame.data)
                elif frame.opcode is Opcode.CLOSE:
                    self._flush()  # the protocol answers a client close with its own close frame
                    self.closed = True
                    continue
                else:
                    continue
                if frame.fin:
                    data = b"".join(self._fragments)
                    self._fragments = []
                    return data.decode("utf-8", "replace") if self._text else data
            self._flush()
            if self.closed or self.protocol.close_expected():
                return None
            try:
                data = await self.reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                self.protocol.receive_eof()
                self.closed = True
                return None
            self.protocol.receive_data(data)
            self._events.extend(self.protocol.events_received())

    def send(self, data: bytes) -> None:
        """Queue a binary message (the service sends JSON in binary frames)."""
        if self.closed:
            return
        if self.writer.transport.is_closing():  # the client went away; stop writing into a dead transport
            self.closed = True
            return
        self.protocol.send_binary(data)
        self._flush()

    async def drain(self) -> None:
        """Wait while the client is slow to read."""
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame with this code and reason, wait briefly for the client's, then hang up."""
        if not self.closed:
            with contextlib.suppress(Exception):
                self.protocol.send_close(code, reason)
                self._flush()
                await self.drain()
            self.closed = True
            # Wait (briefly) for the client's close frame, then end TCP as the server should (RFC 6455 7.1.1).
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    while self.protocol.close_rcvd is None:
                        data = await self.reader.read(65536)
                        if not data:
                            break
                        self.protocol.receive_data(data)
                        self.protocol.events_received()
        self.abort(graceful=True)

    def abort(self, graceful: bool = False) -> None:
        """Cut the connection (no close frame unless one was already sent)."""
        self.closed = True
        with contextlib.suppress(Exception):
            if graceful:
                self.writer.close()
            else:
                self.writer.transport.abort()


class Simulator:
    """One simulator instance: options, tokens, resumption state, faults, records, and the listening socket."""

    def __init__(self, state_dir: Path | str, options: Options, extra_hosts: tuple[str, ...] = ()) -> None:
        self.state_dir = Path(state_dir)
        self.options = options
        self.tokens = TokenStore()
        self.recorder = Recorder(options)
        self.handles: dict[str, Snapshot] = {}  # resumption handle -> the state it resumes
        self.oauth_grants: dict[str, Any] = {}  # refresh token -> oauth.Grant
        self.access_tokens: dict[str, tuple[float, str, str]] = {}  # OAuth access token -> (expiry, scope, client)
        self.faults: list[Fault] = []
        self.sessions: set[LiveSession] = set()
        self._fault_lock = threading.Lock()
        self._session_counter = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ca_path, self.server_ssl, self.client_ssl = tls.ensure(self.state_dir, extra_hosts)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    def next_session_id(self) -> str:
        """A fresh session id."""
        self._session_counter += 1
        return f"sim-session-{self._session_counter}"

    def take_empty_turn(self) -> bool:
        """Use up one of ``options.empty_turns``: whether this reply is to come back empty."""
        with self._fault_lock:
            if self.options.empty_turns <= 0:
                return False
            self.options.empty_turns -= 1
            return True

    # -- faults -------------------------------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        """Queue a fault (``when="now"`` hits every open session immediately)."""
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}")
        if fault.when not in FAULT_POINTS:
            raise ValueError(f"fault point must be one of {FAULT_POINTS}")
        if fault.when == "now":
            for session in list(self.sessions):
                session.trigger(fault)
            return
        with self._fault_lock:
            self.faults.append(fault)

    def take_fault(self, when: str) -> Fault | None:
        """Use up one matching fault, if any is queued for this point."""
        if not self.faults:
            return None
        with self._fault_lock:
            for fault in self.faults:
                if fault.when == when:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # -- serving ------------------------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (0 = any free port)."""
        self.loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._handle, host, port, ssl=self.server_ssl, limit=MAX_HEAD, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every open session."""
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
                    break
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, _version = lines[0].split(" ", 2)
                except ValueError:
                    await self._write(writer, HttpResponse(400, b'{"error":{"code":400}}'), keep_alive=False)
                    break
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._websocket(head, reader, writer)
                    return
                body = await self._read_body(reader, headers)
                if body is None:
                    break
                request = HttpRequest(method, target, headers, body)
                from .rest import handle as rest_handle

                response = await rest_handle(self, request)
                keep_alive = headers.get("connection", "").lower() != "close"
                if not await self._write(writer, response, keep_alive=keep_alive) or not keep_alive:
                    break
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("gemini_sim: connection handler failed")
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes | None:
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                chunks: list[bytes] = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")
                        return b"".join(chunks)
                    chunks.append(await reader.readexactly(size + 2))
                    chunks[-1] = chunks[-1][:-2]
            length = int(headers.get("content-length", "0") or 0)
            if length > MAX_BODY:
                return None
            return await reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError, OSError):
            return None

    async def _write(self, writer: asyncio.StreamWriter, response: HttpResponse, *, keep_alive: bool) -> bool:
        head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}",
                f"Content-Type: {response.content_type}", "Server: gemini_sim",
                f"Connection: {'keep-alive' if keep_alive else 'close'}"]  # fmt: skip
        head += [f"{k}: {v}" for k, v in response.headers.items()]
        try:
            if response.stream is None:
                head.append(f"Content-Length: {len(response.body)}")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
                await writer.drain()
                return True
            head.append("Transfer-Encoding: chunked")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            async for chunk in response.stream:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        except (ConnectionError, OSError):
            return False

    async def _websocket(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from . import live

        protocol = ServerProtocol(max_size=MAX_WS_MESSAGE, logger=ws_log)
        protocol.receive_data(head)
        events = protocol.events_received()
        request = events[0] if events else None
        if not isinstance(request, WsRequest):
            writer.write(b"".join(protocol.data_to_send()))
            return
        route = live.route(request.path)
        if route is None:
            self.recorder.add({"type": "ws_rejected", "path": request.path, "status": 404})
            response = protocol.reject(404, "Not Found\n")
        else:
            response = protocol.accept(request)
        protocol.send_response(response)
        writer.write(b"".join(protocol.data_to_send()))
        await writer.drain()
        if route is None or response.status_code != 101:
            return
        ws = WebSocket(protocol, reader, writer)
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        session = live.LiveSession(self, ws, route, query=query, headers=headers)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
