"""Every way a /live socket ends leaves nothing behind: no ERROR record, no task pending, the channel layer healthy.

The close paths: a normal close (idle, or after a turn), the browser gone mid-reply, a browser that stopped reading
dropped while the server waits to send to it, ``end_session`` then close without waiting, a staff end then close,
and the server shutting down (daphne cancels its applications; uvicorn sends them a 1012 disconnect). Each runs on
the real ASGI app with asyncio's debug mode (in process, on the in-memory layer and on Redis) and the ones that
depend on the server through real daphne and uvicorn processes, whose logs must stay clean. Afterwards the user's
other tab still hears a ``message_saved`` and ``/live/health`` is 200.

Before the fix every close on Redis raised ``CancelledError`` out of the consumer (uvicorn: "Exception in ASGI
application"), left a pending ``Queue.get`` task behind ("Task was destroyed but it is pending") and a task that
later took channels_redis' receive lock for good: see ``live.layer_internals.forget_channel``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async
from uvicorn.protocols.utils import ClientDisconnected

from conversations.models import User
from live.models import LiveSession
from tests.live.conftest import MODEL, messages_of, session_row, silence, speech
from tests.live.inprocess import (
    Sockets,
    Watch,
    close_thread_connections,
    gone,
    layer_settings,
    the_layer_still_delivers,
    until_model_audio,
)
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

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

STORY = "Tell me a story in 6 sentences"


@pytest.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await close_thread_connections()


# -- in process ----------------------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def layer_kind(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run the test on the in-memory layer and on Redis (skipped without REDIS_URL; failed so in CI)."""
    settings.CHANNEL_LAYERS = layer_settings(request.param)
    return str(request.param)


@pytest.fixture
async def watch(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Watch]:
    """asyncio's debug mode on, and a ``Watch`` taken before any socket opens."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    caplog.set_level(logging.INFO)
    yield Watch(caplog)
    loop.set_debug(False)


class StallingSends:
    """The ASGI app behind a browser that stopped reading, as uvicorn presents it: once ``stall`` is set, a frame
    sent waits (uvicorn waits for the transport to drain) until the connection is lost, then fails with uvicorn's
    ClientDisconnected. Sending the disconnect itself is up to the test."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.stall = asyncio.Event()
        self.stalled = asyncio.Event()  # a send is waiting
        self.lost = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def stalling_send(message: dict[str, Any]) -> None:
            if self.lost.is_set():
                raise ClientDisconnected
            if self.stall.is_set() and message["type"] == "websocket.send":
                self.stalled.set()
                await self.lost.wait()
                raise ClientDisconnected
            await send(message)

        await self.app(scope, receive, stalling_send)


@pytest.fixture
async def open_socket(live_user: User) -> AsyncIterator[Sockets]:
    """Open a logged-in socket: ``await open_socket()`` (or ``open_socket(app)``); what is left open is closed."""
    sockets = Sockets(live_user)
    yield sockets
    await sockets.close_all()


CLOSE_PATHS = ["idle", "after_turn", "gone_mid_reply", "slow_reader_dropped", "end_then_close", "staff_end_then_close"]


@pytest.mark.parametrize("path", CLOSE_PATHS)
async def test_every_close_path_leaves_nothing_behind(gemini_sim, layer_kind, live_user, open_socket, watch, path):
    from apsara.asgi import application

    stalling = StallingSends(application)
    other_tab = await open_socket()
    ws = await open_socket(stalling)
    created: dict[str, Any] = {}
    if path != "idle":
        created = await ws.create(model=MODEL, config={"binaryAudio": True})

    if path == "idle":
        await gone(ws, 1000)
    elif path == "after_turn":
        await ws.send({"type": "send_message", "data": {"text": "Hello"}})
        await ws.until_turn_complete()
        await gone(ws, 1001)
    elif path == "gone_mid_reply":
        gemini_sim.set_options(realtime_factor=2)
        await ws.send({"type": "send_message", "data": {"text": STORY}})
        await until_model_audio(ws)
        await gone(ws)
    elif path == "slow_reader_dropped":
        await ws.send({"type": "send_message", "data": {"text": STORY}})
        await until_model_audio(ws)
        stalling.stall.set()
        await asyncio.wait_for(stalling.stalled.wait(), 10)
        await asyncio.sleep(1)  # Gemini goes on answering meanwhile: what it sends piles up unread
        stalling.lost.set()
        await gone(ws)
    elif path == "end_then_close":
        await ws.send({"type": "send_message", "data": {"text": STORY}})
        await until_model_audio(ws)
        await ws.send({"type": "end_session"})
        await gone(ws, 1000)
    elif path == "staff_end_then_close":
        from live.services import live_session_end_request

        await ws.send({"type": "send_message", "data": {"text": "Hello"}})
        await ws.until_turn_complete()
        await database_sync_to_async(live_session_end_request)(live_session=await session_row(created["sessionId"]))
        assert (await ws.expect("session_ended", within=15))["reason"] == "admin"
        await gone(ws, 1000)

    if created:
        row = await session_row(created["sessionId"])
        expected = {"idle": None, "after_turn": "detached", "gone_mid_reply": "detached"}
        assert row.status == expected.get(path, "detached" if path == "slow_reader_dropped" else "ended")
        roles = [m.role for m in await messages_of(created["conversationId"])]
        assert roles == ["user", "model"], roles  # the reply, whole or cut, is stored however the socket ended
    await the_layer_still_delivers(other_tab, live_user)
    await gone(other_tab, 1000)
    await watch.assert_clean()
    assert "Exception in ASGI" not in watch.caplog.text


async def test_server_cancelling_the_application_mid_reply_flushes_and_leaves_nothing(
    gemini_sim, layer_kind, live_user, open_socket, watch
):
    """daphne's shutdown (and its ``application_close_timeout``) cancel the application task: the session is still
    stopped and flushed, and the task ends quietly."""
    other_tab = await open_socket()
    ws = await open_socket()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    gemini_sim.set_options(realtime_factor=2)
    await ws.send({"type": "send_message", "data": {"text": STORY}})
    await until_model_audio(ws)
    ws.communicator.future.cancel()
    await asyncio.wait_for(ws.communicator.future, 30)  # stopped as asked, and returned: see LiveConsumer.__call__
    ws.closed_code = 1012
    row = await session_row(created["sessionId"])
    assert row.status == LiveSession.Status.DETACHED
    stored = await messages_of(created["conversationId"])
    assert [(m.role, m.interrupted) for m in stored] == [("user", False), ("model", True)]
    await the_layer_still_delivers(other_tab, live_user)
    await gone(other_tab, 1000)
    await watch.assert_clean()


class CloseSentRule:
    """The ASGI app as uvicorn serves it after the application sent ``websocket.close``: another send raises
    RuntimeError ("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'")."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        close_sent = False

        async def strict_send(message: dict[str, Any]) -> None:
            nonlocal close_sent
            if close_sent:
                raise RuntimeError(f"Unexpected ASGI message {message['type']!r}, after sending 'websocket.close'.")
            close_sent = message["type"] == "websocket.close"
            await send(message)

        await self.app(scope, receive, strict_send)


async def test_a_control_message_after_the_server_closed_the_socket_is_dropped(
    gemini_sim, layer_kind, live_user, open_socket, watch, settings
):
    """The server closes a flooding socket (4408); a message_saved for the user then reaches its consumer before
    the browser's disconnect does: relaying it must not raise (under uvicorn it ended the consumer with an error)."""
    from apsara.asgi import application

    settings.LIVE_AUDIO_BURST_SECONDS = 1.0
    settings.LIVE_AUDIO_FLOOD_CLOSE_SECONDS = 2.0
    other_tab = await open_socket()
    ws = await open_socket(CloseSentRule(application))
    await ws.create(model=MODEL)
    await ws.send_audio(speech(0.8) + silence(4.0))  # nearly 5 s of audio in a few milliseconds
    while await ws.next() is not None:
        pass
    assert ws.closed_code == 4408
    await the_layer_still_delivers(other_tab, live_user)  # the closed socket's consumer gets it too
    await asyncio.sleep(0.2)
    assert not ws.communicator.future.done()  # still waiting for the browser's disconnect, not crashed
    await ws.communicator.send_input({"type": "websocket.disconnect", "code": 4408})
    await asyncio.wait_for(ws.communicator.future, 30)
    await gone(other_tab, 1000)
    await watch.assert_clean()


async def test_only_the_receive_reading_redis_is_stopped_by_message(settings, open_socket, watch, monkeypatch):
    """Of a process's sockets, one control loop at a time reads Redis for all of them (channels_redis' receive lock):
    closing that socket ends its loop with a stop message, so no message popped for another socket is lost with a
    cancelled read; the others, only waiting for their turn, are cancelled (no message on the shared queue)."""
    from channels.layers import get_channel_layer

    from live.transport import CONTROL_STOP

    settings.CHANNEL_LAYERS = layer_settings("redis")
    layer = get_channel_layer()
    stops: list[str] = []
    send = layer.send

    async def spying_send(channel: str, message: dict[str, Any]) -> None:
        if message.get("type") == CONTROL_STOP:
            stops.append(channel)
        await send(channel, message)

    monkeypatch.setattr(layer, "send", spying_send)
    reader = await open_socket()
    await asyncio.sleep(0.2)  # its control loop took the receive lock and reads Redis
    waiting = await open_socket()
    await asyncio.sleep(0.2)
    await gone(waiting, 1000)
    assert stops == []
    await gone(reader, 1000)
    assert len(stops) == 1
    await watch.assert_clean()
    assert not getattr(layer, "receive_buffer", {})  # nothing left for either channel


async def test_the_layer_failing_to_deliver_does_not_close_the_socket(
    layer_kind, live_user, open_socket, watch, monkeypatch
):
    """A channel-layer receive that fails (Redis restarting, a read timing out) is retried after a pause; the socket
    stays open, joins its groups again and hears control messages once the layer delivers again."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    receive = layer.receive
    failures = 2

    async def flaky_receive(channel: str) -> dict[str, Any]:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("Error 111 connecting to redis")
        return dict(await receive(channel))

    monkeypatch.setattr(layer, "receive", flaky_receive)
    watch.caplog.set_level(logging.DEBUG, logger="live.transport")
    other_tab = await open_socket()
    await the_layer_still_delivers(other_tab, live_user)  # after 0.5 s, then 1 s, the third receive delivers
    assert failures == 0
    await other_tab.send({"type": "ping"})
    await other_tab.expect("pong")
    await gone(other_tab, 1000)
    await watch.assert_clean()
    retries = [r for r in watch.caplog.records if "receiving from the channel layer failed" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.WARNING, logging.DEBUG]


async def test_a_failing_control_handler_ends_the_consumer_with_its_error(
    layer_kind, live_user, open_socket, monkeypatch
):
    """A handler of a channel-layer message that raises is a bug: as in Channels, the consumer ends with it (the
    server logs it), and its teardown still runs."""
    from channels.layers import get_channel_layer

    from live.consumers import LiveConsumer

    async def broken(self: LiveConsumer, event: dict[str, Any]) -> None:
        raise ValueError("bug in a handler")

    monkeypatch.setattr(LiveConsumer, "message_saved", broken)
    ws = await open_socket()
    await get_channel_layer().group_send(f"user_{live_user.pk}", {"type": "message.saved"})
    with pytest.raises(ValueError, match="bug in a handler"):
        await asyncio.wait_for(ws.communicator.future, 10)
    ws.closed_code = 1011
    assert not getattr(get_channel_layer(), "receive_buffer", {})


# -- through real servers ------------------------------------------------------------------------------------------


async def _connect(server: Server, cookie: str) -> Any:
    return await websockets.connect(server.url, origin=server.origin, additional_headers={"Cookie": cookie})  # type: ignore[arg-type]


async def _create(ws: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "create_session", "data": {"config": {"binaryAudio": True}}}))
    while True:
        message = await asyncio.wait_for(ws.recv(), 30)
        if isinstance(message, str) and (created := json.loads(message))["type"] == "session_created":
            return dict(created)


async def _until(ws: Any, kind: str, within: float = 10, **match: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        message = await asyncio.wait_for(ws.recv(), max(0.01, deadline - loop.time()))
        if isinstance(message, str):
            data = json.loads(message)
            if data["type"] == kind and all(data.get(k) == v for k, v in match.items()):
                return dict(data)


async def _until_audio(ws: Any) -> None:
    while not isinstance(await asyncio.wait_for(ws.recv(), 30), bytes):
        pass


STATE = """
import json
import django
django.setup()
from conversations.models import Message
from live.models import LiveSession
sessions = list(LiveSession.objects.all())
roles = {
    s.public_id: [m.role for m in Message.objects.filter(conversation_id=s.conversation_id).order_by("created_at")]
    for s in sessions
}
print(json.dumps({"sessions": {s.public_id: s.status for s in sessions}, "roles": roles}))
"""


async def _state(env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(await asyncio.to_thread(run_django, env, STATE)))


@pytest.mark.parametrize("kind", ["apsara.serve", "daphne"])
async def test_close_paths_through_a_real_server_on_redis(gemini_sim, tmp_path: Path, kind: str) -> None:
    """Through a real server on Redis, with the user's other tab open throughout: a normal close, a browser killed
    mid-reply, end_session then close, a browser that stopped reading dropped mid-reply, and a staff end then close.
    The server logs nothing wrong, the other tab still hears a message_saved, the server's health is 200."""
    redis = redis_url()
    with server_database(tmp_path) as database:
        env = server_env(gemini_sim, database_url=database, media=tmp_path / "media", redis=redis)
        env["PYTHONASYNCIODEBUG"] = "1"  # asyncio reports never-awaited coroutines and more, with where they began
        user_id, cookie = await asyncio.to_thread(setup_user, env)
        with running_server(kind, env, tmp_path / "server.log") as server:
            other_tab = await _connect(server, cookie)
            ends: dict[str, str] = {}

            async with await _connect(server, cookie) as ws:  # normal close, after a turn
                created = await _create(ws)
                await ws.send(json.dumps({"type": "send_message", "data": {"text": "Hello"}}))
                while (await _until(ws, "message_saved", within=30))["message"]["role"] != "model":
                    pass
                ends[created["sessionId"]] = "detached"

            ws = await _connect(server, cookie)  # killed tab, mid-reply
            created = await _create(ws)
            await ws.send(json.dumps({"type": "send_message", "data": {"text": STORY}}))
            await _until_audio(ws)
            ws.transport.abort()
            ends[created["sessionId"]] = "detached"

            async with await _connect(server, cookie) as ws:  # end_session, then close without waiting
                created = await _create(ws)
                await ws.send(json.dumps({"type": "send_message", "data": {"text": STORY}}))
                await _until_audio(ws)
                await ws.send(json.dumps({"type": "end_session"}))
                ends[created["sessionId"]] = "ended"

            ws = await _connect(server, cookie)  # stops reading mid-reply, then the connection drops
            created = await _create(ws)
            await ws.send(json.dumps({"type": "send_message", "data": {"text": STORY}}))
            await _until_audio(ws)
            ws.transport.pause_reading()
            await asyncio.sleep(1.5)  # the server fills the socket's buffers and waits to send more
            ws.transport.abort()
            ends[created["sessionId"]] = "detached"

            async with await _connect(server, cookie) as ws:  # staff end, then close
                created = await _create(ws)
                await asyncio.to_thread(run_django, env, STAFF_END, created["sessionId"])
                assert (await _until(ws, "session_ended", within=15))["reason"] == "admin"
                ends[created["sessionId"]] = "ended"

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while loop.time() < deadline:  # the dropped sockets' sessions end as the server notices
                state = await _state(env)
                if state["sessions"] == ends:
                    break
                await asyncio.sleep(0.5)
            assert state["sessions"] == ends
            heard = {s: state["roles"][s] for s in ends if s != created["sessionId"]}
            assert all(roles == ["user", "model"] for roles in heard.values()), heard

            await asyncio.to_thread(run_django, env, ANNOUNCE, str(user_id), "after-the-closes")
            await _until(other_tab, "message_saved", within=15, conversationId="after-the-closes")
            status, health = await asyncio.to_thread(server.health)
            assert status == 200, health
            await other_tab.close()
            await asyncio.sleep(0.5)
            assert server.problems() == [], server.log.read_text()
            assert server.stop() in (0, 1, -15), server.log.read_text()  # uvicorn re-raises SIGTERM once stopped
            assert server.problems() == [], server.log.read_text()


@pytest.mark.parametrize("layer", ["memory", "redis"])
@pytest.mark.parametrize("kind", ["apsara.serve", "daphne"])
async def test_server_shutdown_mid_reply_is_quiet_and_loses_nothing(
    gemini_sim, tmp_path: Path, kind: str, layer: str
) -> None:
    """SIGTERM while a socket hears a reply and another is idle: the session is stored as detached (resumable) with
    what was said and heard, and the server exits without an error, a traceback or a task left pending."""
    redis = redis_url() if layer == "redis" else ""
    with server_database(tmp_path) as database:
        env = server_env(gemini_sim, database_url=database, media=tmp_path / "media", redis=redis)
        env["PYTHONASYNCIODEBUG"] = "1"
        _, cookie = await asyncio.to_thread(setup_user, env)
        with running_server(kind, env, tmp_path / "server.log") as server:
            idle = await _connect(server, cookie)
            ws = await _connect(server, cookie)
            created = await _create(ws)
            gemini_sim.set_options(realtime_factor=2)
            for frame in (speech(0.6) + silence(1.0),):
                await ws.send(frame)
            await _until_audio(ws)
            if kind == "daphne":
                # daphne 4.2's shutdown raises KeyError (and then neither cancels nor waits for its applications)
                # while the HTTP request that opened a socket is still in its table, which its checker clears once
                # a second: stopped that soon, daphne exits with the session unflushed whatever the application does.
                await asyncio.sleep(1.2)
            await asyncio.to_thread(server.stop)
            for socket in (ws, idle):  # closed by the server as it stopped
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(socket.recv(), 10)
        state = await _state(env)
        assert state["sessions"] == {created["sessionId"]: "detached"}, server.log.read_text()
        assert state["roles"][created["sessionId"]] == ["user", "model"]
        assert server.problems() == [], server.log.read_text()
