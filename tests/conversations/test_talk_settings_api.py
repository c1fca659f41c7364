"""GET/PUT /api/me/talk-settings and live.talk_settings: stored per user, checked by create_session's own rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from conversations import selectors, services
from conversations.models import TalkPreferences
from gemini.catalogue import VOICES, talk_models
from live import talk_settings
from live.protocol import parse_client_message
from tests.conversations.test_api import assert_error

pytestmark = pytest.mark.django_db
URL = "/api/me/talk-settings"

CHOSEN = {
    "model": "gemini-3.8-live",
    "voiceName": "Aoede",
    "responseModalities": ["TEXT"],
    "vad": {"enabled": True, "sensitivity": 0.2, "silenceThreshold": 700},
    "loadConversationContext": False,
    "contextCompression": True,
    "transport": "proxied",
}


def put(client: Any, body: Any) -> Any:
    return client.put(URL, data=json.dumps(body), content_type="application/json")


def test_defaults_are_todays_call(api_client: APIClient, settings: Any) -> None:
    """Someone who never saved any gets the call the page made before settings existed; no row is made by reading."""
    response = api_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "model": settings.GEMINI_LIVE_MODEL,
        "voiceName": None,
        "responseModalities": ["AUDIO"],
        "vad": {"enabled": True},
        "loadConversationContext": True,
        "contextCompression": False,
        "transport": "proxied",
    }
    assert not TalkPreferences.objects.exists()


def test_put_stores_and_get_reads_back(api_client: APIClient, user: Any) -> None:
    response = put(api_client, CHOSEN)
    assert response.status_code == 200, response.content
    assert response.json() == CHOSEN
    assert api_client.get(URL).json() == CHOSEN
    assert TalkPreferences.objects.get(user=user).settings == CHOSEN
    # A second save replaces the first in the same row; what is left out takes its default.
    assert put(api_client, {"voiceName": "kore"}).json()["voiceName"] == "Kore"  # the catalogue's spelling
    assert TalkPreferences.objects.count() == 1
    assert api_client.get(URL).json()["model"] != "gemini-3.8-live"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"voiceName": "auto"}, "voiceName", "invalid_choice"),
        ({"responseModalities": ["TEXT", "AUDIO"]}, "responseModalities", "invalid_choice"),
        ({"responseModalities": ["VIDEO"]}, "responseModalities.0", "invalid_choice"),
        ({"vad": {"silenceThreshold": 20_000}}, "vad.silenceThreshold", "max_value"),
        ({"vad": {"silenceThreshold": -1}}, "vad.silenceThreshold", "min_value"),
        ({"vad": {"sensitivity": 1.5}}, "vad.sensitivity", "max_value"),
        ({"vad": {"enabled": "yes"}}, "vad.enabled", "invalid"),
        ({"model": "gemini-3.5-transcribe-live"}, "model", "invalid_choice"),
        ({"model": "gemini-live-2.5-flash-native-audio"}, "model", "invalid_choice"),  # Vertex only
        ({"model": "no-such-model"}, "model", "invalid_choice"),
        ({"loadConversationContext": 1}, "loadConversationContext", "invalid"),
        ({"userId": 7}, "userId", "unknown_field"),
    ],
)
def test_invalid_put_is_a_400_naming_the_field_and_keeps_what_was_saved(
    api_client: APIClient, body: dict[str, Any], field: str, code: str
) -> None:
    put(api_client, CHOSEN)
    error = assert_error(put(api_client, body), 400, field, code)
    assert error["message"]
    assert api_client.get(URL).json() == CHOSEN


def test_a_body_that_is_not_an_object_is_refused(api_client: APIClient) -> None:
    assert_error(put(api_client, ["AUDIO"]), 400, None)


def test_always_your_own(api_client: APIClient, user: Any, other_user: Any) -> None:
    """There is no way to name another user: each reads and writes only their own row."""
    put(api_client, CHOSEN)
    theirs = APIClient()
    theirs.force_login(other_user)
    assert theirs.get(URL).json()["voiceName"] is None
    put(theirs, {"voiceName": "Puck"})
    assert api_client.get(URL).json() == CHOSEN
    assert selectors.talk_settings_for_user(user=other_user)["voiceName"] == "Puck"


def test_logged_out_is_401_and_writes_need_csrf(user: Any) -> None:
    assert_error(APIClient().get(URL), 401, None)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert_error(put(client, CHOSEN), 403, None)
    assert not TalkPreferences.objects.exists()


def test_settings_saved_before_a_catalogue_change_fall_back(user: Any, settings: Any) -> None:
    TalkPreferences.objects.create(user=user, settings={**CHOSEN, "model": "gemini-retired-live"})
    assert selectors.talk_settings_for_user(user=user) == {**CHOSEN, "model": settings.GEMINI_LIVE_MODEL}
    TalkPreferences.objects.filter(user=user).update(settings={"vad": {"silenceThreshold": "x"}})
    assert selectors.talk_settings_for_user(user=user) == talk_settings.defaults()


def test_what_is_saved_is_a_create_session_the_protocol_accepts() -> None:
    data = talk_settings.create_session_data(talk_settings.validate(CHOSEN))
    message = parse_client_message(json.dumps({"type": "create_session", "data": data}))
    assert message == {"type": "create_session", "data": data}
    assert data["config"]["speechConfig"] == {"voiceConfig": {"voiceName": "Aoede"}}


def test_choices_offer_what_validate_accepts() -> None:
    choices = talk_settings.choices()
    assert [m["name"] for m in choices["models"]] == [m.name for m in talk_models()]
    assert all(m["description"] for m in choices["models"])
    for model in choices["models"]:
        for modalities in model["responseModalities"]:
            talk_settings.validate({"model": model["name"], "responseModalities": modalities})
    with pytest.raises(ValidationError):
        talk_settings.validate({"voiceName": ""})


def test_direct_transport_is_refused_unless_the_server_allows_it(api_client: APIClient, settings: Any) -> None:
    """LIVE_DIRECT_MODE "off" (the default): "direct" is a 400 naming `transport`, and the sheet does not offer it."""
    settings.LIVE_DIRECT_MODE = "off"
    response = put(api_client, {**CHOSEN, "transport": "direct"})
    error = assert_error(response, 400, "transport")
    assert error["code"] == "invalid_choice"
    assert "LIVE_DIRECT_MODE" in error["message"]
    assert api_client.get(URL).json()["transport"] == "proxied"
    assert talk_settings.choices()["transports"] == ["proxied"]


def test_direct_transport_is_stored_where_allowed(api_client: APIClient, settings: Any) -> None:
    settings.LIVE_DIRECT_MODE = "allowed"
    assert talk_settings.choices()["transports"] == ["proxied", "direct"]
    response = put(api_client, {**CHOSEN, "transport": "direct"})
    assert response.status_code == 200, response.content
    assert response.json() == {**CHOSEN, "transport": "direct"}
    assert api_client.get(URL).json()["transport"] == "direct"
    assert_error(put(api_client, {"transport": "websocket"}), 400, "transport")


def test_direct_chosen_before_direct_mode_was_switched_off_reads_as_proxied(user: Any, settings: Any) -> None:
    """The rest of what was chosen is kept; only the transport falls back."""
    TalkPreferences.objects.create(user=user, settings={**CHOSEN, "transport": "direct"})
    settings.LIVE_DIRECT_MODE = "allowed"
    assert selectors.talk_settings_for_user(user=user) == {**CHOSEN, "transport": "direct"}
    settings.LIVE_DIRECT_MODE = "off"
    assert selectors.talk_settings_for_user(user=user) == CHOSEN


@contextmanager
def rolled_back() -> Iterator[None]:
    """One Hypothesis example: its writes are undone before the next."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


VAD = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.one_of(st.booleans(), st.just("true")),
        "sensitivity": st.one_of(st.floats(-1, 2, allow_nan=False), st.integers(0, 1)),
        "silenceThreshold": st.one_of(st.integers(-100, 12_000), st.just(1.5)),
    },
)
BODIES = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.one_of(st.sampled_from([m.name for m in talk_models()]), st.text(max_size=20)),
            "voiceName": st.one_of(st.none(), st.sampled_from(VOICES), st.text(max_size=12)),
            "responseModalities": st.lists(st.sampled_from(["AUDIO", "TEXT", "VIDEO"]), max_size=3),
            "vad": VAD,
            "loadConversationContext": st.one_of(st.booleans(), st.integers(0, 1)),
            "contextCompression": st.one_of(st.booleans(), st.none()),
            "transport": st.sampled_from(["proxied", "direct", "websocket"]),
            "extra": st.integers(),
        },
    ),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=5),
)


@given(body=BODIES)
@example(body={"vad": {"enabled": False, "silenceThreshold": 10_000}})
@example(body={"responseModalities": []})
def test_put_stores_exactly_what_it_answers_or_changes_nothing(api_client: APIClient, user: Any, body: Any) -> None:
    with rolled_back():
        before = services.talk_settings_save(user=user, data=CHOSEN)
        response = put(api_client, body)
        assert response.status_code in (200, 400), response.content
        now = api_client.get(URL).json()
        if response.status_code == 200:
            assert now == response.json()
            data = talk_settings.create_session_data(now)
            parse_client_message(json.dumps({"type": "create_session", "data": data}))
        else:
            error = response.json()["error"]
            assert error["message"]
            if isinstance(body, dict):
                assert error["field"], error
            assert now == before
