"""Writes: conversations, messages, audio files, kind derivation."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from conversations import services
from conversations.audio import pcm16_to_wav
from conversations.models import Conversation, Message
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

REST, LIVE = Message.MessageType.REST, Message.MessageType.LIVE


def add(conversation: Conversation, message_type: str, **kwargs) -> Message:
    return services.message_create(
        conversation=conversation, role=kwargs.pop("role", Message.Role.USER), message_type=message_type, **kwargs
    )


def test_conversation_create_strips_the_title_and_starts_rest(user) -> None:
    """A new conversation belongs to its owner, has a public id and starts as kind rest."""
    conversation = services.conversation_create(owner=user, title="  Trip plans  ")
    assert conversation.title == "Trip plans"
    assert conversation.kind == Conversation.Kind.REST
    assert re.fullmatch(r"conv_[0-9a-f]{24}", conversation.public_id)


def test_conversation_create_rejects_a_title_that_is_too_long(user) -> None:
    """Titles longer than 200 characters are refused."""
    with pytest.raises(ValidationError) as info:
        services.conversation_create(owner=user, title="x" * 201)
    assert "title" in info.value.message_dict


def test_conversation_rename_changes_title_and_touches_updated_at(user) -> None:
    """Renaming saves the new title and moves updated_at forward."""
    conversation = services.conversation_create(owner=user, title="Old")
    before = conversation.updated_at
    services.conversation_rename(conversation=conversation, title="New")
    conversation.refresh_from_db()
    assert conversation.title == "New"
    assert conversation.updated_at > before


@pytest.mark.parametrize(
    ("types", "kind"),
    [
        ([REST], "rest"),
        ([REST, REST], "rest"),
        ([LIVE], "live"),
        ([LIVE, LIVE], "live"),
        ([REST, LIVE], "hybrid"),
        ([LIVE, REST], "hybrid"),
        ([LIVE, LIVE, REST, REST], "hybrid"),
    ],
)
def test_kind_is_derived_from_message_types(user, types: list[str], kind: str) -> None:
    """REST only → rest, live only → live, both → hybrid, whatever the order."""
    conversation = services.conversation_create(owner=user)
    for message_type in types:
        add(conversation, message_type)
    assert conversation.kind == kind
    conversation.refresh_from_db()
    assert conversation.kind == kind


def test_empty_conversation_keeps_the_kind_it_was_created_with(user) -> None:
    """A conversation a live session created is live before its first message, and stays live after one."""
    conversation = services.conversation_create(owner=user, kind=Conversation.Kind.LIVE)
    assert services.conversation_derive_kind(conversation=conversation) == "live"
    add(conversation, LIVE)
    assert conversation.kind == "live"


def test_live_created_conversation_with_rest_messages_is_rest(user) -> None:
    """Kind follows the messages, not the creator, as soon as there are any."""
    conversation = services.conversation_create(owner=user, kind=Conversation.Kind.LIVE)
    add(conversation, REST)
    conversation.refresh_from_db()
    assert conversation.kind == "rest"


def test_message_delete_re_derives_the_kind(user) -> None:
    """Deleting a hybrid conversation's only live message makes it rest again."""
    conversation = services.conversation_create(owner=user)
    add(conversation, REST)
    live = add(conversation, LIVE)
    assert conversation.kind == "hybrid"
    services.message_delete(message=live)
    conversation.refresh_from_db()
    assert conversation.kind == "rest"


def test_message_create_touches_updated_at(user) -> None:
    """A new message moves the conversation's updated_at to the message's time."""
    conversation = services.conversation_create(owner=user)
    message = add(conversation, REST, text="hi")
    conversation.refresh_from_db()
    assert conversation.updated_at == message.created_at


def test_message_create_with_an_earlier_timestamp_does_not_move_updated_at_back(user) -> None:
    """A late-flushed live message keeps its own time but never makes the conversation look older."""
    conversation = services.conversation_create(owner=user)
    add(conversation, REST, text="now")
    latest = Conversation.objects.get(pk=conversation.pk).updated_at
    add(conversation, LIVE, text="earlier", created_at=latest - dt.timedelta(minutes=5))
    conversation.refresh_from_db()
    assert conversation.updated_at == latest


def test_message_create_saves_every_field(user) -> None:
    """Role, type, text, transcriptions, live config, usage and the interrupted flag are stored."""
    conversation = services.conversation_create(owner=user)
    message = services.message_create(
        conversation=conversation,
        role=Message.Role.MODEL,
        message_type=LIVE,
        text="",
        output_transcription="Hello there",
        live_config={"model": "m", "sessionId": "live_x", "responseModalities": ["AUDIO"]},
        usage={"totalTokenCount": 12},
        interrupted=True,
    )
    stored = Message.objects.get(pk=message.pk)
    assert (stored.role, stored.message_type, stored.output_transcription) == ("model", "live", "Hello there")
    assert stored.live_config["sessionId"] == "live_x"
    assert stored.usage == {"totalTokenCount": 12}
    assert stored.interrupted is True


@pytest.mark.parametrize("field", ["role", "message_type"])
def test_message_create_rejects_unknown_choices(user, field: str) -> None:
    """A role or message type outside the choices is a validation error naming it, and nothing is saved."""
    conversation = services.conversation_create(owner=user)
    kwargs: dict[str, Any] = {"role": "user", "message_type": "rest", field: "bogus"}
    with pytest.raises(ValidationError) as info:
        services.message_create(conversation=conversation, **kwargs)
    assert field in info.value.message_dict
    assert not Message.objects.exists()


def test_message_create_stores_audio_as_wav_under_the_seed_key(user) -> None:
    """Audio becomes a WAV file keyed audio/{userId}/{conversationId}/{timestamp}_{messageId}.wav."""
    conversation = services.conversation_create(owner=user)
    audio = pcm16_to_wav(b"\x01\x00" * 24_000, sample_rate=24_000)
    message = add(conversation, LIVE, role=Message.Role.MODEL, audio=audio, output_transcription="hi")
    stored = Message.objects.get(pk=message.pk)
    timestamp = int(stored.created_at.timestamp() * 1000)
    assert stored.audio.name == f"audio/{user.pk}/{conversation.public_id}/{timestamp}_{stored.public_id}.wav"
    assert stored.audio_duration == pytest.approx(1.0)
    assert stored.audio_mime_type == "audio/wav"
    with stored.audio.open("rb") as handle:
        assert handle.read() == audio.data


def test_conversation_delete_removes_messages_and_audio_files(user, django_capture_on_commit_callbacks) -> None:
    """Deleting a conversation deletes its messages and, once committed, their audio files."""
    conversation = services.conversation_create(owner=user)
    message = add(conversation, LIVE, audio=pcm16_to_wav(b"\x00\x00" * 160, sample_rate=16_000))
    storage, name = message.audio.storage, message.audio.name
    assert name is not None
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_delete(conversation=conversation)
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(pk=message.pk).exists()
    assert not storage.exists(name)


def test_message_update_changes_only_what_is_given(user) -> None:
    """A late transcription is added without touching the text."""
    conversation = ConversationFactory.create(owner=user)
    message = add(conversation, LIVE, text="typed")
    services.message_update(message=message, input_transcription="spoken")
    stored = Message.objects.get(pk=message.pk)
    assert (stored.text, stored.input_transcription) == ("typed", "spoken")


@pytest.mark.parametrize(
    ("prompt", "title"),
    [
        ("Hello", "Hello"),
        ("  several\n\nlines   of\ttext ", "several lines of text"),
        ("word " * 30, ("word " * 12).strip() + "…"),
        ("x" * 100, "x" * 60 + "…"),
    ],
)
def test_conversation_title_from_prompt(prompt: str, title: str) -> None:
    """Titles are the prompt's first words on one line, cut at a word boundary with an ellipsis."""
    assert services.conversation_title_from_prompt(prompt) == title


def test_message_public_id_can_be_chosen(user) -> None:
    """A message can be saved under an id announced before it existed (the stream's modelMessageId)."""
    conversation = services.conversation_create(owner=user)
    message = add(conversation, REST, public_id="msg_" + "a" * 24, created_at=timezone.now())
    assert Message.objects.get(public_id="msg_" + "a" * 24).pk == message.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_rest_and_live_writers_end_hybrid(user) -> None:
    """A REST reply and a live turn saved at the same moment still leave the conversation hybrid."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("needs a database with row locks and concurrent writers (PostgreSQL, as in CI)")
    for _ in range(10):
        conversation = services.conversation_create(owner=user)
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def write(message_type: str, conversation: Conversation = conversation, barrier=barrier, errors=errors) -> None:
            try:
                barrier.wait()
                services.message_create(
                    conversation=Conversation.objects.get(pk=conversation.pk), role="user", message_type=message_type
                )
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=write, args=(t,)) for t in (REST, LIVE, REST, LIVE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors
        conversation.refresh_from_db()
        assert conversation.kind == "hybrid"
