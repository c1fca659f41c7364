"""gemini_sim's OAuth token endpoint, driven by google-auth's own code (service-account JWT grant, refresh grant)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import google.auth
import pytest
import requests
from google.auth import exceptions
from google.auth.transport.requests import Request
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from gemini_sim.oauth import JWT_BEARER, register_refresh_token

CLOUD = "https://www.googleapis.com/auth/cloud-platform"


@pytest.fixture
def trusting(sim, monkeypatch):
    """google-auth refreshes through ``requests``, which takes its CA bundle from the environment."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.ca_path))
    return Request()


def test_a_service_account_key_file_gets_an_access_token(sim, tmp_path, trusting, monkeypatch):
    key_file = sim.service_account_file(tmp_path / "sa.json")
    assert json.loads(key_file.read_text())["token_uri"] == f"{sim.base_url}/token"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    creds, project = google.auth.default(scopes=[CLOUD])  # ADC, as the SDK loads it
    creds.refresh(trusting)
    assert project == "sim-project"
    assert isinstance(creds, service_account.Credentials)  # from the key file
    assert creds.token is not None and creds.token.startswith("ya29.sim-") and creds.valid and creds.expiry is not None
    _expiry, scope, client = sim.simulator.access_tokens[creds.token]
    assert scope == CLOUD and client == creds.service_account_email
    assert sim.records(type="oauth", grant_type=JWT_BEARER)


def _post(sim, **form) -> requests.Response:
    return requests.post(f"{sim.base_url}/token", data=form, verify=str(sim.ca_path), timeout=10)


def test_a_tampered_or_unknown_assertion_is_an_invalid_grant(sim, tmp_path):
    creds = service_account.Credentials.from_service_account_file(
        sim.service_account_file(tmp_path / "sa.json"), scopes=[CLOUD]
    )
    assertion = creds._make_authorization_grant_assertion()  # what refresh() posts (a private helper: test only)
    assertion = assertion.decode() if isinstance(assertion, bytes) else assertion
    head, body, sig = assertion.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "scope": "x"}).encode()).decode().rstrip("=")
    cases = {
        f"{head}.{forged}.{sig}": "Invalid JWT Signature.",
        "not-a-jwt": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
    }
    for bad, description in cases.items():
        answer = _post(sim, grant_type=JWT_BEARER, assertion=bad)
        assert answer.status_code == 400
        assert answer.json() == {"error": "invalid_grant", "error_description": description}
    other = service_account.Credentials.from_service_account_info(
        {**json.loads(Path(tmp_path / "sa.json").read_text()), "private_key_id": "unknown"}, scopes=[CLOUD]
    )
    answer = _post(sim, grant_type=JWT_BEARER, assertion=other._make_authorization_grant_assertion())
    assert answer.json()["error"] == "invalid_grant"
    assert _post(sim, grant_type=JWT_BEARER, assertion=assertion).status_code == 200
    assert _post(sim, grant_type="password").json()["error"] == "unsupported_grant_type"


def test_user_credentials_refresh_and_a_revoked_token_fails(sim, trusting):
    refresh = register_refresh_token(sim.simulator, "client-1.apps.googleusercontent.com", "s3cret")
    creds = user_credentials.Credentials(
        token=None,
        refresh_token=refresh,
        client_id="client-1.apps.googleusercontent.com",
        client_secret="s3cret",
        token_uri=f"{sim.base_url}/token",
    )
    creds.refresh(trusting)
    assert creds.token is not None and creds.token.startswith("ya29.sim-")
    revoked = user_credentials.Credentials(
        token=None, refresh_token="1//revoked", client_id="c", client_secret="s", token_uri=f"{sim.base_url}/token"
    )
    with pytest.raises(exceptions.RefreshError, match="invalid_grant"):
        revoked.refresh(trusting)


GENERATIVE_LANGUAGE = "https://www.googleapis.com/auth/generative-language"
VERTEX_REST = "/v1beta1/projects/sim-project/locations/us-central1/publishers/google/models/gemini-2.5-flash"
VERTEX_LIVE = "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
GEMINI_LIVE = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
VERTEX_MODEL = "projects/sim-project/locations/us-central1/publishers/google/models/gemini-live-2.5-flash-native-audio"


def _generate(sim, path: str, headers: dict[str, str]) -> requests.Response:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    return requests.post(
        f"{sim.base_url}{path}:generateContent", json=body, headers=headers, verify=str(sim.ca_path), timeout=10
    )


async def _live_close(sim, path: str, headers: dict[str, str], model: str) -> tuple[int, str]:
    """Open Live with these headers and a setup; the close code and reason, or (0, "setupComplete")."""
    import websockets

    async with websockets.connect(
        f"wss://127.0.0.1:{sim.port}{path}", ssl=sim.ssl_context, additional_headers=headers
    ) as ws:
        await ws.send(json.dumps({"setup": {"model": model}}))
        try:
            first = json.loads(await ws.recv())
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason
        return 0, next(iter(first))


def _error_of(answer: requests.Response) -> tuple[int, str, str, str]:
    error = answer.json()["error"]
    reason = (error.get("details") or [{}])[0].get("reason", "")
    return error["code"], error["status"], error["message"], reason


async def test_rest_and_live_check_the_access_tokens_they_are_given(make_sim):
    sim = make_sim()
    good, narrow = sim.access_token(), sim.access_token(scope="https://www.googleapis.com/auth/userinfo.email")
    expired = sim.access_token(lifetime=-1)
    assert _generate(sim, VERTEX_REST, {"Authorization": f"Bearer {good}"}).status_code == 200
    insufficient = "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    cases = {
        "ya29.never-issued": (401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", ""),
        expired: (401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", "ACCESS_TOKEN_EXPIRED"),
        narrow: (403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.", insufficient),
    }
    for token, (code, status, message, reason) in cases.items():
        got = _error_of(_generate(sim, VERTEX_REST, {"Authorization": f"Bearer {token}"}))
        assert got[:2] == (code, status) and got[2].startswith(message) and got[3] == reason
        close, why = await _live_close(sim, VERTEX_LIVE, {"Authorization": f"Bearer {token}"}, VERTEX_MODEL)
        assert close == 1008 and why.startswith(message)
    assert await _live_close(sim, VERTEX_LIVE, {"Authorization": f"Bearer {good}"}, VERTEX_MODEL) == (
        0,
        "setupComplete",
    )


async def test_an_api_key_where_oauth_is_needed_is_refused_as_google_does(make_sim):
    sim = make_sim()
    code, status, message, reason = _error_of(_generate(sim, VERTEX_REST, {"x-goog-api-key": "AIza-key"}))
    assert (code, status, reason) == (401, "UNAUTHENTICATED", "CREDENTIALS_MISSING")
    assert message.startswith("API keys are not supported by this API. Expected OAuth2 access token")
    close, why = await _live_close(sim, VERTEX_LIVE, {"x-goog-api-key": "AIza-key"}, VERTEX_MODEL)
    # google-gemini/cookbook#1122: the same text, cut to the 123 bytes a close reason holds.
    assert close == 1008
    assert why == (
        "API keys are not supported by this API. Expected OAuth2 access token or other authentication credentials "
        "that assert a prin"
    )
    # Vertex express mode (an API key, no project in the model) stays open.
    express = "publishers/google/models/gemini-live-2.5-flash-native-audio"
    assert (await _live_close(sim, VERTEX_LIVE, {"x-goog-api-key": "AIza-key"}, express))[1] == "setupComplete"


async def test_the_gemini_api_takes_a_bearer_token_with_the_generative_language_scope(make_sim):
    sim = make_sim(api_keys=["the-key"])
    token = sim.access_token(scope=GENERATIVE_LANGUAGE)
    assert _generate(sim, "/v1beta/models/gemini-2.5-flash", {"Authorization": f"Bearer {token}"}).status_code == 200
    assert (
        await _live_close(
            sim, GEMINI_LIVE, {"Authorization": f"Bearer {token}"}, "models/gemini-3.1-flash-live-preview"
        )
    )[1] == "setupComplete"
    # generative-language does not reach Vertex AI; cloud-platform reaches both.
    assert _generate(sim, VERTEX_REST, {"Authorization": f"Bearer {token}"}).status_code == 403
    assert _generate(sim, "/v1beta/models/gemini-2.5-flash", {"Authorization": f"Bearer {sim.access_token()}"}).ok


def test_access_tokens_last_the_configured_lifetime_and_user_credentials_refresh_narrower(
    make_sim, tmp_path, monkeypatch
):
    sim = make_sim(access_token_lifetime=2)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.ca_path))
    key_file = sim.service_account_file(tmp_path / "sa.json")
    creds = service_account.Credentials.from_service_account_file(key_file, scopes=[CLOUD])
    creds.refresh(Request())
    expiry, _scope, _client = sim.simulator.access_tokens[creds.token]
    import time

    assert 0 < expiry - time.time() <= 2
    info = json.loads(sim.authorized_user_file(tmp_path / "adc.json", scope=f"{CLOUD} openid").read_text())
    assert info["type"] == "authorized_user" and info["token_uri"] == f"{sim.base_url}/token"
    answer = _post(sim, grant_type="refresh_token", refresh_token=info["refresh_token"], client_id=info["client_id"],
                   client_secret=info["client_secret"], scope=CLOUD)  # fmt: skip
    assert answer.json()["scope"] == CLOUD and answer.json()["expires_in"] == 2
    wider = _post(sim, grant_type="refresh_token", refresh_token=info["refresh_token"], client_id=info["client_id"],
                  client_secret=info["client_secret"], scope=f"{CLOUD} {GENERATIVE_LANGUAGE}")  # fmt: skip
    assert wider.json()["error"] == "invalid_scope"
