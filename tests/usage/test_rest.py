"""Typed replies (POST /api/ai/generate) against gemini_sim: their usage as the simulator reported it; the quota."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from conversations.models import Message
from gemini.client import get_client
from tests.asgi import AsgiStream, session_cookie_for
from usage.models import UsageDay
from usage.quotas import next_reset
from usage.services import usage_add, utc_today

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections(settings: Any) -> AsyncIterator[None]:
    settings.CONVERSATION_TITLES = False  # a title is another request to Gemini: not this test's
    yield
    await sync_to_async(connections.close_all)()


async def generate(user: Any, body: dict[str, Any]) -> tuple[AsgiStream, list[tuple[str, dict[str, Any]]]]:
    """The request's stream and its events (an answer that is no stream: one ``("json", body)``)."""
    stream = AsgiStream("/api/ai/generate", body=body, session=await sync_to_async(session_cookie_for)(user))
    await stream.start()
    if stream.status == 200:
        events = [event async for event in stream.events()]
    else:
        events = [("json", json.loads(b"".join([piece async for piece in stream.body_pieces()])))]
    await stream.finish()
    return stream, events


def _replay(record: dict[str, Any]) -> Any:
    """Ask the simulator the very request the app sent (it answers the same usage), without streaming."""
    model = record["path"].rsplit("/", 1)[-1].split(":", 1)[0]
    client = get_client()
    return client.models.generate_content(model=model, contents=record["body"]["contents"]).usage_metadata


async def test_typed_replies_count_the_tokens_gemini_sim_reported(user, gemini_sim, settings):
    for prompt in ("Hello there, how are you today?", "Tell me something about the sea, in a few words."):
        _, events = await generate(user, {"prompt": prompt})
        assert events[-1][0] == "done"
    asked = [r for r in gemini_sim.records(type="http") if r["path"].endswith(":streamGenerateContent")]
    assert len(asked) == 2
    reported = [await sync_to_async(_replay)(record) for record in asked]
    row = await sync_to_async(UsageDay.objects.get)(user=user)
    assert row.model == settings.GEMINI_TEXT_MODEL and row.day == utc_today()
    assert row.tokens_in == sum(u.prompt_token_count for u in reported) > 0
    assert row.tokens_out == sum(u.candidates_token_count for u in reported) > 0
    assert (row.requests, row.sessions, row.audio_in_seconds, row.audio_out_seconds) == (2, 0, 0, 0)


async def test_the_token_quota_refuses_generation_until_the_next_utc_day(user, gemini_sim, settings):
    settings.USAGE_DAILY_TOKENS = 50
    yesterday = utc_today() - dt.timedelta(days=1)
    await sync_to_async(usage_add)(user_id=user.pk, model="old", day=yesterday, tokens_in=10_000)
    _, events = await generate(user, {"prompt": "Yesterday's usage does not count today."})
    assert events[-1][0] == "done"
    await sync_to_async(usage_add)(user_id=user.pk, model="m", tokens_in=50)

    stream, answer = await generate(user, {"prompt": "One more?"})
    assert stream.status == 429
    error = answer[0][1]["error"]
    assert error["code"] == "quota_exceeded" and error["field"] is None and error["quota"] == "tokens"
    assert error["resetsAt"] == next_reset().isoformat().replace("+00:00", "Z")
    assert "resets at 00:00 UTC" in error["message"]
    assert 0 < int(stream.headers["retry-after"]) <= 86_400
    assert not await sync_to_async(Message.objects.filter(text="One more?").exists)(), "nothing was saved"

    # The next UTC day: today's rows become yesterday's.
    await sync_to_async(UsageDay.objects.filter(user=user, day=utc_today()).update)(day=yesterday)
    _, events = await generate(user, {"prompt": "One more?"})
    assert events[-1][0] == "done"
