"""Health checks behind ``GET /live/health``: the database, the channel layer and which Gemini is configured.

The report also names the server process that answered (``worker``): behind a load balancer that is how an
operator, or a test, sees which worker served a request.

Nothing here calls Gemini (a health probe every few seconds must not spend quota) and nothing secret is
reported: failures are named by their exception class only, since driver messages can carry hosts and users.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from gemini.client import Mode, current_mode, simulator_started
from live import layer_internals
from live.lease import worker_name

CHECK_TIMEOUT_SECONDS = 2.0

logger = logging.getLogger(__name__)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _database_ping() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # Health runs in a worker thread outside the request cycle: give the connection back.
        connection.close()


async def database_check() -> dict[str, Any]:
    """Run ``SELECT 1`` on the default database."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(sync_to_async(_database_ping, thread_sensitive=False)(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return {"status": "error", "error": "timeout"}
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}
    return {"status": "ok", "vendor": connection.vendor, "latencyMs": _elapsed_ms(started)}


async def channel_layer_check() -> dict[str, Any]:
    """Send a message to a fresh channel of this process and receive it back; on a timeout, repair what can be.

    The round trip goes through the same receive machinery as the sockets' control messages, so it times out when
    that machinery is wedged, not only when Redis is unreachable. A wedge found is repaired
    (``layer_internals.repair_receive_lock``) and reported as ``repaired``: this probe still fails (messages may
    have been held up meanwhile), the next one shows whether the repair worked.
    """
    layer = get_channel_layer()
    if layer is None:
        return {"status": "error", "error": "not configured"}
    backend = type(layer).__name__
    _forget_abandoned_probes(layer)
    started = time.perf_counter()
    nonce = secrets.token_hex(8)
    channel = await layer.new_channel()
    try:
        received = await asyncio.wait_for(_round_trip(layer, channel, nonce), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        _abandoned_probes.append(channel)  # its message may still come; see _forget_abandoned_probes
        report: dict[str, Any] = {"status": "error", "backend": backend, "error": "timeout"}
        repaired = await layer_internals.repair_receive_lock(layer)
        if repaired:
            report["repaired"] = repaired
            logger.warning("live health: the channel layer's receive was wedged (%s); repaired", repaired)
        else:
            logger.warning("live health: the channel layer did not answer within %.1f s", CHECK_TIMEOUT_SECONDS)
        return report
    except Exception as exc:
        return {"status": "error", "backend": backend, "error": type(exc).__name__}
    if received.get("nonce") != nonce:
        return {"status": "error", "backend": backend, "error": "round trip returned another message"}
    return {"status": "ok", "backend": backend, "latencyMs": _elapsed_ms(started)}


async def _round_trip(layer: Any, channel: str, nonce: str) -> dict[str, Any]:
    await layer.send(channel, {"type": "health.ping", "nonce": nonce})
    received: dict[str, Any] = await layer.receive(channel)
    return received


# Channels of probes that timed out: their ping may still be delivered later, into channels_redis' receive buffer,
# where nobody would read it (django/channels_redis#384). Bounded: a long outage probed every second keeps 64.
_abandoned_probes: collections.deque[str] = collections.deque(maxlen=64)


def _forget_abandoned_probes(layer: Any) -> None:
    for channel in _abandoned_probes:
        layer_internals.forget_channel(layer, channel)


def gemini_check() -> dict[str, Any]:
    """Describe the configured Gemini (mode and models; never a key)."""
    mode = current_mode()
    report: dict[str, Any] = {"mode": str(mode), "liveModel": settings.GEMINI_LIVE_MODEL}
    if mode is Mode.VERTEX:
        report["location"] = settings.GOOGLE_CLOUD_LOCATION
    if mode is Mode.SIMULATOR:
        # Only started on first use: a health probe should not start it.
        report["simulatorStarted"] = simulator_started()
    return report


async def health_report() -> dict[str, Any]:
    """Run every check concurrently and summarise: ``status`` is ``ok`` only if all dependencies are."""
    database, channel_layer = await asyncio.gather(database_check(), channel_layer_check())
    healthy = database["status"] == "ok" and channel_layer["status"] == "ok"
    return {
        "status": "ok" if healthy else "error",
        "worker": worker_name(),
        "database": database,
        "channelLayer": channel_layer,
        "gemini": gemini_check(),
    }
