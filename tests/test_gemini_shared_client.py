"""apsara.gemini.shared_client: one client per process and configuration."""

from __future__ import annotations

from apsara import gemini


def test_shared_client_is_built_once_per_configuration(settings):
    settings.GEMINI_API_KEY = "key-one"
    settings.GEMINI_BASE_URL = "https://127.0.0.1:9"
    first = gemini.shared_client()
    assert gemini.shared_client() is first
    settings.GEMINI_API_KEY = "key-two"
    second = gemini.shared_client()
    assert second is not first
    assert second._api_client.api_key == "key-two"
