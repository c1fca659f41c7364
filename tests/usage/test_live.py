"""Live calls on /live against gemini_sim: usage as the simulator reported it; quotas refuse and end calls cleanly."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from conversations.models import Message
from live.models import LiveSession
from tests.live.conftest import MODEL, messages_of, session_row
from usage.models import UsageDay, UsageQuota
from usage.quotas import next_reset
from usage.services import usage_add

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@database_sync_to_async
def usage_rows(user: Any) -> list[UsageDay]:
    return list(UsageDay.objects.filter(user=user))


def reported_usage(ws: Any) -> list[dict[str, Any]]:
    """The usageMetadata gemini_sim sent, as relayed to the page."""
    return [m["data"]["usageMetadata"] for m in ws.of_type("session_message") if "usageMetadata" in m["data"]]


async def test_a_live_call_counts_the_tokens_and_audio_gemini_sim_reported(gemini_sim, connect, live_user):
    ws = await connect()
    created = await ws.create(model=MODEL)
    for text in ("Hello, who are you?", "And what can you do?"):
        await ws.send({"type": "send_message", "data": {"text": text, "turnComplete": True}})
        await ws.until_turn_complete()
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended", reason="client")
    reported = reported_usage(ws)
    assert len(reported) == 2
    [row] = await usage_rows(live_user)
    assert row.model == MODEL and row.sessions == 1 and row.requests == 0
    assert row.tokens_in == sum(u["promptTokenCount"] for u in reported) > 0
    assert row.tokens_out == sum(u["responseTokenCount"] for u in reported) > 0
    stored = await messages_of(created["conversationId"])
    spoken = sum(m.audio_duration or 0 for m in stored if m.role == Message.Role.MODEL)
    assert spoken > 0 and row.audio_out_seconds == pytest.approx(spoken)


async def test_a_new_call_is_refused_at_the_quota(gemini_sim, connect, live_user, settings):
    settings.USAGE_DAILY_LIVE_MINUTES = 1
    await database_sync_to_async(usage_add)(user_id=live_user.pk, model=MODEL, audio_in_seconds=61)
    ws = await connect()
    await ws.send({"type": "create_session", "data": {"model": MODEL}})
    error = await ws.expect("session_error")
    assert error["error"]["code"] == "QUOTA_EXCEEDED"
    assert error["error"]["resetsAt"] == next_reset().isoformat().replace("+00:00", "Z")
    assert 0 < error["error"]["retryAfter"] <= 86_400_000
    assert "live minutes" in error["error"]["message"] and "00:00 UTC" in error["error"]["message"]
    assert not await database_sync_to_async(LiveSession.objects.exists)()
    assert gemini_sim.records(type="connect") == []


async def test_a_call_that_crosses_the_quota_is_warned_and_ended_with_every_turn_saved(gemini_sim, connect, live_user):
    await database_sync_to_async(UsageQuota.objects.create)(user=live_user, daily_tokens=1)
    ws = await connect()
    created = await ws.create(model=MODEL)
    await ws.send({"type": "send_message", "data": {"text": "Tell me a story.", "turnComplete": True}})
    warning = await ws.expect("session_error", within=15)
    assert warning["error"]["code"] == "QUOTA_EXCEEDED" and "ends now" in warning["error"]["message"]
    assert warning["sessionId"] == created["sessionId"] and warning["error"]["resetsAt"]
    await ws.expect("session_ended", reason="quota")
    stored = await messages_of(created["conversationId"])
    assert [m.role for m in stored] == [Message.Role.USER, Message.Role.MODEL]
    assert stored[0].text == "Tell me a story." and stored[1].usage and stored[1].audio
    row = await session_row(created["sessionId"])
    assert row.status == LiveSession.Status.ENDED and row.last_error_code == "QUOTA_EXCEEDED"
    # And the next one is refused until the quota lifts.
    await ws.send({"type": "create_session", "data": {"model": MODEL}})
    refused = await ws.expect("session_error")
    assert refused["error"]["code"] == "QUOTA_EXCEEDED"
