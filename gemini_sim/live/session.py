"""One Live connection: its lifecycle from ``setup`` to close, the message loop, and injected faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from .. import wire
from .auth import authenticate
from .errors import INTERNAL, INVALID, Close
from .inputs import Inputs
from .replies import Replies
from .resumption import Resumption
from .setup import Config, configure
from .tools import Tools

if TYPE_CHECKING:
    from ..server import Fault, Simulator, WebSocket
    from .routes import Route


class LiveSession:
    """One Live connection: the state its parts share, and the task that reads the socket and closes it."""

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
        self.inputs = Inputs(self)
        self.replies = Replies(self)
        self.tools = Tools(self)
        self.resumption = Resumption(self)
        self.timer_task: asyncio.Task[None] | None = None
        self.expiry_task: asyncio.Task[None] | None = None
        self.main_task: asyncio.Task[Any] | None = None
        self.close_request: tuple[int, str] | None = None
        self.messages_in = 0
        self.stall_until = 0.0
        self.ended = False
        self.received_ns = 0  # when the latest client message arrived (CLOCK_MONOTONIC ns), for echo mode

    @property
    def config(self) -> Config:
        """The validated setup, for the parts that only run once setup is done."""
        assert self.cfg is not None
        return self.cfg

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
                "path": self.route.label,
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
            code, reason = 1011, INTERNAL
        await self.shutdown_tasks()
        if not self.ws.closed:
            reason = reason.encode()[:123].decode("utf-8", "ignore")
            await self.ws.close(code, reason)
            self.finish(code, reason)
        else:
            self.finish(None, "")

    def finish(self, code: int | None, reason: str) -> None:
        """Bookkeeping once the connection is over: handles start their 2 h (TTL) clock."""
        self.ended = True
        self.resumption.start_expiry()
        self.sim.recorder.add({"type": "close", "session": self.id, "code": code, "reason": reason})

    async def shutdown_tasks(self) -> None:
        """Stop the reply and timer tasks."""
        for task in (self.replies.task, self.timer_task, self.expiry_task):
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
        token = authenticate(
            self.sim,
            self.route,
            headers=self.headers,
            query=self.query,
            resuming=isinstance(resumption, dict) and bool(resumption.get("handle")),
            model=str(setup.get("model") or ""),
        )
        if token is not None:
            setup = token.constrain(setup)
            self.sim.recorder.add({"type": "effective_setup", "session": self.id, "setup": setup})
        try:
            cfg = configure(setup, self.route, self.sim.options)
        except wire.InvalidArgument:
            raise Close(1007, INVALID) from None
        self.resumption.restore(cfg)
        self.cfg = cfg
        await self.fault_point("setup")
        self.send({"setupComplete": {"sessionId": self.id}})
        self.timer_task = asyncio.create_task(self.resumption.lifetime())
        if token is not None:
            self.expiry_task = asyncio.create_task(self.resumption.token_expiry(token.expire_time))
        if cfg.resumption:
            self.resumption.issue()
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
                self.inputs.dispatch(wire.camelize(message))
            except wire.InvalidArgument:
                raise Close(1007, INVALID) from None
