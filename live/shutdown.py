"""This process's live calls as a whole: handing them over when it shuts down, and checking them after a lapse.

``apsara.serve`` calls ``drain`` when told to stop (SIGTERM, SIGINT), after it has stopped accepting connections.
Each live session finishes the model's turn, stores the handle that covers it, flushes what was recorded and
detaches; its browser is told ``session_reconnecting`` (SERVER_RESTART) and the socket closes with 1012, so the page
reconnects through the load balancer and another process resumes the call. Bounded by ``LIVE_DRAIN_SECONDS``;
then the process drops its lease, so anything it could not hand over in time is taken over at once.

When this process's lease ran out while it lived (``live.lease``: the database stalled for longer than a lease),
another process may have taken some of its calls over meanwhile; ``verify_holds`` finds those and hands them over
the same way, so no call is served by two processes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from live import metrics, services
from live.lease import lease

if TYPE_CHECKING:
    from live.session.client import LiveClient

logger = logging.getLogger(__name__)

RELEASE_TIMEOUT_SECONDS = 2.0

_clients: weakref.WeakSet[LiveClient] = weakref.WeakSet()
_draining = False
_loop: asyncio.AbstractEventLoop | None = None
_handing_over: set[asyncio.Future[bool]] = set()


def track(client: LiveClient) -> None:
    """A socket of this process (created on the server's loop): drained at shutdown, checked after a lapse."""
    global _loop
    _clients.add(client)
    _loop = asyncio.get_running_loop()


def draining() -> bool:
    """True once this process is shutting down (new sockets and sessions are sent elsewhere)."""
    return _draining


async def drain(within: float | None = None) -> int:
    """Hand every live call of this process over (see the module docstring); return how many were handed over."""
    global _draining
    _draining = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (settings.LIVE_DRAIN_SECONDS if within is None else within)
    started: dict[LiveClient, asyncio.Future[bool]] = {}
    while True:
        # Again and again: a session a socket was opening when the drain began starts afterwards (and is drained).
        found = [c for c in list(_clients) if c.run is not None and c not in started]
        if found:
            logger.info("live: draining %d session(s)", len(found))
        for client in found:
            started[client] = asyncio.ensure_future(client.drain())
        pending = [task for task in started.values() if not task.done()]
        if not pending or loop.time() >= deadline:
            break
        await asyncio.wait(pending, timeout=min(0.2, max(0.0, deadline - loop.time())))
    handed_over = sum(1 for task in started.values() if task.done() and not task.cancelled() and _result(task))
    if pending:
        logger.warning("live: %d session(s) not handed over in time; they are taken over elsewhere", len(pending))
    metrics.sessions_drained(handed_over)
    try:
        await asyncio.wait_for(sync_to_async(_release, thread_sensitive=False)(), RELEASE_TIMEOUT_SECONDS)
    except Exception:
        logger.warning("live: dropping the lease failed (it runs out by itself)", exc_info=True)
    return handed_over


def _release() -> None:
    try:
        lease.release()
    finally:
        connection.close()  # this executor thread's connection goes back (to the pool), never held by an idle thread


def _result(task: asyncio.Future[bool]) -> bool:
    if task.exception() is not None:
        logger.warning("live: handing a session over failed", exc_info=task.exception())
        return False
    return task.result()


async def verify_holds() -> int:
    """Hand over every call of this process whose row another process took meanwhile; return how many."""
    lost = 0
    for client in list(_clients):
        run = client.run
        if run is None:
            continue
        held = await client.db(services.live_session_is_held)(live_session_pk=run.row.pk, holder=run.row.holder)
        if not held and client.run is run:
            logger.warning(
                "live: %s was taken over while this process's lease had run out; handing it over", run.public_id
            )
            lost += 1
            task = asyncio.ensure_future(client.drain())
            _handing_over.add(task)
            task.add_done_callback(_handing_over.discard)
    return lost


def _on_lapse() -> None:
    """From the lease's thread: check this process's calls on the server's loop."""
    if _loop is not None and not _loop.is_closed():
        asyncio.run_coroutine_threadsafe(verify_holds(), _loop)


lease.on_lapse = _on_lapse
