"""live.memory: ended sessions' memory is collected and trimmed soon after, in one pass per burst."""

from __future__ import annotations

import asyncio
import weakref

import pytest

from live import memory


class _Node:
    """Something that lives in a reference cycle, as a session's objects do."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(memory, "malloc_trim", calls.append)
    monkeypatch.setattr(memory, "RELEASE_DELAY_SECONDS", 0.05)
    monkeypatch.setattr(memory, "MIN_INTERVAL_SECONDS", 0.3)
    return calls


async def test_a_burst_of_endings_is_collected_and_trimmed_once(trims: list[int]) -> None:
    node = _Node()
    gone = weakref.ref(node)
    del node
    for _ in range(50):
        memory.release_soon()
    assert gone() is not None and trims == []  # not at once, not on the caller's time
    await asyncio.sleep(0.2)
    assert gone() is None  # the cycle was collected
    assert trims == [0]


async def test_releases_are_at_least_the_minimum_interval_apart(
    trims: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An interval well above a full collection's time: late in a whole run the heap is big and gc.collect() slow.
    monkeypatch.setattr(memory, "MIN_INTERVAL_SECONDS", 2.0)
    memory.release_soon()
    async with asyncio.timeout(5):
        while trims != [0]:  # noqa: ASYNC110 - trims are appended from an executor thread
            await asyncio.sleep(0.02)
    memory.release_soon()  # another session ends right away: it waits for the interval
    await asyncio.sleep(0.3)
    assert trims == [0]
    async with asyncio.timeout(5):
        while trims != [0, 0]:  # noqa: ASYNC110 - as above
            await asyncio.sleep(0.05)


def test_glibc_trim_is_found_here() -> None:
    # The project's machines run glibc; without it only the collection runs.
    assert memory.malloc_trim is not None
    assert memory.malloc_trim(0) in (0, 1)
