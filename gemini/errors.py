"""The one classifier of Gemini failures: why Gemini refused or failed (a ``Cause``), whether retrying may help,
and the Live ``session_error`` code and message a person sees.

Every caller classifies here: the live bridge (``session_error``), REST generation (which words each ``Cause`` as
its own SSE error code, ``conversations.generation``) and the operators' diagnosis (``gemini.diagnostics``,
``manage.py gemini_check``, which explains each ``Cause`` with its fix).

google-genai 3.4.0 surfaces a WebSocket close during connect/receive as ``errors.APIError`` whose ``code`` is the
close code (1007 invalid argument or bad key, 1008 model not found, 1011 internal or quota, 1006 dropped), an HTTP
refusal at the upgrade as ``websockets.InvalidStatus``, a close seen while sending as ``ConnectionClosed``, and
a config it rejects itself as ``ValueError``. REST calls (models.list, generateContent) raise ``APIError`` with the
HTTP status, or the HTTP library's transport errors (connect, timeout, a stream cut short); ``classify`` takes those
too.
"""

from __future__ import annotations

import enum
import importlib
import re
import socket
import ssl
from dataclasses import dataclass
from functools import cache

from google.auth import exceptions as auth_exceptions
from google.genai import errors
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from live.protocol import ErrorCode

DEFAULT_RETRY_AFTER_MS = 30_000


class Cause(enum.StrEnum):
    """Why Gemini refused or failed, as precisely as the SDK lets one tell."""

    ENDPOINT_NOT_FOUND = "endpoint_not_found"  # HTTP 404 for the URL itself: base URL path or API version
    MODEL_NOT_FOUND = "model_not_found"  # unknown, retired, or not served by this method (e.g. not Live-capable)
    BAD_CREDENTIALS = "bad_credentials"  # key not valid or expired, token unknown or expired
    NO_CREDENTIALS = "no_credentials"  # none sent, or not the kind this endpoint wants
    OAUTH_REQUIRED = "oauth_required"  # an API key sent where the endpoint wants an OAuth access token
    INSUFFICIENT_SCOPE = "insufficient_scope"  # an access token whose scopes do not cover this API
    PERMISSION_DENIED = "permission_denied"
    AUDIO_ONLY_MODEL = "audio_only_model"  # TEXT response modality on a native-audio model
    LOCATION = "location_not_supported"
    INVALID_ARGUMENT = "invalid_argument"
    QUOTA = "quota"
    INTERNAL = "internal"  # 1011 / 5xx
    CLOSED = "closed"  # ended without an error (1000/1001) or dropped (1006)
    TLS = "tls"
    REFUSED = "refused"  # nothing listening, or the host name does not resolve
    TIMEOUT = "timeout"
    CLIENT_CONFIG = "client_config"  # the SDK refused it before sending anything
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class UpstreamFailure:
    """A classified upstream failure."""

    code: ErrorCode
    message: str
    retryable: bool  # reconnecting (with backoff) may help
    retry_after_ms: int | None = None
    detail: str = ""  # what Gemini said, for logs and the LiveSession row
    cause: Cause = Cause.UNKNOWN
    status: int | None = None  # the HTTP status or WebSocket close code Gemini answered with, if it answered


def _retry_after_ms(text: str) -> int:
    match = re.search(r"retry (?:after|in) (\d+(?:\.\d+)?)\s*(ms|s)?", text, re.IGNORECASE)
    if not match:
        return DEFAULT_RETRY_AFTER_MS
    value = float(match.group(1))
    return int(value if match.group(2) == "ms" else value * 1000)


def _auth_cause(code: int | None, lower: str) -> Cause:
    # Google's texts (REST 401/403, and the same text in a Live 1008 close): see docs/gemini-fidelity.md.
    if "api keys are not supported" in lower:
        return Cause.OAUTH_REQUIRED
    if "insufficient authentication scopes" in lower:
        return Cause.INSUFFICIENT_SCOPE
    if "invalid authentication credentials" in lower:
        return Cause.BAD_CREDENTIALS
    if "unregistered callers" in lower or "missing required authentication" in lower or code == 401:
        return Cause.NO_CREDENTIALS
    if "permission" in lower or code == 403:
        return Cause.PERMISSION_DENIED
    return Cause.BAD_CREDENTIALS


def classify_close(code: int | None, reason: str) -> UpstreamFailure:
    """Classify a Gemini close (code and reason), or a REST/handshake HTTP status, as a session_error."""
    text = reason or ""
    lower = text.lower()
    if any(k in lower for k in ("quota", "resource_exhausted", "rate limit", "too many requests")) or code == 429:
        return UpstreamFailure(
            ErrorCode.RATE_LIMIT_EXCEEDED,
            "Gemini's rate limit or quota is exhausted. Wait a little and start the session again.",
            retryable=False,
            retry_after_ms=_retry_after_ms(text),
            detail=text,
            status=code,
            cause=Cause.QUOTA,
        )
    if (
        any(
            k in lower
            for k in (
                "api key",
                "unregistered callers",
                "permission",
                "authentication credential",
                "authentication scope",
            )
        )
        or (
            "token" in lower
            and any(k in lower for k in ("expired", "not valid", "invalid", "too many times", "no longer"))
        )
        or code in (401, 403)
    ):
        return UpstreamFailure(
            ErrorCode.UPSTREAM_AUTH_FAILED,
            "The server's Gemini credentials were refused. This is a server problem; tell the administrator.",
            retryable=False,
            detail=text,
            status=code,
            cause=_auth_cause(code, lower),
        )
    front_end_page = "requested url" in lower or "<!doctype" in lower or "<html" in lower
    if code == 404 and (front_end_page or not ("models/" in lower and "not found" in lower)):
        # The URL itself is unknown (an HTML 404 page, or a refused WebSocket upgrade): the base URL's path or
        # the API version is wrong, whatever the model.
        return UpstreamFailure(
            ErrorCode.UPSTREAM_ERROR,
            "The server's Gemini endpoint is misconfigured (HTTP 404). This is a server problem; tell the "
            "administrator.",
            retryable=False,
            detail=text,
            status=code,
            cause=Cause.ENDPOINT_NOT_FOUND,
        )
    if (code == 1008 and ("not found" in lower or "not supported" in lower)) or code == 404 or "live api" in lower:
        return UpstreamFailure(
            ErrorCode.MODEL_NOT_FOUND,
            "Gemini does not offer that model for live sessions (it may have been renamed or retired). "
            "Choose another model.",
            retryable=False,
            detail=text,
            status=code,
            cause=Cause.MODEL_NOT_FOUND,
        )
    if code in (1007, 400):
        cause = Cause.INVALID_ARGUMENT
        # Google's text since 2026 ("The requested combination of response modalities (TEXT) is not supported by the
        # model"), and the earlier one ("Cannot extract voices from a non-audio request.").
        if "combination of response modalities" in lower or ("voice" in lower and "non-audio" in lower):
            cause = Cause.AUDIO_ONLY_MODEL
            message = "This model answers in audio only; ask for AUDIO (text arrives as its transcription)."
        else:
            message = f"Gemini rejected the session's settings: {text or 'invalid argument'}."
            if "location is not supported" in lower:
                cause = Cause.LOCATION
        return UpstreamFailure(
            ErrorCode.INVALID_CONFIG, message, retryable=False, detail=text, cause=cause, status=code
        )
    if code in (1000, 1001, 1006, 1011, 1012, 1013, 1014) or (code is not None and 500 <= code < 600):
        return UpstreamFailure(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "Gemini is unavailable right now. Try again in a moment.",
            retryable=True,
            retry_after_ms=5000,
            detail=text,
            status=code,
            cause=Cause.CLOSED if code in (1000, 1001, 1006) else Cause.INTERNAL,
        )
    return UpstreamFailure(
        ErrorCode.UPSTREAM_ERROR,
        f"Gemini ended the session unexpectedly ({code}): {text or 'no reason given'}.",
        retryable=False,
        detail=text,
        status=code,
    )


def is_upstream_error(exc: BaseException) -> bool:
    """Whether an exception from a call to Gemini is Gemini (or the way to it) failing, else it is a bug here: Live's
    connection, or a REST call's HTTP transport (connection refused, timed out, cut short)."""
    upstream = (errors.APIError, ConnectionClosed, InvalidHandshake, OSError, TimeoutError)
    return isinstance(exc, upstream + http_transport_errors())


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it (HTTP libraries wrap the socket's and TLS's own errors)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


@cache
def http_transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP libraries' own transport errors (the SDK may use httpx, httpx2 or aiohttp): a connection that failed
    or dropped, including a stream cut short."""
    found: list[type[BaseException]] = []
    for module_name in ("httpx", "httpx2", "aiohttp"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in ("TransportError", "StreamError", "ClientError"):
            exc = getattr(module, name, None)
            if isinstance(exc, type) and issubclass(exc, BaseException):
                found.append(exc)
    return tuple(found)


def _transport_cause(exc: BaseException) -> Cause | None:
    """Tell a TLS failure, a refused or unresolvable address, a timeout and a dropped connection apart, from any
    HTTP/WS library."""
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, ssl.SSLError) for e in chain) or "certificate" in text or "[ssl" in text:
        return Cause.TLS
    if any(isinstance(e, (ConnectionRefusedError, socket.gaierror)) for e in chain) or any(
        k in text for k in ("connection refused", "name or service not known", "nodename nor servname")
    ):
        return Cause.REFUSED
    if (
        any(isinstance(e, TimeoutError) for e in chain)
        or "timed out" in text
        or "timeout" in type(exc).__name__.lower()
    ):
        return Cause.TIMEOUT
    if any(isinstance(e, OSError) for e in chain) or "connect" in type(exc).__name__.lower():
        return Cause.REFUSED
    if any(isinstance(e, http_transport_errors()) for e in chain):
        return Cause.CLOSED  # e.g. a REST stream cut short: it answered, then went away
    return None


def classify(exc: BaseException) -> UpstreamFailure:
    """Classify any exception raised by the SDK while connecting, sending or receiving (Live or REST)."""
    if isinstance(exc, errors.APIError):
        # Live closes have no message and str(APIError) is "<code> None. <reason>"; REST errors carry Gemini's
        # message (or, for an unknown URL, the front end's HTML 404 page).
        reason = exc.message or re.sub(r"^\d+ (?:None|[A-Za-z_ ]+)\. ?", "", str(exc))
        return classify_close(exc.code, reason)
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return classify_close(status, f"HTTP {status} at the WebSocket upgrade")
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        return classify_close(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "connection lost")
    if isinstance(exc, auth_exceptions.TransportError) or (
        isinstance(exc, auth_exceptions.RefreshError) and exc.retryable
    ):
        # Vertex: Google's token service could not be reached, or said to try again (a 5xx, a timeout): a passing
        # problem, not refused credentials. A call reconnects (each new connection refreshes its token) and lives on.
        return UpstreamFailure(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "Google's sign-in service did not answer; trying again.",
            retryable=True,
            detail=str(exc),
            cause=Cause.TIMEOUT if "timed out" in str(exc).lower() else Cause.REFUSED,
        )
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        # Vertex: no Application Default Credentials, or the OAuth token could not be obtained or refreshed.
        no_credentials = isinstance(exc, auth_exceptions.DefaultCredentialsError)
        return UpstreamFailure(
            ErrorCode.UPSTREAM_AUTH_FAILED,
            "The server's Gemini credentials were refused. This is a server problem; tell the administrator.",
            retryable=False,
            detail=str(exc),
            cause=Cause.NO_CREDENTIALS if no_credentials else Cause.BAD_CREDENTIALS,
        )
    transport = None if isinstance(exc, InvalidHandshake) else _transport_cause(exc)
    if transport is Cause.TLS:
        return UpstreamFailure(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "The secure connection to Gemini failed. This is a server problem; tell the administrator.",
            retryable=False,
            detail=str(exc),
            cause=Cause.TLS,
        )
    if transport is not None or isinstance(exc, InvalidHandshake):
        return UpstreamFailure(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "Gemini cannot be reached right now. Try again in a moment.",
            retryable=True,
            retry_after_ms=5000,
            detail=str(exc) or type(exc).__name__,
            cause=transport or Cause.UNKNOWN,
        )
    if isinstance(exc, ValueError):
        return UpstreamFailure(
            ErrorCode.INVALID_CONFIG,
            f"The session's settings are not valid for Gemini: {exc}",
            False,
            detail=str(exc),
            cause=Cause.CLIENT_CONFIG,
        )
    return UpstreamFailure(
        ErrorCode.UPSTREAM_ERROR, "The connection to Gemini failed unexpectedly.", False, detail=repr(exc)
    )
