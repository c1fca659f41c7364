"""gemini.explanations: every cause is explained somewhere, the most specific entry wins, every template renders."""

from __future__ import annotations

import pytest

from gemini.errors import Cause
from gemini.explanations import EXPLANATIONS, PLACES, explanation, render

FACTS = {
    "url": "wss://h/ws/x",
    "version": "v1beta",
    "host": "h",
    "base": "https://h",
    "ephemeral_url": "wss://h/ws/c",
    "model": "m",
    "text_model": "t",
    "live_models": "a, b",
    "text_models": "c",
    "credential": "…abcd",
    "settings_hint": "GEMINI_BASE_URL",
    "trusted": "no trusted CA signs",
    "timeout": 2.5,
    "detail": "said",
}


@pytest.mark.parametrize("cause", list(Cause))
def test_every_cause_is_explained_at_every_place(cause):
    for where in PLACES:
        why, fix = render(explanation(cause, where=where), FACTS)
        assert why and fix and "{" not in why + fix


def test_every_template_fills_from_the_facts_a_diagnosis_gives():
    for templates in EXPLANATIONS.values():
        render(templates, FACTS)  # a placeholder the facts lack raises KeyError


def test_the_place_comes_before_the_situation_and_both_before_the_general_entry():
    bad, endpoint, model = Cause.BAD_CREDENTIALS, Cause.ENDPOINT_NOT_FOUND, Cause.MODEL_NOT_FOUND
    # A refused ephemeral token is about the token, even when the server's key is a token too.
    assert explanation(bad, where="ephemeral", situations=["token_key"]) == EXPLANATIONS[(bad, "ephemeral", "")]
    assert explanation(bad, where="live", situations=["token_key", "vertex"]) == EXPLANATIONS[(bad, "*", "token_key")]
    assert explanation(bad, where="rest", situations=["vertex"]) == EXPLANATIONS[(bad, "*", "vertex")]
    assert (
        explanation(endpoint, where="ephemeral", situations=["vertex"])
        == EXPLANATIONS[(endpoint, "handshake", "vertex")]
    )
    assert explanation(endpoint, where="tokens") == EXPLANATIONS[(endpoint, "tokens", "")]
    assert explanation(endpoint, where="rest", situations=["vertex"]) == EXPLANATIONS[(endpoint, "*", "")]
    assert explanation(model, where="live") == EXPLANATIONS[(model, "live", "")]
    assert explanation(model, where="ephemeral") == EXPLANATIONS[(model, "*", "")]
