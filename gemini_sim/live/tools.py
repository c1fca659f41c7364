"""Function calling: ``toolCall`` out, ``toolResponse`` in, blocking and NON_BLOCKING functions, cancellation."""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from .. import catalogue
from .errors import INVALID, Close
from .replies import Turn

if TYPE_CHECKING:
    from .session import LiveSession

_SCHEDULING = ("SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT")


class Tools:
    """The function calls of one session: those a reply waits for, and those running in the background."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.pending: dict[str, dict[str, Any] | None] = {}  # id -> response, for the calls a reply waits for
        self.names: dict[str, str] = {}  # id -> function name, to match Vertex responses that carry no id
        self.background: dict[str, str] = {}  # NON_BLOCKING calls still running: id -> name
        self.done = asyncio.Event()

    def non_blocking(self, name: str) -> bool:
        """Whether a function runs in the background (NON_BLOCKING), from its declaration or the model's default."""
        cfg = self.session.config
        decl = next((f for f in cfg.functions if f.get("name") == name), {})
        behavior = decl.get("behavior")
        if behavior in ("NON_BLOCKING", "BLOCKING"):
            return behavior == "NON_BLOCKING"
        return cfg.model.async_tools_default

    def start_background(self, requested: list[tuple[str, dict[str, Any]]]) -> None:
        """Call NON_BLOCKING functions; their results come later, answered as ``background_result`` says."""
        calls = _function_calls(requested)
        self.background.update({c["id"]: c["name"] for c in calls})
        self._announce(calls)

    async def call(self, requested: list[tuple[str, dict[str, Any]]]) -> None:
        """Call functions and wait for all their results, which join the history as the user's turn."""
        calls = _function_calls(requested)
        self.pending = {c["id"]: None for c in calls}
        self.names = {c["id"]: c["name"] for c in calls}
        self.done.clear()
        self._announce(calls)
        await self.done.wait()
        results = [r for r in self.pending.values() if r is not None]
        self.pending = {}
        self.session.history.append({"role": "user", "parts": [{"functionResponse": r} for r in results]})

    def _announce(self, calls: list[dict[str, Any]]) -> None:
        """Send the toolCall and record it as the model's turn."""
        self.session.send({"toolCall": {"functionCalls": calls}})
        self.session.history.append({"role": "model", "parts": [{"functionCall": c} for c in calls]})

    def cancel_pending(self) -> None:
        """Barge-in: the calls a reply was waiting for are cancelled (``toolCallCancellation``)."""
        if self.pending:
            self.session.send({"toolCallCancellation": {"ids": list(self.pending)}})
            self.pending = {}

    def response(self, body: dict[str, Any]) -> None:
        """Function results: resume the reply waiting for them."""
        session = self.session
        responses = body.get("functionResponses") or []
        if isinstance(responses, dict):
            responses = [responses]
        if not isinstance(responses, list):
            raise Close(1007, INVALID)
        fault = session.sim.take_fault("tool_response")
        if fault is not None:
            session.trigger(fault)
        for r in responses:
            if not isinstance(r, dict):
                raise Close(1007, INVALID)
            call_id = r.get("id")
            if (session.route.api == catalogue.GEMINI and not call_id) or not isinstance(call_id, str | None):
                raise Close(1007, INVALID)
            if not call_id:  # Vertex tolerates a missing id: match the pending call by name
                name = r.get("name")
                waiting = [k for k, v in self.pending.items() if v is None and self.names.get(k) == name]
                call_id = waiting[0] if waiting else None
            if call_id in self.pending:
                self.pending[call_id] = r
            elif call_id in self.background:
                self.background_result(call_id, r)
        if self.pending and all(v is not None for v in self.pending.values()):
            self.done.set()

    def background_result(self, call_id: str, response: dict[str, Any]) -> None:
        """A NON_BLOCKING function's result: answer as its ``scheduling`` says (default WHEN_IDLE)."""
        scheduling = response.get("scheduling") or "WHEN_IDLE"
        if scheduling not in _SCHEDULING:
            raise Close(1007, INVALID)
        if not response.get("willContinue"):
            self.background.pop(call_id, None)
        parts = [{"functionResponse": response}]
        if scheduling == "SILENT":
            self.session.history.append({"role": "user", "parts": parts})
        elif scheduling == "INTERRUPT":
            self.session.replies.start_turn(Turn(parts=parts), force_interrupt=True)
        else:
            self.session.replies.start_turn(Turn(parts=parts), wait=True)


def _function_calls(requested: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The ``functionCalls`` for what the model asked to call, each with a fresh id."""
    return [{"id": f"function-call-{secrets.token_hex(8)}", "name": name, "args": args} for name, args in requested]
