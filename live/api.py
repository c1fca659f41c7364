"""Direct mode's JSON API (docs/live-direct.md): tokens, the session's tool calls and its end. Thin: checks, then
``live.direct`` / ``live.services``; every refusal in the API's one error shape."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from apsara.api import NON_FIELD, error_body, field_error
from gemini.errors import classify, is_upstream_error
from live import direct, services
from live.models import LiveSession
from live.protocol import ErrorCode, ProtocolError

logger = logging.getLogger(__name__)

TOKEN_FIELDS = frozenset({"conversationId", "sessionId", "model", "config", "loadConversationContext"})
MAX_TOOL_CALLS = 16
MAX_TOOL_NAME = 64  # Gemini's own limit on a function's name
MAX_TOOL_CALL_ID = 100
MAX_TOOL_ARGS_CHARS = 16_384
ERROR = OpenApiResponse(OpenApiTypes.OBJECT, description="Error (docs/api.md): the field at fault is named.")

# How create_session's refusals (live.protocol) answer over HTTP, and which field they are about.
_PROTOCOL_STATUS = {
    ErrorCode.SESSION_LIMIT_REACHED: (status.HTTP_429_TOO_MANY_REQUESTS, None),
    ErrorCode.QUOTA_EXCEEDED: (status.HTTP_429_TOO_MANY_REQUESTS, None),
    ErrorCode.SESSION_IN_USE: (status.HTTP_429_TOO_MANY_REQUESTS, None),  # a renewal too soon: Retry-After
    ErrorCode.CONVERSATION_NOT_FOUND: (status.HTTP_404_NOT_FOUND, "conversationId"),
    ErrorCode.SESSION_NOT_FOUND: (status.HTTP_404_NOT_FOUND, "sessionId"),
    ErrorCode.RESUME_FAILED: (status.HTTP_409_CONFLICT, "sessionId"),
    ErrorCode.MODEL_NOT_FOUND: (status.HTTP_400_BAD_REQUEST, "model"),
}


class LiveTokenThrottle(UserRateThrottle):
    """Tokens per person (``LIVE_DIRECT_TOKEN_RATE``), counted in the shared cache (Redis) across workers."""

    scope = "live_token"

    def get_rate(self) -> str:
        return str(settings.LIVE_DIRECT_TOKEN_RATE)


def _refused(error: direct.DirectModeRefused) -> Response:
    code = status.HTTP_403_FORBIDDEN if error.code == "direct_mode_off" else status.HTTP_400_BAD_REQUEST
    return Response(error_body(code=error.code, message=error.message), status=code)


def _protocol_refusal(error: ProtocolError) -> Response:
    answer, field = _PROTOCOL_STATUS.get(error.code, (status.HTTP_400_BAD_REQUEST, "config"))
    code = str(error.code).lower()
    if answer == status.HTTP_404_NOT_FOUND:
        raise exceptions.NotFound(error.message)  # the same answer for another person's thing as for none
    if answer == status.HTTP_400_BAD_REQUEST and field is not None:
        raise field_error(field, error.message, code)
    body = error_body(code=code, message=error.message)
    response = Response(body, status=answer)
    if error.resets_at is not None:  # QUOTA_EXCEEDED: as POST /api/ai/generate answers it (usage.api)
        body["error"]["resetsAt"] = error.resets_at
    if error.retry_after_ms is not None:
        response["Retry-After"] = str(-(-error.retry_after_ms // 1000))
    return response


def _json_object(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise field_error(NON_FIELD, "Send a JSON object.")
    return data


class LiveTokenApi(APIView):
    throttle_classes = [LiveTokenThrottle]

    @extend_schema(
        summary="Mint an ephemeral token for a direct Live session",
        description="docs/live-direct.md. Direct mode must be allowed (LIVE_DIRECT_MODE) and the server on the Gemini "
        "Developer API.",
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 429: ERROR, 502: ERROR},
    )
    def post(self, request: Request) -> Response:
        data = _json_object(request)
        unknown = sorted(set(data) - TOKEN_FIELDS)
        if unknown:
            raise field_error(unknown[0][:60], f"Unknown field; expected some of: {', '.join(sorted(TOKEN_FIELDS))}.")
        conversation_id = data.get("conversationId")
        session_id = data.get("sessionId")
        for name, value in (("conversationId", conversation_id), ("sessionId", session_id)):
            if value is not None and not isinstance(value, str):
                raise field_error(name, "Must be a string id, or null.")
        try:
            if session_id:
                extra = sorted(set(data) & {"model", "config", "loadConversationContext", "conversationId"})
                if extra:
                    raise field_error(extra[0], "A new token for a session keeps its settings: send only sessionId.")
                grant = direct.grant_again(user=request.user, session_id=session_id)  # type: ignore[arg-type]
            else:
                grant = direct.grant_new(
                    user=request.user,  # type: ignore[arg-type]
                    conversation_id=conversation_id or None,
                    data=data,
                )
        except direct.DirectModeRefused as error:
            return _refused(error)
        except ProtocolError as error:
            return _protocol_refusal(error)
        except Exception as error:
            if not is_upstream_error(error):
                raise
            failure = classify(error)
            logger.warning("Minting an ephemeral token failed: %s (%s)", failure.code, failure.detail or error)
            body = error_body(code="gemini_error", message=f"Gemini refused a token: {failure.message}")
            return Response(body, status=status.HTTP_502_BAD_GATEWAY)
        return Response(grant.as_json(), status=status.HTTP_201_CREATED)


def _tool_calls(data: dict[str, Any]) -> list[dict[str, Any]]:
    calls = data.get("calls")
    if set(data) != {"calls"} or not isinstance(calls, list) or not calls:
        raise field_error("calls", 'Send {"calls": [{"id", "name", "args"}, …]} (at least one call).')
    if len(calls) > MAX_TOOL_CALLS:
        raise field_error("calls", f"At most {MAX_TOOL_CALLS} calls at once.", "max_length")
    for index, call in enumerate(calls):
        if not isinstance(call, dict):
            raise field_error(f"calls.{index}", 'Each call is an object: {"id", "name", "args"}.')
        name, call_id, args = call.get("name"), call.get("id"), call.get("args", {})
        if not isinstance(name, str) or not 0 < len(name) <= MAX_TOOL_NAME:
            raise field_error(f"calls.{index}.name", f"Each call needs its function's name (at most {MAX_TOOL_NAME}).")
        if not isinstance(call_id, str) or not 0 < len(call_id) <= MAX_TOOL_CALL_ID:
            raise field_error(f"calls.{index}.id", f"Each call needs Gemini's id for it (at most {MAX_TOOL_CALL_ID}).")
        if not isinstance(args, dict):
            raise field_error(f"calls.{index}.args", "A call's args are an object.")
        if len(json.dumps(args)) > MAX_TOOL_ARGS_CHARS:
            raise field_error(f"calls.{index}.args", f"A call's args are at most {MAX_TOOL_ARGS_CHARS} characters.")
    return calls


class LiveToolCallsApi(APIView):
    @extend_schema(
        summary="Run a direct session's function calls",
        description="The session's declared functions, run as in proxied mode; send the answer as toolResponse.",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, 400: ERROR, 401: ERROR, 404: ERROR},
    )
    def post(self, request: Request, session_id: str) -> Response:
        calls = _tool_calls(_json_object(request))
        session = services.live_session_direct_get(user=request.user, session_id=session_id)  # type: ignore[arg-type]
        if session is None:
            raise exceptions.NotFound("No such direct session.")
        if session.status in (LiveSession.Status.ENDED, LiveSession.Status.FAILED):
            body = error_body(code="session_ended", message="This call has ended: its functions no longer run.")
            return Response(body, status=status.HTTP_409_CONFLICT)
        responses = direct.run_tool_calls(session=session, user=request.user, calls=calls)  # type: ignore[arg-type]
        return Response({"responses": responses})


class LiveSessionEndApi(APIView):
    @extend_schema(
        summary="End a direct session",
        description='{"discardIfUnused": true} when the call recorded nothing: a conversation it created goes back.',
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, 400: ERROR, 401: ERROR, 404: ERROR},
    )
    def post(self, request: Request, session_id: str) -> Response:
        data = request.data if request.data else {}
        if not isinstance(data, dict) or set(data) - {"discardIfUnused"}:
            raise field_error(NON_FIELD, 'Send {} or {"discardIfUnused": true}.')
        discard = data.get("discardIfUnused", False)
        if not isinstance(discard, bool):
            raise field_error("discardIfUnused", "Must be true or false.")
        try:
            session = services.live_session_direct_end(
                user=request.user,  # type: ignore[arg-type]
                session_id=session_id,
                discard_if_unused=discard,
            )
        except ProtocolError as error:
            return _protocol_refusal(error)
        return Response({"sessionId": session.public_id, "status": session.status})
