"""The one place that builds google-genai clients, and the live-model catalogue.

Three modes, decided from settings when first needed (never at import):
- ``api_key``: Gemini Developer API (``GEMINI_API_KEY``; ``GEMINI_BASE_URL``/``GEMINI_CA_FILE`` point it elsewhere,
  e.g. at a stand-alone ``python -m gemini_sim``);
- ``vertex``: Vertex AI with OAuth Bearer tokens (``GOOGLE_GENAI_USE_VERTEXAI`` + project/location/credentials);
- ``simulator``: neither is set, so the embedded ``gemini_sim`` is started in-process on a loopback port.
"""

from __future__ import annotations

import enum
import ssl
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from google import genai
from google.genai import types


class Mode(enum.StrEnum):
    API_KEY = "api_key"
    VERTEX = "vertex"
    SIMULATOR = "simulator"


@dataclass(frozen=True)
class LiveModel:
    """What the bridge must know about a Live model to translate a browser's config for it."""

    name: str
    label: str
    audio_only: bool  # native-audio models reject TEXT output (1007); serve TEXT via output transcription
    history_in_client_content: bool  # newer models need historyConfig.initialHistoryInClientContent
    text_via_realtime_input: bool  # typed text mid-session goes as realtimeInput.text
    vertex: bool = False


# Keep in step with gemini_sim's catalogue and ../shared/reference/gemini-live-protocol.md section 7.
LIVE_MODELS: dict[str, LiveModel] = {
    m.name: m
    for m in (
        LiveModel("gemini-3.8-live", "Gemini 3.8 Live", True, True, True),
        LiveModel("gemini-3.8-live-extended-thinking", "Gemini 3.8 Live (extended thinking)", True, True, True),
        LiveModel("gemini-3.1-flash-live-preview", "Gemini 3.1 Flash Live (preview)", True, True, True),
        LiveModel(
            "gemini-2.5-flash-native-audio-preview-12-2025",
            "Gemini 2.5 Flash native audio",
            True,
            False,
            False,
        ),
        LiveModel(
            "gemini-2.5-flash-native-audio-latest",
            "Gemini 2.5 Flash native audio (latest)",
            True,
            False,
            False,
        ),
        LiveModel(
            "gemini-live-2.5-flash-native-audio",
            "Gemini Live 2.5 Flash native audio (Vertex)",
            True,
            False,
            False,
            vertex=True,
        ),
    )
}

VOICES: tuple[str, ...] = (
    "Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr",
    "Callirrhoe", "Autonoe", "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome",
    "Algenib", "Rasalgethi", "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima",
    "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
)  # fmt: skip


def live_model(name: str) -> LiveModel | None:
    """Look a Live model up by name, with or without the ``models/`` prefix."""
    return LIVE_MODELS.get(name.removeprefix("models/"))


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


def _http_options(
    base_url: str | None, ssl_context: ssl.SSLContext | None, api_version: str | None = None
) -> types.HttpOptions:
    kwargs: dict[str, Any] = {}
    if base_url:
        kwargs["base_url"] = base_url
    if api_version or settings.GEMINI_API_VERSION:
        kwargs["api_version"] = api_version or settings.GEMINI_API_VERSION
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


def simulator_address() -> tuple[str, ssl.SSLContext]:
    """Base URL and trusting SSL context of the embedded simulator (started if needed)."""
    with _sim_lock:
        sim = _embedded_simulator()
    return sim.base_url, sim.ssl_context


def simulator_started() -> bool:
    """Tell whether this process has started the embedded simulator (without starting it)."""
    return _embedded_simulator.cache_info().currsize > 0


def get_client() -> genai.Client:
    """Build a google-genai client for the configured mode."""
    mode = current_mode()
    # GEMINI_CA_FILE: trust a stand-alone simulator's CA (for this client only) in API-key and Vertex modes alike.
    ctx = ssl.create_default_context(cafile=settings.GEMINI_CA_FILE) if settings.GEMINI_CA_FILE else None
    if mode is Mode.API_KEY:
        return genai.Client(
            api_key=settings.GEMINI_API_KEY, http_options=_http_options(settings.GEMINI_BASE_URL or None, ctx)
        )
    if mode is Mode.VERTEX:
        credentials = None
        if settings.GOOGLE_APPLICATION_CREDENTIALS:
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_file(
                settings.GOOGLE_APPLICATION_CREDENTIALS,
                scopes=["https://www.googleapis.com/auth/cloud-platform"],
            )
        return genai.Client(
            vertexai=True,
            project=settings.GOOGLE_CLOUD_PROJECT or None,
            location=settings.GOOGLE_CLOUD_LOCATION,
            credentials=credentials,
            http_options=_http_options(settings.GEMINI_BASE_URL or None, ctx),
        )
    base_url, ctx = simulator_address()
    return genai.Client(api_key="simulator", http_options=_http_options(base_url, ctx))


_shared_lock = threading.Lock()
_shared: dict[tuple[Any, ...], genai.Client] = {}


def shared_client() -> genai.Client:
    """Return this process's client for the current configuration, built once (the live bridge's).

    A client holds SSL contexts (a CA bundle each) and connection pools: building one per live session costs
    milliseconds and memory the allocator keeps. Live connections are opened per session anyway.
    """
    mode = current_mode()
    if mode is Mode.SIMULATOR:
        base_url, ctx = simulator_address()
        key: tuple[Any, ...] = (mode, base_url, id(ctx))
    else:
        key = (
            mode,
            settings.GEMINI_API_KEY,
            settings.GEMINI_BASE_URL,
            settings.GEMINI_CA_FILE,
            settings.GEMINI_API_VERSION,
            settings.GOOGLE_CLOUD_PROJECT,
            settings.GOOGLE_CLOUD_LOCATION,
            settings.GOOGLE_APPLICATION_CREDENTIALS,
        )
    with _shared_lock:
        client = _shared.get(key)
        if client is None:
            _shared.clear()  # the configuration changed (tests): forget the old client
            client = _shared[key] = get_client()
    return client


EPHEMERAL_TOKEN_API_VERSION = "v1alpha"  # SDK 3.4.0 supports ephemeral tokens on v1alpha only


def ephemeral_client(token: str) -> genai.Client:
    """Build a client that opens Live with an ephemeral token (``auth_tokens/…``) on the configured endpoint.

    Tokens are minted with ``get_client().aio.auth_tokens.create`` on the Gemini Developer API (or the simulator);
    Vertex has none.
    """
    mode = current_mode()
    if mode is Mode.VERTEX:
        raise ValueError("Ephemeral tokens exist only on the Gemini Developer API, not on Vertex AI.")
    if mode is Mode.API_KEY:
        ctx = ssl.create_default_context(cafile=settings.GEMINI_CA_FILE) if settings.GEMINI_CA_FILE else None
        base_url = settings.GEMINI_BASE_URL or None
    else:
        base_url, ctx = simulator_address()
    return genai.Client(api_key=token, http_options=_http_options(base_url, ctx, EPHEMERAL_TOKEN_API_VERSION))
