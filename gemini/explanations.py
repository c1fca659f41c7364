"""What ``manage.py gemini_check`` tells an operator about each classified failure: ``(cause, where) → (why, fix)``.

Data, not code: ``EXPLANATIONS`` maps a ``Cause`` (from ``gemini.errors.classify``), the step's place and, where it
matters, the situation (``vertex``, ``token_key``, ``text_only_model``) to a pair of templates; ``explanation``
picks the most specific entry and ``render`` fills in the facts (URLs, API versions, settings, model names).

Places: ``rest`` (models.list, generateContent), ``tokens`` (auth_tokens.create), ``live`` (the Live session) and
``ephemeral`` (a Live session opened with an ephemeral token); ``handshake`` stands for both Live places and ``*``
for any place. Situations: ``token_key`` (GEMINI_API_KEY is itself an ephemeral token), ``vertex`` (Vertex AI mode),
``text_only_model`` (the catalogue says the model answers in TEXT only).

Placeholders: ``url``, ``version`` (the URL and API version of the step), ``host``, ``base`` (the REST base URL),
``ephemeral_url``, ``model``, ``text_model``, ``live_models`` and ``text_models`` (what Gemini reported),
``credential`` (masked; on Vertex the credential's kind and account), ``settings_hint`` (the settings that make the
URL), ``trusted`` (which CA was trusted),
``timeout`` and ``detail`` (what Gemini said).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gemini.errors import Cause

# Where to look, most specific first, for a step at each place.
PLACES: dict[str, tuple[str, ...]] = {
    "rest": ("rest", "*"),
    "tokens": ("tokens", "*"),
    "live": ("live", "handshake", "*"),
    "ephemeral": ("ephemeral", "handshake", "*"),
}

_BARE_BASE = (
    "Leave GEMINI_BASE_URL unset for Google, or set it to the bare https://host[:port] of a proxy or simulator (no "
    "/v1beta, no /ws/… path: the SDK appends those)"
)
_NOT_THE_MODEL = (
    "A 404 here is about the URL, not the model: the model name goes in the setup message, never in the URL."
)
_HANDSHAKE_404 = (
    "HTTP 404 at the WebSocket handshake: wrong endpoint path or API version: the SDK uses {url} (API version "
    "{version}). "
)
_EPHEMERAL_TOKEN_REFUSED = (
    "A freshly minted ephemeral token was refused at {ephemeral_url}. A token works only on the Constrained Live "
    "endpoint, on API version v1alpha, before its newSessionExpireTime and within its uses; a browser must use it the "
    "same way (?access_token=… on BidiGenerateContentConstrained).",
    "Mint tokens with api_version v1alpha and have clients connect with api_version v1alpha too; give them enough "
    "time and uses.",
)
_KEY_IS_A_TOKEN = (
    "GEMINI_API_KEY holds an ephemeral token (auth_tokens/…). Those are minted for one browser session, expire within "
    "minutes, and work only on the Live API's Constrained endpoint on API version v1alpha.",
    "Put the long-lived API key in GEMINI_API_KEY; mint ephemeral tokens from it (auth_tokens.create with api_version "
    "v1alpha) and use each on v1alpha.",
)

EXPLANATIONS: dict[tuple[Cause, str, str], tuple[str, str]] = {
    (Cause.ENDPOINT_NOT_FOUND, "tokens", ""): (
        "HTTP 404 creating an ephemeral token at {base}/v1alpha/auth_tokens. auth_tokens exists only on API version "
        "v1alpha (a 404 on v1 or v1beta is the classic symptom, and this check always uses v1alpha), so the base "
        "URL's path is wrong.",
        "Leave GEMINI_BASE_URL unset for Google, or set it to the bare https://host[:port].",
    ),
    (Cause.ENDPOINT_NOT_FOUND, "handshake", "vertex"): (
        _HANDSHAKE_404
        + "Vertex AI serves Live on the SDK's default API version; check {settings_hint}. "
        + _NOT_THE_MODEL,
        f"{_BARE_BASE}.",
    ),
    (Cause.ENDPOINT_NOT_FOUND, "handshake", ""): (
        _HANDSHAKE_404 + "The Gemini API serves Live only on v1beta (v1alpha for ephemeral tokens), never on the "
        "SDK's default v1; check {settings_hint}. " + _NOT_THE_MODEL,
        f"{_BARE_BASE}; leave GEMINI_LIVE_API_VERSION empty (v1beta) or set it to v1alpha. A proxy or simulator must "
        "serve Live on that version too.",
    ),
    (Cause.ENDPOINT_NOT_FOUND, "*", ""): (
        "HTTP 404 for the REST URL: wrong endpoint path or API version: the SDK uses {url} (API version {version}); "
        "check {settings_hint}. " + _NOT_THE_MODEL,
        f"{_BARE_BASE}; set GEMINI_API_VERSION to v1beta or v1alpha, or leave it empty for the SDK's default (v1).",
    ),
    (Cause.MODEL_NOT_FOUND, "live", ""): (
        "Gemini does not serve {model} over the Live API (bidiGenerateContent) for API version {version}: the name "
        "is unknown or retired (gemini-2.0-flash-live-001 and gemini-live-2.5-flash-preview were shut down "
        "2025-12-09), or it is not a Live model. Live models Gemini reports (models.list, supportedGenerationMethods "
        "bidiGenerateContent): {live_models}.",
        "Choose one of those with --model, and set GEMINI_LIVE_MODEL to it.",
    ),
    (Cause.MODEL_NOT_FOUND, "*", ""): (
        "Gemini does not serve {text_model} for generateContent on API version {version}.",
        "Set GEMINI_TEXT_MODEL (or --text-model) to one of: {text_models}.",
    ),
    (Cause.BAD_CREDENTIALS, "ephemeral", ""): _EPHEMERAL_TOKEN_REFUSED,
    (Cause.NO_CREDENTIALS, "ephemeral", ""): _EPHEMERAL_TOKEN_REFUSED,
    (Cause.BAD_CREDENTIALS, "*", "token_key"): _KEY_IS_A_TOKEN,
    (Cause.NO_CREDENTIALS, "*", "token_key"): _KEY_IS_A_TOKEN,
    (Cause.BAD_CREDENTIALS, "*", "vertex"): (
        "Vertex AI refused the OAuth access token as invalid (HTTP 401 UNAUTHENTICATED, or close 1008 on Live): it "
        "is expired or was never issued by Google's token service; or no token could be obtained with the "
        "credentials ({credential}): the token service refused the grant (invalid_grant: a deleted or disabled key, "
        "a revoked refresh token, a JWT with the wrong audience or a clock off by minutes).",
        "Let the app obtain and refresh tokens itself: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key "
        "file, or to the authorized-user file `gcloud auth application-default login` writes, rather than handing it "
        "an access token (they expire within the hour). If the grant is refused: check the server's clock, create a "
        "new key (or log in again), and keep the key file's token_uri (the JWT's audience is "
        "https://oauth2.googleapis.com/token).",
    ),
    (Cause.INSUFFICIENT_SCOPE, "*", "vertex"): (
        'Vertex AI refused the access token with HTTP 403 PERMISSION_DENIED ("Request had insufficient '
        'authentication scopes"): its scopes do not include https://www.googleapis.com/auth/cloud-platform, the one '
        "Vertex AI needs (the generative-language scope reaches only the Gemini Developer API).",
        "Let the app request the scope: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (the app asks "
        "for cloud-platform) or an authorized-user file from `gcloud auth application-default login` (which grants "
        "cloud-platform); a token minted elsewhere must be minted with the cloud-platform scope.",
    ),
    (Cause.INSUFFICIENT_SCOPE, "*", ""): (
        'Gemini refused the access token with HTTP 403 PERMISSION_DENIED ("Request had insufficient authentication '
        'scopes"): the Gemini API wants the https://www.googleapis.com/auth/generative-language scope (or '
        "cloud-platform).",
        "Mint the token with one of those scopes, or use an API key: GEMINI_API_KEY.",
    ),
    (Cause.OAUTH_REQUIRED, "*", ""): (
        'The endpoint refused an API key ("API keys are not supported by this API. Expected OAuth2 access token…"; '
        "HTTP 401 UNAUTHENTICATED, or close 1008 at the start of a Live session): it wants an OAuth 2 access token. "
        "Vertex AI's project endpoints take no API keys (only Vertex express mode, which has no project, does).",
        "Use Vertex AI with OAuth: leave GEMINI_API_KEY empty (and unset GOOGLE_API_KEY and GEMINI_API_KEY in the "
        "server's environment: the SDK reads them too), set GOOGLE_GENAI_USE_VERTEXAI=true, GOOGLE_CLOUD_PROJECT, "
        "GOOGLE_CLOUD_LOCATION and GOOGLE_APPLICATION_CREDENTIALS=/path/to/service-account.json (or run `gcloud auth "
        "application-default login`). Send a Bearer token without ?key=.",
    ),
    (Cause.NO_CREDENTIALS, "*", "vertex"): (
        "Vertex AI received no usable OAuth 2 access token.",
        "Set GOOGLE_APPLICATION_CREDENTIALS to a service-account JSON file (role Vertex AI User), or run `gcloud auth "
        "application-default login`; set GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION.",
    ),
    (Cause.PERMISSION_DENIED, "*", "vertex"): (
        "Vertex AI accepted the access token ({credential}) but its principal may not use Vertex AI on this project "
        "(HTTP 403 PERMISSION_DENIED: a missing IAM role, or the Vertex AI API is not enabled).",
        "Grant the service account or user the Vertex AI User role (roles/aiplatform.user) on GOOGLE_CLOUD_PROJECT and "
        "enable the Vertex AI API (aiplatform.googleapis.com) there.",
    ),
    (Cause.BAD_CREDENTIALS, "*", ""): (
        "Gemini refused the credentials {credential}: the API key is not valid, expired, or restricted (to other "
        "APIs, IP addresses or referrers).",
        "Create a key in Google AI Studio (or check its restrictions allow the Generative Language API from this "
        "server) and set GEMINI_API_KEY; restart the server.",
    ),
    (Cause.NO_CREDENTIALS, "*", ""): (
        "Gemini received no credentials it accepts for this endpoint (an API key is sent as the x-goog-api-key "
        "header; Vertex endpoints want an OAuth Bearer token).",
        "Set GEMINI_API_KEY (Gemini Developer API) or GOOGLE_GENAI_USE_VERTEXAI with project, location and "
        "credentials (Vertex); don't mix the two.",
    ),
    (Cause.PERMISSION_DENIED, "*", ""): (
        "The credentials are valid but lack permission for this API or model.",
        "Enable the Generative Language API (or Vertex AI API) on the key's project and grant the service account a "
        "role that may use it.",
    ),
    # The same 1007 text refuses AUDIO of a TEXT-only model (gemini-3.5-transcribe-live).
    (Cause.AUDIO_ONLY_MODEL, "*", "text_only_model"): (
        '{model} answers in TEXT only, and asking it for AUDIO closes the session with 1007 ("The requested '
        'combination of response modalities (AUDIO) is not supported by the model").',
        "Ask for TEXT; for this check, drop --modality AUDIO.",
    ),
    (Cause.AUDIO_ONLY_MODEL, "*", ""): (
        "{model} is a native-audio model: it answers in AUDIO only, and asking it for TEXT closes the session with "
        '1007 ("The requested combination of response modalities (TEXT) is not supported by the model"; before '
        '2026, "Cannot extract voices from a non-audio request").',
        "Ask for AUDIO with output audio transcription for the text (the app's bridge does this itself); for this "
        "check, drop --modality TEXT.",
    ),
    (Cause.LOCATION, "*", ""): (
        "Gemini is not available from this server's location.",
        "Use Vertex AI (GOOGLE_GENAI_USE_VERTEXAI) in a supported GOOGLE_CLOUD_LOCATION.",
    ),
    (Cause.INVALID_ARGUMENT, "*", ""): (
        "Gemini rejected the request as an invalid argument (close 1007 / HTTP 400): a setup field or message this "
        "model does not accept on API version {version}.",
        "Compare the setup with docs/live-protocol.md and the model's capabilities; with an API key, 1007 may also be "
        "a bad key (see what Gemini said).",
    ),
    (Cause.QUOTA, "*", ""): (
        "Gemini's rate limit or quota is exhausted (or too many concurrent Live sessions).",
        "Wait and retry; check the project's quotas and LIVE_MAX_SESSIONS_PER_USER.",
    ),
    (Cause.INTERNAL, "*", ""): (
        "Gemini failed on its side (close 1011 or HTTP 5xx).",
        "Usually transient: run the check again; if it persists, try another model or check Google's status page.",
    ),
    (Cause.CLOSED, "*", ""): (
        "The connection ended without an error from Gemini (closed normally or dropped).",
        "Run the check again; if it repeats, a proxy or firewall may be cutting WebSocket connections.",
    ),
    (Cause.TLS, "*", ""): (
        "TLS failed with {host}: {trusted} the server's certificate (a simulator or proxy with its own CA, or a "
        "TLS-intercepting proxy).",
        "Set GEMINI_CA_FILE to that server's CA certificate (for the simulator, STATE_DIR/ca.pem); never turn "
        "verification off. The SDK always uses wss:// for Live, so the endpoint must speak TLS.",
    ),
    (Cause.REFUSED, "*", ""): (
        "Nothing answered at {host} (connection refused, or the host name does not resolve).",
        "Check {settings_hint}, that the simulator or proxy is running, and DNS and firewall rules for outgoing HTTPS.",
    ),
    (Cause.TIMEOUT, "*", ""): (
        "No answer from {host} within {timeout:g} s.",
        "Check the network path (proxies must allow WebSocket upgrades); raise --timeout if the link is slow.",
    ),
    (Cause.CLIENT_CONFIG, "*", ""): (
        "The SDK refused the request before sending it: {detail}.",
        "Fix the configuration named in that message.",
    ),
    (Cause.UNKNOWN, "*", ""): ("Unexpected failure: {detail}.", "See what Gemini said; run with --verbosity 2."),
}


def explanation(cause: Cause, *, where: str, situations: Iterable[str] = ()) -> tuple[str, str]:
    """Return the (why, fix) templates for ``cause`` at ``where``: the most specific place first, then situation."""
    situations = (*situations, "")
    for place in PLACES.get(where, (where, "*")):
        for situation in situations:
            found = EXPLANATIONS.get((cause, place, situation))
            if found is not None:
                return found
    return EXPLANATIONS[(Cause.UNKNOWN, "*", "")]


def render(templates: tuple[str, str], facts: Mapping[str, Any]) -> tuple[str, str]:
    """Fill the (why, fix) templates with the facts of one failure."""
    why, fix = templates
    return why.format_map(facts), fix.format_map(facts)
