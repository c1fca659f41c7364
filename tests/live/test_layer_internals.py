"""live.layer_internals: the installed Channels and channels_redis still have what it relies on.

An upgrade that renames or reshapes one of these internals fails here, by name, rather than silently turning a
repair or a cleanup into a no-op in production.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from live import layer_internals
from live.layer_internals import RELIED_ON
from tests.live.inprocess import layer_settings


def _missing(layer: Any) -> list[str]:
    return [name for name in RELIED_ON[type(layer).__name__] if not hasattr(layer, name)]


async def test_channels_redis_still_has_what_the_live_app_relies_on(settings):
    settings.CHANNEL_LAYERS = layer_settings("redis")
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"
    assert not _missing(layer), f"channels_redis {version('channels-redis')} lacks {_missing(layer)}"
    assert isinstance(layer.receive_buffer, dict)
    assert isinstance(layer.receive_clean_locks.locks, dict)
    channel = await layer.new_channel()
    receive = asyncio.create_task(layer.receive(channel))
    try:
        await asyncio.sleep(0.3)
        # One receive reads Redis for the process, under the receive lock, inside receive_single.
        assert isinstance(layer.receive_lock, asyncio.Lock) and layer.receive_lock.locked()
        assert layer_internals.reading_redis(receive), f"no {layer_internals.READER_QUALNAME} in the receive's stack"
        # Nobody holds the lock without reading: there is nothing to repair.
        assert await layer_internals.repair_receive_lock(layer) is None
        await layer.send(channel, {"type": "test.ping"})
        assert (await asyncio.wait_for(receive, 5))["type"] == "test.ping"
    finally:
        receive.cancel()
        await asyncio.gather(receive, return_exceptions=True)
    # A message for a channel nobody reads any more stays in the process's buffer until it is forgotten.
    other = await layer.new_channel()
    layer.receive_buffer[other].put_nowait({"type": "late"})
    layer_internals.forget_channel(layer, other)
    assert other not in layer.receive_buffer
    await layer.flush()
    await layer.close_pools()


async def test_an_orphaned_receive_lock_is_found_and_released(settings):
    settings.CHANNEL_LAYERS = layer_settings("redis")
    layer = get_channel_layer()
    channel = await layer.new_channel()
    receive = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.3)
    receive.cancel()
    await asyncio.gather(receive, return_exceptions=True)
    if layer.receive_lock is None:  # a cancelled last receive resets it
        layer.receive_lock = asyncio.Lock()
    await layer.receive_lock.acquire()  # held by nobody reading: what a failed cancellation once left behind
    assert await layer_internals.repair_receive_lock(layer) == "receive lock held by no reader, released"
    assert not layer.receive_lock.locked()
    await layer.flush()
    await layer.close_pools()


async def test_the_in_memory_layer_still_has_what_the_live_app_relies_on():
    layer = InMemoryChannelLayer()
    assert not _missing(layer), f"channels {version('channels')} lacks {_missing(layer)}"
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "late"})
    assert channel in layer.channels
    layer_internals.forget_channel(layer, channel)
    assert channel not in layer.channels
    assert await layer_internals.repair_receive_lock(layer) is None  # not channels_redis: left alone


async def test_a_task_not_reading_redis_is_told_apart():
    task = asyncio.create_task(asyncio.sleep(1))
    await asyncio.sleep(0)
    assert not layer_internals.reading_redis(task)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
