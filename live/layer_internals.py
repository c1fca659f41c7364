"""Every use of Channels' and channels_redis' private internals, in one place.

Pinned versions (requirements.txt) and ``tests/live/test_layer_internals.py`` keep these honest: that test fails,
naming the attribute, if an installed version no longer has what a function here relies on. Each function does
nothing on a layer built otherwise (the in-memory layer, a future channels_redis), never fails.
"""

from __future__ import annotations

import asyncio
from typing import Any

# The attributes read here, by layer class name: what the internals test checks on the installed versions.
RELIED_ON = {
    "RedisChannelLayer": ("receive_buffer", "receive_lock", "receive_clean_locks", "prefix", "non_local_name"),
    "InMemoryChannelLayer": ("channels",),
}
READER_QUALNAME = "receive_single"  # channels_redis' method that reads Redis for every channel of the process


def forget_channel(layer: Any, channel: str) -> None:
    """Drop what the layer still buffers for ``channel`` of this process, once nothing receives on it any more.

    channels_redis keeps every message for a channel of this process that nobody reads in its process-wide receive
    buffer for good (django/channels_redis#384: ~15 KB per session in ``make bench``'s leak check).
    """
    for name in ("receive_buffer", "channels"):  # channels_redis, the in-memory layer
        buffers = getattr(layer, name, None)
        if isinstance(buffers, dict):
            buffers.pop(channel, None)


def reading_redis(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is, right now, the receive reading Redis for the whole process (in channels_redis'
    ``receive_single``, which only the holder of the layer's receive lock enters)."""
    awaiting: Any = task.get_coro()
    while awaiting is not None:
        if getattr(awaiting, "__qualname__", "").endswith(READER_QUALNAME):
            return True
        awaiting = getattr(awaiting, "cr_await", None)
    return False


ORPHAN_CHECK_INTERVAL_SECONDS = 0.05


async def repair_receive_lock(layer: Any) -> str | None:
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
