"""gemini.catalogue: which Live models Talk offers with the configured Gemini."""

from __future__ import annotations

from gemini.catalogue import talk_models


def test_talk_models_are_the_conversational_ones_of_the_configured_gemini(settings):
    names = [m.name for m in talk_models()]
    assert "gemini-3.1-flash-live-preview" in names and "gemini-3.8-live" in names
    assert "gemini-3.5-transcribe-live" not in names and "gemini-3.5-live-translate-preview" not in names
    assert "gemini-live-2.5-flash-native-audio" not in names  # Vertex only
    settings.GOOGLE_GENAI_USE_VERTEXAI = True
    assert "gemini-live-2.5-flash-native-audio" in [m.name for m in talk_models()]
