"""Gemini Live failures → ``session_error`` codes, with what a person can do about them and whether to retry.

google-genai 3.4.0 surfaces a WebSocket close during connect/receive as ``errors.APIError`` whose ``code`` is the
close code (1007 invalid argument or bad key, 1008 model not found, 1011 internal or quota, 1006 dropped), an HTTP
refusal at the upgrade as ``websockets.InvalidStatus``, a close seen while sending as ``ConnectionClosed``, and
a config it rejects itself as ``ValueError``.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass

from google.genai import errors
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from live.protocol import ErrorCode

DEFAULT_RETRY_AFTER_MS = 30_000


@dataclass(frozen=True)
class UpstreamFailure:
    """A classified upstream failure."""

    code: ErrorCode
    message: str
    retryable: bool  # reconnecting (with backoff) may help
    retry_after_ms: int | None = None
    detail: str = ""  # what Gemini said, for logs and the LiveSession row


def _retry_after_ms(text: str) -> int:
    match = re.search(r"retry (?:after|in) (\d+(?:\.\d+)?)\s*(ms|s)?", text, re.IGNORECASE)
    if not match:
        return DEFAULT_RETRY_AFTER_MS
    value = float(match.group(1))
    return int(value if match.group(2) == "ms" else value * 1000)


def classify_close(code: int | None, reason: str) -> UpstreamFailure:
    """Classify a Gemini close (code and reason) as a session_error."""
    text = reason or ""
    lower = text.lower()
    if any(k in lower for k in ("quota", "resource_exhausted", "rate limit", "too many requests")) or code == 429:
        return UpstreamFailure(
            ErrorCode.RATE_LIMIT_EXCEEDED,
            "Gemini's rate limit or quota is exhausted. Wait a little and start the session again.",
            retryable=False,
            retry_after_ms=_retry_after_ms(text),
            detail=text,
        )
    if "api key" in lower or "unregistered callers" in lower or "permission" in lower or code in (401, 403):
        return UpstreamFailure(
            ErrorCode.UPSTREAM_AUTH_FAILED,
            "The server's Gemini credentials were refused. This is a server problem; tell the administrator.",
            retryable=False,
            detail=text,
        )
    if (code == 1008 and ("not found" in lower or "not supported" in lower)) or code == 404:
        return UpstreamFailure(
            ErrorCode.MODEL_NOT_FOUND,
            "Gemini does not offer that model for live sessions (it may have been renamed or retired). "
            "Choose another model.",
            retryable=False,
            detail=text,
        )
    if code == 1007:
        if "voice" in lower and "non-audio" in lower:
            message = "This model answers in audio only; ask for AUDIO (text arrives as its transcription)."
        else:
            message = f"Gemini rejected the session's settings: {text or 'invalid argument'}."
        return UpstreamFailure(ErrorCode.INVALID_CONFIG, message, retryable=False, detail=text)
    if code in (1000, 1001, 1006, 1011, 1012, 1013, 1014) or (code is not None and 500 <= code < 600):
        return UpstreamFailure(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "Gemini is unavailable right now. Try again in a moment.",
            retryable=True,
            retry_after_ms=5000,
            detail=text,
        )
    return UpstreamFailure(
        ErrorCode.UPSTREAM_ERROR,
        f"Gemini ended the session unexpectedly ({code}): {text or 'no reason given'}.",
        retryable=False,
        detail=text,
    )


def is_upstream_error(exc: BaseException) -> bool:
    """Whether an exception from the receive side is Gemini's connection failing (else it is a bug here)."""
    return isinstance(exc, (errors.APIError, ConnectionClosed, InvalidHandshake, OSError, TimeoutError))


def classify(exc: BaseException) -> UpstreamFailure:
    """Classify any exception raised by the SDK while connecting, sending or receiving."""
    if isinstance(exc, errors.APIError):
        reason = str(exc)
        # str(APIError) is "<code> <status>. <reason>"; keep just the reason Gemini gave.
        reason = re.sub(r"^\d+ (?:None|[A-Z_]+)\. ?", "", reason)
        return classify_close(exc.code, reason)
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return classify_close(status, f"HTTP {status} at the WebSocket upgrade")
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        return classify_close(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "connection lost")
    if isinstance(exc, ssl.SSLError):
        return UpstreamFailure(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "The secure connection to Gemini failed. This is a server problem; tell the administrator.",
            retryable=False,
            detail=str(exc),
        )
    if isinstance(exc, (OSError, TimeoutError, InvalidHandshake)):
        return UpstreamFailure(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "Gemini cannot be reached right now. Try again in a moment.",
            retryable=True,
            retry_after_ms=5000,
            detail=str(exc),
        )
    if isinstance(exc, ValueError):
        return UpstreamFailure(
            ErrorCode.INVALID_CONFIG, f"The session's settings are not valid for Gemini: {exc}", False, detail=str(exc)
        )
    return UpstreamFailure(
        ErrorCode.UPSTREAM_ERROR, "The connection to Gemini failed unexpectedly.", False, detail=repr(exc)
    )
