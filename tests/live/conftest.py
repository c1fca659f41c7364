"""Fixtures for the live bridge: logged-in sockets on the real ASGI app.

Gemini is the test's ``gemini_sim`` (tests/gemini_fixtures.py): over TLS, driven by the real SDK.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from conversations.models import Message, User
from gemini.live_steps import speech_like_pcm
from live.models import LiveSession
from tests.factories import LiveWorkerFactory, UserFactory

MODEL = "gemini-3.1-flash-live-preview"


@database_sync_to_async
def messages_of(conversation_id: str) -> list[Message]:
    return list(Message.objects.filter(conversation__public_id=conversation_id).order_by("created_at", "id"))


@database_sync_to_async
def live_worker(seconds: float = 60) -> str:
    """Another server process, alive (its lease runs ``seconds`` more): return its name."""
    return LiveWorkerFactory.create(expires_at=timezone.now() + timedelta(seconds=seconds)).name


@database_sync_to_async
def dead_worker() -> str:
    """A server process that died holding sessions (its lease ran out a moment ago): return its name."""
    return LiveWorkerFactory.create(expires_at=timezone.now() - timedelta(seconds=1)).name


@database_sync_to_async
def session_row(public_id: str) -> LiveSession:
    return LiveSession.objects.get(public_id=public_id)


@pytest.fixture(autouse=True)
def _quick_upstream_retries(settings: Any) -> None:
    """Reconnect to Gemini (the test's ``gemini_sim``) without the production backoff, and give up in seconds."""
    settings.LIVE_UPSTREAM_BACKOFF_SECONDS = 0.01
    settings.LIVE_CONNECT_TIMEOUT_SECONDS = 10


def login_cookie(user: User) -> str:
    """Create a logged-in Django session for ``user`` and return its cookie header value (sync)."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return f"{django_settings.SESSION_COOKIE_NAME}={store.session_key}"


def speech(seconds: float, *, rate: int = 16_000, amplitude: int = 6000) -> bytes:
    """Speech-like PCM16LE: a voiced harmonic tone with a syllable envelope (well above any VAD threshold)."""
    return speech_like_pcm(seconds, rate=rate, amplitude=amplitude)


def silence(seconds: float, *, rate: int = 16_000) -> bytes:
    """Digital silence, PCM16LE."""
    return bytes(2 * int(seconds * rate))


def frames(pcm: bytes, ms: int = 40, rate: int = 16_000) -> list[bytes]:
    """Split PCM into ``ms`` frames, like a browser's AudioWorklet would send them."""
    step = rate * 2 * ms // 1000
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


class LiveSocket:
    """A browser on /live: JSON and binary frames in, everything received kept in order."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.received: list[dict[str, Any] | bytes] = []
        self.closed_code: int | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def send_raw(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def send_audio(self, pcm: bytes, ms: int = 40) -> None:
        for frame in frames(pcm, ms):
            await self.communicator.send_to(bytes_data=frame)

    async def next(self, within: float = 10) -> dict[str, Any] | bytes | None:
        """The next frame (dict or bytes); None once the server closed the socket."""
        if self.closed_code is not None:
            return None
        communicator = self.communicator
        if communicator.future.done():
            communicator.future.result()  # the app crashed: raise its exception here
        # Not receive_output(): its timeout cancels the application.
        output = await asyncio.wait_for(communicator.output_queue.get(), within)
        if output["type"] == "websocket.close":
            self.closed_code = output.get("code", 1000)
            return None
        item: dict[str, Any] | bytes = json.loads(output["text"]) if output.get("text") is not None else output["bytes"]
        self.received.append(item)
        return item

    async def expect(self, kind: str, within: float = 10, **match: Any) -> dict[str, Any]:
        """Read until a JSON message of type ``kind`` (matching ``match``) arrives; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no {kind} within {within}s; got {self.kinds()}")
            try:
                item = await self.next(left)
            except TimeoutError:
                raise AssertionError(f"no {kind} within {within}s; got {self.kinds()}") from None
            if item is None:
                raise AssertionError(f"socket closed ({self.closed_code}) waiting for {kind}; got {self.kinds()}")
            if isinstance(item, dict) and item.get("type") == kind and all(item.get(k) == v for k, v in match.items()):
                return item

    async def until_turn_complete(self, within: float = 15) -> list[dict[str, Any] | bytes]:
        """Read until a session_message with serverContent.turnComplete; return what arrived meanwhile."""
        start = len(self.received)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no turnComplete within {within}s; got {self.kinds()}")
            try:
                item = await self.next(left)
            except TimeoutError:
                raise AssertionError(f"no turnComplete within {within}s; got {self.kinds()}") from None
            if item is None:
                raise AssertionError(f"socket closed ({self.closed_code}); got {self.kinds()}")
            if (
                isinstance(item, dict)
                and item.get("type") == "session_message"
                and item["data"].get("serverContent", {}).get("turnComplete")
            ):
                return self.received[start:]

    async def drain(self, quiet: float = 0.3) -> list[dict[str, Any] | bytes]:
        """Read whatever arrives until the socket is quiet for ``quiet`` seconds."""
        start = len(self.received)
        while True:
            try:
                if await self.next(quiet) is None:
                    break
            except TimeoutError:
                break
        return self.received[start:]

    def kinds(self) -> list[str]:
        return [m.get("type", "?") if isinstance(m, dict) else f"<{len(m)} bytes>" for m in self.received][-30:]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if isinstance(m, dict) and m.get("type") == kind]

    async def create(self, **data: Any) -> dict[str, Any]:
        """create_session and wait for session_created."""
        await self.send({"type": "create_session", "data": data})
        return await self.expect("session_created")

    async def close(self) -> None:
        await self.communicator.disconnect()


@pytest.fixture
def live_user(transactional_db: None) -> User:
    return UserFactory.create()


@pytest.fixture
async def connect(live_user: User) -> AsyncIterator[Any]:
    """Open logged-in sockets on the real ASGI app: ``await connect()`` (or ``connect(user=...)``)."""
    from apsara.asgi import application

    sockets: list[LiveSocket] = []

    async def open_socket(user: User | None = None, *, origin: str = "http://testserver") -> LiveSocket:
        user = user or live_user
        cookie = await database_sync_to_async(login_cookie)(user)
        headers = [(b"cookie", cookie.encode()), (b"origin", origin.encode()), (b"host", b"testserver")]
        communicator = WebsocketCommunicator(application, "/live", headers=headers)
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        socket = LiveSocket(communicator)
        sockets.append(socket)
        return socket

    yield open_socket
    for socket in sockets:
        if socket.closed_code is None:
            await socket.communicator.disconnect(timeout=10)
