"""In-process helpers for the teardown and churn tests: sockets on the real ASGI app, the layer to run on, and a
``Watch`` that fails a test when a task is left pending or anything was logged as an ERROR."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

# Imported now, at collection: the first import sets Django up again, and Django's dictConfig of LOGGING replaces
# the root logger's handlers, pytest's capturing handler among them; imported during a test, it would blind ``caplog``
# (and so ``Watch``) for the rest of that test.
from apsara.asgi import application
from conversations.models import User
from tests.live.conftest import LiveSocket, login_cookie
from tests.live.real_servers import redis_url


async def close_thread_connections() -> None:
    """Close the database connections left open in the threads sockets used: asgiref's shared sync thread and
    live.db_lanes's lanes. After a burst of concurrent sockets (only then) some stay open there on PostgreSQL, and the
    test database cannot be dropped at the end of the run ("being accessed by other users")."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    from live import db_lanes

    await sync_to_async(connections.close_all)()
    for lane in list(db_lanes._lanes):
        await asyncio.wrap_future(lane.submit(connections.close_all))


def layer_settings(kind: str) -> dict[str, Any]:
    """CHANNEL_LAYERS for ``kind``: the in-memory layer, or channels_redis on REDIS_URL with keys of its own."""
    if kind == "memory":
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from apsara.settings.base import _channel_layers

    layers = _channel_layers(redis_url())
    layers["default"]["CONFIG"]["prefix"] = f"apsara-test-{uuid.uuid4().hex[:8]}"
    return layers


class Watch:
    """What the event loop and the logs must show once every socket is closed: nothing left, nothing wrong."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.before = asyncio.all_tasks()

    async def assert_clean(self, within: float = 10) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        current = asyncio.current_task()
        while True:
            left = [t for t in asyncio.all_tasks() if t is not current and t not in self.before and not t.done()]
            if not left or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert not left, "tasks still pending after every socket closed:\n" + "\n".join(
            f"{t!r}\n  {t.get_stack(limit=3)}" for t in left
        )
        gc.collect()  # a task collected while pending is reported now ("Task was destroyed but it is pending")
        await asyncio.sleep(0)
        # The capture must still be listening, or "no ERROR" would prove nothing (see the import of apsara.asgi).
        assert self.caplog.handler in logging.getLogger().handlers, "log capture was detached during the test"
        errors = [r for r in self.caplog.records if r.levelno >= logging.ERROR]
        assert not errors, "\n".join(f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in errors)


class Sockets:
    """Opens logged-in sockets for one user on ``app`` (the real ASGI app by default); closes what is left open."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.opened: list[LiveSocket] = []

    async def __call__(self, app: Any = None) -> LiveSocket:
        cookie = await database_sync_to_async(login_cookie)(self.user)
        headers = [(b"cookie", cookie.encode()), (b"origin", b"http://testserver"), (b"host", b"testserver")]
        communicator = WebsocketCommunicator(app or application, "/live", headers=headers)
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        self.opened.append(LiveSocket(communicator))
        return self.opened[-1]

    async def close_all(self) -> None:
        for socket in self.opened:
            if socket.closed_code is None and not socket.communicator.future.done():
                await socket.communicator.disconnect(timeout=10)
        await close_thread_connections()


async def gone(ws: LiveSocket, code: int = 1006) -> None:
    """The browser's side of the socket ends (1006: no close handshake); wait for the application to finish."""
    await ws.communicator.send_input({"type": "websocket.disconnect", "code": code})
    await asyncio.wait_for(ws.communicator.future, 30)  # raises what the application raised
    ws.closed_code = code


async def until_model_audio(ws: LiveSocket) -> None:
    while not isinstance(await ws.next(), bytes):
        pass


async def the_layer_still_delivers(other_tab: LiveSocket, user: User) -> None:
    """The user's other tab hears a message_saved sent now, and /live/health is 200."""
    marker = uuid.uuid4().hex
    await get_channel_layer().group_send(
        f"user_{user.pk}", {"type": "message.saved", "conversationId": marker, "message": {"text": marker}}
    )
    await other_tab.expect("message_saved", within=15, conversationId=marker)
    response = await AsyncClient().get("/live/health")
    assert response.status_code == 200, response.json()
