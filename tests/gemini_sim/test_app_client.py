"""The app's client factory (gemini.client, simulator mode) trusts the simulator per client, for REST and Live."""

from __future__ import annotations

import asyncio
import datetime
import os

import pytest
from google.genai import types

from gemini import catalogue as app_catalogue
from gemini.client import get_client
from gemini_sim.oauth import JWT_BEARER
from tests.gemini_fixtures import use_simulator, use_vertex

from .conftest import text_of
from .livekit import say


async def test_get_client_reaches_the_simulator_over_rest_and_live(sim, settings, monkeypatch):
    use_simulator(settings, sim)  # simulator mode, at GEMINI_BASE_URL with GEMINI_CA_FILE's CA
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert "SSL_CERT_FILE" not in os.environ
    client = get_client()
    assert "Hello" in text_of(client.models.generate_content(model="gemini-2.5-flash", contents="hello"))
    reply = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="what is 2 plus 2")
    assert "4" in text_of(reply)
    cfg = types.LiveConnectConfig(output_audio_transcription=types.AudioTranscriptionConfig())
    async with get_client(live=True).aio.live.connect(model="gemini-3.1-flash-live-preview", config=cfg) as session:
        assert "Hello" in (await say(session, "hello")).text
    assert {r["path"] for r in sim.records(type="connect")} >= {"gemini:v1beta"}


def test_catalogues_agree():
    from gemini_sim import catalogue

    assert catalogue.VOICES == app_catalogue.VOICES
    for name, app_model in app_catalogue.LIVE_MODELS.items():
        sim_model = catalogue.MODELS[name]
        assert sim_model.live and sim_model.audio_only == app_model.audio_only
        assert sim_model.conversational == app_model.conversational
        assert sim_model.accepts_text_input == app_model.text_input and sim_model.tools == app_model.tools
        assert sim_model.max_session_seconds == app_model.max_session_seconds
        assert sim_model.stream_end_ends_turn == app_model.stream_end_ends_turn
        assert (catalogue.VERTEX in sim_model.apis) if app_model.vertex else (catalogue.GEMINI in sim_model.apis)


@pytest.mark.parametrize("kind", ["service_account", "authorized_user"])
async def test_vertex_mode_reaches_rest_and_live_with_a_credentials_file(sim, settings, monkeypatch, tmp_path, kind):
    """GOOGLE_APPLICATION_CREDENTIALS names a key file or an ADC file; google-auth's own classes get the token."""
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    from gemini.client import vertex_credentials

    # google-auth refreshes through requests, which trusts REQUESTS_CA_BUNDLE (not the clients' GEMINI_CA_FILE).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.ca_path))
    if kind == "service_account":
        credentials_file = sim.service_account_file(tmp_path / "key.json")
    else:
        credentials_file = sim.authorized_user_file(tmp_path / "application_default_credentials.json")
    use_vertex(settings, sim, credentials_file)
    credentials = vertex_credentials()
    expected = service_account.Credentials if kind == "service_account" else user_credentials.Credentials
    assert type(credentials) is expected
    client = get_client()
    assert client.vertexai
    sim.clear_records()
    assert client.models.generate_content(model="gemini-2.5-flash", contents="hello").text
    async with get_client(live=True).aio.live.connect(model="gemini-live-2.5-flash-native-audio") as session:
        sid = session.session_id
    token = credentials.token
    assert token is not None and token.startswith("ya29.sim-")
    _expiry, scope, _client = sim.simulator.access_tokens[token]
    assert scope == "https://www.googleapis.com/auth/cloud-platform"
    [grant] = sim.records(type="oauth")  # one token for both: the credentials are shared, refreshed when due
    assert grant["grant_type"] == ("refresh_token" if kind == "authorized_user" else JWT_BEARER)
    [request] = sim.records(type="http")
    assert request["headers"]["authorization"] == f"Bearer {token}"
    assert "/projects/sim-project/locations/us-central1/publishers/google/models/" in request["path"]
    [connect] = sim.records(type="connect", session=sid)
    assert connect["headers"]["authorization"] == f"Bearer {token}"


async def test_a_live_client_opens_each_connection_with_a_fresh_token(make_sim, settings, monkeypatch, tmp_path):
    """Tokens that expire within seconds: a connection opened after expiry has a new one (the old would be 1008)."""
    import google.auth._helpers

    sim = make_sim(access_token_lifetime=2)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.ca_path))
    # google-auth refreshes 3 min 45 s before expiry; scaled down with the lifetime, so a token is used while valid.
    monkeypatch.setattr(google.auth._helpers, "REFRESH_THRESHOLD", datetime.timedelta(seconds=0.5))
    use_vertex(settings, sim, sim.service_account_file(tmp_path / "key.json"))
    client = get_client(live=True)
    tokens = []
    for _ in range(3):
        async with client.aio.live.connect(model="gemini-live-2.5-flash-native-audio") as session:
            [connect] = sim.records(type="connect", session=session.session_id)
            tokens.append(connect["headers"]["authorization"])
        await asyncio.sleep(1.0)
    assert len(set(tokens)) >= 2, "no refresh"
    assert not sim.records(type="close", code=1008)
