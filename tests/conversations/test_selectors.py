"""Reads: per-user lookups, one chronological message list, history as Gemini turns."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, TypedDict, cast

import pytest
from django.http import Http404
from django.utils import timezone

from conversations import selectors, services
from conversations.models import Conversation, Message
from tests.factories import ConversationFactory, MessageFactory, UserFactory

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs' helper, needed only by mypy

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


def at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


class MessageCount(TypedDict):
    message_count: int


@pytest.fixture
def mixed(user) -> Conversation:
    """A conversation where REST and live messages interleave in time (saved out of order, as live flushes are)."""
    conversation = services.conversation_create(owner=user)
    rows: list[tuple[dt.datetime, str, str, dict[str, Any]]] = [
        (at(30), "model", "live", {"output_transcription": "spoken answer", "text": ""}),
        (at(0), "user", "rest", {"text": "typed question"}),
        (at(10), "model", "rest", {"text": "typed answer"}),
        (at(20), "user", "live", {"input_transcription": "spoken question"}),
        (at(40), "user", "rest", {"text": "   "}),  # nothing to say: skipped in history
        (at(50), "tool", "live", {"tool_data": {"name": "f"}}),  # not a turn
        (at(60), "user", "rest", {"text": "last typed"}),
    ]
    for created_at, role, message_type, fields in rows:
        services.message_create(
            conversation=conversation, role=role, message_type=message_type, created_at=created_at, **fields
        )
    return conversation


def test_message_list_is_chronological_across_rest_and_live(mixed) -> None:
    """REST and live messages come back in one list, by creation time, whatever order they were saved in."""
    listed = list(selectors.message_list(conversation=mixed))
    assert [m.created_at for m in listed] == sorted(m.created_at for m in listed)
    assert [m.message_type for m in listed][:4] == ["rest", "rest", "live", "live"]


def test_message_list_after_a_message(mixed) -> None:
    """`after` returns only what came later, including messages saved in the same instant."""
    first = selectors.message_list(conversation=mixed).first()
    assert first is not None
    same_instant = services.message_create(conversation=mixed, role="model", text="tie", created_at=first.created_at)
    after = list(selectors.message_list(conversation=mixed, after=first))
    assert after[0] == same_instant
    assert first not in after
    assert len(after) == Message.objects.filter(conversation=mixed).count() - 1


def test_history_turns_are_oldest_first_with_transcriptions_for_audio(mixed) -> None:
    """History is the words of each message in order; transcriptions stand in for audio; empty and tool skipped."""
    turns = selectors.conversation_history_turns(conversation=mixed)
    assert turns == [
        {"role": "user", "parts": [{"text": "typed question"}]},
        {"role": "model", "parts": [{"text": "typed answer"}]},
        {"role": "user", "parts": [{"text": "spoken question"}]},
        {"role": "model", "parts": [{"text": "spoken answer"}]},
        {"role": "user", "parts": [{"text": "last typed"}]},
    ]


def test_history_limit_takes_the_latest_messages(mixed) -> None:
    """`limit` keeps the most recent messages (empty ones count as loaded but give no turn)."""
    history = selectors.conversation_history(conversation=mixed, limit=3)
    assert history.messages_loaded == 3
    assert [t["parts"][0]["text"] for t in history.turns] == ["spoken answer", "last typed"]


def test_history_before_a_message(mixed) -> None:
    """`before` leaves out that message and everything after it."""
    last = selectors.message_list(conversation=mixed).last()
    turns = selectors.conversation_history_turns(conversation=mixed, before=last)
    assert turns[-1] == {"role": "model", "parts": [{"text": "spoken answer"}]}


def test_history_of_a_long_conversation_is_the_last_20(user) -> None:
    """Only the last 20 messages are sent to Gemini."""
    conversation = services.conversation_create(owner=user)
    for i in range(25):
        services.message_create(conversation=conversation, role="user" if i % 2 == 0 else "model", text=f"m{i}")
    turns = selectors.conversation_history_turns(conversation=conversation)
    assert [t["parts"][0]["text"] for t in turns] == [f"m{i}" for i in range(5, 25)]


def test_message_history_text_prefers_text_then_the_speaker_s_transcription() -> None:
    """A model turn uses its output transcription; a user turn its input transcription."""
    model = Message(role="model", text="", input_transcription="heard", output_transcription="said")
    user = Message(role="user", text="", input_transcription="heard", output_transcription="")
    typed = Message(role="user", text=" typed ", input_transcription="heard")
    assert selectors.message_history_text(model) == "said"
    assert selectors.message_history_text(user) == "heard"
    assert selectors.message_history_text(typed) == "typed"


def test_conversation_list_for_user_is_only_theirs_newest_first(user, other_user) -> None:
    """Each user sees only their conversations, most recently updated first, with message counts."""
    old = ConversationFactory.create(owner=user, updated_at=timezone.now() - dt.timedelta(days=1))
    new = ConversationFactory.create(owner=user)
    MessageFactory.create_batch(2, conversation=new)
    ConversationFactory.create(owner=other_user)
    # The selector's return type drops the message_count annotation it adds.
    listed = cast(
        "list[WithAnnotations[Conversation, MessageCount]]", list(selectors.conversation_list_for_user(user=user))
    )
    assert listed == [new, old]
    assert [c.message_count for c in listed] == [2, 0]


def test_conversation_get_for_user_is_404_for_someone_else(user, other_user) -> None:
    """Another user's conversation and an unknown id look the same: not found."""
    theirs = ConversationFactory.create(owner=other_user)
    with pytest.raises(Http404):
        selectors.conversation_get_for_user(user=user, public_id=theirs.public_id)
    with pytest.raises(Http404):
        selectors.conversation_get_for_user(user=user, public_id="conv_missing")
    assert selectors.conversation_get_for_user(user=other_user, public_id=theirs.public_id) == theirs


@pytest.mark.django_db
def test_an_operator_names_a_user_by_username_email_or_id_but_never_by_a_shared_email():
    ada = UserFactory.create(username="ada", email="Ada@example.com")
    assert selectors.user_find(reference="ada") == ada
    assert selectors.user_find(reference="ada@EXAMPLE.com") == ada
    assert selectors.user_find(reference=str(ada.pk)) == ada
    UserFactory.create(username="ada2", email="ada@example.com")  # emails are not unique
    assert selectors.user_find(reference="ada@example.com") is None  # which one? the operator gives a username
    assert selectors.user_find(reference="nobody") is None
