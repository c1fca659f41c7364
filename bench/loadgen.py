"""The load generator: N concurrent full-duplex voice sessions against one target, with per-frame latency.

Targets:
- ``direct``: straight to gemini_sim's Live endpoint, speaking Gemini's wire JSON (the floor to subtract);
- ``baseline``: ``bench.baseline`` (binary frames both ways, ``{"type":"ready"}`` after the Gemini handshake);
- ``bridge``: Apsara's ``/live`` through daphne (session cookie, ``create_session`` with ``binaryAudio``, binary
  frames both ways).

Each session sends one 40 ms frame every 40 ms on an absolute schedule (``start + k * 40 ms``); the scheduled time
goes into the frame, so a stalled sender or a full socket shows up as latency instead of being hidden.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from bench.frames import FRAME_BYTES, FRAME_MS, make_frame, read_stamps

FRAME_NS = FRAME_MS * 1_000_000
CONNECT_TIMEOUT = 30.0
CONNECT_CONCURRENCY = 20  # handshakes in flight at once: an arrival burst, not N TLS handshakes in one millisecond


@dataclass
class Target:
    """Where and how to connect."""

    kind: str  # direct | baseline | bridge
    url: str
    model: str
    ssl: ssl.SSLContext | None = None
    api_key: str = "bench"
    cookies: list[str] = field(default_factory=list)  # bridge: one session cookie per simulated user
    origin: str | None = None


@dataclass
class SessionResult:
    """What one simulated browser saw."""

    connected: bool = False
    connect_s: float = 0.0
    error: str = ""
    sent: int = 0
    received: int = 0
    lost: int = 0
    reordered: int = 0
    untagged_bytes: int = 0
    server_errors: list[str] = field(default_factory=list)
    up_ns: list[int] = field(default_factory=list)
    down_ns: list[int] = field(default_factory=list)
    late_ns: list[int] = field(default_factory=list)  # how late the sender was against its schedule


def _direct_path(model: str) -> str:
    return "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


async def _open(target: Target, index: int) -> ClientConnection:
    """Connect and finish the target's handshake; return the socket ready for audio."""
    common: dict[str, Any] = {"compression": None, "max_size": 1 << 22, "open_timeout": CONNECT_TIMEOUT}
    if target.kind == "direct":
        socket = await connect(
            target.url + _direct_path(target.model),
            ssl=target.ssl,
            additional_headers={"x-goog-api-key": target.api_key},
            **common,
        )
        setup = {"setup": {"model": f"models/{target.model}", "generationConfig": {"responseModalities": ["AUDIO"]}}}
        await socket.send(json.dumps(setup))
        reply = json.loads(await asyncio.wait_for(socket.recv(), CONNECT_TIMEOUT))
        if "setupComplete" not in reply:
            raise RuntimeError(f"no setupComplete: {str(reply)[:200]}")
        return socket
    if target.kind == "baseline":
        socket = await connect(target.url, **common)
        reply = json.loads(await asyncio.wait_for(socket.recv(), CONNECT_TIMEOUT))
        if reply.get("type") != "ready":
            raise RuntimeError(f"baseline not ready: {str(reply)[:200]}")
        return socket
    headers = {"Cookie": target.cookies[index % len(target.cookies)]}
    socket = await connect(target.url, additional_headers=headers, origin=target.origin, **common)  # type: ignore[arg-type]
    create = {
        "type": "create_session",
        "data": {
            "model": target.model,
            "loadConversationContext": False,
            "config": {"responseModalities": ["AUDIO"], "binaryAudio": True},
        },
    }
    await socket.send(json.dumps(create))
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        raw = await asyncio.wait_for(socket.recv(), max(0.1, deadline - time.monotonic()))
        if isinstance(raw, bytes):
            continue
        message = json.loads(raw)
        if message.get("type") == "session_created":
            return socket
        if message.get("type") in ("session_error", "audio_error"):
            raise RuntimeError(f"{message.get('type')}: {json.dumps(message.get('error', message))[:300]}")


def _encode(target: Target, frame: bytes) -> bytes | str:
    if target.kind == "direct":
        data = base64.b64encode(frame).decode()
        return json.dumps({"realtime_input": {"audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}}})
    return frame


def _audio_of(target: Target, raw: bytes | str, result: SessionResult) -> list[bytes]:
    """Return the audio payloads in one message from the target."""
    if isinstance(raw, bytes) and target.kind != "direct":
        return [raw]
    message = json.loads(raw)
    if target.kind == "direct":
        parts = (message.get("serverContent") or {}).get("modelTurn", {}).get("parts", [])
        out = []
        for part in parts:
            inline = part.get("inlineData") or part.get("inline_data")
            if inline and inline.get("data"):
                data = inline["data"]
                out.append(base64.urlsafe_b64decode(data) if "-" in data or "_" in data else base64.b64decode(data))
        return out
    if message.get("type") in ("session_error", "audio_error"):
        result.server_errors.append(json.dumps(message.get("error", message))[:200])
    return []


async def run_session(
    target: Target,
    index: int,
    *,
    offset_ns: int,
    stop_at: Callable[[], float | None],
    window: Callable[[], tuple[int, int] | None],
    frames_limit: int | None = None,
    connected: asyncio.Event | None = None,
    limiter: asyncio.Semaphore | None = None,
    result: SessionResult,
) -> None:
    """Run one simulated browser: connect, stream until ``stop_at()`` passes (or ``frames_limit``), then drain.

    Latency samples count only for frames scheduled inside ``window()`` (monotonic ns), so connect storms and
    ramp-up stay out of the numbers.
    """
    started = time.monotonic()
    try:
        async with limiter or contextlib.nullcontext():
            socket = await _open(target, index)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
        if connected:
            connected.set()
        return
    result.connected = True
    result.connect_s = time.monotonic() - started
    if connected:
        connected.set()
    expected_next = 0
    outstanding: set[int] = set()
    done_sending = asyncio.Event()

    async def sender() -> None:
        base = time.monotonic_ns() + offset_ns
        seq = 0
        while True:
            due = base + seq * FRAME_NS
            end = stop_at()
            if (frames_limit is not None and seq >= frames_limit) or (end is not None and due / 1e9 >= end):
                break
            delay = (due - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            result.late_ns.append(time.monotonic_ns() - due)
            outstanding.add(seq)
            await socket.send(_encode(target, make_frame(index, seq, due)))
            result.sent += 1
            seq += 1
        done_sending.set()

    async def receiver() -> None:
        nonlocal expected_next
        async for raw in socket:
            now = time.monotonic_ns()
            for audio in _audio_of(target, raw, result):
                stamps, untagged = read_stamps(audio)
                result.untagged_bytes += untagged
                span = window()
                for stamp in stamps:
                    if stamp.session != index or stamp.seq not in outstanding:
                        continue
                    outstanding.discard(stamp.seq)
                    result.received += 1
                    if stamp.seq < expected_next:
                        result.reordered += 1
                    expected_next = max(expected_next, stamp.seq + 1)
                    if span and span[0] <= stamp.send_ns < span[1] and stamp.sim_recv_ns:
                        result.up_ns.append(stamp.sim_recv_ns - stamp.send_ns)
                        result.down_ns.append(now - stamp.sim_send_ns)
            if done_sending.is_set() and not outstanding:
                return

    send_task = asyncio.create_task(sender())
    receive_task = asyncio.create_task(receiver())
    try:
        await send_task
        # Give the last echoes time to come back, then count the rest as lost.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(receive_task), 2.0)
    except websockets.ConnectionClosed as exc:
        result.error = f"closed: {exc}"[:300]
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        receive_task.cancel()
        with contextlib.suppress(BaseException):
            await receive_task
        if receive_task.done() and not receive_task.cancelled() and receive_task.exception():
            result.error = result.error or f"receiver: {receive_task.exception()!r}"[:300]
        result.lost = len(outstanding)
        if target.kind == "bridge":
            with contextlib.suppress(Exception):
                await socket.send(json.dumps({"type": "end_session"}))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(socket.close(), 5)


async def connect_cycle(target: Target, sessions: int, frames: int = 5, limit_s: float = 180.0) -> dict[str, Any]:
    """Open ``sessions`` sessions (20 handshakes at a time), echo a few frames on each, close them all.

    Returns how many completed cleanly, the first distinct errors, and the connect times (to ``session_created``
    for the bridge) in seconds; sessions still unfinished after ``limit_s`` are cancelled and count as failed.
    """
    results = [SessionResult() for _ in range(sessions)]
    limiter = asyncio.Semaphore(CONNECT_CONCURRENCY)
    runs = [
        asyncio.create_task(
            run_session(
                target,
                i,
                offset_ns=0,
                stop_at=lambda: None,
                window=lambda: None,
                frames_limit=frames,
                limiter=limiter,
                result=results[i],
            )
        )
        for i in range(sessions)
    ]
    started = time.monotonic()
    _, pending = await asyncio.wait(runs, timeout=limit_s)
    for run in pending:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    ok = sum(1 for r in results if r.connected and not r.error and r.lost == 0)
    errors = sorted({r.error for r in results if r.error} | {e for r in results for e in r.server_errors})
    if pending:
        errors.insert(0, f"{len(pending)} sessions unfinished after {limit_s:g}s")
    connects = sorted(r.connect_s for r in results if r.connected)
    return {
        "ok": ok,
        "errors": errors[:5],
        "seconds": round(time.monotonic() - started, 1),
        "connect_p50_s": round(connects[len(connects) // 2], 3) if connects else None,
        "connect_max_s": round(connects[-1], 3) if connects else None,
    }


__all__ = ["FRAME_BYTES", "SessionResult", "Target", "connect_cycle", "run_session"]
