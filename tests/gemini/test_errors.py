"""gemini.errors: Gemini failures (Live closes, handshake and REST statuses) → session_error code and cause."""

from __future__ import annotations

import httpx2 as httpx  # the HTTP library google-genai 3.6.1 uses
import pytest
from google.auth import exceptions as auth_exceptions

from gemini.errors import Cause, classify, classify_close
from live.protocol import ErrorCode

HTML_404 = (
    "<!DOCTYPE html><title>Error 404 (Not Found)</title><p><b>404.</b> The requested URL "
    "/v1beta/v1/models/gemini-2.5-flash:generateContent was not found on this server."
)


@pytest.mark.parametrize(
    ("code", "reason", "error_code", "cause"),
    [
        (404, "HTTP 404 at the WebSocket upgrade", ErrorCode.UPSTREAM_ERROR, Cause.ENDPOINT_NOT_FOUND),
        (404, HTML_404, ErrorCode.UPSTREAM_ERROR, Cause.ENDPOINT_NOT_FOUND),
        (404, "models/x is not found for API version v1beta.", ErrorCode.MODEL_NOT_FOUND, Cause.MODEL_NOT_FOUND),
        (
            1008,
            "models/gemini-2.5-flash is not found for API version v1, or is not supported for bidiGenerateContent.",
            ErrorCode.MODEL_NOT_FOUND,
            Cause.MODEL_NOT_FOUND,
        ),
        (
            1007,
            "gemini-2.0-flash-001 is not supported in the live api.",
            ErrorCode.MODEL_NOT_FOUND,
            Cause.MODEL_NOT_FOUND,
        ),
        (
            1007,
            "API key not valid. Please pass a valid API key.",
            ErrorCode.UPSTREAM_AUTH_FAILED,
            Cause.BAD_CREDENTIALS,
        ),
        (1007, "API key expired. Please renew the API key.", ErrorCode.UPSTREAM_AUTH_FAILED, Cause.BAD_CREDENTIALS),
        (400, "API key not valid. Please pass a valid API key.", ErrorCode.UPSTREAM_AUTH_FAILED, Cause.BAD_CREDENTIALS),
        (1007, "The ephemeral token has expired.", ErrorCode.UPSTREAM_AUTH_FAILED, Cause.BAD_CREDENTIALS),
        (
            1008,
            "Method doesn't allow unregistered callers (callers without established identity).",
            ErrorCode.UPSTREAM_AUTH_FAILED,
            Cause.NO_CREDENTIALS,
        ),
        (403, "Permission denied on resource project x.", ErrorCode.UPSTREAM_AUTH_FAILED, Cause.PERMISSION_DENIED),
        (
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication credential.",
            ErrorCode.UPSTREAM_AUTH_FAILED,
            Cause.BAD_CREDENTIALS,
        ),
        (
            1008,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication",
            ErrorCode.UPSTREAM_AUTH_FAILED,
            Cause.BAD_CREDENTIALS,
        ),
        (
            403,
            "Request had insufficient authentication scopes.",
            ErrorCode.UPSTREAM_AUTH_FAILED,
            Cause.INSUFFICIENT_SCOPE,
        ),
        (
            1008,
            "Request had insufficient authentication scopes.",
            ErrorCode.UPSTREAM_AUTH_FAILED,
            Cause.INSUFFICIENT_SCOPE,
        ),
        (
            401,
            "API keys are not supported by this API. Expected OAuth2 access token or other authentication "
            "credentials that assert a principal.",
            ErrorCode.UPSTREAM_AUTH_FAILED,
            Cause.OAUTH_REQUIRED,
        ),
        (
            1008,
            "API keys are not supported by this API. Expected OAuth2 access token or other authentication "
            "credentials that assert a prin",
            ErrorCode.UPSTREAM_AUTH_FAILED,
            Cause.OAUTH_REQUIRED,
        ),
        (1007, "Cannot extract voices from a non-audio request.", ErrorCode.INVALID_CONFIG, Cause.AUDIO_ONLY_MODEL),
        (
            1007,
            "The requested combination of response modalities (TEXT) is not supported by the model",
            ErrorCode.INVALID_CONFIG,
            Cause.AUDIO_ONLY_MODEL,
        ),
        (1007, "User location is not supported for the API use.", ErrorCode.INVALID_CONFIG, Cause.LOCATION),
        (1007, "Request contains an invalid argument.", ErrorCode.INVALID_CONFIG, Cause.INVALID_ARGUMENT),
        (1011, "Resource has been exhausted (e.g. check quota).", ErrorCode.RATE_LIMIT_EXCEEDED, Cause.QUOTA),
        (1011, "Internal error occurred.", ErrorCode.UPSTREAM_UNAVAILABLE, Cause.INTERNAL),
        (503, "The model is overloaded.", ErrorCode.UPSTREAM_UNAVAILABLE, Cause.INTERNAL),
        (1006, "connection lost", ErrorCode.UPSTREAM_UNAVAILABLE, Cause.CLOSED),
    ],
)
def test_each_failure_gets_its_code_and_cause(code, reason, error_code, cause):
    failure = classify_close(code, reason)
    assert (failure.code, failure.cause) == (error_code, cause)
    assert failure.detail == reason


@pytest.mark.parametrize(
    ("exc", "cause", "status"),
    [
        (httpx.RemoteProtocolError("peer closed connection without sending complete message body"), Cause.CLOSED, None),
        (httpx.ConnectError("[Errno 111] Connection refused"), Cause.REFUSED, None),
        (httpx.ReadTimeout("timed out"), Cause.TIMEOUT, None),
        (RuntimeError("a bug"), Cause.UNKNOWN, None),
    ],
)
def test_http_transport_failures_are_classified_for_rest_and_diagnostics(exc, cause, status):
    """REST generation and gemini_check classify the HTTP library's errors here too, as the bridge does Live's."""
    failure = classify(exc)
    assert (failure.cause, failure.status) == (cause, status)


def test_a_status_gemini_answered_with_is_kept():
    assert classify_close(429, "Resource exhausted").status == 429
    assert classify_close(1011, "Internal error occurred.").status == 1011


@pytest.mark.parametrize(
    "exc",
    [
        auth_exceptions.TransportError("HTTPSConnectionPool(host='oauth2.googleapis.com'): Read timed out."),
        auth_exceptions.RefreshError("('Internal Failure', {'error': 'internal_failure'})", retryable=True),
    ],
)
def test_a_passing_token_service_failure_is_retried_not_called_refused_credentials(exc):
    failure = classify(exc)
    assert failure.code == ErrorCode.UPSTREAM_UNAVAILABLE and failure.retryable
    assert "credentials were refused" not in failure.message


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (auth_exceptions.RefreshError("('invalid_grant: Invalid JWT Signature.', {})"), Cause.BAD_CREDENTIALS),
        (auth_exceptions.DefaultCredentialsError("No credentials found."), Cause.NO_CREDENTIALS),
    ],
)
def test_refused_or_missing_credentials_are_final(exc, cause):
    failure = classify(exc)
    assert (failure.code, failure.cause, failure.retryable) == (ErrorCode.UPSTREAM_AUTH_FAILED, cause, False)
