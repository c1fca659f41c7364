"""Ephemeral auth tokens (``POST /v1alpha/auth_tokens``) and their enforcement on the Constrained Live endpoint.

Defaults follow the docs: ``expireTime`` +30 min, ``newSessionExpireTime`` +60 s (both under 20 h), ``uses`` 1
(0 = unlimited). Resuming a session with a handle does not count as a use and is allowed after
``newSessionExpireTime`` (until ``expireTime``). ``bidiGenerateContentSetup`` (the token's live-connect
constraints) locks setup fields: with no ``fieldMask`` every constrained field wins over the client's setup (and
the client may not add others); with a ``fieldMask`` exactly those paths are taken from the token.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import wire

MAX_LIFETIME_S = 20 * 3600
_ALWAYS_CLIENT = ("sessionResumption",)  # a client must always be able to resume


@dataclass
class Token:
    """One ephemeral token and what it allows."""

    name: str
    expire_time: float
    new_session_expire_time: float
    uses: int  # 0 = unlimited
    used: int
    setup: dict[str, Any] | None
    field_mask: list[str] | None

    def as_json(self) -> dict[str, Any]:
        """The AuthToken resource as the service returns it."""
        out: dict[str, Any] = {
            "name": self.name,
            "expireTime": _rfc3339(self.expire_time),
            "newSessionExpireTime": _rfc3339(self.new_session_expire_time),
            "uses": self.uses,
        }
        if self.setup is not None:
            out["bidiGenerateContentSetup"] = self.setup
        if self.field_mask is not None:
            out["fieldMask"] = ",".join(self.field_mask)
        return out

    def constrain(self, setup: dict[str, Any]) -> dict[str, Any]:
        """Apply the token's locked fields to a client's (camelCase) setup."""
        if self.setup is None:
            return setup
        if self.field_mask is None:
            merged = copy.deepcopy(self.setup)
            for key in _ALWAYS_CLIENT:
                if key in setup:
                    merged[key] = setup[key]
            merged.setdefault("model", setup.get("model"))
            return merged
        merged = copy.deepcopy(setup)
        for path in self.field_mask:
            wire.set_path(merged, path, copy.deepcopy(wire.get_path(self.setup, path)))
        return merged


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(value: Any, default: float, now: float) -> float:
    if value is None:
        return default
    if not isinstance(value, str):
        raise wire.InvalidArgument("time must be an RFC 3339 string")
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise wire.InvalidArgument(f"Invalid value at time ({value!r})") from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    ts = stamp.timestamp()
    if ts - now > MAX_LIFETIME_S:
        raise wire.InvalidArgument("expire_time must be less than 20 hours in the future.")
    return ts


class TokenStore:
    """Tokens issued by one simulator instance (thread-safe)."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def create(self, body: dict[str, Any]) -> Token:
        """Create a token from an ``auth_tokens`` request body (camelCase)."""
        now = time.time()
        uses = body.get("uses", 1)
        try:
            uses = int(uses)
        except (TypeError, ValueError) as exc:
            raise wire.InvalidArgument("uses must be an integer") from exc
        if uses < 0:
            raise wire.InvalidArgument("uses must not be negative")
        setup = body.get("bidiGenerateContentSetup")
        if setup is not None and not isinstance(setup, dict):
            raise wire.InvalidArgument("bidiGenerateContentSetup must be an object")
        if isinstance(setup, dict) and "setup" in setup:
            setup = setup["setup"]
        mask = body.get("fieldMask")
        if isinstance(mask, str):
            field_mask: list[str] | None = [camel_path(p) for p in mask.split(",") if p.strip()]
        elif isinstance(mask, list):
            field_mask = [camel_path(str(p)) for p in mask]
        else:
            field_mask = None
        if field_mask and setup is None:
            raise wire.InvalidArgument("fieldMask requires bidiGenerateContentSetup")
        token = Token(
            name=f"auth_tokens/{secrets.token_hex(32)}",
            expire_time=_parse_time(body.get("expireTime"), now + 1800, now),
            new_session_expire_time=_parse_time(body.get("newSessionExpireTime"), now + 60, now),
            uses=uses,
            used=0,
            setup=wire.camelize(setup) if setup is not None else None,
            field_mask=field_mask,
        )
        with self._lock:
            self._tokens[token.name] = token
        return token

    def get(self, name: str) -> Token | None:
        """Look a token up by its ``auth_tokens/…`` name."""
        with self._lock:
            return self._tokens.get(name)

    def check_and_use(self, name: str, *, resuming: bool) -> tuple[Token | None, tuple[int, str] | None]:
        """Validate a token for a session; count a use for a new session. Return (token, close) on failure."""
        now = time.time()
        with self._lock:
            token = self._tokens.get(name)
            if token is None:
                return None, (1007, "API key not valid. Please pass a valid API key.")
            if now >= token.expire_time:
                return token, (1007, "The ephemeral token has expired.")
            if resuming:
                return token, None
            if now >= token.new_session_expire_time:
                return token, (1007, "The ephemeral token can no longer be used to start new sessions.")
            if token.uses and token.used >= token.uses:
                return token, (1011, "Token has been used too many times")
            token.used += 1
            return token, None


def camel_path(path: str) -> str:
    """``generation_config.temperature`` → ``generationConfig.temperature``."""
    return ".".join(wire.camel(p.strip()) for p in path.strip().split("."))
