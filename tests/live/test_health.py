"""GET /live/health: the answering worker, database, channel layer and Gemini mode; 200 when healthy, else 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.db import OperationalError
from django.test import AsyncClient

from gemini.client import simulator_started
from live.lease import worker_name
from tests.live.inprocess import close_thread_connections

pytestmark = pytest.mark.django_db(transaction=True)  # the database check runs in a worker thread


@pytest.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await close_thread_connections()


async def test_health_reports_ok_when_dependencies_answer(settings) -> None:
    """With the database and the channel layer answering, the report is ok, names this process and says which Gemini
    is used."""
    started_before = simulator_started()  # earlier tests in this process may have started it
    response = await AsyncClient().get("/live/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["worker"] == worker_name()  # behind a load balancer: which worker answered
    assert body["database"]["status"] == "ok"
    assert body["database"]["vendor"] in {"sqlite", "postgresql"}
    assert body["channelLayer"]["status"] == "ok"
    expected_layer = "RedisChannelLayer" if "redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"] else None
    assert body["channelLayer"]["backend"] == (expected_layer or "InMemoryChannelLayer")
    assert body["gemini"] == {
        "mode": "simulator",
        "liveModel": settings.GEMINI_LIVE_MODEL,
        "simulatorStarted": started_before,
    }
    assert simulator_started() == started_before  # a health probe never starts the simulator
    assert response["Cache-Control"].startswith("max-age=0")


async def test_health_is_503_when_the_channel_layer_is_unreachable(settings) -> None:
    """A Redis that refuses connections makes the report 503, naming the failing part."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
        }
    }
    response = await AsyncClient().get("/live/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["channelLayer"]["status"] == "error"
    assert body["channelLayer"]["backend"] == "RedisChannelLayer"
    assert body["database"]["status"] == "ok"


async def test_health_is_503_without_leaking_database_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A database failure is reported by class only: driver messages may name hosts and users."""
    from live import health

    def failing_ping() -> None:
        raise OperationalError('connection to server at "db.internal" failed: password authentication for "admin"')

    monkeypatch.setattr(health, "_database_ping", failing_ping)
    response = await AsyncClient().get("/live/health")
    assert response.status_code == 503
    assert response.json()["database"] == {"status": "error", "error": "OperationalError"}
    assert b"db.internal" not in response.content and b"admin" not in response.content


async def test_health_never_shows_the_gemini_key(settings) -> None:
    """In API-key mode the report names the mode, never the key."""
    settings.GEMINI_API_KEY = "AIza-very-secret"
    response = await AsyncClient().get("/live/health")
    assert response.json()["gemini"] == {"mode": "api_key", "liveModel": settings.GEMINI_LIVE_MODEL}
    assert b"AIza" not in response.content


async def test_health_refuses_other_methods() -> None:
    """Only GET is served."""
    assert (await AsyncClient().post("/live/health")).status_code == 405


def test_redis_layer_reads_outlast_its_blocking_pop() -> None:
    """The Redis client's read timeout exceeds channels_redis's BZPOPMIN wait, so an idle receive never times out."""
    from channels_redis.core import RedisChannelLayer

    from apsara.settings.base import _channel_layers

    config = _channel_layers("redis://127.0.0.1:6379/4")["default"]["CONFIG"]
    layer = RedisChannelLayer(**config)
    assert layer.create_pool(0).connection_kwargs["socket_timeout"] > layer.brpop_timeout


async def test_a_wedged_redis_receive_is_reported_then_repaired(settings, connect, live_user) -> None:
    """channels_redis' receive lock held by a task that will never release it (what a receive cancelled while its
    cancellation handling failed left behind): no socket of the process hears a control message. Health reports the
    timeout and repairs it; the held-up message then arrives and the next probe is 200."""
    from channels.layers import get_channel_layer

    from conversations.events import user_group
    from tests.live.inprocess import layer_settings

    settings.CHANNEL_LAYERS = layer_settings("redis")  # skipped without REDIS_URL; a failure in CI
    layer = get_channel_layer()
    # Another socket's receive (of another user): it reads Redis for the process, and keeps channels_redis from
    # resetting its lock, which it does whenever no receive at all is under way.
    bystander = asyncio.ensure_future(layer.receive(await layer.new_channel()))
    await asyncio.sleep(0.1)
    orphan = asyncio.ensure_future(layer.receive_lock.acquire())  # first in line; nobody releases what it gets
    await asyncio.sleep(0)
    ws = await connect()

    async def announce(marker: str) -> None:
        await layer.group_send(user_group(live_user.pk), {"type": "message.saved", "conversationId": marker})

    try:
        await announce("first")
        await ws.expect("message_saved", within=5, conversationId="first")
        assert orphan.done() and layer.receive_lock.locked()  # the orphan took the lock as the reader let it go
        await announce("held-up")
        with pytest.raises(AssertionError):
            await ws.expect("message_saved", within=1, conversationId="held-up")  # wedged: nothing is delivered

        response = await AsyncClient().get("/live/health")
        assert response.status_code == 503
        assert response.json()["channelLayer"] == {
            "status": "error",
            "backend": "RedisChannelLayer",
            "error": "timeout",
            "repaired": "receive lock held by no reader, released",
        }
        await ws.expect("message_saved", within=5, conversationId="held-up")
        response = await AsyncClient().get("/live/health")
        assert response.status_code == 200, response.json()
    finally:
        bystander.cancel()
        await asyncio.gather(bystander, return_exceptions=True)


async def test_a_redis_reader_at_work_is_not_mistaken_for_a_wedge(settings, connect) -> None:
    """A receive that holds the lock while it reads Redis is left alone: the repair must not make two readers."""
    from channels.layers import get_channel_layer

    from live.layer_internals import repair_receive_lock
    from tests.live.inprocess import layer_settings

    settings.CHANNEL_LAYERS = layer_settings("redis")
    layer = get_channel_layer()
    await connect()
    await asyncio.sleep(0.2)
    assert layer.receive_lock.locked()
    assert await repair_receive_lock(layer) is None
    assert layer.receive_lock.locked()


async def test_a_timed_out_probe_leaves_nothing_in_the_receive_buffer(settings, monkeypatch) -> None:
    """A probe that times out abandons its channel; its ping, delivered later, is dropped by the next probe."""
    from channels.layers import get_channel_layer

    from live import health
    from tests.live.inprocess import layer_settings

    settings.CHANNEL_LAYERS = layer_settings("redis")
    layer = get_channel_layer()
    round_trip = health._round_trip

    async def ping_sent_answer_late(layer: Any, channel: str, nonce: str) -> dict[str, Any]:
        await layer.send(channel, {"type": "health.ping", "nonce": nonce})
        await asyncio.sleep(10)  # the receive side is stuck (say, wedged)
        return {}

    monkeypatch.setattr(health, "_round_trip", ping_sent_answer_late)
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.2)
    assert (await health.channel_layer_check())["error"] == "timeout"
    monkeypatch.setattr(health, "_round_trip", round_trip)
    abandoned = health._abandoned_probes[-1]
    bystander = asyncio.ensure_future(layer.receive(await layer.new_channel()))  # reads Redis: the ping arrives
    try:
        for _ in range(100):
            if abandoned in layer.receive_buffer:
                break
            await asyncio.sleep(0.02)
        assert abandoned in layer.receive_buffer
        monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 2.0)
        bystander.cancel()  # the probe must read Redis itself
        assert (await health.channel_layer_check())["status"] == "ok"
        assert abandoned not in layer.receive_buffer
    finally:
        bystander.cancel()
        await asyncio.gather(bystander, return_exceptions=True)
