"""usage.services: what a stored message, a session and a request add to the day's row; concurrent adds lose nothing."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from conversations import services as conversation_services
from conversations.models import Message
from tests.factories import ConversationFactory, UserFactory
from usage.models import UsageDay, UsageQuota
from usage.quotas import next_reset, quota_exceeded
from usage.services import tokens_of, usage_add, utc_today


def test_tokens_of_reads_rest_and_live_usage_metadata():
    assert tokens_of({"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}) == (10, 5)
    assert tokens_of({"promptTokenCount": 7, "responseTokenCount": 3, "totalTokenCount": 10}) == (7, 3)
    assert tokens_of({"promptTokenCount": 7, "thoughtsTokenCount": 4, "candidatesTokenCount": 1}) == (7, 5)
    assert tokens_of({"promptTokenCount": -5, "candidatesTokenCount": "9", "toolUsePromptTokenCount": True}) == (0, 0)


@pytest.mark.django_db
def test_a_stored_message_counts_its_tokens_and_audio_for_its_model():
    conversation = ConversationFactory.create()
    conversation_services.message_create(
        conversation=conversation,
        role=Message.Role.MODEL,
        message_type=Message.MessageType.LIVE,
        text="hi",
        live_config={"model": "gemini-live-x", "sessionId": "live_x"},
        usage={"promptTokenCount": 12, "responseTokenCount": 30, "totalTokenCount": 42},
    )
    conversation_services.message_create(conversation=conversation, role=Message.Role.USER, text="q", model="m-rest")
    row = UsageDay.objects.get(user=conversation.owner)
    assert (row.day, row.model, row.tokens_in, row.tokens_out) == (utc_today(), "gemini-live-x", 12, 30)
    assert not UsageDay.objects.filter(model="m-rest").exists(), "a message with nothing to count adds no row"


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_to_one_row_lose_nothing():
    """Threads (each its own database connection) add to the same row, the first ones racing to create it."""
    user = UserFactory.create()
    threads, adds = 8, 25
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(adds):
                usage_add(user_id=user.pk, model="race", tokens_in=3, tokens_out=1, audio_in_seconds=0.5, requests=1)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    row = UsageDay.objects.get(user=user, model="race")
    total = threads * adds
    assert (row.tokens_in, row.tokens_out, row.requests) == (3 * total, total, total)
    assert row.audio_in_seconds == pytest.approx(0.5 * total)


@pytest.mark.django_db
def test_quota_is_reached_at_the_limit_and_lifts_the_next_utc_day(settings):
    settings.USAGE_DAILY_TOKENS = 100
    settings.USAGE_DAILY_LIVE_MINUTES = 0
    user = UserFactory.create()
    usage_add(user_id=user.pk, model="m", tokens_in=60, tokens_out=39)
    assert quota_exceeded(user=user, live=False) is None
    usage_add(user_id=user.pk, model="other", tokens_out=1)
    exceeded = quota_exceeded(user=user, live=False)
    assert exceeded is not None and exceeded.kind == "tokens" and exceeded.limit == 100
    assert exceeded.resets_at == next_reset() and exceeded.resets_at.time() == dt.time(0, 0)
    assert exceeded.resets_at_iso in exceeded.message and "00:00 UTC" in exceeded.message
    tomorrow = next_reset() + dt.timedelta(minutes=1)
    assert quota_exceeded(user=user, live=False, now=tomorrow) is None, "a new UTC day starts from zero"
    # The person's own quota overrides the default; 0 is unlimited.
    UsageQuota.objects.create(user=user, daily_tokens=0, daily_live_minutes=1)
    assert quota_exceeded(user=user, live=True) is None
    usage_add(user_id=user.pk, model="m", audio_in_seconds=30, audio_out_seconds=30)
    live = quota_exceeded(user=user, live=True)
    assert live is not None and live.kind == "live_minutes"
    assert quota_exceeded(user=user, live=False) is None, "live minutes do not limit typed replies"
