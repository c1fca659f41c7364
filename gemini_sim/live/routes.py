"""The Live WebSocket handshake: which paths and API versions serve Live, and which API a connection is on."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import catalogue

_PATH = re.compile(
    r"^/ws/(?:google\.ai\.generativelanguage\.(v1|v1alpha|v1beta)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)"
    r"|google\.cloud\.aiplatform\.(v1|v1beta1)\.LlmBidiService/BidiGenerateContent)$"
)
GEMINI_LIVE_VERSIONS = ("v1beta", "v1alpha")  # google-genai 3.6.1 tests/live_api/conftest.py: Live only on v1beta
CONSTRAINED_VERSION = "v1alpha"  # ephemeral tokens: the SDK's "ephemeral token support is in v1alpha only"


@dataclass(frozen=True)
class Route:
    """Which Live endpoint a connection came in on."""

    api: str  # catalogue.GEMINI or catalogue.VERTEX
    version: str
    constrained: bool = False

    @property
    def label(self) -> str:
        """The route as records show it, e.g. ``gemini:v1alpha:constrained``."""
        return f"{self.api}:{self.version}{':constrained' if self.constrained else ''}"


def route(path: str) -> Route | None:
    """Match a handshake path (query ignored, leading slashes normalised); None means 404.

    The Gemini API serves Live on ``v1beta`` and ``v1alpha`` only (``v1`` is a 404 like any wrong path), and the
    ephemeral-token endpoint ``BidiGenerateContentConstrained`` on ``v1alpha`` only; Vertex on ``v1``/``v1beta1``.
    """
    bare = "/" + path.split("?", 1)[0].lstrip("/")
    m = _PATH.match(bare)
    if m is None:
        return None
    if m.group(1):
        version, constrained = m.group(1), m.group(2).endswith("Constrained")
        if version not in GEMINI_LIVE_VERSIONS or (constrained and version != CONSTRAINED_VERSION):
            return None
        return Route(catalogue.GEMINI, version, constrained)
    return Route(catalogue.VERTEX, m.group(3))
