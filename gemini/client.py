"""The one place that builds google-genai clients.

Three modes, decided from settings when first needed (never at import):
- ``api_key``: Gemini Developer API (``GEMINI_API_KEY``; ``GEMINI_BASE_URL``/``GEMINI_CA_FILE`` point it elsewhere,
  e.g. at a proxy);
- ``vertex``: Vertex AI with OAuth Bearer tokens (``GOOGLE_GENAI_USE_VERTEXAI`` + project/location/credentials:
  ``vertex_credentials``);
- ``simulator``: neither is set, so the app talks to ``gemini_sim``: the one at ``GEMINI_BASE_URL`` (trusting the CA
  in ``GEMINI_CA_FILE``) when that is set, e.g. a stand-alone ``python -m gemini_sim`` or a test's simulator;
  otherwise the embedded one, started in-process on a loopback port the first time it is needed.

API versions are decided here and nowhere else: REST uses ``GEMINI_API_VERSION`` (empty: the SDK's default); Live
on the Gemini API uses ``GEMINI_LIVE_API_VERSION`` (empty: ``v1beta``), ephemeral tokens ``v1alpha``; Live on Vertex
uses the SDK's default.
"""

from __future__ import annotations

import enum
import json
import os
import ssl
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from google import genai
from google.genai import types


class Mode(enum.StrEnum):
    API_KEY = "api_key"
    VERTEX = "vertex"
    SIMULATOR = "simulator"


def current_mode() -> Mode:
    """Which Gemini the app talks to, from settings."""
    if settings.GEMINI_API_KEY:
        return Mode.API_KEY
    if settings.GOOGLE_GENAI_USE_VERTEXAI:
        return Mode.VERTEX
    return Mode.SIMULATOR


_sim_lock = threading.Lock()


@cache
def _embedded_simulator() -> Any:
    """Start the in-process simulator once per process and return its handle (base_url, ssl_context)."""
    from gemini_sim import start_background

    return start_background(state_dir=settings.GEMINI_SIM_STATE_DIR, host="127.0.0.1", port=0)


LIVE_WEBSOCKET_ARGS: dict[str, Any] = {"compression": None, "ping_interval": 30, "ping_timeout": 60}

# The Gemini API serves the Live WebSocket only on v1beta, and the ephemeral-token (Constrained) endpoint only on
# v1alpha; google-genai defaults to v1, where the handshake is a 404. So Live never takes the SDK's default there
# (Google's own SDK tests set v1beta too: google-genai 3.6.1 tests/live_api/conftest.py).
LIVE_API_VERSION = "v1beta"
EPHEMERAL_TOKEN_API_VERSION = "v1alpha"
LIVE_API_VERSIONS = (LIVE_API_VERSION, EPHEMERAL_TOKEN_API_VERSION)


@dataclass(frozen=True)
class ApiVersion:
    """The API version a client is built with (None: the SDK's default) and where it comes from."""

    version: str | None
    source: str


def rest_api_version() -> ApiVersion:
    """The API version of REST calls: ``GEMINI_API_VERSION``, or the SDK's default."""
    if settings.GEMINI_API_VERSION:
        return ApiVersion(settings.GEMINI_API_VERSION, "GEMINI_API_VERSION")
    return ApiVersion(None, "SDK default")


def live_api_version_problem() -> str | None:
    """Say why ``GEMINI_LIVE_API_VERSION`` cannot work, or None when it can (empty, v1beta or v1alpha)."""
    version = settings.GEMINI_LIVE_API_VERSION
    if not version or version in LIVE_API_VERSIONS:
        return None
    return (
        f"GEMINI_LIVE_API_VERSION is {version!r}, but the Gemini API serves the Live WebSocket only on v1beta "
        "(v1alpha for ephemeral tokens): on any other version the handshake fails with HTTP 404. Leave it empty "
        "(v1beta) or set v1beta or v1alpha. GEMINI_API_VERSION applies to REST only; Vertex AI always uses the "
        "SDK's default."
    )


def live_api_version(api_key: str = "") -> ApiVersion:
    """The API version of Live connections in the configured mode, for a client with ``api_key``.

    Raises ImproperlyConfigured for a ``GEMINI_LIVE_API_VERSION`` the Gemini API serves no Live on: the system check
    refuses it at start-up, and this keeps anything that skipped the check from opening Live on it anyway.
    """
    if current_mode() is Mode.VERTEX:
        return ApiVersion(None, "SDK default, as Vertex AI serves Live on it")
    if api_key.startswith("auth_tokens/"):
        return ApiVersion(EPHEMERAL_TOKEN_API_VERSION, "ephemeral tokens work on v1alpha only")
    problem = live_api_version_problem()
    if problem:
        raise ImproperlyConfigured(problem)
    if settings.GEMINI_LIVE_API_VERSION:
        return ApiVersion(settings.GEMINI_LIVE_API_VERSION, "GEMINI_LIVE_API_VERSION")
    return ApiVersion(LIVE_API_VERSION, "the Gemini API serves Live only on v1beta")


def _http_options(
    base_url: str | None, ssl_context: ssl.SSLContext | None, api_version: str | None
) -> types.HttpOptions:
    kwargs: dict[str, Any] = {}
    if base_url:
        kwargs["base_url"] = base_url
    if api_version:
        kwargs["api_version"] = api_version
    # The SDK hands async_client_args that are websockets.connect() parameters to the Live connection (and only
    # httpx's own to httpx): no permessage-deflate (base64 audio barely compresses; deflate costs CPU and ~50 KiB
    # per connection), and keepalive pings that tolerate Gemini's slow pongs (8-30 s are reported) instead of
    # failing the connection with 1011 after websockets' default 20 s.
    kwargs["async_client_args"] = dict(LIVE_WEBSOCKET_ARGS)
    if ssl_context is not None:
        # Trust this CA for this client only (REST via httpx "verify", Live via websockets "ssl"),
        # never process-wide through SSL_CERT_FILE.
        kwargs["client_args"] = {"verify": ssl_context}
        kwargs["async_client_args"].update({"verify": ssl_context, "ssl": ssl_context})
    return types.HttpOptions(**kwargs)


def simulator_address() -> tuple[str, ssl.SSLContext | None]:
    """Base URL and trusting SSL context of the simulator in simulator mode.

    The simulator at ``GEMINI_BASE_URL`` (trusting ``GEMINI_CA_FILE``) when that is set: a stand-alone
    ``python -m gemini_sim``, or a test's (``tests/gemini_fixtures.py`` sets both with pytest-django's ``settings``).
    Otherwise the embedded simulator, started in this process the first time it is needed.
    """
    if settings.GEMINI_BASE_URL:
        return settings.GEMINI_BASE_URL, _ca_context()
    with _sim_lock:
        sim = _embedded_simulator()
    return sim.base_url, sim.ssl_context


def _ca_context() -> ssl.SSLContext | None:
    """An SSL context trusting ``GEMINI_CA_FILE`` (for one client), or None for the system's trust store."""
    return ssl.create_default_context(cafile=settings.GEMINI_CA_FILE) if settings.GEMINI_CA_FILE else None


def simulator_started() -> bool:
    """Tell whether this process has started the embedded simulator (without starting it)."""
    return _embedded_simulator.cache_info().currsize > 0


CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_credentials_lock = threading.Lock()
_credentials: dict[tuple[str, int], Any] = {}


def credential_file_kind(path: str) -> str:
    """The ``type`` of a Google credentials JSON file (``service_account``, ``authorized_user``, …)."""
    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    return str(info.get("type", "")) if isinstance(info, dict) else ""


def vertex_credentials() -> Any:
    """The google-auth credentials of ``GOOGLE_APPLICATION_CREDENTIALS`` (scope cloud-platform), or None for ADC.

    One credentials object per file (and version of it), shared by every client: google-auth refreshes it when it
    is about to expire, before a REST request or a Live connection, so a long live call that reconnects gets a
    fresh token each time and no request waits on a token it already has.

    - ``service_account``: a key file; google-auth exchanges a signed JWT at the file's ``token_uri``.
    - ``authorized_user`` (what ``gcloud auth application-default login`` writes): a refresh token. google-auth's
      ``Credentials.from_authorized_user_info`` always refreshes at https://oauth2.googleapis.com/token, ignoring
      a ``token_uri`` in the file (google-auth 2.63 ``google/oauth2/credentials.py``: "always overrides"); gcloud
      writes none, so honouring one when present changes nothing for Google's files and lets a file name another
      token endpoint (a simulator's, a proxy's) through the public ``with_token_uri``.
    - anything else (``external_account``, ``impersonated_service_account``, …): google-auth's own loader.
    """
    path = settings.GOOGLE_APPLICATION_CREDENTIALS
    if not path:
        return None
    key = (path, os.stat(path).st_mtime_ns)
    with _credentials_lock:
        found = _credentials.get(key)
        if found is not None:
            return found
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
        kind = info.get("type") if isinstance(info, dict) else None
        credentials: Any
        if kind == "service_account":
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM_SCOPE])
        elif kind == "authorized_user":
            from google.oauth2 import credentials as user_credentials

            credentials = user_credentials.Credentials.from_authorized_user_info(info, scopes=[CLOUD_PLATFORM_SCOPE])
            if info.get("token_uri"):
                credentials = credentials.with_token_uri(info["token_uri"])
        else:
            import google.auth

            credentials, _project = google.auth.load_credentials_from_file(path, scopes=[CLOUD_PLATFORM_SCOPE])
        _credentials.clear()  # the file changed (or another one is configured): forget the old credentials
        _credentials[key] = credentials
        return credentials


def get_client(*, live: bool = False) -> genai.Client:
    """Build a google-genai client for the configured mode: for REST calls, or with ``live`` for Live connections.

    REST and Live clients differ only in their API version. A client per purpose, rather than an API version in
    each ``live.connect`` call's http_options, means every Live connection (the bridge's, gemini_check's, a
    test's) gets the right version without having to remember it, and the client itself reports the URL it opens.
    """
    mode = current_mode()
    version = (live_api_version(settings.GEMINI_API_KEY) if live else rest_api_version()).version
    # GEMINI_CA_FILE: trust a stand-alone simulator's or proxy's CA (for this client only) in every mode.
    ctx = _ca_context()
    if mode is Mode.API_KEY:
        return genai.Client(
            api_key=settings.GEMINI_API_KEY,
            http_options=_http_options(settings.GEMINI_BASE_URL or None, ctx, version),
        )
    if mode is Mode.VERTEX:
        return genai.Client(
            vertexai=True,
            project=settings.GOOGLE_CLOUD_PROJECT or None,
            location=settings.GOOGLE_CLOUD_LOCATION,
            credentials=vertex_credentials(),
            http_options=_http_options(settings.GEMINI_BASE_URL or None, ctx, version),
        )
    base_url, ctx = simulator_address()
    return genai.Client(api_key="simulator", http_options=_http_options(base_url, ctx, version))


_shared_lock = threading.Lock()
_shared: dict[tuple[Any, ...], genai.Client] = {}


def live_client() -> genai.Client:
    """Return this process's Live client for the current configuration, built once (the live bridge's).

    A client holds SSL contexts (a CA bundle each) and connection pools: building one per live session costs
    milliseconds and memory the allocator keeps. Live connections are opened per session anyway.
    """
    mode = current_mode()
    if mode is Mode.SIMULATOR and not settings.GEMINI_BASE_URL:
        base_url, ctx = simulator_address()
        key: tuple[Any, ...] = (mode, base_url, id(ctx), settings.GEMINI_LIVE_API_VERSION)
    else:
        key = (
            mode,
            settings.GEMINI_API_KEY,
            settings.GEMINI_BASE_URL,
            settings.GEMINI_CA_FILE,
            settings.GEMINI_LIVE_API_VERSION,
            settings.GOOGLE_CLOUD_PROJECT,
            settings.GOOGLE_CLOUD_LOCATION,
            settings.GOOGLE_APPLICATION_CREDENTIALS,
        )
    with _shared_lock:
        client = _shared.get(key)
        if client is None:
            _shared.clear()  # the configuration changed (tests): forget the old client
            client = _shared[key] = get_client(live=True)
    return client


def ephemeral_client(token: str) -> genai.Client:
    """Build a client that opens Live with an ephemeral token (``auth_tokens/…``) on v1alpha, at the configured URL.

    Tokens are minted with ``get_client().aio.auth_tokens.create`` on the Gemini Developer API (or the simulator);
    Vertex has none.
    """
    mode = current_mode()
    if mode is Mode.VERTEX:
        raise ValueError("Ephemeral tokens exist only on the Gemini Developer API, not on Vertex AI.")
    if mode is Mode.API_KEY:
        ctx = _ca_context()
        base_url = settings.GEMINI_BASE_URL or None
    else:
        base_url, ctx = simulator_address()
    return genai.Client(api_key=token, http_options=_http_options(base_url, ctx, live_api_version(token).version))
