"""live.db_lanes: a user's database calls in order on one lane, different users' side by side."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from conversations.models import User
from live import db_lanes

pytestmark = pytest.mark.django_db(transaction=True)  # Channels' wrapper closes stale connections around each call


def _thread_name() -> str:
    return threading.current_thread().name


@pytest.fixture
def lanes(settings: Any) -> int:
    settings.LIVE_DATABASE_LANES = 3
    return 3


async def test_a_users_calls_run_in_order_on_one_lane(lanes: int) -> None:
    seen: list[tuple[int, str]] = []

    def record(index: int) -> None:
        seen.append((index, threading.current_thread().name))

    await asyncio.gather(*(db_lanes.for_user(7, record)(i) for i in range(20)))
    assert [index for index, _ in seen] == list(range(20))
    assert len({name for _, name in seen}) == 1
    assert seen[0][1].startswith("live-db-")


async def test_different_users_calls_run_side_by_side(lanes: int) -> None:
    # Each call waits for the other: on one shared thread this would time out instead of passing.
    meeting = threading.Barrier(2, timeout=5)

    def meet() -> str:
        meeting.wait()
        return _thread_name()

    first, second = await asyncio.gather(db_lanes.for_user(1, meet)(), db_lanes.for_user(2, meet)())
    assert first != second


async def test_one_lane_is_channels_shared_thread(settings: Any) -> None:
    settings.LIVE_DATABASE_LANES = 1
    assert await db_lanes.for_user(5, _thread_name)() == await database_sync_to_async(_thread_name)()


async def test_lanes_reach_the_database_side_by_side() -> None:
    # With the configured lanes: several on PostgreSQL (CI), one on SQLite (one writer at a time).
    if connection.vendor != "sqlite":
        assert db_lanes.lane_count() > 1

    def create_and_count(username: str) -> int:
        User.objects.create_user(username=username, password="x")
        return User.objects.filter(username__startswith="lane-").count()

    counts = await asyncio.gather(*(db_lanes.for_user(i, create_and_count)(f"lane-{i}") for i in range(6)))
    assert max(counts) == 6
    assert await database_sync_to_async(User.objects.filter(username__startswith="lane-").count)() == 6
