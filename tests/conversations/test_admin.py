"""Admin: pages load, search finds titles and words said or typed, recordings play, writes go through services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from conversations import services
from conversations.audio import pcm16_to_wav
from conversations.models import Conversation, Message
from live.models import LiveSession
from tests.factories import LiveSessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def talk(user) -> Conversation:
    """A hybrid conversation with a typed exchange and a recorded spoken one."""
    conversation = services.conversation_create(owner=user, title="Lighthouse plans")
    services.message_create(conversation=conversation, role="user", text="How tall is the tower?")
    services.message_create(conversation=conversation, role="model", text="About forty metres.")
    services.message_create(
        conversation=conversation,
        role="user",
        message_type="live",
        audio=pcm16_to_wav(b"\x00\x00" * 16_000, sample_rate=16_000),
        input_transcription="what colour is the lamp",
    )
    services.message_create(
        conversation=conversation, role="model", message_type="live", output_transcription="The lamp glows amber."
    )
    return conversation


@pytest.mark.parametrize(
    "model", ["conversations_user", "conversations_conversation", "conversations_message", "live_livesession"]
)
def test_changelists_load(staff_client, talk, model) -> None:
    """Every admin list page renders."""
    LiveSessionFactory.create(user=talk.owner, conversation=talk)
    response = staff_client.get(reverse(f"admin:{model}_changelist"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("Lighthouse", True),  # title
        ("forty metres", True),  # typed model text
        ("colour is the lamp", True),  # input transcription
        ("glows amber", True),  # output transcription
        ("submarine", False),
    ],
)
def test_conversation_search(staff_client, talk, user, query, found) -> None:
    """Search covers titles, message text and both transcriptions — and finds each conversation once."""
    services.conversation_create(owner=user, title="Something else")
    response = staff_client.get(reverse("admin:conversations_conversation_changelist"), {"q": query})
    assert response.status_code == 200
    page = response.content.decode()
    assert (talk.public_id in page) is found
    assert "Something else" not in page
    if found:
        assert response.context["cl"].result_count == 1


def test_conversation_filters(staff_client, talk, user) -> None:
    """Filtering by kind and owner narrows the list."""
    rest_only = services.conversation_create(owner=user, title="Only typing")
    services.message_create(conversation=rest_only, role="user", text="hi")
    url = reverse("admin:conversations_conversation_changelist")
    hybrid_page = staff_client.get(url, {"kind__exact": "hybrid"}).content.decode()
    assert talk.public_id in hybrid_page and rest_only.public_id not in hybrid_page
    owner_page = staff_client.get(url, {"owner__id__exact": user.pk}).context["cl"]
    assert owner_page.result_count == 2
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    today = {"created_at__gte": str(midnight), "created_at__lt": str(midnight + dt.timedelta(days=1))}
    date_filtered = staff_client.get(url, today)
    assert date_filtered.status_code == 200
    assert date_filtered.context["cl"].result_count == 2


def test_message_search(staff_client, talk) -> None:
    """Messages can be searched by what was said."""
    response = staff_client.get(reverse("admin:conversations_message_changelist"), {"q": "amber"})
    assert response.context["cl"].result_count == 1


def test_conversation_page_shows_messages_in_order_with_a_player(staff_client, talk) -> None:
    """The conversation page lists its messages in order; the recorded one has a player and a download link."""
    response = staff_client.get(reverse("admin:conversations_conversation_change", args=[talk.pk]))
    page = response.content.decode()
    positions = [page.index(words) for words in ("How tall", "forty metres", "colour is the lamp", "glows amber")]
    assert positions == sorted(positions)
    recorded = talk.messages.exclude(audio="").get()
    url = f"/api/files/{recorded.public_id}/download"
    assert f'<audio controls preload="none" src="{url}" aria-label="Recording of user"></audio>' in page
    assert f'href="{url}?download=1"' in page


def test_message_page_has_a_player_that_plays(staff_client, talk) -> None:
    """A message's page embeds its recording, and the player's source serves the WAV to staff."""
    recorded = talk.messages.exclude(audio="").get()
    page = staff_client.get(reverse("admin:conversations_message_change", args=[recorded.pk])).content.decode()
    assert "<audio" in page
    audio = staff_client.get(f"/api/files/{recorded.public_id}/download")
    assert audio.status_code == 200
    assert b"".join(audio.streaming_content)[:4] == b"RIFF"


def test_admin_creates_and_renames_through_services(staff_client, user) -> None:
    """Adding a conversation in the admin makes a proper one; editing renames it."""
    response = staff_client.post(
        reverse("admin:conversations_conversation_add"),
        {"owner": user.pk, "title": "From staff", "messages-TOTAL_FORMS": 0, "messages-INITIAL_FORMS": 0},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    conversation = Conversation.objects.get(title="From staff")
    assert conversation.owner == user
    assert conversation.public_id.startswith("conv_")
    response = staff_client.post(
        reverse("admin:conversations_conversation_change", args=[conversation.pk]),
        {"title": "Renamed", "messages-TOTAL_FORMS": 0, "messages-INITIAL_FORMS": 0},
    )
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.title == "Renamed"


def test_admin_delete_removes_audio_files(staff_client, talk, django_capture_on_commit_callbacks) -> None:
    """Deleting conversations from the admin deletes their recordings too."""
    recorded = talk.messages.exclude(audio="").get()
    storage, name = recorded.audio.storage, recorded.audio.name
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:conversations_conversation_changelist"),
            {"action": "delete_selected", "_selected_action": [talk.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=talk.pk).exists()
    assert not storage.exists(name)


def test_admin_message_delete_re_derives_kind(staff_client, talk, django_capture_on_commit_callbacks) -> None:
    """Deleting the live messages from the admin makes the conversation rest again."""
    live_ids = list(talk.messages.filter(message_type="live").values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:conversations_message_changelist"),
            {"action": "delete_selected", "_selected_action": live_ids, "post": "yes"},
        )
    talk.refresh_from_db()
    assert talk.kind == "rest"
    assert not Message.objects.filter(pk__in=live_ids).exists()


def test_live_session_page_is_read_only_and_hides_the_resumption_handle(staff_client, talk) -> None:
    """Staff see status, model, duration and the last error, but not the resumption handle, and cannot edit."""
    session = LiveSessionFactory.create(
        user=talk.owner,
        conversation=talk,
        status=LiveSession.Status.FAILED,
        started_at=timezone.now() - dt.timedelta(minutes=3, seconds=5),
        ended_at=timezone.now(),
        resumption_handle="secret-handle-value",
        last_error_code="GEMINI_UNAVAILABLE",
        last_error="upstream closed 1011",
    )
    changelist = staff_client.get(reverse("admin:live_livesession_changelist")).content.decode()
    assert "3:05" in changelist and "GEMINI_UNAVAILABLE" in changelist
    page = staff_client.get(reverse("admin:live_livesession_change", args=[session.pk])).content.decode()
    assert "upstream closed 1011" in page
    assert "gemini-3.1-flash-live-preview" in page
    assert "secret-handle-value" not in page
    assert staff_client.post(reverse("admin:live_livesession_change", args=[session.pk]), {}).status_code == 403


def test_admin_needs_staff(client, user) -> None:
    """A normal user is sent to the admin login."""
    client.force_login(user)
    assert client.get(reverse("admin:conversations_conversation_changelist")).status_code == 302


def test_admin_corrects_a_transcription(staff_client, talk) -> None:
    """Staff can fix a transcription on a message's page; the recording and the rest stay as they were."""
    message = talk.messages.exclude(audio="").get()
    response = staff_client.post(
        reverse("admin:conversations_message_change", args=[message.pk]),
        {"text": "", "input_transcription": "what colour is the lamp?", "output_transcription": "", "interrupted": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = Message.objects.get(pk=message.pk)
    assert stored.input_transcription == "what colour is the lamp?"
    assert stored.audio.name == message.audio.name
    assert stored.message_type == "live"


def test_messages_cannot_be_added_by_hand(staff_client) -> None:
    """Messages come from chats and live sessions only."""
    assert staff_client.get(reverse("admin:conversations_message_add")).status_code == 403


def test_numbers_and_durations_read_as_people_say_them(staff_client, talk, user) -> None:
    """Seconds rounded with their unit, durations as m:ss, counts with separators, long ids cut (whole in a title)."""
    started = timezone.now() - dt.timedelta(minutes=3, seconds=7)
    session = LiveSessionFactory.create(
        user=user,
        conversation=talk,
        started_at=started,
        ended_at=started + dt.timedelta(minutes=2, seconds=5.4),
        audio_seconds_in=2.4000000000000012,
        audio_seconds_out=75.25,
        messages_in=12345,
        messages_out=7,
        status=LiveSession.Status.ENDED,
    )
    listing = staff_client.get(reverse("admin:live_livesession_changelist")).content.decode()
    assert "2.4 s" in listing and "2:05" in listing
    assert "2.4000000000000012" not in listing
    assert f'title="{session.public_id}"' in listing  # cut short in the cell, whole on hover
    page = staff_client.get(reverse("admin:live_livesession_change", args=[session.pk])).content.decode()
    assert "2.4 s" in page and "1:15" in page and "12,345" in page and "2:05" in page
    assert "2.4000000000000012" not in page and "75.25" not in page

    recorded = talk.messages.exclude(audio="").get()
    messages = staff_client.get(reverse("admin:conversations_message_changelist")).content.decode()
    assert "1.0 s" in messages  # the one-second recording
    assert (
        staff_client.get(reverse("admin:conversations_message_change", args=[recorded.pk]))
        .content.decode()
        .count("1.0 s")
    )
    services.message_create(conversation=talk, role="user", text="x" * 300)
    conversations = staff_client.get(reverse("admin:conversations_conversation_changelist")).content.decode()
    assert f'title="{talk.public_id}"' in conversations
