"""Live API placeholder (filled in next)."""

from __future__ import annotations

import re

_PATH = re.compile(
    r"^/ws/(?:google\.ai\.generativelanguage\.(v1|v1alpha|v1beta)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)"
    r"|google\.cloud\.aiplatform\.(v1|v1beta1)\.LlmBidiService/(BidiGenerateContent))$"
)


def route(path: str):
    return None
