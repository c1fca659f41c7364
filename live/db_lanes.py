"""How the live bridge reaches the database: in worker threads, one lane per user.

Channels' ``database_sync_to_async`` runs every call on one thread that the whole process shares
(``thread_sensitive=True``). When a burst of sessions ended, their recordings (two turns each) queued on that
thread ahead of the next sessions' first queries, so 100 arrivals waited 1.3 s at p50 for ``session_created``
where the baseline proxy took 0.12 s (``make bench``, leak-check cycles). Here a user's calls run in order on one
of ``LIVE_DATABASE_LANES`` single-thread lanes, as they did on the shared thread (a handle written after another
never lands before it), while different users' calls run side by side. With one lane (the default on SQLite,
which takes one writer at a time) calls go to Channels' shared thread as before.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from channels.db import DatabaseSyncToAsync, database_sync_to_async
from django.conf import settings

P = ParamSpec("P")
R = TypeVar("R")

_lanes: list[ThreadPoolExecutor] = []
_lanes_lock = threading.Lock()


def lane_count() -> int:
    """How many lanes the settings ask for (at least one)."""
    return max(1, int(settings.LIVE_DATABASE_LANES))


def _lane(user_pk: int) -> ThreadPoolExecutor | None:
    count = lane_count()
    if count == 1:
        return None
    with _lanes_lock:
        while len(_lanes) < count:  # started on first use, kept for the life of the process
            _lanes.append(ThreadPoolExecutor(1, thread_name_prefix=f"live-db-{len(_lanes)}"))
    return _lanes[user_pk % count]


def for_user(user_pk: int, func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``func`` as an awaitable that runs in ``user_pk``'s lane (connections closed before and after, as Channels
    does)."""
    executor = _lane(user_pk)
    if executor is None:
        return database_sync_to_async(func)
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=executor)
