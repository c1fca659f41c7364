"""Hundreds of /live sockets opened and closed in seconds, on Redis: the channel layer stays healthy in every process.

What an adversarial probe found before the fix (two server processes, PostgreSQL, Redis): after such a burst one
process's ``/live/health`` stayed 503 ("channelLayer: timeout"), its sockets no longer heard ``message_saved`` or a
staff "end session", and every close logged "Exception in ASGI application". Cause: the consumer dropped its
channel's entry in channels_redis' receive buffer while its control loop still waited on it; channels_redis'
cancellation handling then failed with a KeyError before cancelling its helper tasks, one of which later took the
layer's receive lock for good (see ``live.layer_internals.forget_channel``).

After the churn, in the same process(es): a staff end reaches the socket holding the session, a ``message_saved``
reaches the user's other tab, ``/live/health`` is 200 (and was throughout), nothing was logged as an ERROR, no task is
left pending, and channels_redis' receive buffer holds nothing for the closed sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import websockets
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import AsyncClient

from conversations.models import User
from live.services import live_session_end_request
from tests.live.conftest import MODEL, session_row
from tests.live.inprocess import Sockets, Watch, close_thread_connections, layer_settings, the_layer_still_delivers
from tests.live.real_servers import (
    ANNOUNCE,
    STAFF_END,
    Server,
    redis_url,
    run_django,
    running_server,
    server_database,
    server_env,
    setup_user,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

SOCKETS = 400  # opened and closed
AT_ONCE = 50  # open at any moment
CLOSE_CODES = (1000, 1001, 1006)


@pytest.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await close_thread_connections()


def what_socket_does(index: int) -> str:
    """A mix like real traffic: most sockets open and close, some ping first, some start a live session and go."""
    return {0: "session", 1: "ping", 2: "ping"}.get(index % 10, "open")


T = TypeVar("T")


async def probe_health(stop: asyncio.Event, statuses: list[T], probe: Callable[[], Awaitable[T]]) -> None:
    while not stop.is_set():
        statuses.append(await probe())
        await asyncio.sleep(0.2)


# -- in process ----------------------------------------------------------------------------------------------------


@pytest.fixture
async def open_socket(live_user: User) -> AsyncIterator[Sockets]:
    sockets = Sockets(live_user)
    yield sockets
    await sockets.close_all()


async def test_churn_on_redis_leaves_the_layer_healthy_in_process(gemini_sim, settings, live_user, open_socket, caplog):
    settings.CHANNEL_LAYERS = layer_settings("redis")  # skipped without REDIS_URL; a failure in CI
    settings.LIVE_MAX_SESSIONS_PER_USER = SOCKETS  # one user opens them all
    caplog.set_level(logging.INFO)
    watch = Watch(caplog)
    other_tab = await open_socket()
    holder = await open_socket()
    held = await holder.create(model=MODEL)
    started = time.monotonic()

    async def one(index: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            ws = await open_socket()
            action = what_socket_does(index)
            if action == "ping":
                await ws.send({"type": "ping"})
                await ws.expect("pong", within=10)
            elif action == "session":
                await ws.create(model=MODEL)
            code = CLOSE_CODES[index % len(CLOSE_CODES)]
            await ws.communicator.send_input({"type": "websocket.disconnect", "code": code})
            await asyncio.wait_for(ws.communicator.future, 30)
            ws.closed_code = code

    async def health() -> int:
        return (await AsyncClient().get("/live/health")).status_code

    stop = asyncio.Event()
    statuses: list[int] = []
    prober = asyncio.create_task(probe_health(stop, statuses, health))
    gate = asyncio.Semaphore(AT_ONCE)
    await asyncio.gather(*(one(i, gate) for i in range(SOCKETS)))
    stop.set()
    await prober
    churn_seconds = time.monotonic() - started

    # The same process, afterwards: a staff end and a message_saved arrive, health is 200 (and was all along).
    await database_sync_to_async(live_session_end_request)(live_session=await session_row(held["sessionId"]))
    assert (await holder.expect("session_ended", within=15))["reason"] == "admin"
    await the_layer_still_delivers(other_tab, live_user)
    assert statuses and set(statuses) == {200}, statuses
    # Nothing kept for the sockets that closed (only the two still open can have an entry).
    assert len(getattr(get_channel_layer(), "receive_buffer", {})) <= 2

    for ws in (holder, other_tab):
        await ws.communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(ws.communicator.future, 30)
        ws.closed_code = 1000
    await watch.assert_clean()
    assert "Exception in ASGI" not in caplog.text
    assert churn_seconds < 60, f"{SOCKETS} sockets took {churn_seconds:.1f} s"


# -- two server processes --------------------------------------------------------------------------------------------


async def _open(server: Server, cookie: str) -> Any:
    return await websockets.connect(server.url, origin=server.origin, additional_headers={"Cookie": cookie})  # type: ignore[arg-type]


async def _until(ws: Any, kind: str, within: float = 10, **match: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        message = await asyncio.wait_for(ws.recv(), max(0.01, deadline - loop.time()))
        if isinstance(message, str):
            data = json.loads(message)
            if data["type"] == kind and all(data.get(k) == v for k, v in match.items()):
                return dict(data)


async def _churn_one(server: Server, cookie: str, index: int, gate: asyncio.Semaphore) -> None:
    async with gate:
        ws = await _open(server, cookie)
        action = what_socket_does(index)
        if action == "ping":
            await ws.send(json.dumps({"type": "ping"}))
            await _until(ws, "pong")
        elif action == "session":
            await ws.send(json.dumps({"type": "create_session", "data": {"model": MODEL}}))
            await _until(ws, "session_created", within=30)
        if index % 3 == 2:
            ws.transport.abort()  # a tab killed: no close handshake
        else:
            await ws.close(code=CLOSE_CODES[index % 2])


async def test_churn_on_redis_leaves_every_server_process_healthy(gemini_sim, tmp_path: Path) -> None:
    """Two server processes (``apsara.serve`` and daphne) on one Redis and one database, as production runs
    workers: the burst is spread over both, and each is checked on its own afterwards."""
    redis = redis_url()
    with server_database(tmp_path) as database:
        env = server_env(gemini_sim, database_url=database, media=tmp_path / "media", redis=redis)
        env["LIVE_MAX_SESSIONS_PER_USER"] = str(SOCKETS)  # one user opens them all
        user_id, cookie = await asyncio.to_thread(setup_user, env)
        with (
            running_server("apsara.serve", env, tmp_path / "uvicorn.log") as first,
            running_server("daphne", env, tmp_path / "daphne.log") as second,
        ):
            servers = [first, second]
            watched = [(await _open(s, cookie), await _open(s, cookie)) for s in servers]  # (other tab, holder)
            held = []
            for _, holder in watched:
                await holder.send(json.dumps({"type": "create_session", "data": {"model": MODEL}}))
                held.append((await _until(holder, "session_created", within=30))["sessionId"])

            async def health_of_both() -> tuple[int, list[tuple[str, tuple[int, dict[str, Any]]]]]:
                # the worst status, and each server's kind with its (status, report)
                reports = await asyncio.gather(*(asyncio.to_thread(s.health) for s in servers))
                return max(code for code, _ in reports), [(s.kind, r) for s, r in zip(servers, reports, strict=True)]

            stop = asyncio.Event()
            statuses: list[tuple[int, list[tuple[str, tuple[int, dict[str, Any]]]]]] = []
            prober = asyncio.create_task(probe_health(stop, statuses, health_of_both))
            started = time.monotonic()
            gate = asyncio.Semaphore(AT_ONCE)
            await asyncio.gather(*(_churn_one(servers[i % 2], cookie, i, gate) for i in range(SOCKETS)))
            churn_seconds = time.monotonic() - started
            stop.set()
            await prober

            # Each process, afterwards: a staff end reaches the socket holding the session, a message saved
            # elsewhere reaches the other tab, and its health is 200.
            for server, (_, holder), session_id in zip(servers, watched, held, strict=True):
                await asyncio.to_thread(run_django, env, STAFF_END, session_id)
                ended = await _until(holder, "session_ended", within=15)
                assert ended["reason"] == "admin", (server.kind, ended)
            marker = f"after-churn-{uuid.uuid4().hex[:8]}"
            await asyncio.to_thread(run_django, env, ANNOUNCE, str(user_id), marker)
            for server, (other_tab, _) in zip(servers, watched, strict=True):
                await _until(other_tab, "message_saved", within=15, conversationId=marker)
                status, health = await asyncio.to_thread(server.health)
                assert status == 200, (server.kind, health)
            assert statuses and all(code == 200 for code, _ in statuses), [r for c, r in statuses if c != 200]
            assert churn_seconds < 60, f"{SOCKETS} sockets took {churn_seconds:.1f} s"

            for other_tab, holder in watched:
                await other_tab.close()
                await holder.close()
            await asyncio.sleep(0.5)
            for server in servers:
                assert server.problems() == [], f"{server.kind}:\n{server.log.read_text()[-20000:]}"
                server.stop()
                assert server.problems() == [], f"{server.kind}:\n{server.log.read_text()[-20000:]}"
