"""The long-lived Gemini API key never reaches a browser: not in a page, a static file or an API answer.

The app runs in API-key mode (pointed at gemini_sim with a distinctive key, so a leak cannot go unnoticed), with
direct mode allowed: a person, a conversation with typed and live messages, a direct session with its token. Then
every page, the admin's pages, every static file and every API answer (the token's included) is read whole, and
the key is looked for in it, as written and in the forms a page might carry it (URL-encoded, base64, JSON-escaped).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from conversations import services
from conversations.models import Message, User

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "AIzaSyLEAK-CANARY-0123456789-apsara-never-serve-me"


def leaked_forms(key: str) -> list[bytes]:
    return [
        form.encode()
        for form in (
            key,
            urllib.parse.quote(key, safe=""),
            json.dumps(key)[1:-1],
            base64.b64encode(key.encode()).decode(),
            base64.urlsafe_b64encode(key.encode()).decode(),
            key[8:30],  # a fragment: a key cut or masked carelessly
        )
    ]


def assert_clean(where: str, body: bytes) -> None:
    for form in leaked_forms(KEY):
        assert form not in body, f"the API key appears in {where}"


def routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Every route's pattern, as written (``c/<public_id:conversation_id>/``)."""
    out: list[str] = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            out += routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            out.append(prefix + str(entry.pattern))
    return out


@pytest.fixture
def api_key_mode(settings: Any, gemini_sim: Any) -> None:
    settings.GEMINI_API_KEY = KEY  # the client factory's API-key mode, at the simulator's address
    settings.LIVE_DIRECT_MODE = "allowed"
    settings.METRICS_TOKEN = ""


def test_the_api_key_is_in_no_page_static_file_or_api_answer(api_key_mode: None, gemini_sim: Any) -> None:
    staff = User.objects.create_user("staff", password="pw-staff-1234", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    conversation = services.conversation_create(owner=staff, title="Leaks")
    services.message_create(conversation=conversation, role=Message.Role.USER, text="hello")
    token = client.post(
        "/api/live/token",
        data=json.dumps({"conversationId": conversation.public_id, "loadConversationContext": True}),
        content_type="application/json",
    )
    assert token.status_code == 201, token.content
    grant = token.json()
    assert_clean("POST /api/live/token", token.content)
    # The token works: the key's absence is not the absence of a working grant.
    assert grant["token"].startswith("auth_tokens/")
    assert any(r["headers"].get("x-goog-api-key") == KEY for r in gemini_sim.records(type="http"))

    ids = {
        "conversation_id": conversation.public_id,
        "conv_id": conversation.public_id,
        "session_id": grant["sessionId"],
    }
    fetched = 0
    for pattern in routes():
        if pattern.startswith("admin/") or "<" in pattern.replace("<public_id:", ""):
            continue  # the admin is walked below; a route with another kind of parameter has none to fill
        path = "/" + pattern
        for name, value in ids.items():
            path = path.replace(f"<public_id:{name}>", value)
        if "<" in path or path.endswith(("/delete/", "/end", "/tool-calls")):
            continue
        response = client.get(path, follow=True)
        assert response.status_code < 500, path
        assert_clean(f"GET {path}", response.content)
        fetched += 1
    assert fetched >= 12

    for path in ("/admin/", "/admin/conversations/conversation/", "/admin/live/livesession/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_clean(f"GET {path}", response.content)
    session_admin = client.get(f"/admin/live/livesession/?q={grant['sessionId']}")
    assert_clean("the live session's admin", session_admin.content)

    files = 0
    for finder in finders.get_finders():
        for relative, storage in finder.list([]):
            assert_clean(f"static/{relative}", Path(storage.path(relative)).read_bytes())
            served = client.get(f"/static/{relative}")
            if served.status_code == 200:
                assert_clean(f"GET /static/{relative}", b"".join(served.streaming_content))  # type: ignore[attr-defined]
            files += 1
    assert files > 20
