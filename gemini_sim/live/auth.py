"""Credentials for a Live connection: API keys, Vertex bearer tokens and ephemeral tokens, per route."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import catalogue
from ..rest import BAD_KEY, UNREGISTERED
from .errors import VERTEX_UNAUTHENTICATED, Close

if TYPE_CHECKING:
    from ..server import Simulator
    from ..tokens import Token
    from .routes import Route


def authenticate(
    sim: Simulator, route: Route, *, headers: dict[str, str], query: dict[str, str], resuming: bool
) -> Token | None:
    """Check credentials for this route; return the ephemeral token when there is one (``Close`` if refused)."""
    auth = headers.get("authorization", "")
    scheme, _, credential = auth.partition(" ")
    key = headers.get("x-goog-api-key") or query.get("key")
    if route.api == catalogue.VERTEX:
        if not ((scheme.lower() == "bearer" and credential.strip()) or key):
            raise Close(1008, VERTEX_UNAUTHENTICATED)
        return None
    if route.constrained:
        name = query.get("access_token") or (credential.strip() if scheme.lower() == "token" else "") or key
        if not name:
            raise Close(1008, UNREGISTERED)
        token, failure = sim.tokens.check_and_use(name, resuming=resuming)
        if failure is not None:
            raise Close(*failure)
        return token
    if not key:
        raise Close(1008, UNREGISTERED)
    allowed = sim.options.api_keys
    if key.startswith("auth_tokens/") or (allowed is not None and key not in allowed):
        raise Close(1007, BAD_KEY)
    return None
