"""What ``manage.py gemini_check`` reports: its steps, and the connection the SDK will use (read from the SDK)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from google import genai

from gemini import sdk_internals
from gemini.client import Mode, credential_file_kind, current_mode, live_api_version, rest_api_version

FILE_KINDS = {"service_account": "a service-account key file", "authorized_user": "an authorized-user (ADC) file"}


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
    api = sdk_internals.client_api(client)
    options = sdk_internals.http_options(api)
    version = options.api_version or ""
    base = options.base_url or ""
    live_api = sdk_internals.client_api(live_client or client)
    live_version = sdk_internals.http_options(live_api).api_version or ""
    ws_base = sdk_internals.websocket_base_url(live_api)
    mode = str(current_mode())
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
            path = settings.GOOGLE_APPLICATION_CREDENTIALS
            try:
                kind = credential_file_kind(path)
            except (OSError, ValueError):
                kind = ""
            auth = f"OAuth 2 Bearer token from {FILE_KINDS.get(kind, kind or 'a credentials file')} "
            auth += "(GOOGLE_APPLICATION_CREDENTIALS)"
            credential = path
        else:
            auth, credential = "OAuth 2 Bearer token from Application Default Credentials", "ADC"
    else:
        method = "BidiGenerateContentConstrained" if ephemeral else "BidiGenerateContent"
        live = f"{ws_base}/ws/google.ai.generativelanguage.{live_version}.GenerativeService.{method}"
        if ephemeral:
            auth = "ephemeral token (Authorization: Token …) on the Constrained Live endpoint"
        elif mode == Mode.SIMULATOR:
            where = "at GEMINI_BASE_URL" if settings.GEMINI_BASE_URL else "embedded"
            auth = f"API key in the x-goog-api-key header (the {where} simulator accepts any key)"
        else:
            auth = "API key in the x-goog-api-key header (never ?key= in the URL)"
        credential = mask(key)
    return Connection(
        mode=mode,
        rest_base_url=base,
        rest_url=rest,
        api_version=version,
        api_version_source=rest_api_version().source,
        live_url=live,
        live_api_version=live_version,
        live_api_version_source=live_api_version(key).source,
        auth=auth,
        credential=credential,
        ephemeral_token=ephemeral,
    )


def ms_since(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading), for a step's ``elapsed_ms``."""
    return round((time.perf_counter() - started) * 1000, 1)


def describe_credentials(credentials: Any) -> dict[str, Any]:
    """What a google-auth credential is, whom it stands for, its scopes and its token's expiry (never the token)."""
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    if isinstance(credentials, service_account.Credentials):
        kind, account = "service account", credentials.service_account_email
    elif isinstance(credentials, user_credentials.Credentials):
        refreshable = credentials.refresh_token is not None
        kind = "user credentials (authorized_user)" if refreshable else "an access token (not refreshable)"
        account = getattr(credentials, "account", "") or (credentials.client_id or "")
    else:
        kind, account = type(credentials).__name__, getattr(credentials, "service_account_email", "") or ""
    scopes = list(getattr(credentials, "granted_scopes", None) or getattr(credentials, "scopes", None) or [])
    expiry = getattr(credentials, "expiry", None)
    seconds_left = None
    if expiry is not None:
        import datetime

        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # google-auth keeps naive UTC expiries
        seconds_left = round((expiry - now).total_seconds())
    return {
        "kind": kind,
        "account": account,
        "scopes": scopes,
        "expiry": f"{expiry.isoformat()}Z" if expiry is not None else None,
        "expiresInSeconds": seconds_left,
    }
