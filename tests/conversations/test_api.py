"""JSON API: shapes, pagination, per-user isolation, authentication and bad input on every endpoint."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from conversations import services
from conversations.audio import pcm16_to_wav
from conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, field: str | None, code: str | None = None) -> dict:
    """The answer is the API's one error shape, naming the field at fault."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"]
    if field is not None:
        assert field in error["fields"]
        assert error["message"].startswith(f"{field}: ")
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture
def conversation(user) -> Conversation:
    return services.conversation_create(owner=user, title="Mine")


@pytest.fixture
def theirs(other_user) -> Conversation:
    conversation = services.conversation_create(owner=other_user, title="Theirs")
    services.message_create(
        conversation=conversation,
        role="user",
        message_type="live",
        audio=pcm16_to_wav(b"\x00\x00" * 1600, sample_rate=16_000),
        input_transcription="secret",
    )
    return conversation


# CONVERSATIONS
# ------------------------------------------------------------------------------
def test_create_conversation(api_client, user) -> None:
    """POST creates an empty rest conversation owned by the logged-in user."""
    response = api_client.post("/api/conversations", {"title": "Project help"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "title", "kind", "messageCount", "createdAt", "updatedAt"}
    assert (body["title"], body["kind"], body["messageCount"]) == ("Project help", "rest", 0)
    assert Conversation.objects.get(public_id=body["id"]).owner == user


def test_create_conversation_ignores_a_user_id_in_the_body(api_client, user, other_user) -> None:
    """The owner comes from the session; a userId in the body is ignored."""
    response = api_client.post("/api/conversations", {"title": "x", "userId": other_user.pk}, format="json")
    assert response.status_code == 201
    assert Conversation.objects.get(public_id=response.json()["id"]).owner == user


def test_create_conversation_without_a_title(api_client) -> None:
    """The title is optional."""
    response = api_client.post("/api/conversations", {}, format="json")
    assert response.status_code == 201
    assert response.json()["title"] == ""


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"title": "x" * 201}, "title", "max_length"),
        ({"title": ["not", "a", "string"]}, "title", "invalid"),
        ({"title": None}, "title", "null"),
        (["a", "list"], None, "invalid"),
    ],
)
def test_create_conversation_bad_input(api_client, body, field, code) -> None:
    """Bad bodies are 400s naming the field, and nothing is created."""
    assert_error(api_client.post("/api/conversations", body, format="json"), 400, field, code)
    assert not Conversation.objects.exists()


def test_malformed_json_is_a_parse_error(api_client) -> None:
    """A body that is not JSON is a 400 parse_error."""
    response = api_client.post("/api/conversations", "{not json", content_type="application/json")
    assert_error(response, 400, None, "parse_error")


def test_form_encoded_body_is_unsupported(api_client) -> None:
    """Only JSON bodies are accepted."""
    response = api_client.post("/api/conversations", {"title": "x"})  # multipart
    assert_error(response, 415, None, "unsupported_media_type")


def test_list_conversations_only_mine_newest_first(api_client, user, conversation, theirs) -> None:
    """The list holds only the user's conversations, most recently updated first."""
    newer = services.conversation_create(owner=user, title="Newer")
    body = api_client.get("/api/conversations").json()
    assert body["count"] == 2
    assert [c["id"] for c in body["results"]] == [newer.public_id, conversation.public_id]


def test_list_conversations_paginates(api_client, user) -> None:
    """limit/offset pages carry count, next and previous."""
    for i in range(5):
        services.conversation_create(owner=user, title=f"c{i}")
    body = api_client.get("/api/conversations?limit=2&offset=2").json()
    assert body["count"] == 5
    assert [c["title"] for c in body["results"]] == ["c2", "c1"]
    assert "offset=4" in body["next"]
    assert body["previous"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=abc", "limit"), ("limit=0", "limit"), ("limit=1000", "limit"), ("offset=-1", "offset"),
     ("offset=x", "offset")],
)  # fmt: skip
def test_list_conversations_bad_paging(api_client, query, field) -> None:
    """Bad paging parameters are 400s naming the parameter, not silently replaced."""
    assert_error(api_client.get(f"/api/conversations?{query}"), 400, field)


def test_get_conversation(api_client, conversation) -> None:
    """GET returns one conversation."""
    body = api_client.get(f"/api/conversations/{conversation.public_id}").json()
    assert body["id"] == conversation.public_id


def test_rename_conversation(api_client, conversation) -> None:
    """PATCH renames."""
    response = api_client.patch(f"/api/conversations/{conversation.public_id}", {"title": " New "}, format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "New"
    conversation.refresh_from_db()
    assert conversation.title == "New"


@pytest.mark.parametrize(
    ("body", "code"),
    [({}, "required"), ({"title": "   "}, "blank"), ({"title": "x" * 201}, "max_length")],
)
def test_rename_conversation_bad_input(api_client, conversation, body, code) -> None:
    """A missing, blank or too long title is a 400 naming `title`; the title is unchanged."""
    response = api_client.patch(f"/api/conversations/{conversation.public_id}", body, format="json")
    assert_error(response, 400, "title", code)
    conversation.refresh_from_db()
    assert conversation.title == "Mine"


def test_delete_conversation(api_client, conversation) -> None:
    """DELETE removes the conversation."""
    response = api_client.delete(f"/api/conversations/{conversation.public_id}")
    assert response.status_code == 204
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_unsupported_method_is_a_json_405(api_client, conversation) -> None:
    """PUT is not part of the API."""
    response = api_client.put(f"/api/conversations/{conversation.public_id}", {"title": "x"}, format="json")
    assert_error(response, 405, None, "method_not_allowed")


# MESSAGES
# ------------------------------------------------------------------------------
def test_messages_in_the_seed_shape(api_client, conversation) -> None:
    """REST and live messages come in one chronological list in seed 002's shape."""
    services.message_create(conversation=conversation, role="user", text="typed")
    live = services.message_create(
        conversation=conversation,
        role="model",
        message_type="live",
        audio=pcm16_to_wav(b"\x00\x00" * 12_000, sample_rate=24_000),
        output_transcription="spoken",
        input_transcription="",
        live_config={"model": "gemini-3.1-flash-live-preview", "sessionId": "live_1", "responseModalities": ["AUDIO"]},
        interrupted=True,
    )
    body = api_client.get(f"/api/conversations/{conversation.public_id}/messages").json()
    assert body["count"] == 2
    rest_message, live_message = body["results"]
    assert rest_message == {
        "id": rest_message["id"],
        "conversationId": conversation.public_id,
        "messageType": "rest",
        "role": "user",
        "content": {"text": "typed"},
        "liveContent": {"audioData": None, "inputTranscription": None, "outputTranscription": None},
        "config": {"live": None},
        "interrupted": False,
        "usage": None,
        "createdAt": rest_message["createdAt"],
    }
    assert live_message["messageType"] == "live"
    assert live_message["liveContent"] == {
        "audioData": {
            "fileId": live.public_id,
            "url": f"/api/files/{live.public_id}/download",
            "duration": 0.5,
            "mimeType": "audio/wav",
        },
        "inputTranscription": None,
        "outputTranscription": {"text": "spoken"},
    }
    assert live_message["config"]["live"] == {
        "model": "gemini-3.1-flash-live-preview",
        "sessionId": "live_1",
        "responseModalities": ["AUDIO"],
    }
    assert live_message["interrupted"] is True


def test_messages_paginate_and_follow_after(api_client, conversation) -> None:
    """Messages page oldest first; `after` gives only newer ones."""
    ids = [services.message_create(conversation=conversation, role="user", text=str(i)).public_id for i in range(5)]
    page = api_client.get(f"/api/conversations/{conversation.public_id}/messages?limit=2&offset=3").json()
    assert [m["id"] for m in page["results"]] == ids[3:5]
    assert page["next"] is None
    newer = api_client.get(f"/api/conversations/{conversation.public_id}/messages?after={ids[1]}").json()
    assert [m["id"] for m in newer["results"]] == ids[2:]


@pytest.mark.parametrize(
    ("query", "field"), [("after=msg_nope", "after"), ("limit=-5", "limit"), ("offset=z", "offset")]
)
def test_messages_bad_query(api_client, conversation, query, field) -> None:
    """An unknown `after` id or bad paging is a 400 naming the parameter."""
    assert_error(api_client.get(f"/api/conversations/{conversation.public_id}/messages?{query}"), 400, field)


def test_messages_after_a_message_of_another_conversation_is_refused(api_client, conversation, user) -> None:
    """`after` must name a message of this conversation."""
    other = services.conversation_create(owner=user)
    elsewhere = services.message_create(conversation=other, role="user", text="x")
    url = f"/api/conversations/{conversation.public_id}/messages?after={elsewhere.public_id}"
    assert_error(api_client.get(url), 400, "after")


# ISOLATION AND AUTHENTICATION
# ------------------------------------------------------------------------------
def _endpoints(theirs: Conversation) -> list[tuple[str, str, dict | None]]:
    file_id = theirs.messages.get().public_id
    return [
        ("get", f"/api/conversations/{theirs.public_id}", None),
        ("patch", f"/api/conversations/{theirs.public_id}", {"title": "mine now"}),
        ("delete", f"/api/conversations/{theirs.public_id}", None),
        ("get", f"/api/conversations/{theirs.public_id}/messages", None),
        ("post", "/api/ai/generate", {"prompt": "hi", "conversationId": theirs.public_id}),
        ("get", f"/api/files/{file_id}/download", None),
    ]


def test_another_users_objects_are_404_on_every_endpoint(api_client, theirs) -> None:
    """Another user's conversation, messages and files are not found — and are left untouched."""
    for method, url, body in _endpoints(theirs):
        response = getattr(api_client, method)(url, body, format="json")
        assert_error(response, 404, None, "not_found")
    theirs.refresh_from_db()
    assert theirs.title == "Theirs"
    assert theirs.messages.count() == 1


def test_unknown_ids_are_404(api_client) -> None:
    """Ids that do not exist are not found."""
    for url in ["/api/conversations/conv_nope", "/api/conversations/conv_nope/messages", "/api/files/msg_no/download"]:
        assert_error(api_client.get(url), 404, None, "not_found")


def test_every_endpoint_needs_a_login(anonymous_client, theirs) -> None:
    """Without a session every endpoint answers 401 JSON, never a redirect to the login page."""
    endpoints = [*_endpoints(theirs), ("get", "/api/conversations", None), ("post", "/api/conversations", {})]
    for method, url, body in endpoints:
        response = getattr(anonymous_client, method)(url, body, format="json")
        assert_error(response, 401, None, "not_authenticated")
        assert response["WWW-Authenticate"]
    assert Conversation.objects.count() == 1


def test_unsafe_requests_need_the_csrf_token(user) -> None:
    """A logged-in POST without the CSRF token is refused (403 JSON); with it, it passes."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert_error(client.post("/api/conversations", {"title": "x"}, format="json"), 403, None, "permission_denied")
    client.get("/api/conversations")  # any page sets the cookie in the browser; here, ask for one
    from django.middleware.csrf import _get_new_csrf_string

    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    response = client.post("/api/conversations", {"title": "x"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


# GENERATE: input validation (the stream itself is in test_generation.py)
# ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "prompt", "required"),
        ({"prompt": ""}, "prompt", "blank"),
        ({"prompt": "   \n "}, "prompt", "blank"),
        ({"prompt": None}, "prompt", "null"),
        ({"prompt": {"text": "x"}}, "prompt", "invalid"),
        ({"contents": ["x"]}, "contents", "invalid"),
        ({"prompt": "hi", "temperature": 3}, "temperature", "max_value"),
        ({"prompt": "hi", "temperature": -0.1}, "temperature", "min_value"),
        ({"prompt": "hi", "temperature": "hot"}, "temperature", "invalid"),
        ({"prompt": "hi", "model": "no spaces please"}, "model", "invalid"),
        ({"prompt": "hi", "model": "../../etc"}, "model", "invalid"),
        ({"prompt": "hi", "systemInstruction": "x" * 8001}, "systemInstruction", "max_length"),
        ({"prompt": "hi", "conversationId": "c" * 41}, "conversationId", "max_length"),
    ],
)
def test_generate_bad_input(api_client, body, field, code) -> None:
    """Bad generate bodies are 400s naming the field, before any stream, and nothing is saved."""
    assert_error(api_client.post("/api/ai/generate", body, format="json"), 400, field, code)
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()


@override_settings(GENERATE_MAX_PROMPT_CHARS=10)
def test_generate_prompt_length_limit_is_a_setting(api_client) -> None:
    """A prompt over GENERATE_MAX_PROMPT_CHARS is refused, naming the limit."""
    error = assert_error(api_client.post("/api/ai/generate", {"prompt": "x" * 11}, format="json"), 400, "prompt")
    assert "10" in error["message"]


def test_generate_unknown_conversation_is_404(api_client) -> None:
    """A conversationId that is not the user's is not found, and no message is saved."""
    response = api_client.post("/api/ai/generate", {"prompt": "hi", "conversationId": "conv_nope"}, format="json")
    assert_error(response, 404, None, "not_found")
    assert not Message.objects.exists()


def test_generate_errors_are_json_even_for_an_event_stream_client(api_client) -> None:
    """A client that only accepts text/event-stream still gets a readable JSON error."""
    response = api_client.post("/api/ai/generate", {}, format="json", HTTP_ACCEPT="text/event-stream")
    assert_error(response, 400, "prompt", "required")


def test_other_users_conversation_list_is_not_reachable_by_query(api_client, theirs) -> None:
    """There is no parameter that lists someone else's conversations."""
    body = api_client.get(f"/api/conversations?userId={theirs.owner_id}&owner={theirs.owner_id}").json()
    assert body["results"] == []
