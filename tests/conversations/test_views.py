"""Pages: sign up / log in / log out, conversation list, chat view, rename, delete, simulator banner."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from conversations.models import Conversation, Message, User
from tests.factories import ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> User:
    return UserFactory.create()


@pytest.fixture
def client_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def test_signup_creates_user_logs_in_and_lands_on_list(client: Client) -> None:
    """A new account is created, logged in, and sent to the conversation list."""
    response = client.post(
        reverse("signup"),
        {"username": "ada", "password1": "correct-horse-battery", "password2": "correct-horse-battery"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("conversation-list")
    assert User.objects.get(username="ada").check_password("correct-horse-battery")
    assert client.get(reverse("conversation-list")).status_code == 200


def test_signup_rejects_mismatched_passwords_and_keeps_username(client: Client) -> None:
    """A mismatched password is an error on the form; nothing is created and the username is kept."""
    response = client.post(reverse("signup"), {"username": "ada", "password1": "correct-horse-1", "password2": "x"})
    assert response.status_code == 200
    assert not User.objects.filter(username="ada").exists()
    assert 'value="ada"' in response.content.decode()
    assert "field-error" in response.content.decode()


def test_login_and_logout_by_post(client: Client, user: User) -> None:
    """Logging in works with the form; logging out is a POST and ends the session."""
    response = client.post(reverse("login"), {"username": user.username, "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert client.get(reverse("conversation-list")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405  # never by GET (CSRF-able)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("conversation-list")).status_code == 302


def test_pages_require_login(client: Client) -> None:
    """Anonymous visitors are sent to the login page."""
    conversation = ConversationFactory.create()
    for url in (
        reverse("conversation-list"),
        reverse("conversation-detail", args=[conversation.public_id]),
        reverse("conversation-messages", args=[conversation.public_id]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_csrf_is_enforced_on_page_forms(user: User) -> None:
    """Page forms refuse a POST without a CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    conversation = ConversationFactory.create(owner=user, title="Kept")
    assert client.post(reverse("conversation-rename", args=[conversation.public_id]), {"title": "x"}).status_code == 403
    assert client.post(reverse("conversation-delete", args=[conversation.public_id])).status_code == 403
    conversation.refresh_from_db()
    assert conversation.title == "Kept"
    page = client.get(reverse("conversation-list")).content.decode()
    assert "csrfmiddlewaretoken" in page


def test_list_shows_only_own_conversations(client_in: Client, user: User) -> None:
    """The list shows the user's conversations and never anyone else's."""
    mine = ConversationFactory.create(owner=user, title="Mine")
    ConversationFactory.create(title="Someone else's")
    page = client_in.get(reverse("conversation-list")).content.decode()
    assert "Mine" in page and reverse("conversation-detail", args=[mine.public_id]) in page
    assert "Someone else" not in page


def test_new_conversation_page_is_an_empty_chat_that_creates_nothing(client_in: Client, user: User) -> None:
    """New conversation opens an empty chat view; the conversation only exists once the first prompt is sent."""
    page = client_in.get(reverse("conversation-new")).content.decode()
    assert 'id="composer"' in page and 'data-conversation-id=""' in page
    assert '<details class="menu" hidden>' in page  # nothing to rename or delete yet
    assert not Conversation.objects.filter(owner=user).exists()
    assert client_in.post(reverse("conversation-new")).status_code == 405


def test_detail_shows_messages_in_order_with_audio_and_transcripts(client_in: Client, user: User) -> None:
    """Typed and live messages appear in chronological order; audio gets a player and its transcript."""
    conversation = ConversationFactory.create(owner=user)
    first = MessageFactory.create(conversation=conversation, text="first typed")
    spoken = MessageFactory.create(
        conversation=conversation,
        message_type=Message.MessageType.LIVE,
        text="",
        input_transcription="spoken words",
        audio_mime_type="audio/wav",
        audio_duration=7.4,
    )
    spoken.audio.save("x.wav", ContentFile(b"RIFF0000WAVE"), save=True)
    typed_live = MessageFactory.create(conversation=conversation, message_type=Message.MessageType.LIVE, text="typed")
    reply = MessageFactory.create(conversation=conversation, role=Message.Role.MODEL, text="**bold** reply")
    page = client_in.get(reverse("conversation-detail", args=[conversation.public_id])).content.decode()
    assert page.index(first.public_id) < page.index(spoken.public_id) < page.index(reply.public_id)
    assert f'<audio class="msg-audio" preload="none" src="/api/files/{spoken.public_id}/download"' in page
    # The player shows the length the server knows before anything is loaded.
    assert 'data-duration="7.4"' in page and '<span class="player-duration">0:07</span>' in page
    # Spoken and typed turns of a call are labelled as such; typed chat is not labelled.
    spoken_html = page[page.index(f'id="{spoken.public_id}"') :]
    assert spoken_html.index(">spoken</span>") < spoken_html.index(typed_live.public_id)
    typed_html = page[page.index(f'id="{typed_live.public_id}"') : page.index(f'id="{reply.public_id}"')]
    assert ">typed</span>" in typed_html and ">spoken</span>" not in typed_html
    first_html = page[page.index(f'id="{first.public_id}"') : page.index(f'id="{spoken.public_id}"')]
    assert "badge" not in first_html
    assert "spoken words" in page
    assert "<strong>bold</strong> reply" in page
    assert 'id="talk-slot"' in page


def test_markdown_in_messages_cannot_inject_html(client_in: Client, user: User) -> None:
    """Script tags, event handlers and javascript: links in messages render as inert text."""
    conversation = ConversationFactory.create(owner=user)
    MessageFactory.create(conversation=conversation, text="<script>alert(1)</script> <img src=x onerror=alert(2)>")
    MessageFactory.create(
        conversation=conversation,
        role=Message.Role.MODEL,
        text='[click](javascript:alert(3)) <a href="javascript:alert(4)">x</a> ![p](https://evil.example/p.png)',
    )
    page = client_in.get(reverse("conversation-messages", args=[conversation.public_id])).content.decode()
    elements = _elements(page)
    assert not [tag for tag, _ in elements if tag in {"script", "img", "iframe"}]
    assert not [a for _, attrs in elements for a in attrs if a[0].startswith("on")]
    assert not [v for _, attrs in elements for k, v in attrs if k in {"href", "src"} and "javascript" in (v or "")]
    assert "evil.example" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text


def _elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Return every element (tag, attributes) the browser would build from the HTML."""
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    Collector().feed(html)
    return found


def test_other_users_conversation_is_404_everywhere(client_in: Client) -> None:
    """Another user's conversation cannot be seen, refreshed, renamed or deleted."""
    other = ConversationFactory.create(title="Private")
    for name, method in (
        ("conversation-detail", "get"),
        ("conversation-messages", "get"),
        ("conversation-rename", "post"),
        ("conversation-delete", "post"),
    ):
        response = getattr(client_in, method)(reverse(name, args=[other.public_id]), {"title": "hijacked"})
        assert response.status_code == 404, name
    other.refresh_from_db()
    assert other.title == "Private"


def test_rename_and_delete(client_in: Client, user: User) -> None:
    """Rename changes the title; an empty title is refused; delete removes the conversation."""
    conversation = ConversationFactory.create(owner=user, title="Old")
    url = reverse("conversation-rename", args=[conversation.public_id])
    assert client_in.post(url, {"title": "  New name "}).status_code == 302
    conversation.refresh_from_db()
    assert conversation.title == "New name"
    client_in.post(url, {"title": "   "})
    conversation.refresh_from_db()
    assert conversation.title == "New name"
    response = client_in.post(reverse("conversation-delete", args=[conversation.public_id]))
    assert response["Location"] == reverse("conversation-list")
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_simulator_banner_on_every_page(client: Client, user: User, settings) -> None:
    """With no Gemini credentials every page says it is the simulator; with a key it does not."""
    assert 'data-testid="simulator-banner"' in client.get(reverse("login")).content.decode()
    client.force_login(user)
    assert 'data-testid="simulator-banner"' in client.get(reverse("conversation-list")).content.decode()
    settings.GEMINI_API_KEY = "set"
    assert 'data-testid="simulator-banner"' not in client.get(reverse("conversation-list")).content.decode()


def test_signup_refuses_a_taken_username_whatever_its_case(client: Client, user: User) -> None:
    """A username that exists (in any letter case) is refused with a message on the field."""
    response = client.post(
        reverse("signup"),
        {"username": user.username.upper(), "password1": "correct-horse-battery", "password2": "correct-horse-battery"},
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.count() == 1


def test_login_with_a_wrong_password_says_so(client: Client, user: User) -> None:
    """A wrong password re-shows the form with an error and keeps the username."""
    response = client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'class="form-error"' in page and "correct username and password" in page
    assert f'value="{user.username}"' in page


def test_long_conversation_shows_latest_messages_with_a_way_to_all(client_in: Client, user: User, monkeypatch) -> None:
    """Only the latest messages are rendered at first; `?all=1` renders every one, oldest first."""
    from conversations import views

    monkeypatch.setattr(views, "MESSAGES_SHOWN", 3)
    conversation = ConversationFactory.create(owner=user)
    messages = [MessageFactory.create(conversation=conversation) for _ in range(5)]
    url = reverse("conversation-detail", args=[conversation.public_id])
    page = client_in.get(url).content.decode()
    assert messages[0].public_id not in page and messages[1].public_id not in page
    assert page.index(messages[2].public_id) < page.index(messages[4].public_id)
    assert "2 earlier messages not shown" in page
    page = client_in.get(url + "?all=1").content.decode()
    assert all(m.public_id in page for m in messages) and "earlier message" not in page
    fragment = client_in.get(reverse("conversation-messages", args=[conversation.public_id])).content.decode()
    assert messages[1].public_id not in fragment and messages[4].public_id in fragment


def test_list_shows_message_counts(client_in: Client, user: User) -> None:
    """Each conversation in the list says how many messages it has."""
    conversation = ConversationFactory.create(owner=user)
    MessageFactory.create(conversation=conversation)
    MessageFactory.create(conversation=conversation)
    assert "2 messages" in client_in.get(reverse("conversation-list")).content.decode()
