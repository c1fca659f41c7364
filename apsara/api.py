"""API plumbing shared by every endpoint: session auth that answers 401, a bounded JSON parser, one error shape,
strict pagination.

Error shape (docs/api.md): ``{"error": {"code", "message", "field", "fields"?}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import authentication, exceptions, pagination, parsers, renderers, serializers, status
from rest_framework.fields import get_error_detail
from rest_framework.request import Request
from rest_framework.response import Response

from apsara import validation

logger = logging.getLogger(__name__)

NON_FIELD = "non_field_errors"
API_PREFIX = "/api/"  # where apsara/urls.py mounts the API: everything under it answers errors in the JSON shape
QUERY_INT_MAX = 2**31 - 1  # largest paging number accepted: offset + limit stays far inside a database's integers


class SessionAuthentication(authentication.SessionAuthentication):
    """Django session auth (with CSRF), answering 401 rather than 403 to a request that is not logged in."""

    def authenticate_header(self, request: Request) -> str:
        # Any value makes DRF send 401 + WWW-Authenticate; the realm tells a client to log in through the pages.
        return 'Session realm="apsara"'


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def declared_length(parser_context: Mapping[str, Any]) -> int:
    request = parser_context.get("request")
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except ValueError:
        return 0  # DRF reads no body at all then


class JSONParser(parsers.BaseParser):
    """Parse a JSON body within limits checked before parsing, refusing what the database could not store.

    - size: at most ``API_MAX_BODY_BYTES`` (else 413), judged by Content-Length before reading, and never read
      further than that whatever the header says;
    - nesting: arrays and objects at most ``API_MAX_JSON_DEPTH`` deep (else 400 ``too_deep``), counted before
      parsing, so a deep document never reaches the recursive parser;
    - numbers: finite, integers within 64 bits; no NaN or Infinity (400 ``parse_error``);
    - strings, member names included: no NUL, no lone surrogate (400 naming the field).

    Not a subclass of DRF's JSONParser on purpose: DRF reads the whole body through Django (``request.body``) for
    those first, which fails with RequestDataTooBig past DATA_UPLOAD_MAX_MEMORY_SIZE instead of a 413.
    """

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer

    def parse(
        self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        context = parser_context or {}
        limit = settings.API_MAX_BODY_BYTES
        too_large = f"The request body is larger than {limit} bytes."
        if declared_length(context) > limit:
            raise RequestTooLarge(too_large)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(too_large)
        try:
            text = raw.decode(context.get("encoding") or settings.DEFAULT_CHARSET)
        except (LookupError, UnicodeDecodeError):
            raise exceptions.ParseError("JSON parse error - the body is not text in its charset.") from None
        depth = settings.API_MAX_JSON_DEPTH
        if validation.json_nesting_exceeds(text, depth):
            raise exceptions.ParseError(f"JSON nested deeper than {depth} levels.", code="too_deep")
        try:
            data = json.loads(
                text,
                parse_constant=validation.json_constant,
                parse_float=validation.json_float,
                parse_int=validation.json_int,
            )
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if found := validation.find_unstorable_text(data):
            path, error = found
            raise field_error(path or NON_FIELD, str(error.message), error.code or "invalid")
        return data


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[exceptions.ErrorDetail]]:
    """Turn DRF's nested error details into ``{"field.sub": [ErrorDetail, ...]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[exceptions.ErrorDetail]] = {}
        for key, value in detail.items():
            name = key if not prefix else (prefix if key == NON_FIELD else f"{prefix}.{key}")
            for sub_name, errors in _flatten(value, name).items():
                flat.setdefault(sub_name, []).extend(errors)
        return flat
    if isinstance(detail, list):
        flat = {}
        for index, value in enumerate(detail):
            sub_prefix = f"{prefix}.{index}" if isinstance(value, dict | list) else prefix
            for sub_name, errors in _flatten(value, sub_prefix).items():
                flat.setdefault(sub_name, []).extend(errors)
        return flat
    return {prefix or NON_FIELD: [detail]}


def error_body(
    *, code: str, message: str, field: str | None = None, fields: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """Build the JSON body of an API error."""
    body: dict[str, Any] = {"code": code, "message": message, "field": field}
    if fields is not None:
        body["fields"] = fields
    return {"error": body}


def validation_error_body(detail: Any) -> dict[str, Any]:
    """Build the error body for a validation error, naming the first field at fault."""
    flat = _flatten(detail)
    name, errors = next(iter(flat.items()))
    first = errors[0]
    field = None if name == NON_FIELD else name
    return error_body(
        code=getattr(first, "code", None) or "invalid",
        message=f"{field}: {first}" if field else str(first),
        field=field,
        fields={key: [str(e) for e in value] for key, value in flat.items()},
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer every API failure with the one error shape; never leak a traceback."""
    # Imported here: this module is loaded by DRF's settings (authentication class) before rest_framework.views.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):  # a body read outside the parser, e.g. a form by the CSRF check
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):  # e.g. TooManyFieldsSent: a hostile request, not a server fault
        logger.warning("suspicious API request refused: %s", exc)
        exc = exceptions.ParseError("The request could not be understood.", code="bad_request")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=serializers.as_serializer_error(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            error_body(code="internal_error", message="Something went wrong on the server."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_error_body(exc.detail)
    else:
        assert isinstance(exc, exceptions.APIException)
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(code=str(code), message=str(exc.detail))
    return response


def field_error(field: str, message: str, code: str = "invalid") -> exceptions.ValidationError:
    """Build a validation error about one field (e.g. a query parameter)."""
    return exceptions.ValidationError({field: get_error_detail(DjangoValidationError(message, code=code))})


def query_int(request: Request, name: str, *, default: int, minimum: int, maximum: int = QUERY_INT_MAX) -> int:
    """Read an integer query parameter strictly: a bad value is a 400 naming it, not silently replaced."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise field_error(name, "A whole number is required.") from None
    if value < minimum:
        raise field_error(name, f"Must be at least {minimum}.", "min_value")
    if value > maximum:
        raise field_error(name, f"Must be at most {maximum}.", "max_value")
    return value


class StrictLimitOffsetPagination(pagination.LimitOffsetPagination):
    """Limit/offset pages whose parameters are validated (DRF's own silently falls back to defaults)."""

    default_limit = 20
    max_limit = 200

    def get_limit(self, request: Request) -> int:
        return query_int(request, self.limit_query_param, default=self.default_limit, minimum=1, maximum=self.max_limit)

    def get_offset(self, request: Request) -> int:
        return query_int(request, self.offset_query_param, default=0, minimum=0)


class MessagePagination(StrictLimitOffsetPagination):
    default_limit = 50
