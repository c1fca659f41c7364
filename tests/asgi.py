"""Drive the real ASGI application (apsara.asgi) request by request and read a streamed answer as it is sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from django.middleware.csrf import _get_new_csrf_string
from django.test import Client


def session_cookie_for(user: Any) -> str:
    """Log `user` in and return the session cookie's value."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class AsgiStream:
    """One HTTP request through the ASGI app; the answer's body is read piece by piece, as the server sends it."""

    def __init__(self, path: str, *, method: str = "POST", body: Any = None, session: str | None = None) -> None:
        from apsara.asgi import application

        self.application = application
        self.body = json.dumps(body).encode() if body is not None else b""
        csrf = _get_new_csrf_string()
        cookies = f"csrftoken={csrf}" + (f"; sessionid={session}" if session else "")
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self.body)).encode()),
                (b"cookie", cookies.encode()),
                (b"x-csrftoken", csrf.encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.disconnected = asyncio.Event()
        self._request_read = False
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.task: asyncio.Task[None] | None = None
        self.comments: list[str] = []  # SSE comment lines (keep-alives), in arrival order

    async def _receive(self) -> dict[str, Any]:
        if not self._request_read:
            self._request_read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        await self.sent.put(message)

    async def start(self) -> None:
        """Send the request and wait for the response's status and headers."""
        self.task = asyncio.create_task(self.application(self.scope, self._receive, self._send))
        start = await asyncio.wait_for(self.sent.get(), 30)
        assert start["type"] == "http.response.start", start
        self.status = start["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}

    async def body_pieces(self) -> AsyncIterator[bytes]:
        """Yield each body message as the server sends it."""
        while True:
            message = await asyncio.wait_for(self.sent.get(), 30)
            if message["type"] != "http.response.body":
                continue
            if message.get("body"):
                yield message["body"]
            if not message.get("more_body", False):
                return

    async def events(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield server-sent events `(name, data)` as they arrive."""
        buffer = b""
        async for piece in self.body_pieces():
            buffer += piece
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                lines = block.decode().split("\n")  # SSE lines end at a newline only (not at U+0085, U+2028…)
                self.comments.extend(line for line in lines if line.startswith(":"))
                fields = dict(line.split(": ", 1) for line in lines if ": " in line and not line.startswith(":"))
                if fields:
                    yield fields["event"], json.loads(fields["data"])

    async def disconnect(self) -> None:
        """Go away like a closed browser tab, and wait for the server to finish with the request."""
        self.disconnected.set()
        assert self.task is not None
        await asyncio.wait_for(asyncio.gather(self.task, return_exceptions=True), 30)

    async def finish(self) -> None:
        """Wait for the application to return."""
        assert self.task is not None
        self.disconnected.set()
        await asyncio.wait_for(self.task, 30)
