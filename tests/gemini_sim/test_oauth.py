"""gemini_sim's OAuth token endpoint, driven by google-auth's own code (service-account JWT grant, refresh grant)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

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
