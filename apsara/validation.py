"""What client input may hold, decided in one place: the API's JSON parser, URL converters and selectors ask here.

PostgreSQL cannot store NUL (U+0000) in text, and no UTF-8 column can hold a lone surrogate (U+D800-U+DFFF, which
JSON spells ``"\\ud800"``): both are refused where they come in, naming the field, rather than failing at the
database as a 500. Numbers must be finite and fit a 64-bit column; JSON nesting is bounded before it is parsed.
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.core.exceptions import ValidationError

# ASCII letters, digits, "_" and "-", as long as the public_id columns at most: every id the app makes (conv_…,
# msg_…, live_…) and the chat page's "CONVERSATION_ID" URL placeholder. Anything else cannot name a row.
PUBLIC_ID_PATTERN = r"[A-Za-z0-9_-]{1,40}"
_PUBLIC_ID = re.compile(PUBLIC_ID_PATTERN)

JSON_INT_MAX = 2**63 - 1  # a signed 64-bit column (bigint) holds no more
_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON string (escapes included) or one bracket; what lies inside strings is never counted as nesting.
# The closing quote is optional: an unterminated string must not make the regex retry from every quote (quadratic).
_JSON_NESTING_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def is_public_id(value: object) -> bool:
    """Tell whether `value` can be a public id at all (so a lookup by it is safe to run)."""
    return isinstance(value, str) and _PUBLIC_ID.fullmatch(value) is not None


def check_storable_text(value: str) -> None:
    """Raise ValidationError if `value` holds a character no database column can store: NUL or a lone surrogate."""
    if "\x00" in value:
        raise ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
    if not value.isascii() and (match := _SURROGATE.search(value)):
        raise ValidationError(
            f"Surrogate characters are not allowed: U+{ord(match[0]):04X}.", code="surrogate_characters_not_allowed"
        )


def json_nesting_exceeds(text: str, limit: int) -> bool:
    """Tell whether the JSON document `text` nests arrays and objects more than `limit` deep, without parsing it."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _JSON_NESTING_TOKEN.finditer(text):
        token = match[0]
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def json_int(text: str) -> int:
    """Parse a JSON integer, refusing one a 64-bit column cannot hold (a ValueError, as json expects)."""
    value = int(text)
    if abs(value) > JSON_INT_MAX:
        raise ValueError(f"Number out of range (at most {JSON_INT_MAX} either side of 0): {text[:30]}")
    return value


def json_float(text: str) -> float:
    """Parse a JSON number with a fraction or exponent, refusing one too large to be finite (e.g. 1e999)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"Number out of range: {text[:30]}")
    return value


def json_constant(name: str) -> Any:
    """Refuse NaN, Infinity and -Infinity, which JSON does not have."""
    raise ValueError(f"{name} is not a JSON number.")


def field_path(parent: str, key: str | int) -> str:
    """Name a member of a JSON document as the error shape does ("a.0.b"); a key that is itself bad, escaped."""
    name = str(key)
    try:
        check_storable_text(name)
    except ValidationError:
        name = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return f"{parent}.{name}" if parent else name


def find_unstorable_text(data: Any, path: str = "") -> tuple[str, ValidationError] | None:
    """Return the first string (member name or value) in parsed JSON a database cannot store, and why; else None."""
    if isinstance(data, str):
        try:
            check_storable_text(data)
        except ValidationError as error:
            return path, error
        return None
    if isinstance(data, dict):
        for key, value in data.items():
            found = find_unstorable_text(key, field_path(path, key)) or find_unstorable_text(
                value, field_path(path, key)
            )
            if found:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if found := find_unstorable_text(value, field_path(path, index)):
                return found
    return None
