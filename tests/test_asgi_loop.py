"""apsara.asgi_loop: a thread that sync_to_async runs sees the loop that called it; other threads see None."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync, sync_to_async

from apsara.asgi_loop import main_event_loop


async def test_a_sync_to_async_thread_sees_the_callers_loop():
    assert await sync_to_async(main_event_loop, thread_sensitive=False)() is asyncio.get_running_loop()


async def test_so_does_a_thread_of_a_custom_executor():
    # live.db_lanes runs its calls this way (channels' DatabaseSyncToAsync on a lane's executor).
    with ThreadPoolExecutor(1) as executor:
        seen = await SyncToAsync(main_event_loop, thread_sensitive=False, executor=executor)()
    assert seen is asyncio.get_running_loop()


def test_any_other_thread_sees_none():
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(main_event_loop()))
    thread.start()
    thread.join()
    assert result == [None]
