"""How a Live session ends on an error: the ``Close`` exception and the reasons the service gives."""

from __future__ import annotations

INVALID = "Request contains an invalid argument."
# google-genai 3.6.1 tests/live_api/test_live_session.py (2026-11); before, "Cannot extract voices from a non-audio
# request." (livekit/livekit#4103, 2025).
UNSUPPORTED_MODALITIES = "The requested combination of response modalities ({}) is not supported by the model"
MEDIA_CHUNKS_DEPRECATED = "realtime_input.media_chunks is deprecated. Use audio, video, or text instead"
DEADLINE = "Deadline expired before operation could complete."
VERTEX_UNAUTHENTICATED = "Request is missing required authentication credential. Expected OAuth 2 access token."
TOKEN_EXPIRED = "The ephemeral token has expired."
INTERNAL = "Internal error occurred."


class Close(Exception):
    """End the session with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
