"""GET /live/health: database, channel layer and Gemini mode; 200 when healthy, 503 otherwise."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import AsyncClient

from apsara import gemini

pytestmark = pytest.mark.django_db(transaction=True)  # the database check runs in a worker thread


async def test_health_reports_ok_when_dependencies_answer(settings) -> None:
    """With the database and the channel layer answering, the report is ok and says which Gemini is used."""
    started_before = gemini.simulator_started()  # earlier tests in this process may have started it
    response = await AsyncClient().get("/live/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
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
    assert gemini.simulator_started() == started_before  # a health probe never starts the simulator
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
