"""Function calls Gemini asks for, run server-side with a time limit; their results go back in input order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from django.conf import settings
from google.genai import types

from conversations.models import User
from live import tools
from live.recorder import Recorder
from live.server_messages import ServerMessage, session_message
from live.session.ledger import Item

MAX_TOOL_CALLS = 8  # running at once per session


class ToolCalls:
    """The tool calls under way in one live session."""

    def __init__(
        self,
        *,
        user: User,
        public_id: str,
        recorder: Recorder,
        put: Callable[[Item], Awaitable[None]],
        send: Callable[[ServerMessage], Awaitable[None]],
        spawn: Callable[[Awaitable[None]], object],
    ) -> None:
        self.user = user
        self.public_id = public_id
        self.recorder = recorder
        self.put = put  # queue an item for Gemini
        self.send = send  # to the browser
        self.spawn = spawn
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, call: types.FunctionCall) -> None:
        """Run ``call`` (or refuse it at once when too many are running)."""
        call_id = call.id or f"call-{len(self._tasks)}"
        if len(self._tasks) >= MAX_TOOL_CALLS:
            refusal = types.FunctionResponse(id=call.id, name=call.name, response={"error": "too many calls at once"})
            self.spawn(self.put(Item("tool_response", refusal)))
            return
        self._tasks[call_id] = asyncio.create_task(self._run(call_id, call))

    def cancel(self, call_ids: list[str]) -> None:
        """Gemini no longer wants these results (the user interrupted)."""
        for call_id in call_ids:
            task = self._tasks.get(call_id)
            if task is not None:
                task.cancel()

    def running(self) -> list[asyncio.Task[None]]:
        """The tasks under way (to cancel when the session ends)."""
        return list(self._tasks.values())

    async def _run(self, call_id: str, call: types.FunctionCall) -> None:
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
            self._tasks.pop(call_id, None)
        await self.put(Item("tool_response", types.FunctionResponse(id=call.id, name=name, response=response)))
        await self.recorder.tool_result(call_id=call.id, name=name, args=args, response=response, called_at=called_at)
        result = {"functionResponses": [{"id": call.id, "name": name, "response": response}]}
        await self.send(session_message(session_id=self.public_id, data={"toolResponse": result}))
