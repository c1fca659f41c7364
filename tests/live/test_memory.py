"""live.memory: one heap trim after sessions end, however many end at once."""

from __future__ import annotations

import asyncio

import pytest

from live import memory


async def test_sessions_ending_together_cause_one_trim_later(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "malloc_trim", calls.append)
    monkeypatch.setattr(memory, "TRIM_DELAY_SECONDS", 0.05)
    for _ in range(50):
        memory.trim_soon()
    assert calls == []  # not on the event loop, not at once
    await asyncio.sleep(0.2)
    assert calls == [0]
    memory.trim_soon()  # a later ending schedules the next one
    await asyncio.sleep(0.2)
    assert calls == [0, 0]


def test_glibc_trim_is_found_here() -> None:
    # The project's machines run glibc; without it trim_soon() is a no-op.
    assert memory.malloc_trim is not None
    assert memory.malloc_trim(0) in (0, 1)
