"""``manage.py conversations_purge_audio`` and ``message_audio_purge``: old recordings go, messages stay."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from conversations.audio import pcm16_to_wav
from conversations.models import Message
from conversations.services import message_audio_purge, message_create
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db(transaction=True)  # files are deleted on commit


def run(*args: str) -> str:
    out = StringIO()
    call_command("conversations_purge_audio", *args, stdout=out)
    return out.getvalue()


def spoken(days_ago: float, seconds: float = 1.0) -> Message:
    return message_create(
        conversation=ConversationFactory.create(),
        role=Message.Role.USER,
        message_type=Message.MessageType.LIVE,
        audio=pcm16_to_wav(bytes(int(32_000 * seconds)), sample_rate=16_000),
        input_transcription=f"said {days_ago} days ago",
        created_at=timezone.now() - dt.timedelta(days=days_ago),
    )


def audio_name(message: Message) -> str:
    """The stored audio file's name (a message saved with audio always has one)."""
    name = message.audio.name
    assert name
    return name


def test_deletes_old_audio_files_and_keeps_the_messages(audio_storage_backend):
    old, older, recent = spoken(40, 1.5), spoken(400, 2.0), spoken(5)
    typed = message_create(
        conversation=ConversationFactory.create(),
        role=Message.Role.USER,
        text="typed",
        created_at=timezone.now() - dt.timedelta(days=90),
    )
    storage = old.audio.storage
    old_names = [audio_name(old), audio_name(older)]
    assert all(storage.exists(name) for name in old_names)

    out = run("--older-than", "30")
    assert out.startswith("Deleted the audio of 2 messages (3.5 s) created before ")
    for message in (old, older):
        message.refresh_from_db()
        assert not message.audio and message.input_transcription.startswith("said")
    assert not any(storage.exists(name) for name in old_names)
    recent.refresh_from_db()
    assert recent.audio and storage.exists(audio_name(recent))
    assert Message.objects.filter(pk=typed.pk).exists()
    assert json.loads(run("--older-than", "30", "--json"))["messages"] == 0


def test_dry_run_counts_and_deletes_nothing():
    old = spoken(31, 2.0)
    result = json.loads(run("--older-than", "30", "--dry-run", "--json"))
    assert (result["dryRun"], result["messages"], result["audioSeconds"]) == (True, 1, 2.0)
    assert run("--older-than", "30", "--dry-run").startswith("Would delete the audio of 1 messages (2.0 s)")
    old.refresh_from_db()
    assert old.audio and old.audio.storage.exists(audio_name(old))
    assert run("--older-than", "30", "--dry-run", "-v", "0") == ""


def test_purges_in_batches():
    messages = [spoken(10) for _ in range(5)]
    assert message_audio_purge(older_than=dt.timedelta(days=1), batch_size=2).messages == 5
    assert Message.objects.filter(pk__in=[m.pk for m in messages]).exclude(audio="").count() == 0


@pytest.mark.parametrize("value", ["-1", "thirty", "1.5", "99999999"])
def test_bad_ages_are_refused_clearly(value):
    with pytest.raises(CommandError, match="--older-than must be a whole number of days"):
        run("--older-than", value)


def test_the_age_is_required():
    with pytest.raises(CommandError, match="--older-than"):
        run()
