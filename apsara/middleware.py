"""Site-wide request/response rules that no single view can enforce."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import TooManyFieldsSent, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase

from apsara import validation
from apsara.api import API_PREFIX, error_body

# Errors Django itself answers (outside the API's views) and what the API calls them, as DRF would.
_STATUS_ERRORS = {
    400: ("bad_request", "The request could not be understood."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("request_too_large", "The request body is too large."),
    416: ("range_not_satisfiable", "The requested range lies beyond the end of the file."),
    500: ("internal_error", "Something went wrong on the server."),
}


def _status_error(status: int) -> tuple[str, str]:
    if status in _STATUS_ERRORS:
        return _STATUS_ERRORS[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return phrase.lower().replace(" ", "_").replace("-", "_"), f"{phrase}."


def shape_api_error(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Give an error answered under /api/ the API's JSON error shape if it has not got it yet; else leave it be."""
    if (
        response.status_code < 400
        or not request.path_info.startswith(API_PREFIX)
        or not isinstance(response, HttpResponse)  # streamed: the API never streams an error
        or response.get("Content-Type", "").startswith("application/json")
    ):
        return response
    code, message = _status_error(response.status_code)
    # Replaced in place, so the headers (Allow, Content-Range, WWW-Authenticate) and cookies stay.
    response.content = json.dumps(error_body(code=code, message=message), separators=(",", ":")).encode()
    response["Content-Type"] = "application/json"
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
    return response


class ResponseMiddleware:
    """A middleware that may refuse a request before the view and may adjust the response after it, written once
    for sync and async stacks alike, so an ASGI request takes no thread hop through it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def refuse(self, request: HttpRequest) -> HttpResponseBase | None:
        """An answer that stops the request here, or None to let it through."""
        return None

    def process(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """The response as it leaves (by default, unchanged)."""
        return response

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        refusal = self.refuse(request)
        return self.process(request, refusal if refusal is not None else self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        refusal = self.refuse(request)
        return self.process(request, refusal if refusal is not None else await self.get_response(request))


class ApiErrorShapeMiddleware(ResponseMiddleware):
    """Answer every error under /api/ in the API's JSON error shape, including those Django answers itself.

    The API's views already do (apsara.api.api_exception_handler); this covers the rest: a URL that matches no
    route (an unknown path, a malformed id), an error page Django renders when a request fails before or outside a
    view, an empty-bodied error such as a 416. First in MIDDLEWARE, so it sees what every other middleware answers.
    """

    def process(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        return shape_api_error(request, response)


class StorableQueryMiddleware(ResponseMiddleware):
    """Refuse (400) a query string holding what no database can store, before any view or admin filter runs it.

    A NUL in a filter (``?kind__exact=%00``) reached PostgreSQL as a query parameter and failed there as a 500.
    The JSON API checks its own parameters (naming each in its error shape), so it is left to do so.
    """

    def refuse(self, request: HttpRequest) -> HttpResponseBase | None:
        if request.path_info.startswith(API_PREFIX):
            return None
        try:
            query = request.GET.lists()
        except TooManyFieldsSent:
            return HttpResponseBadRequest(
                "The query string has too many parameters.", content_type="text/plain; charset=utf-8"
            )
        for key, values in query:
            for text in (key, *values):
                try:
                    validation.check_storable_text(text)
                except ValidationError as error:
                    return HttpResponseBadRequest(
                        f"The query parameter {key[:40]!r} cannot be used: {error.messages[0]}",
                        content_type="text/plain; charset=utf-8",
                    )
        return None
