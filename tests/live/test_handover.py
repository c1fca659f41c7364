"""A call outlives its server process: a graceful drain hands it over, a resume waits for a holder letting go.

(The crash case, a process killed while holding a session, is tests/live/test_lease.py; the whole topology with a
browser is tests/deploy.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async

from live import metrics, shutdown
from live.lease import worker_name
from live.models import LiveSession, LiveWorker
from live.protocol import CLOSE_SERVICE_RESTART
from tests.factories import LiveSessionFactory
from tests.live.conftest import MODEL, live_worker, messages_of, session_row
from tests.live.test_resilience import said

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def _serving_again() -> Iterator[None]:
    """Each test drains this process as if it were shutting down; the next one starts with it serving."""
    yield
    shutdown._draining = False


def counted(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or None) or 0.0


async def test_a_drained_call_is_resumed_on_a_new_socket_with_its_memory_and_nothing_doubled(gemini_sim, connect):
    drained_before = counted("apsara_live_sessions_drained_total")
    resumed_before = counted("apsara_live_resumes_total", cause="drain")
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "My name is Ada"}})
    await ws.until_turn_complete()

    assert await shutdown.drain() == 1
    reconnecting = await ws.expect("session_reconnecting")
    assert reconnecting["reason"] == "SERVER_RESTART"
    assert await ws.next() is None and ws.closed_code == CLOSE_SERVICE_RESTART
    assert not ws.of_type("session_ended") and not ws.of_type("session_error")
    row = await session_row(created["sessionId"])
    assert row.status == LiveSession.Status.DETACHED and row.last_error_code == "SERVER_RESTART"
    assert row.resumption_handle  # the handle that covers the finished turn
    assert not await database_sync_to_async(LiveWorker.objects.filter(name=worker_name()).exists)()  # let go
    assert counted("apsara_live_sessions_drained_total") == drained_before + 1

    shutdown._draining = False  # "another process" (this one, serving again) resumes it
    second = await connect()
    await second.send({"type": "resume_session", "data": {"sessionId": created["sessionId"]}})
    resumed = await second.expect("session_resumed")
    assert resumed["contextReloaded"] is False
    await second.send({"type": "send_message", "data": {"text": "What is my name?"}})
    assert "Your name is Ada" in said(await second.until_turn_complete())
    await second.send({"type": "end_session"})
    await second.expect("session_ended")
    stored = await messages_of(created["conversationId"])
    assert (stored[0].role, stored[0].text) == ("user", "My name is Ada")
    assert [m.role for m in stored] == ["user", "model", "user", "model"]  # each turn once
    assert counted("apsara_live_resumes_total", cause="drain") == resumed_before + 1


async def test_a_drain_lets_the_model_finish_its_answer_first(gemini_sim, connect):
    gemini_sim.set_options(realtime_factor=4)  # the story takes a while to tell
    ws = await connect()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send({"type": "send_message", "data": {"text": "Tell me a story in 2 sentences"}})
    while not isinstance(await ws.next(), bytes):  # the answer has started
        pass
    drained = asyncio.ensure_future(shutdown.drain())
    turn = await ws.until_turn_complete(within=20)
    assert not any(isinstance(m, dict) and m.get("type") == "session_reconnecting" for m in turn)
    assert await drained == 1
    await ws.expect("session_reconnecting", reason="SERVER_RESTART")
    stored = await messages_of(created["conversationId"])
    assert [(m.role, m.interrupted) for m in stored] == [("user", False), ("model", False)]


async def test_a_drain_that_runs_out_of_time_still_hands_the_call_over(gemini_sim, connect, settings):
    settings.LIVE_DRAIN_SECONDS = 1.0  # shorter than the answer: it is cut, flagged, and the call is handed over
    gemini_sim.set_options(realtime_factor=1)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    await ws.send({"type": "send_message", "data": {"text": "Tell me a story in 2 sentences"}})
    while not isinstance(await ws.next(), bytes):
        pass
    assert await shutdown.drain() == 1
    await ws.expect("session_reconnecting", reason="SERVER_RESTART")
    row = await session_row(created["sessionId"])
    assert row.status == LiveSession.Status.DETACHED
    stored = await messages_of(created["conversationId"])
    assert [(m.role, m.interrupted) for m in stored] == [("user", False), ("model", True)]


async def test_a_socket_opened_while_draining_is_sent_elsewhere(gemini_sim, connect):
    await shutdown.drain()
    ws = await connect()
    assert await ws.next() is None and ws.closed_code == CLOSE_SERVICE_RESTART


async def test_a_resume_waits_for_the_holding_process_to_let_go(gemini_sim, connect, live_user):
    # Another process holds the session and is draining it: the browser's resume arrives before the row is let go.
    session = await database_sync_to_async(LiveSessionFactory)(
        user=live_user, status=LiveSession.Status.ACTIVE, worker=await live_worker()
    )

    async def let_go() -> None:
        await asyncio.sleep(0.6)
        await database_sync_to_async(LiveSession.objects.filter(pk=session.pk).update)(
            status=LiveSession.Status.DETACHED, last_error_code="SERVER_RESTART", channel_name=""
        )

    letting_go = asyncio.ensure_future(let_go())
    ws = await connect()
    await ws.send({"type": "resume_session", "data": {"sessionId": session.public_id}})
    await ws.expect("session_resumed")
    await letting_go
    assert not ws.of_type("session_error")


async def test_a_resume_of_a_session_a_live_process_keeps_is_refused_after_a_lease(
    gemini_sim, connect, live_user, settings
) -> Any:
    settings.LIVE_LEASE_SECONDS = 0.6
    session = await database_sync_to_async(LiveSessionFactory)(user=live_user, status=LiveSession.Status.ACTIVE)
    ws = await connect()
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await ws.send({"type": "resume_session", "data": {"sessionId": session.public_id}})
    error = (await ws.expect("session_error"))["error"]
    assert error["code"] == "SESSION_IN_USE" and error["retryAfter"] > 0
    assert loop.time() - asked >= 0.6  # it waited for a lease's length before saying so
    row = await session_row(session.public_id)
    assert row.status == LiveSession.Status.ACTIVE and row.worker == session.worker


async def test_a_session_asked_for_on_an_open_socket_while_draining_is_sent_elsewhere(gemini_sim, connect):
    ws = await connect()  # opened before the drain began
    await shutdown.drain()
    await ws.send({"type": "create_session", "data": {"model": MODEL}})
    assert await ws.next() is None and ws.closed_code == CLOSE_SERVICE_RESTART
    assert not await database_sync_to_async(LiveSession.objects.exists)()  # nothing started here


async def test_a_call_another_process_took_while_this_ones_lease_had_lapsed_is_handed_over(gemini_sim, connect):
    ws = await connect()
    created = await ws.create(model=MODEL)
    # This process stalled past its lease; the session was taken for another socket (another process) meanwhile.
    await database_sync_to_async(LiveSession.objects.filter(public_id=created["sessionId"]).update)(
        channel_name="specific.elsewhere!socket", worker="elsewhere:1:x"
    )
    assert await shutdown.verify_holds() == 1
    await ws.expect("session_reconnecting", reason="SERVER_RESTART")
    assert await ws.next() is None and ws.closed_code == CLOSE_SERVICE_RESTART
    row = await session_row(created["sessionId"])
    assert (row.status, row.channel_name) == (LiveSession.Status.ACTIVE, "specific.elsewhere!socket")  # untouched


async def test_a_call_still_held_is_left_alone_by_the_check(gemini_sim, connect):
    ws = await connect()
    await ws.create(model=MODEL)
    assert await shutdown.verify_holds() == 0
    await ws.send({"type": "ping"})
    await ws.expect("pong")


async def test_a_resume_that_fails_after_the_claim_leaves_the_session_resumable(
    gemini_sim, connect, live_user, monkeypatch
):
    from live.lease import lease
    from live.session import client as client_module

    session = await database_sync_to_async(LiveSessionFactory)(user=live_user, status=LiveSession.Status.DETACHED)
    held = lease.held

    def broken(**_: Any) -> None:
        raise RuntimeError("a bug while building the run")

    monkeypatch.setattr(client_module, "LiveRun", broken)
    ws = await connect()
    await ws.send({"type": "resume_session", "data": {"sessionId": session.public_id}})
    assert (await ws.expect("session_error"))["error"]["code"] == "INTERNAL_ERROR"
    assert lease.held == held  # its hold let go
    row = await session_row(session.public_id)
    assert row.status == LiveSession.Status.DETACHED  # not left "connecting" in a process that never runs it
