"""gemini.client: one Live client per process and configuration; the API version each kind of client uses."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from google import genai

from gemini.client import (
    Mode,
    current_mode,
    ephemeral_client,
    get_client,
    live_api_version,
    live_client,
    simulator_address,
    simulator_started,
)


def version(client: genai.Client) -> str | None:
    return client._api_client._http_options.api_version


@pytest.fixture
def api_key_mode(settings, monkeypatch):
    settings.GEMINI_API_KEY = "key-one"
    settings.GEMINI_BASE_URL = "https://127.0.0.1:9"
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")  # the SDK's default, pinned whatever the SDK version
    return settings


def test_live_client_is_built_once_per_configuration(api_key_mode):
    first = live_client()
    assert live_client() is first
    api_key_mode.GEMINI_API_KEY = "key-two"
    second = live_client()
    assert second is not first
    assert second._api_client.api_key == "key-two"
    api_key_mode.GEMINI_LIVE_API_VERSION = "v1alpha"
    assert version(live_client()) == "v1alpha"


@pytest.mark.parametrize(("rest", "expected_rest"), [("", "v1"), ("v1", "v1"), ("v1alpha", "v1alpha")])
def test_gemini_api_version_is_for_rest_and_live_is_on_v1beta(api_key_mode, rest, expected_rest):
    api_key_mode.GEMINI_API_VERSION = rest
    assert version(get_client()) == expected_rest
    assert version(get_client(live=True)) == version(live_client()) == "v1beta"
    assert live_api_version().source == "the Gemini API serves Live only on v1beta"


def test_ephemeral_tokens_open_live_on_v1alpha(api_key_mode):
    assert version(ephemeral_client("auth_tokens/abc")) == "v1alpha"
    api_key_mode.GEMINI_API_KEY = "auth_tokens/abc"  # a token as the server's key: its Live is v1alpha too
    assert version(get_client(live=True)) == "v1alpha"


def test_vertex_keeps_the_sdk_default_for_live(settings):
    settings.GOOGLE_GENAI_USE_VERTEXAI = True
    settings.GOOGLE_CLOUD_PROJECT = "p"
    settings.GEMINI_API_VERSION = "v1"
    settings.GEMINI_LIVE_API_VERSION = "v1beta"  # the Gemini API's setting; Vertex ignores it
    assert version(get_client()) == "v1"
    sdk_default = version(genai.Client(vertexai=True, project="p", location=settings.GOOGLE_CLOUD_LOCATION))
    assert version(get_client(live=True)) == sdk_default == "v1beta1"


@pytest.mark.parametrize("live", ["v1", "v1beta1", "v2"])
def test_a_live_version_the_gemini_api_does_not_serve_live_on_is_refused(api_key_mode, live):
    api_key_mode.GEMINI_LIVE_API_VERSION = live
    with pytest.raises(ImproperlyConfigured, match=f"GEMINI_LIVE_API_VERSION is '{live}', but the Gemini API serves"):
        live_client()
    assert version(get_client()) == "v1"  # REST does not care


def test_simulator_mode_talks_to_the_simulator_at_gemini_base_url(gemini_sim):
    """GEMINI_BASE_URL and GEMINI_CA_FILE, with no key and no Vertex, name the simulator: nothing is started."""
    assert current_mode() is Mode.SIMULATOR
    base_url, ctx = simulator_address()
    assert base_url == gemini_sim.base_url and ctx is not None
    assert str(get_client()._api_client._http_options.base_url).rstrip("/") == gemini_sim.base_url


def test_simulator_mode_without_a_base_url_starts_the_embedded_simulator_once(settings, tmp_path):
    settings.GEMINI_API_KEY = ""
    settings.GOOGLE_GENAI_USE_VERTEXAI = False
    settings.GEMINI_BASE_URL = ""
    settings.GEMINI_CA_FILE = ""
    settings.GEMINI_SIM_STATE_DIR = tmp_path  # unless an earlier test of this process started it already
    base_url, ctx = simulator_address()
    assert simulator_started()
    assert simulator_address() == (base_url, ctx)  # one per process
    assert str(get_client()._api_client._http_options.base_url).rstrip("/") == base_url
