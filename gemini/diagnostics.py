"""Step-by-step diagnosis of the configured Gemini (``manage.py gemini_check``): what the SDK will use, then REST
and Live round trips, each failure explained with its cause and its fix.

Failures are classified by ``gemini.errors.classify`` (the bridge's and REST generation's classifier too); the
operator's wording of each ``Cause`` is a table in ``gemini.explanations``, filled in here with the URLs, API
versions and settings involved. The Live steps are in ``gemini.live_steps``; the report and the connection the SDK
uses in ``gemini.report``. Secrets are never reported: a key shows as its last four characters.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable
from dataclasses import asdict
from typing import TypeVar
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from gemini.catalogue import live_model, not_conversational
from gemini.client import CLOUD_PLATFORM_SCOPE, EPHEMERAL_TOKEN_API_VERSION, Mode, get_client, vertex_credentials
from gemini.errors import Cause, UpstreamFailure, classify
from gemini.explanations import explanation, render
from gemini.live_steps import CHECK_PROMPT, LiveSteps
from gemini.report import Report, Step, describe_connection, describe_credentials, ms_since

DEFAULT_TIMEOUT_SECONDS = 20.0
GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com/"
T = TypeVar("T")


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
        self.credential_note = ""  # Vertex: the credential's kind and account, once known

    def _settings_hint(self, *, live: bool = False) -> str:
        base = f"GEMINI_BASE_URL ({settings.GEMINI_BASE_URL or f'unset, so {GOOGLE_BASE_URL}'})"
        conn = self.report.connection
        if live and conn is not None and conn.mode == Mode.VERTEX:
            return f"{base}; Vertex AI's Live uses the SDK's default API version"
        if live:
            return f"{base} and GEMINI_LIVE_API_VERSION ({settings.GEMINI_LIVE_API_VERSION or 'unset, so v1beta'})"
        return f"{base} and GEMINI_API_VERSION ({settings.GEMINI_API_VERSION or 'unset, so the SDK default'})"

    def explain(self, failure: UpstreamFailure, *, where: str) -> tuple[str, str]:
        """Word a classified failure for an operator: (cause, fix), from ``gemini.explanations``."""
        conn = self.report.connection
        live = where in ("live", "ephemeral")
        version = (conn.live_api_version if live else conn.api_version) if conn else "?"
        url = (conn.live_url if live else f"{conn.rest_url}/…") if conn else "?"
        if where == "ephemeral":
            url, version = self.ephemeral_url, EPHEMERAL_TOKEN_API_VERSION
        catalogued = live_model(self.model)
        situations = [
            *(["token_key"] if conn and conn.ephemeral_token else []),
            *(["vertex"] if conn and conn.mode == Mode.VERTEX else []),
            *(["text_only_model"] if catalogued is not None and not catalogued.audio_only else []),
        ]
        if self.live_models:
            live_models = ", ".join(self.live_models)
        else:
            live_models = "none reported" if self.live_models is not None else "unknown (models.list failed)"
        ca = settings.GEMINI_CA_FILE
        facts = {
            "url": url,
            "version": version,
            "host": urlparse(conn.rest_base_url).netloc if conn else "?",
            "base": conn.rest_base_url if conn else "?",
            "ephemeral_url": self.ephemeral_url,
            "model": self.model,
            "text_model": self.text_model,
            "live_models": live_models,
            "text_models": ", ".join(self.text_models or []) or "unknown",
            "credential": self.credential_note or (conn.credential if conn else ""),
            "settings_hint": self._settings_hint(live=live),
            "trusted": f"GEMINI_CA_FILE ({ca}) does not sign" if ca else "no trusted CA signs",
            "timeout": self.timeout,
            "detail": failure.detail,
        }
        return render(explanation(failure.cause, where=where, situations=situations), facts)

    def failed(self, name: str, summary: str, exc: BaseException, *, where: str, started: float) -> Step:
        failure = classify(exc)
        if isinstance(exc, TimeoutError):
            failure = UpstreamFailure(failure.code, failure.message, True, detail="timed out", cause=Cause.TIMEOUT)
        explanation, fix = self.explain(failure, where=where)
        return self.add(
            Step(
                name,
                "failed",
                summary,
                cause=str(failure.cause),
                explanation=explanation,
                fix=fix,
                gemini_said=failure.detail[:500],
                elapsed_ms=ms_since(started),
            )
        )

    def add(self, step: Step) -> Step:
        self.report.steps.append(step)
        return step

    async def within(self, awaitable: Awaitable[T]) -> T:
        return await asyncio.wait_for(awaitable, self.timeout)

    # -- steps --------------------------------------------------------------------------------------------------

    def configuration(self) -> tuple[genai.Client, genai.Client] | None:
        """Build the REST and Live clients as the app does and describe them; warn about settings known to fail."""
        started = time.perf_counter()
        try:
            client = get_client()
            live_client = get_client(live=True)
        except Exception as exc:  # the SDK and ssl raise many kinds here; all are configuration errors
            cause, fix = _configuration_failure(exc)
            self.add(
                Step(
                    "configuration",
                    "failed",
                    "the Gemini client could not be built",
                    cause=str(Cause.CLIENT_CONFIG),
                    explanation=cause,
                    fix=fix,
                    gemini_said=f"{type(exc).__name__}: {exc}"[:500],
                    elapsed_ms=ms_since(started),
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
        catalogued = live_model(self.model)
        if catalogued is None:
            warnings.append(
                f"{self.model} is not in Apsara's live-model catalogue (gemini/catalogue.py LIVE_MODELS): the app "
                "will not offer it."
            )
        elif not catalogued.conversational:
            warnings.append(
                f"{not_conversational(catalogued)} This check still connects to it"
                + ("" if catalogued.text_input else " and tests it with a spoken turn instead of a text turn")
                + "."
            )
        details = asdict(conn) | {"liveModel": self.model, "textModel": self.text_model, "warnings": warnings}
        self.add(
            Step(
                "configuration",
                "warning" if warnings else "ok",
                f"mode {conn.mode}; REST API version {conn.api_version} ({conn.api_version_source}); Live API "
                f"version {conn.live_api_version} ({conn.live_api_version_source}); auth: {conn.auth} "
                f"{conn.credential}",
                details=details,
                explanation=" ".join(warnings),
                elapsed_ms=ms_since(started),
            )
        )
        return client, live_client

    async def rest_models(self, client: genai.Client) -> None:
        """List models; remember which serve Live (bidiGenerateContent) and which generateContent."""
        started = time.perf_counter()
        try:
            models = await self.within(list_models(client))
        except Exception as exc:
            self.failed("rest.models", "models.list failed", exc, where="rest", started=started)
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
        self.add(
            Step(
                "rest.models",
                "warning" if notes else "ok",
                f"{len(models)} models; Live (bidiGenerateContent): {', '.join(live) or 'none'}",
                details={"models": len(models), "liveModels": live, "textModels": text},
                explanation=" ".join(notes),
                elapsed_ms=ms_since(started),
            )
        )

    async def rest_generate(self, client: genai.Client) -> None:
        """Ask the text model for one short reply."""
        started = time.perf_counter()
        try:
            response = await self.within(
                # No max_output_tokens: thinking models would spend a small budget before writing any text.
                client.aio.models.generate_content(model=self.text_model, contents=CHECK_PROMPT)
            )
        except Exception as exc:
            self.failed(
                "rest.generate", f"generateContent on {self.text_model} failed", exc, where="rest", started=started
            )
            return
        text = (response.text or "").strip()
        usage = response.usage_metadata
        self.add(
            Step(
                "rest.generate",
                "ok" if text else "warning",
                f"{self.text_model} replied {text[:80]!r}" if text else f"{self.text_model} replied with no text",
                details={
                    "model": self.text_model,
                    "reply": text[:500],
                    "totalTokens": usage.total_token_count if usage else None,
                },
                elapsed_ms=ms_since(started),
            )
        )

    async def learn_live_models(self, client: genai.Client) -> None:
        """List the Live models for an explanation, when the REST step did not run."""
        try:
            models = await self.within(list_models(client))
        except Exception:
            return  # the explanation then says the list is unknown
        self.live_models = sorted(
            m.name.removeprefix("models/")
            for m in models
            if m.name and "bidiGenerateContent" in (m.supported_actions or [])
        )

    async def oauth_token(self) -> None:
        """Vertex: obtain an access token as the SDK will (refreshing it if due); report its kind, scopes, expiry."""
        started = time.perf_counter()
        try:
            credentials = vertex_credentials()
            if credentials is None:
                import google.auth

                credentials, _project = await asyncio.to_thread(google.auth.default, scopes=[CLOUD_PLATFORM_SCOPE])
            if not credentials.valid:
                from google.auth.transport.requests import Request

                await self.within(asyncio.to_thread(credentials.refresh, Request()))
        except Exception as exc:
            self.failed("auth.token", "no OAuth access token could be obtained", exc, where="rest", started=started)
            return
        details = describe_credentials(credentials)
        self.credential_note = f"{details['kind']} {details['account']}".strip()
        scopes = ", ".join(details["scopes"]) or "not reported"
        left = details["expiresInSeconds"]
        expires = f"expires in {left} s ({details['expiry']})" if left is not None else "expiry unknown"
        self.add(
            Step(
                "auth.token",
                "ok",
                f"access token for {self.credential_note}; scopes {scopes}; {expires}",
                details=details,
                elapsed_ms=ms_since(started),
            )
        )

    def skip(self, name: str, why: str) -> None:
        self.add(Step(name, "skipped", why))


async def list_models(client: genai.Client) -> list[types.Model]:
    pager = await client.aio.models.list(config=types.ListModelsConfig(page_size=100))
    return [model async for model in pager]


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
    if conn is not None and conn.mode == Mode.VERTEX and not conn.auth.startswith("Vertex express"):
        await diagnosis.oauth_token()  # OAuth only: Vertex express mode sends an API key
    if rest and key_is_token:
        diagnosis.skip("rest.models", "an ephemeral token cannot call REST")
        diagnosis.skip("rest.generate", "an ephemeral token cannot call REST")
    elif rest:
        await diagnosis.rest_models(client)
        await diagnosis.rest_generate(client)
    if live:
        with warnings.catch_warnings():
            # The SDK warns about ephemeral tokens off v1alpha; the configuration step reports that already.
            warnings.simplefilter("ignore", genai_errors.ExperimentalWarning)
            live_steps = LiveSteps(diagnosis)
            await live_steps.session(live_client, rest=client)
            if ephemeral and conn is not None and conn.mode == Mode.VERTEX:
                diagnosis.skip("live.ephemeral", "Vertex AI has no ephemeral tokens")
            elif ephemeral and key_is_token:
                diagnosis.skip("live.ephemeral", "GEMINI_API_KEY is itself an ephemeral token; it cannot mint one")
            elif ephemeral:
                await live_steps.ephemeral_token(client)
    return diagnosis.report


async def explain_live_failure(failure: UpstreamFailure, *, model: str, timeout_seconds: float) -> tuple[str, str]:
    """Word a live session's classified failure for an operator as ``gemini_check`` would: (cause, fix).

    For ``manage.py live_test``, whose session ran through the bridge: the same table, filled in with what the SDK
    uses (and, for an unknown model, the Live models Gemini reports).
    """
    diagnosis = Diagnosis(
        model=model, text_model=settings.GEMINI_TEXT_MODEL, timeout=timeout_seconds, modality=None, audio=False
    )
    clients = diagnosis.configuration()
    if clients is not None and failure.cause is Cause.MODEL_NOT_FOUND:
        await diagnosis.learn_live_models(clients[0])
    return diagnosis.explain(failure, where="live")
