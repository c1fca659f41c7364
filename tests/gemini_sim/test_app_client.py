"""The app's client factory (gemini.client, simulator mode) trusts the simulator per client, for REST and Live."""

from __future__ import annotations

import os

from google.genai import types

from gemini import catalogue as app_catalogue
from gemini.client import get_client
from tests.gemini_fixtures import use_simulator

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


async def test_vertex_mode_reaches_the_simulator_with_a_bearer_token(sim, settings, monkeypatch):
    import google.auth
    from google.oauth2.credentials import Credentials

    settings.GEMINI_API_KEY = ""
    settings.GOOGLE_GENAI_USE_VERTEXAI = True
    settings.GOOGLE_CLOUD_PROJECT = "sim-project"
    settings.GOOGLE_CLOUD_LOCATION = "us-central1"
    settings.GOOGLE_APPLICATION_CREDENTIALS = ""
    settings.GEMINI_BASE_URL = sim.base_url
    settings.GEMINI_CA_FILE = str(sim.ca_path)
    # ADC, as on a GCP host: offline here, so hand the SDK an already-issued access token
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (Credentials(token="ya29.adc"), "sim-project"))
    client = get_client()
    assert client.vertexai
    sim.clear_records()
    assert client.models.generate_content(model="gemini-2.5-flash", contents="hello").text
    async with client.aio.live.connect(model="gemini-live-2.5-flash-native-audio") as session:
        sid = session.session_id
    [request] = sim.records(type="http")
    assert request["headers"]["authorization"] == "Bearer ya29.adc"
    assert "/projects/sim-project/locations/us-central1/publishers/google/models/" in request["path"]
    [connect] = sim.records(type="connect", session=sid)
    assert connect["headers"]["authorization"] == "Bearer ya29.adc"
