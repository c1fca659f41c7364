"""A graceful shutdown of this server process: hand every live call over to another process, then let go.

``apsara.serve`` calls ``drain`` when told to stop (SIGTERM, SIGINT), after it has stopped accepting connections.
Each live session finishes the model's turn, stores the handle that covers it, flushes what was recorded and
detaches; its browser is told ``session_reconnecting`` (SERVER_RESTART) and the socket closes with 1012, so the page
reconnects through the load balancer and another process resumes the call. Bounded by ``LIVE_DRAIN_SECONDS``;
then the process drops its lease, so anything it could not hand over in time is taken over at once.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.conf import settings

from live import metrics
from live.lease import lease

if TYPE_CHECKING:
    from live.session.client import LiveClient

logger = logging.getLogger(__name__)

_clients: weakref.WeakSet[LiveClient] = weakref.WeakSet()
_draining = False


def track(client: LiveClient) -> None:
    """A socket of this process: drained at shutdown."""
    _clients.add(client)


def draining() -> bool:
    """True once this process is shutting down (new sockets are sent elsewhere)."""
    return _draining


async def drain(within: float | None = None) -> int:
    """Hand every live call of this process over (see the module docstring); return how many were handed over."""
    global _draining
    _draining = True
    within = settings.LIVE_DRAIN_SECONDS if within is None else within
    clients = [client for client in list(_clients) if client.run is not None]
    handed_over = 0
    if clients:
        logger.info("live: draining %d session(s) (at most %.0f s)", len(clients), within)
        tasks = [asyncio.ensure_future(client.drain()) for client in clients]
        done, pending = await asyncio.wait(tasks, timeout=within)
        handed_over = sum(1 for task in done if not task.cancelled() and task.exception() is None and task.result())
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                logger.warning("live: draining a session failed", exc_info=task.exception())
        if pending:
            logger.warning("live: %d session(s) not handed over within %.0f s", len(pending), within)
    metrics.sessions_drained(handed_over)
    try:
        await sync_to_async(lease.release, thread_sensitive=False)()
    except Exception:
        logger.warning("live: dropping the lease failed (it runs out by itself)", exc_info=True)
    return handed_over
