"""Step-by-step diagnosis of the configured Gemini (``manage.py gemini_check``): what the SDK will use, then REST
and Live round trips, each failure explained with its cause and its fix.

Failures are classified by ``live.upstream.classify`` (the bridge's classifier); this module only words each
``Cause`` for an operator, with the URLs, API version and settings involved. Secrets are never reported: a key
shows as its last four characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import struct
import time
import warnings
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from apsara import gemini
from live.upstream import Cause, UpstreamFailure, classify

DEFAULT_TIMEOUT_SECONDS = 20.0
GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com/"
INPUT_RATE = 16_000
CHECK_PROMPT = "Reply with one short sentence: is this connection working?"
T = TypeVar("T")


@dataclass
class Step:
    """One step of the check: ``status`` is ok, warning, failed or skipped."""

    name: str
    status: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    cause: str = ""
    explanation: str = ""
    fix: str = ""
    gemini_said: str = ""
    elapsed_ms: float | None = None


@dataclass
class Connection:
    """What the SDK will use for this configuration (nothing secret); REST and Live have their own API versions."""

    mode: str
    rest_base_url: str
    rest_url: str
    api_version: str
    api_version_source: str
    live_url: str
    live_api_version: str
    live_api_version_source: str
    auth: str
    credential: str
    ephemeral_token: bool = False


@dataclass
class Report:
    """All steps, in order; ``ok`` when none failed."""

    connection: Connection | None = None
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "connection": asdict(self.connection) if self.connection else None,
            "steps": [asdict(s) for s in self.steps],
        }


def mask(secret: str) -> str:
    """Show a secret as its length and last four characters."""
    if not secret:
        return "(none)"
    tail = secret[-4:] if len(secret) > 8 else ""
    return f"…{tail} ({len(secret)} characters)" if tail else f"({len(secret)} characters)"


def describe_connection(client: genai.Client, live_client: genai.Client | None = None) -> Connection:
    """Read from the SDK itself which URLs, API versions and authentication it will use.

    REST as ``client`` does it, Live as ``live_client`` does (by default the same client).
    """
    # Private SDK attributes on purpose: the point is to show what this SDK version really does, defaults and
    # all (e.g. API version v1 when none is set, and the "//ws" of a base URL ending in "/").
    api = client._api_client
    options = api._http_options
    version = options.api_version or ""
    base = options.base_url or ""
    live_api = (live_client or client)._api_client
    live_version = live_api._http_options.api_version or ""
    ws_base = live_api._websocket_base_url()
    mode = str(gemini.current_mode())
    key = api.api_key or ""
    ephemeral = key.startswith("auth_tokens/")
    rest = f"{base.rstrip('/')}/{version}/models"
    if api.vertexai:
        if not key:
            rest = (
                f"{base.rstrip('/')}/{version}/projects/{api.project}/locations/{api.location}/publishers/google/models"
            )
        live = f"{ws_base}/ws/google.cloud.aiplatform.{live_version}.LlmBidiService/BidiGenerateContent"
        if key:
            auth, credential = "Vertex express mode: API key in the x-goog-api-key header", mask(key)
        elif settings.GOOGLE_APPLICATION_CREDENTIALS:
            auth = "OAuth 2 Bearer token from a service-account file (GOOGLE_APPLICATION_CREDENTIALS)"
            credential = settings.GOOGLE_APPLICATION_CREDENTIALS
        else:
            auth, credential = "OAuth 2 Bearer token from Application Default Credentials", "ADC"
    else:
        method = "BidiGenerateContentConstrained" if ephemeral else "BidiGenerateContent"
        live = f"{ws_base}/ws/google.ai.generativelanguage.{live_version}.GenerativeService.{method}"
        if ephemeral:
            auth = "ephemeral token (Authorization: Token …) on the Constrained Live endpoint"
        elif mode == gemini.Mode.SIMULATOR:
            auth = "API key in the x-goog-api-key header (the embedded simulator accepts any key)"
        else:
            auth = "API key in the x-goog-api-key header (never ?key= in the URL)"
        credential = mask(key)
    return Connection(
        mode=mode,
        rest_base_url=base,
        rest_url=rest,
        api_version=version,
        api_version_source=gemini.rest_api_version().source,
        live_url=live,
        live_api_version=live_version,
        live_api_version_source=gemini.live_api_version(key).source,
        auth=auth,
        credential=credential,
        ephemeral_token=ephemeral,
    )


def speech_like_pcm(seconds: float, *, rate: int = INPUT_RATE, amplitude: int = 6000) -> bytes:
    """Generate PCM16LE that a voice detector takes for speech: a voiced 140 Hz tone with a syllable envelope."""
    out = bytearray()
    for i in range(int(seconds * rate)):
        t = i / rate
        envelope = 0.6 + 0.4 * abs(math.sin(math.pi * t * 4))
        value = math.sin(2 * math.pi * 140 * t) + 0.5 * math.sin(2 * math.pi * 280 * t)
        out += struct.pack("<h", int(amplitude * envelope * value / 1.5))
    return bytes(out)


def _rate(mime_type: str | None) -> int | None:
    for part in (mime_type or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "rate" and value.isdigit():
            return int(value)
    return None


class Diagnosis:
    """Run the check's steps against one client, keeping what later explanations need."""

    def __init__(self, *, model: str, text_model: str, timeout: float, modality: str | None, audio: bool) -> None:
        self.model = model.removeprefix("models/")
        self.text_model = text_model.removeprefix("models/")
        self.timeout = timeout
        self.modality = modality
        self.audio = audio
        self.report = Report()
        self.live_models: list[str] | None = None
        self.ephemeral_url = "?"
        self.text_models: list[str] | None = None

    # -- explanations -------------------------------------------------------------------------------------------

    def _settings_hint(self, *, live: bool = False) -> str:
        base = f"GEMINI_BASE_URL ({settings.GEMINI_BASE_URL or f'unset, so {GOOGLE_BASE_URL}'})"
        conn = self.report.connection
        if live and conn is not None and conn.mode == gemini.Mode.VERTEX:
            return f"{base}; Vertex AI's Live uses the SDK's default API version"
        if live:
            return f"{base} and GEMINI_LIVE_API_VERSION ({settings.GEMINI_LIVE_API_VERSION or 'unset, so v1beta'})"
        return f"{base} and GEMINI_API_VERSION ({settings.GEMINI_API_VERSION or 'unset, so the SDK default'})"

    def explain(self, failure: UpstreamFailure, *, where: str) -> tuple[str, str]:
        """Word a classified failure for an operator: (cause, fix)."""
        conn = self.report.connection
        live = where in ("live", "ephemeral")
        version = (conn.live_api_version if live else conn.api_version) if conn else "?"
        url = (conn.live_url if live else f"{conn.rest_url}/…") if conn else "?"
        if where == "ephemeral":
            url, version = self.ephemeral_url, gemini.EPHEMERAL_TOKEN_API_VERSION
        host = urlparse(conn.rest_base_url).netloc if conn else "?"
        cause = failure.cause
        if where == "tokens" and cause is Cause.ENDPOINT_NOT_FOUND:
            return (
                f"HTTP 404 creating an ephemeral token at {conn.rest_base_url if conn else '?'}/v1alpha/auth_tokens. "
                "auth_tokens exists only on API version v1alpha (a 404 on v1 or v1beta is the classic symptom, "
                "and this check always uses v1alpha), so the base URL's path is wrong.",
                "Leave GEMINI_BASE_URL unset for Google, or set it to the bare https://host[:port].",
            )
        if where == "ephemeral" and cause in (Cause.BAD_CREDENTIALS, Cause.NO_CREDENTIALS):
            return (
                f"A freshly minted ephemeral token was refused at {self.ephemeral_url}. A token works only on the "
                "Constrained Live endpoint, on API version v1alpha, before its newSessionExpireTime "
                "and within its uses; a browser must use it the same way (?access_token=… on "
                "BidiGenerateContentConstrained).",
                "Mint tokens with api_version v1alpha and have clients connect with api_version v1alpha too; "
                "give them enough time and uses.",
            )
        if cause is Cause.ENDPOINT_NOT_FOUND:
            bare_base = (
                "Leave GEMINI_BASE_URL unset for Google, or set it to the bare https://host[:port] of a proxy or "
                "simulator (no /v1beta, no /ws/… path: the SDK appends those)"
            )
            not_the_model = (
                "A 404 here is about the URL, not the model: the model name goes in the setup message, never in "
                "the URL."
            )
            if not live:
                return (
                    f"HTTP 404 for the REST URL: wrong endpoint path or API version: the SDK uses {url} "
                    f"(API version {version}); check {self._settings_hint()}. {not_the_model}",
                    f"{bare_base}; set GEMINI_API_VERSION to v1beta or v1alpha, or leave it empty for the SDK's "
                    "default (v1).",
                )
            if conn is not None and conn.mode == gemini.Mode.VERTEX:
                served, fix = "Vertex AI serves Live on the SDK's default API version", f"{bare_base}."
            else:
                served = (
                    "The Gemini API serves Live only on v1beta (v1alpha for ephemeral tokens), never on the SDK's "
                    "default v1"
                )
                fix = (
                    f"{bare_base}; leave GEMINI_LIVE_API_VERSION empty (v1beta) or set it to v1alpha. A proxy or "
                    "simulator must serve Live on that version too."
                )
            return (
                f"HTTP 404 at the WebSocket handshake: wrong endpoint path or API version: the SDK uses {url} "
                f"(API version {version}). {served}; check {self._settings_hint(live=True)}. {not_the_model}",
                fix,
            )
        if cause is Cause.MODEL_NOT_FOUND:
            if where == "live":
                offered = (
                    ", ".join(self.live_models)
                    if self.live_models
                    else "none reported"
                    if self.live_models is not None
                    else "unknown (models.list failed)"
                )
                return (
                    f"Gemini does not serve {self.model} over the Live API (bidiGenerateContent) for API version "
                    f"{version}: the name is unknown or retired (gemini-2.0-flash-live-001 and "
                    "gemini-live-2.5-flash-preview were shut down 2025-12-09), or it is not a Live model. "
                    f"Live models Gemini reports (models.list, supportedGenerationMethods bidiGenerateContent): "
                    f"{offered}.",
                    "Choose one of those with --model, and set GEMINI_LIVE_MODEL to it.",
                )
            offered = ", ".join(self.text_models or []) or "unknown"
            return (
                f"Gemini does not serve {self.text_model} for generateContent on API version {version}.",
                f"Set GEMINI_TEXT_MODEL (or --text-model) to one of: {offered}.",
            )
        if cause in (Cause.BAD_CREDENTIALS, Cause.NO_CREDENTIALS) and conn and conn.ephemeral_token:
            return (
                "GEMINI_API_KEY holds an ephemeral token (auth_tokens/…). Those are minted for one browser "
                "session, expire within minutes, and work only on the Live API's Constrained endpoint on API "
                "version v1alpha.",
                "Put the long-lived API key in GEMINI_API_KEY; mint ephemeral tokens from it (auth_tokens.create "
                "with api_version v1alpha) and use each on v1alpha.",
            )
        if cause is Cause.BAD_CREDENTIALS and conn and conn.mode == gemini.Mode.VERTEX:
            return (
                "Vertex AI refused the OAuth credentials, or no access token could be obtained with them.",
                "Check the service account's key file (GOOGLE_APPLICATION_CREDENTIALS) and its role (Vertex AI "
                "User), or run `gcloud auth application-default login` again; the server must reach "
                "oauth2.googleapis.com.",
            )
        if cause is Cause.BAD_CREDENTIALS:
            return (
                f"Gemini refused the credentials {conn.credential if conn else ''}: the API key is not valid, "
                "expired, or restricted (to other APIs, IP addresses or referrers).",
                "Create a key in Google AI Studio (or check its restrictions allow the Generative Language API "
                "from this server) and set GEMINI_API_KEY; restart the server.",
            )
        if cause is Cause.NO_CREDENTIALS:
            if conn and conn.mode == gemini.Mode.VERTEX:
                return (
                    "Vertex AI received no usable OAuth 2 access token.",
                    "Set GOOGLE_APPLICATION_CREDENTIALS to a service-account JSON file (role Vertex AI User), or "
                    "run `gcloud auth application-default login`; set GOOGLE_CLOUD_PROJECT and "
                    "GOOGLE_CLOUD_LOCATION.",
                )
            return (
                "Gemini received no credentials it accepts for this endpoint (an API key is sent as the "
                "x-goog-api-key header; Vertex endpoints want an OAuth Bearer token).",
                "Set GEMINI_API_KEY (Gemini Developer API) or GOOGLE_GENAI_USE_VERTEXAI with project, location "
                "and credentials (Vertex); don't mix the two.",
            )
        if cause is Cause.PERMISSION_DENIED:
            return (
                "The credentials are valid but lack permission for this API or model.",
                "Enable the Generative Language API (or Vertex AI API) on the key's project and grant the "
                "service account a role that may use it.",
            )
        if cause is Cause.AUDIO_ONLY_MODEL:
            catalogued = gemini.live_model(self.model)
            if catalogued is not None and not catalogued.audio_only:
                # The same 1007 text refuses AUDIO of a TEXT-only model (gemini-3.5-transcribe-live).
                return (
                    f"{self.model} answers in TEXT only, and asking it for AUDIO closes the session with 1007 "
                    '("The requested combination of response modalities (AUDIO) is not supported by the model").',
                    "Ask for TEXT; for this check, drop --modality AUDIO.",
                )
            return (
                f"{self.model} is a native-audio model: it answers in AUDIO only, and asking it for TEXT closes "
                'the session with 1007 ("The requested combination of response modalities (TEXT) is not supported '
                'by the model"; before 2026, "Cannot extract voices from a non-audio request").',
                "Ask for AUDIO with output audio transcription for the text (the app's bridge does this itself); "
                "for this check, drop --modality TEXT.",
            )
        if cause is Cause.LOCATION:
            return (
                "Gemini is not available from this server's location.",
                "Use Vertex AI (GOOGLE_GENAI_USE_VERTEXAI) in a supported GOOGLE_CLOUD_LOCATION.",
            )
        if cause is Cause.INVALID_ARGUMENT:
            return (
                "Gemini rejected the request as an invalid argument (close 1007 / HTTP 400): a setup field or "
                f"message this model does not accept on API version {version}.",
                "Compare the setup with docs/live-protocol.md and the model's capabilities; with an API key, "
                "1007 may also be a bad key (see what Gemini said).",
            )
        if cause is Cause.QUOTA:
            return (
                "Gemini's rate limit or quota is exhausted (or too many concurrent Live sessions).",
                "Wait and retry; check the project's quotas and LIVE_MAX_SESSIONS_PER_USER.",
            )
        if cause is Cause.INTERNAL:
            return (
                "Gemini failed on its side (close 1011 or HTTP 5xx).",
                "Usually transient: run the check again; if it persists, try another model or check Google's "
                "status page.",
            )
        if cause is Cause.CLOSED:
            return (
                "The connection ended without an error from Gemini (closed normally or dropped).",
                "Run the check again; if it repeats, a proxy or firewall may be cutting WebSocket connections.",
            )
        if cause is Cause.TLS:
            ca = settings.GEMINI_CA_FILE
            trusted = f"GEMINI_CA_FILE ({ca}) does not sign" if ca else "no trusted CA signs"
            return (
                f"TLS failed with {host}: {trusted} the server's certificate (a simulator or proxy with its own "
                "CA, or a TLS-intercepting proxy).",
                "Set GEMINI_CA_FILE to that server's CA certificate (for the simulator, STATE_DIR/ca.pem); never "
                "turn verification off. The SDK always uses wss:// for Live, so the endpoint must speak TLS.",
            )
        if cause is Cause.REFUSED:
            return (
                f"Nothing answered at {host} (connection refused, or the host name does not resolve).",
                f"Check {self._settings_hint(live=live)}, that the simulator or proxy is running, and DNS and firewall "
                "rules for outgoing HTTPS.",
            )
        if cause is Cause.TIMEOUT:
            return (
                f"No answer from {host} within {self.timeout:g} s.",
                "Check the network path (proxies must allow WebSocket upgrades); raise --timeout if the link is slow.",
            )
        if cause is Cause.CLIENT_CONFIG:
            return (
                f"The SDK refused the request before sending it: {failure.detail}.",
                "Fix the configuration named in that message.",
            )
        return (f"Unexpected failure: {failure.detail}.", "See what Gemini said; run with --verbosity 2.")

    def _failed(self, name: str, summary: str, exc: BaseException, *, where: str, started: float) -> Step:
        failure = classify(exc)
        if isinstance(exc, TimeoutError):
            failure = UpstreamFailure(failure.code, failure.message, True, detail="timed out", cause=Cause.TIMEOUT)
        explanation, fix = self.explain(failure, where=where)
        return self._add(
            Step(
                name,
                "failed",
                summary,
                cause=str(failure.cause),
                explanation=explanation,
                fix=fix,
                gemini_said=failure.detail[:500],
                elapsed_ms=_ms(started),
            )
        )

    def _add(self, step: Step) -> Step:
        self.report.steps.append(step)
        return step

    async def _within(self, awaitable: Awaitable[T]) -> T:
        return await asyncio.wait_for(awaitable, self.timeout)

    # -- steps --------------------------------------------------------------------------------------------------

    def configuration(self) -> tuple[genai.Client, genai.Client] | None:
        """Build the REST and Live clients as the app does and describe them; warn about settings known to fail."""
        started = time.perf_counter()
        try:
            client = gemini.get_client()
            live_client = gemini.get_client(live=True)
        except Exception as exc:  # the SDK and ssl raise many kinds here; all are configuration errors
            cause, fix = _configuration_failure(exc)
            self._add(
                Step(
                    "configuration",
                    "failed",
                    "the Gemini client could not be built",
                    cause=str(Cause.CLIENT_CONFIG),
                    explanation=cause,
                    fix=fix,
                    gemini_said=f"{type(exc).__name__}: {exc}"[:500],
                    elapsed_ms=_ms(started),
                )
            )
            return None
        conn = describe_connection(client, live_client)
        self.report.connection = conn
        warnings: list[str] = []
        if conn.ephemeral_token:
            warnings.append(
                "GEMINI_API_KEY is an ephemeral token (auth_tokens/…): REST calls cannot use it, it expires in "
                "minutes, and it works only on the Constrained Live endpoint on API version v1alpha. Use the "
                "long-lived API key."
            )
        if settings.GEMINI_BASE_URL:
            parsed = urlparse(settings.GEMINI_BASE_URL)
            if parsed.scheme != "https":
                warnings.append(
                    f"GEMINI_BASE_URL uses {parsed.scheme or 'no scheme'}://: the SDK always opens Live as "
                    "wss://, so the endpoint must speak TLS."
                )
            if parsed.path.strip("/"):
                warnings.append(
                    f"GEMINI_BASE_URL has a path ({parsed.path}): the SDK appends /{conn.api_version}/… and "
                    "/ws/… to it; Google's endpoint and the simulator serve those at the root."
                )
        catalogued = gemini.live_model(self.model)
        if catalogued is None:
            warnings.append(
                f"{self.model} is not in Apsara's live-model catalogue (apsara/gemini.py LIVE_MODELS): the app "
                "will not offer it."
            )
        elif not catalogued.conversational:
            warnings.append(
                f"{gemini.not_conversational(catalogued)} This check still connects to it"
                + ("" if catalogued.text_input else " and tests it with a spoken turn instead of a text turn")
                + "."
            )
        details = asdict(conn) | {"liveModel": self.model, "textModel": self.text_model, "warnings": warnings}
        self._add(
            Step(
                "configuration",
                "warning" if warnings else "ok",
                f"mode {conn.mode}; REST API version {conn.api_version} ({conn.api_version_source}); Live API "
                f"version {conn.live_api_version} ({conn.live_api_version_source}); auth: {conn.auth} "
                f"{conn.credential}",
                details=details,
                explanation=" ".join(warnings),
                elapsed_ms=_ms(started),
            )
        )
        return client, live_client

    async def rest_models(self, client: genai.Client) -> None:
        """List models; remember which serve Live (bidiGenerateContent) and which generateContent."""
        started = time.perf_counter()
        try:
            models = await self._within(_list_models(client))
        except Exception as exc:
            self._failed("rest.models", "models.list failed", exc, where="rest", started=started)
            return
        live = sorted(
            m.name.removeprefix("models/")
            for m in models
            if m.name and "bidiGenerateContent" in (m.supported_actions or [])
        )
        text = sorted(
            m.name.removeprefix("models/")
            for m in models
            if m.name and "generateContent" in (m.supported_actions or [])
        )
        self.live_models, self.text_models = live, text
        notes = []
        if self.model not in live:
            notes.append(f"{self.model} is not among the Live models Gemini reports.")
        if self.text_model not in text:
            notes.append(f"{self.text_model} is not among the generateContent models Gemini reports.")
        self._add(
            Step(
                "rest.models",
                "warning" if notes else "ok",
                f"{len(models)} models; Live (bidiGenerateContent): {', '.join(live) or 'none'}",
                details={"models": len(models), "liveModels": live, "textModels": text},
                explanation=" ".join(notes),
                elapsed_ms=_ms(started),
            )
        )

    async def rest_generate(self, client: genai.Client) -> None:
        """Ask the text model for one short reply."""
        started = time.perf_counter()
        try:
            response = await self._within(
                # No max_output_tokens: thinking models would spend a small budget before writing any text.
                client.aio.models.generate_content(model=self.text_model, contents=CHECK_PROMPT)
            )
        except Exception as exc:
            self._failed(
                "rest.generate", f"generateContent on {self.text_model} failed", exc, where="rest", started=started
            )
            return
        text = (response.text or "").strip()
        usage = response.usage_metadata
        self._add(
            Step(
                "rest.generate",
                "ok" if text else "warning",
                f"{self.text_model} replied {text[:80]!r}" if text else f"{self.text_model} replied with no text",
                details={
                    "model": self.text_model,
                    "reply": text[:500],
                    "totalTokens": usage.total_token_count if usage else None,
                },
                elapsed_ms=_ms(started),
            )
        )

    def _live_config(self) -> tuple[types.LiveConnectConfig, str]:
        catalogued = gemini.live_model(self.model)
        modality = self.modality or ("TEXT" if catalogued is not None and not catalogued.audio_only else "AUDIO")
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality(modality)],
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig() if modality == "AUDIO" else None,
        )
        return config, modality

    async def live(self, client: genai.Client, *, rest: genai.Client) -> None:
        """Connect to the Live model, wait for setupComplete, run a text turn and optionally a spoken one.

        ``client`` is the Live client; ``rest`` lists the models when the name is unknown.
        """
        config, modality = self._live_config()
        catalogued = gemini.live_model(self.model)
        started = time.perf_counter()
        async with _Closing() as stack:
            try:
                session = await self._within(stack.enter(client.aio.live.connect(model=self.model, config=config)))
            except Exception as exc:
                if classify(exc).cause is Cause.MODEL_NOT_FOUND and self.live_models is None:
                    await self._learn_live_models(rest)
                self._failed(
                    "live.connect",
                    f"could not open a Live session with {self.model}",
                    exc,
                    where="live",
                    started=started,
                )
                self._skip("live.text", "no Live session")
                if self.audio:
                    self._skip("live.audio", "no Live session")
                return
            self._add(
                Step(
                    "live.connect",
                    "ok",
                    f"setupComplete from {self.model} ({modality}) in {_ms(started):.0f} ms",
                    details={"model": self.model, "modality": modality, "sessionId": session.session_id},
                    elapsed_ms=_ms(started),
                )
            )
            if catalogued is not None and not catalogued.text_input:
                # A text turn would close the session (audio input only): the spoken turn is this model's check.
                self._skip("live.text", f"{self.model} takes audio input only; a spoken turn checks it instead")
                await self._audio_turn(session, modality)
                return
            if not await self._text_turn(session, modality):
                if self.audio:
                    self._skip("live.audio", "the text turn failed")
                return
            if self.audio:
                await self._audio_turn(session, modality)

    async def ephemeral_token(self, client: genai.Client) -> None:
        """Mint a one-use ephemeral token (auth_tokens on v1alpha) and open a Live session with it."""
        started = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        try:
            token = await self._within(
                client.aio.auth_tokens.create(
                    config=types.CreateAuthTokenConfig(
                        uses=1,
                        expire_time=now + dt.timedelta(minutes=5),
                        new_session_expire_time=now + dt.timedelta(minutes=1),
                        http_options=types.HttpOptions(api_version=gemini.EPHEMERAL_TOKEN_API_VERSION),
                    )
                )
            )
        except Exception as exc:
            self._failed("live.ephemeral", "auth_tokens.create (v1alpha) failed", exc, where="tokens", started=started)
            return
        config, _ = self._live_config()
        name = token.name or ""
        try:
            token_client = gemini.ephemeral_client(name)
            self.ephemeral_url = describe_connection(token_client).live_url
            async with _Closing() as stack:
                session = await self._within(
                    stack.enter(token_client.aio.live.connect(model=self.model, config=config))
                )
        except Exception as exc:
            self._failed(
                "live.ephemeral",
                "a Live session with an ephemeral token failed",
                exc,
                where="ephemeral",
                started=started,
            )
            return
        self._add(
            Step(
                "live.ephemeral",
                "ok",
                f"token {mask(name)} (one use, 1 min to start) opened a Live session on {self.ephemeral_url}",
                details={
                    "liveUrl": self.ephemeral_url,
                    "apiVersion": gemini.EPHEMERAL_TOKEN_API_VERSION,
                    "expireTime": str(token.expire_time) if token.expire_time else None,
                    "sessionId": session.session_id,
                },
                elapsed_ms=_ms(started),
            )
        )

    async def _learn_live_models(self, client: genai.Client) -> None:
        """List the Live models for an explanation, when the REST step did not run."""
        try:
            models = await self._within(_list_models(client))
        except Exception:
            return  # the explanation then says the list is unknown
        self.live_models = sorted(
            m.name.removeprefix("models/")
            for m in models
            if m.name and "bidiGenerateContent" in (m.supported_actions or [])
        )

    def _skip(self, name: str, why: str) -> None:
        self._add(Step(name, "skipped", why))

    async def _text_turn(self, session: Any, modality: str) -> bool:
        started = time.perf_counter()
        catalogued = gemini.live_model(self.model)
        try:
            if catalogued is not None and not catalogued.text_via_realtime_input:
                await session.send_client_content(
                    turns=types.Content(role="user", parts=[types.Part(text=CHECK_PROMPT)]), turn_complete=True
                )
            else:
                await session.send_realtime_input(text=CHECK_PROMPT)
            turn = await self._within(_receive_turn(session, started))
        except Exception as exc:
            self._failed("live.text", "the text turn failed", exc, where="live", started=started)
            return False
        self._add(_turn_step("live.text", turn, modality, started))
        return True

    async def _audio_turn(self, session: Any, modality: str) -> None:
        started = time.perf_counter()
        pcm = speech_like_pcm(1.0) + bytes(2 * INPUT_RATE)  # 1 s of voice, then 1 s of silence to end the turn
        chunk = INPUT_RATE * 2 // 25  # 40 ms, as a browser's AudioWorklet sends it
        try:
            for i in range(0, len(pcm), chunk):
                await session.send_realtime_input(
                    audio=types.Blob(data=pcm[i : i + chunk], mime_type=f"audio/pcm;rate={INPUT_RATE}")
                )
            turn = await self._within(_receive_turn(session, started))
        except Exception as exc:
            self._failed("live.audio", "the spoken turn failed", exc, where="live", started=started)
            return
        step = _turn_step("live.audio", turn, modality, started)
        step.details["sentAudio"] = {"seconds": len(pcm) / 2 / INPUT_RATE, "sampleRate": INPUT_RATE}
        if not turn["inputTranscription"]:
            step.status = "warning"
            step.explanation = "Gemini answered but reported no input transcription of the sent audio."
        self._add(step)


class _Closing:
    """An async exit stack that never lets closing a broken session hide the diagnosis."""

    def __init__(self) -> None:
        self._managers: list[Any] = []

    async def enter(self, manager: Any) -> Any:
        value = await manager.__aenter__()
        self._managers.append(manager)
        return value

    async def __aenter__(self) -> _Closing:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for manager in reversed(self._managers):
            # The session's outcome is already reported; closing it is best effort.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(manager.__aexit__(None, None, None), 5)


async def _list_models(client: genai.Client) -> list[types.Model]:
    pager = await client.aio.models.list(config=types.ListModelsConfig(page_size=100))
    return [model async for model in pager]


async def _receive_turn(session: Any, started: float) -> dict[str, Any]:
    """Collect one model turn: audio bytes and rate, text, transcriptions, time to first byte."""
    turn: dict[str, Any] = {
        "bytes": 0,
        "rate": None,
        "text": "",
        "transcript": "",
        "inputTranscription": "",
        "ttfb": None,
    }
    async for message in session.receive():
        content = message.server_content
        if content is None:
            continue
        for part in (content.model_turn.parts or []) if content.model_turn else []:
            if part.inline_data and part.inline_data.data:
                turn["bytes"] += len(part.inline_data.data)
                turn["rate"] = turn["rate"] or _rate(part.inline_data.mime_type)
            if part.text:
                turn["text"] += part.text
            if turn["ttfb"] is None and (part.text or (part.inline_data and part.inline_data.data)):
                turn["ttfb"] = _ms(started)
        if content.output_transcription and content.output_transcription.text:
            turn["transcript"] += content.output_transcription.text
        if content.input_transcription and content.input_transcription.text:
            turn["inputTranscription"] += content.input_transcription.text
        if content.turn_complete:
            break
    return turn


def _turn_step(name: str, turn: dict[str, Any], modality: str, started: float) -> Step:
    rate = turn["rate"] or 24_000
    seconds = round(turn["bytes"] / 2 / rate, 3)
    text = (turn["text"] or turn["transcript"]).strip()
    details: dict[str, Any] = {
        "modality": modality,
        "timeToFirstByteMs": turn["ttfb"],
        "text": text[:500],
        "inputTranscription": turn["inputTranscription"].strip()[:500],
    }
    if modality == "AUDIO":
        details |= {"audioBytes": turn["bytes"], "sampleRate": turn["rate"], "audioSeconds": seconds}
        summary = (
            f"{turn['bytes']} bytes of audio ({seconds:.2f} s at {turn['rate'] or '?'} Hz), first byte after "
            f"{turn['ttfb'] or 0:.0f} ms; transcript {text[:60]!r}"
        )
        ok = turn["bytes"] > 0
    else:
        summary = f"reply {text[:80]!r}, first text after {turn['ttfb'] or 0:.0f} ms"
        ok = bool(text)
    step = Step(name, "ok" if ok else "failed", summary, details=details, elapsed_ms=_ms(started))
    if not ok:
        step.cause = str(Cause.UNKNOWN)
        step.explanation = "Gemini completed the turn without any reply content."
        step.fix = "Run the check again with --verbosity 2; try another model with --model."
    return step


def _configuration_failure(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ImproperlyConfigured):  # the factory refuses a setting known not to work; it says which
        return str(exc), "Fix the setting named there and restart the server."
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
        return (
            f"A file named in the settings cannot be read ({exc}).",
            "Check GEMINI_CA_FILE and GOOGLE_APPLICATION_CREDENTIALS point at readable files.",
        )
    if type(exc).__name__ == "SSLError" or "PEM" in str(exc):
        return (
            "GEMINI_CA_FILE is not a PEM CA certificate.",
            "Point GEMINI_CA_FILE at the CA certificate (PEM) of the simulator or proxy.",
        )
    return (
        f"The SDK refused the configuration: {exc}.",
        "Vertex needs GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION with credentials; the Gemini API needs "
        "GEMINI_API_KEY.",
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


async def gemini_diagnose(
    *,
    model: str,
    text_model: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    modality: str | None = None,
    audio: bool = False,
    ephemeral: bool = False,
    rest: bool = True,
    live: bool = True,
) -> Report:
    """Diagnose the configured Gemini step by step; never raises for a Gemini failure (each is a failed step)."""
    diagnosis = Diagnosis(model=model, text_model=text_model, timeout=timeout_seconds, modality=modality, audio=audio)
    clients = diagnosis.configuration()
    if clients is None:
        return diagnosis.report
    client, live_client = clients
    conn = diagnosis.report.connection
    key_is_token = conn is not None and conn.ephemeral_token
    if rest and key_is_token:
        diagnosis._skip("rest.models", "an ephemeral token cannot call REST")
        diagnosis._skip("rest.generate", "an ephemeral token cannot call REST")
    elif rest:
        await diagnosis.rest_models(client)
        await diagnosis.rest_generate(client)
    if live:
        with warnings.catch_warnings():
            # The SDK warns about ephemeral tokens off v1alpha; the configuration step reports that already.
            warnings.simplefilter("ignore", genai_errors.ExperimentalWarning)
            await diagnosis.live(live_client, rest=client)
            if ephemeral and conn is not None and conn.mode == gemini.Mode.VERTEX:
                diagnosis._skip("live.ephemeral", "Vertex AI has no ephemeral tokens")
            elif ephemeral and key_is_token:
                diagnosis._skip("live.ephemeral", "GEMINI_API_KEY is itself an ephemeral token; it cannot mint one")
            elif ephemeral:
                await diagnosis.ephemeral_token(client)
    return diagnosis.report
