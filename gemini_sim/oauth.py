"""Google's OAuth 2.0 token endpoint (``POST /token``), so google-auth's real code gets its tokens from the simulator.

Grants (https://developers.google.com/identity/protocols/oauth2/service-account#httprest and …/web-server#offline):

- JWT bearer (``urn:ietf:params:oauth:grant-type:jwt-bearer``), as a service account signs it: an RS256 JWT whose
  ``iss`` is the account's email, ``aud`` this endpoint, with ``scope``, ``iat`` and ``exp`` (at most an hour apart).
  ``write_service_account_file`` writes a key file whose ``token_uri`` is this simulator (google-auth honours a
  service account's ``token_uri``; it ignores an ``authorized_user`` file's), for
  ``GOOGLE_APPLICATION_CREDENTIALS``.
- Refresh token (``refresh_token``), as user credentials refresh: ``write_authorized_user_file`` writes the file
  ``gcloud auth application-default login`` writes, plus a ``token_uri`` naming this simulator (google-auth itself
  ignores that field; ``gemini.client`` honours it, see there).

Both answer ``{"access_token": "ya29.sim-…", "expires_in", "scope", "token_type": "Bearer"}``, or 400/401
``{"error": "invalid_grant" | "invalid_client" | …, "error_description"}`` as Google does. Access tokens last
``Options.access_token_lifetime`` seconds (Google: 3599), so tests can watch clients refresh them.

``check_access_token`` is how REST and Live judge a ``Authorization: Bearer`` token: unknown or expired → 401
UNAUTHENTICATED, a scope that does not cover the API → 403 PERMISSION_DENIED (sources: docs/gemini-fidelity.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import wire

if TYPE_CHECKING:
    from .server import HttpRequest, HttpResponse, Simulator

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
GENERATIVE_LANGUAGE = "https://www.googleapis.com/auth/generative-language"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_ASSERTION_SECONDS = 3600
CLOCK_SKEW = 300
EXPIRED_TOKENS_KEPT = 3600.0  # an expired token is told apart from an unknown one for this long after it expires

# Google's texts for refused credentials (REST bodies quoted in googleapis/google-cloud-python#15080,
# google-gemini/gemini-cli#1463, googleapis/js-genai#569; see docs/gemini-fidelity.md).
INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
INSUFFICIENT_SCOPES = "Request had insufficient authentication scopes."
API_KEYS_NOT_SUPPORTED = (
    "API keys are not supported by this API. Expected OAuth2 access token or other authentication credentials that "
    "assert a principal. See https://cloud.google.com/docs/authentication"
)


@dataclass(frozen=True)
class Refusal:
    """Why a request's credentials are refused: the HTTP status, Google's message and its ErrorInfo reason."""

    status: int
    message: str
    reason: str = ""


@dataclass
class Grant:
    """What a credential the simulator issued may obtain: a service account's key, or a refresh token's client."""

    client_id: str
    client_secret: str = ""
    public_key: rsa.RSAPublicKey | None = None
    scope: str = CLOUD_PLATFORM


def write_service_account_file(sim: Simulator, path: Path | str, base_url: str, project: str = "sim-project") -> Path:
    """Write a service-account key file (a fresh RSA key) whose tokens come from this simulator's ``/token``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = secrets.token_hex(20)
    email = f"apsara-sim@{project}.iam.gserviceaccount.com"
    sim.oauth_grants[f"sa:{email}:{key_id}"] = Grant(client_id=email, public_key=key.public_key())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem.decode(),
        "client_email": email,
        "client_id": str(secrets.randbelow(10**20)),
        "token_uri": f"{base_url}/token",
    }
    target = Path(path)
    target.write_text(json.dumps(info, indent=2), encoding="utf-8")
    target.chmod(0o600)
    return target


def register_refresh_token(sim: Simulator, client_id: str, client_secret: str, scope: str = CLOUD_PLATFORM) -> str:
    """Issue a refresh token for an OAuth client (user credentials) with ``scope``, as a consent flow would."""
    refresh_token = f"1//sim-{secrets.token_urlsafe(24)}"
    sim.oauth_grants[refresh_token] = Grant(client_id=client_id, client_secret=client_secret, scope=scope)
    return refresh_token


def write_authorized_user_file(sim: Simulator, path: Path | str, base_url: str, scope: str = CLOUD_PLATFORM) -> Path:
    """Write an ``authorized_user`` file, as ``gcloud auth application-default login`` does, whose refresh token
    this simulator issued for ``scope``; its ``token_uri`` names this simulator's ``/token``."""
    client_id = f"{secrets.randbelow(10**12)}-sim.apps.googleusercontent.com"
    client_secret = f"GOCSPX-{secrets.token_urlsafe(18)}"
    info = {
        "type": "authorized_user",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": register_refresh_token(sim, client_id, client_secret, scope),
        "token_uri": f"{base_url}/token",
        "universe_domain": "googleapis.com",
    }
    target = Path(path)
    target.write_text(json.dumps(info, indent=2), encoding="utf-8")
    target.chmod(0o600)
    return target


def issue_access_token(sim: Simulator, scope: str, client_id: str, lifetime: float | None = None) -> tuple[str, int]:
    """Mint an access token for ``scope`` (``Options.access_token_lifetime`` unless ``lifetime``); with its
    ``expires_in``."""
    seconds = sim.options.access_token_lifetime if lifetime is None else lifetime
    now = time.time()
    for old, (expiry, _scope, _client) in list(sim.access_tokens.items()):
        if expiry < now - EXPIRED_TOKENS_KEPT:
            sim.access_tokens.pop(old, None)
    access = f"ya29.sim-{secrets.token_urlsafe(32)}"
    sim.access_tokens[access] = (now + seconds, scope, client_id)
    return access, max(1, round(seconds))


def scope_covers(scope: str, api: str) -> bool:
    """Whether a token's scopes reach ``api``: cloud-platform reaches both; generative-language only the Gemini API."""
    from .catalogue import GEMINI

    scopes = scope.split()
    if CLOUD_PLATFORM in scopes:
        return True
    return api == GEMINI and any(s == GENERATIVE_LANGUAGE or s.startswith(f"{GENERATIVE_LANGUAGE}.") for s in scopes)


def check_access_token(sim: Simulator, token: str, api: str) -> Refusal | None:
    """Judge a Bearer token on ``api`` (``catalogue.GEMINI`` or ``VERTEX``): None when it is accepted."""
    entry = sim.access_tokens.get(token)
    if entry is None:
        return Refusal(401, INVALID_CREDENTIALS)
    expiry, scope, _client = entry
    if expiry <= time.time():
        return Refusal(401, INVALID_CREDENTIALS, "ACCESS_TOKEN_EXPIRED")
    if not scope_covers(scope, api):
        return Refusal(403, INSUFFICIENT_SCOPES, "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
    return None


def _error(status: int, code: str, description: str) -> HttpResponse:
    from .server import HttpResponse

    return HttpResponse(status, wire.dumps({"error": code, "error_description": description}))


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _verified_claims(sim: Simulator, assertion: str, audience: str) -> tuple[dict[str, Any], Grant] | str:
    """The claims of a service account's signed JWT, and its grant; or why it is refused."""
    try:
        head_b64, body_b64, sig_b64 = assertion.split(".")
        header, claims = json.loads(_b64url(head_b64)), json.loads(_b64url(body_b64))
        signature = _b64url(sig_b64)
    except (ValueError, binascii.Error):
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
    if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
        return "Invalid JWT Signature."
    grant = sim.oauth_grants.get(f"sa:{claims.get('iss')}:{header.get('kid')}")
    if grant is None or grant.public_key is None:
        return "Invalid grant: account not found"
    try:
        grant.public_key.verify(signature, f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return "Invalid JWT Signature."
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if (
        not isinstance(iat, int | float)
        or not isinstance(exp, int | float)
        or exp - iat > MAX_ASSERTION_SECONDS
        or iat > now + CLOCK_SKEW
        or exp < now - CLOCK_SKEW
    ):
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
    # Google: "When making an access token request this value is always https://oauth2.googleapis.com/token"
    # (google-auth sends that whatever the key file's token_uri); the simulator's own URL is accepted too.
    if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, audience):
        return "Invalid JWT: Failed audience check."
    return claims, grant


def token(sim: Simulator, request: HttpRequest, base_url: str) -> HttpResponse:
    """Exchange a signed JWT (service account) or a refresh token (user credentials) for an access token."""
    from .server import HttpResponse

    if request.method != "POST":
        return _error(405, "invalid_request", "Method not allowed.")
    form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
    grant_type = form.get("grant_type", "")
    sim.recorder.add({"type": "oauth", "grant_type": grant_type})
    if grant_type == JWT_BEARER:
        verified = _verified_claims(sim, form.get("assertion", ""), f"{base_url}/token")
        if isinstance(verified, str):
            return _error(400, "invalid_grant", verified)
        claims, grant = verified
        scope = str(claims.get("scope") or "")
        if not scope:
            return _error(400, "invalid_scope", "Invalid oauth scope or ID token audience provided.")
    elif grant_type == "refresh_token":
        found = sim.oauth_grants.get(form.get("refresh_token", ""))
        if found is None or found.public_key is not None:
            return _error(400, "invalid_grant", "Token has been expired or revoked.")
        if form.get("client_id") != found.client_id or form.get("client_secret") != found.client_secret:
            return _error(401, "invalid_client", "The OAuth client was not found.")
        grant, scope = found, found.scope
        requested = form.get("scope", "").split()
        if requested and not set(requested) <= set(found.scope.split()):
            # A refresh may narrow the consented scopes, never widen them.
            return _error(400, "invalid_scope", "Some requested scopes were invalid.")
        scope = " ".join(requested) or scope
    else:
        return _error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    access, expires_in = issue_access_token(sim, scope, grant.client_id)
    body = {"access_token": access, "expires_in": expires_in, "scope": scope, "token_type": "Bearer"}
    return HttpResponse(200, wire.dumps(body))
