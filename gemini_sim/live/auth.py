"""Credentials for a Live connection: API keys, OAuth bearer tokens and ephemeral tokens, per route.

Refused OAuth credentials close the connection with 1008 and Google's REST message, cut to the 123 bytes a close
reason can hold (what google-gemini/cookbook#1122 shows for an API key where OAuth is needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import catalogue, oauth
from ..rest import BAD_KEY, UNREGISTERED
from .errors import VERTEX_UNAUTHENTICATED, Close

if TYPE_CHECKING:
    from ..server import Simulator
    from ..tokens import Token
    from .routes import Route


def close_reason(text: str) -> str:
    """A close reason as the service sends it: at most 123 bytes of UTF-8 (RFC 6455 5.5)."""
    return text.encode()[:123].decode("utf-8", "ignore")


def _refuse(refusal: oauth.Refusal | None) -> None:
    if refusal is not None:
        raise Close(1008, close_reason(refusal.message))


def authenticate(
    sim: Simulator,
    route: Route,
    *,
    headers: dict[str, str],
    query: dict[str, str],
    resuming: bool,
    model: str = "",
) -> Token | None:
    """Check credentials for this route; return the ephemeral token when there is one (``Close`` if refused).

    ``model`` is the setup's: on Vertex, an API key is express mode, which has no project, so a project's model
    (``projects/…``) with a key is an API key where OAuth is needed.
    """
    auth = headers.get("authorization", "")
    scheme, _, credential = auth.partition(" ")
    bearer = credential.strip() if scheme.lower() == "bearer" else ""
    key = headers.get("x-goog-api-key") or query.get("key")
    if route.api == catalogue.VERTEX:
        if bearer:
            _refuse(oauth.check_access_token(sim, bearer, catalogue.VERTEX))
        elif not key:
            raise Close(1008, VERTEX_UNAUTHENTICATED)
        elif model.startswith("projects/"):
            _refuse(oauth.Refusal(401, oauth.API_KEYS_NOT_SUPPORTED, "CREDENTIALS_MISSING"))
        return None
    if route.constrained:
        name = query.get("access_token") or (credential.strip() if scheme.lower() == "token" else "") or key
        if not name:
            raise Close(1008, UNREGISTERED)
        token, failure = sim.tokens.check_and_use(name, resuming=resuming)
        if failure is not None:
            raise Close(*failure)
        return token
    if bearer:
        _refuse(oauth.check_access_token(sim, bearer, catalogue.GEMINI))
        if not key:
            return None
    if not key:
        raise Close(1008, UNREGISTERED)
    allowed = sim.options.api_keys
    if key.startswith("auth_tokens/") or (allowed is not None and key not in allowed):
        raise Close(1007, BAD_KEY)
    return None
