"""Wire helpers: proto-JSON field names (camelCase or snake_case), base64 in either alphabet, compact JSON."""

from __future__ import annotations

import base64
import binascii
import json
import re
from functools import lru_cache
from typing import Any

# Values under these keys are user data (function arguments, schemas' property names, labels), never renamed.
_OPAQUE = frozenset({"args", "response", "properties", "labels", "parametersJsonSchema", "responseJsonSchema"})
_SNAKE = re.compile(r"_([a-z0-9])")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


class InvalidArgument(ValueError):
    """The client sent something the real service rejects as an invalid argument."""


@lru_cache(maxsize=4096)
def camel(name: str) -> str:
    """``voice_name`` → ``voiceName`` (already-camel names are unchanged)."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), name) if "_" in name else name


def camelize(value: Any) -> Any:
    """Rename every field to lowerCamel, the way proto-JSON parsing accepts both spellings."""
    if isinstance(value, dict):
        return {(k2 := camel(k)): (v if k2 in _OPAQUE else camelize(v)) for k, v in value.items() if isinstance(k, str)}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


def b64decode(data: Any) -> bytes:
    """Decode standard or URL-safe base64, padded or not."""
    if not isinstance(data, str):
        raise InvalidArgument("bytes field is not a base64 string")
    raw = data.encode("ascii", "ignore").translate(_TO_STANDARD)
    raw += b"=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument("invalid base64") from exc


def b64encode(data: bytes) -> str:
    """Standard base64, as Google's proto-JSON emits it."""
    return base64.b64encode(data).decode("ascii")


def dumps(message: dict[str, Any]) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def get_path(obj: dict[str, Any], path: str) -> Any:
    """Read ``a.b.c`` from nested dicts (None when absent)."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Write (or, with None, delete) ``a.b.c`` in nested dicts."""
    parts = path.split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            if value is None:
                return
            nxt = cur[part] = {}
        cur = nxt
    if value is None:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value


def duration(seconds: float) -> str:
    """A proto Duration string: ``50s``, ``0.500s``."""
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds:.3f}s"
