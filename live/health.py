"""Health checks behind ``GET /live/health``: the database, the channel layer and which Gemini is configured.

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

CHECK_TIMEOUT_SECONDS = 2.0
ORPHAN_CHECK_INTERVAL_SECONDS = 0.05

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
    that machinery is wedged, not only when Redis is unreachable. A wedge found is repaired (``_repair_receive``)
    and reported as ``repaired``: this probe still fails (messages may have been held up meanwhile), the next one
    shows whether the repair worked.
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
        repaired = await _repair_receive(layer)
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
    buffers = getattr(layer, "receive_buffer", None)
    if isinstance(buffers, dict):
        for channel in _abandoned_probes:
            buffers.pop(channel, None)


async def _repair_receive(layer: Any) -> str | None:
    """Release channels_redis' receive lock if it is held while nothing reads Redis; say what was done.

    channels_redis lets one receive at a time read the process's Redis queue for every channel of the process,
    under ``receive_lock``; a receive holding it is inside ``receive_single`` (which holds the per-queue clean lock
    while it reads). A lock held with no such reader belongs to a task that will never release it: a receive
    cancelled while channels_redis' own cancellation handling failed (a KeyError before it cancelled its helper
    tasks, which live.consumers once caused) leaves exactly that, and then no socket of the process hears a control
    message again (message_saved, a staff end) until the process restarts. A reader that is merely slow (Redis
    stalled or unreachable) is left alone: its read times out by itself (``REDIS_SOCKET_TIMEOUT``).
    """
    found = getattr(layer, "receive_lock", None)
    clean_locks = getattr(getattr(layer, "receive_clean_locks", None), "locks", None)
    if not isinstance(found, asyncio.Lock) or not isinstance(clean_locks, dict):
        return None  # not channels_redis' RedisChannelLayer, or a version built otherwise
    lock: asyncio.Lock = found
    queue_key = layer.prefix + layer.non_local_name(await layer.new_channel())

    def orphaned() -> bool:
        reader = clean_locks.get(queue_key)
        reading = reader is not None and reader.locked()
        return getattr(layer, "receive_lock", None) is lock and lock.locked() and not reading

    # A receive that has just been handed the lock reaches receive_single within a turn or two of the event loop:
    # look a few times before deciding nobody holds it.
    for _ in range(3):
        if not orphaned():
            return None
        await asyncio.sleep(ORPHAN_CHECK_INTERVAL_SECONDS)
    if not orphaned():
        return None
    lock.release()  # the next receive waiting for it reads Redis again, and delivers to everyone waiting
    return "receive lock held by no reader, released"


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
        "database": database,
        "channelLayer": channel_layer,
        "gemini": gemini_check(),
    }
