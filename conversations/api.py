"""JSON API views: thin — validate, call a selector or service, serialize. Contract: docs/api.md."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import Storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import parsers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apsara.api import (
    MessagePagination,
    RequestTooLarge,
    StrictLimitOffsetPagination,
    declared_length,
    error_body,
    field_error,
)
from live import direct_turns
from usage.api import quota_refusal
from usage.quotas import QuotaExceeded

from . import generation, selectors, services
from .serializers import (
    ConversationCreateSerializer,
    ConversationRenameSerializer,
    ConversationSerializer,
    ErrorSerializer,
    GenerateRequestSerializer,
    LiveTurnSerializer,
    MessageSerializer,
    TalkSettingsSerializer,
)


class ApsaraSessionScheme(SessionScheme):
    """Describe apsara's session authentication (the session cookie) in the OpenAPI document."""

    target_class = "apsara.api.SessionAuthentication"
    priority = 0


ERROR_RESPONSE = OpenApiResponse(ErrorSerializer, description="Error (docs/api.md): the field at fault is named.")
PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="Page size, 1-200."),
    OpenApiParameter("offset", int, description="Items to skip, >= 0."),
]


class ConversationListApi(APIView):
    @extend_schema(
        summary="List your conversations",
        parameters=PAGE_PARAMETERS,
        responses={200: ConversationSerializer(many=True), 400: ERROR_RESPONSE, 401: ERROR_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.conversation_list_for_user(user=request.user), request, self)
        return paginator.get_paginated_response(ConversationSerializer(page, many=True).data)

    @extend_schema(
        summary="Start a conversation",
        request=ConversationCreateSerializer,
        responses={201: ConversationSerializer, 400: ERROR_RESPONSE, 401: ERROR_RESPONSE},
    )
    def post(self, request: Request) -> Response:
        serializer = ConversationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        conversation = services.conversation_create(owner=request.user, title=serializer.validated_data["title"])
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailApi(APIView):
    @extend_schema(summary="Get a conversation", responses={200: ConversationSerializer, 404: ERROR_RESPONSE})
    def get(self, request: Request, conv_id: str) -> Response:
        conversation = selectors.conversation_get_for_user(user=request.user, public_id=conv_id)
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        summary="Rename a conversation",
        request=ConversationRenameSerializer,
        responses={200: ConversationSerializer, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
    )
    def patch(self, request: Request, conv_id: str) -> Response:
        conversation = selectors.conversation_get_for_user(user=request.user, public_id=conv_id)
        serializer = ConversationRenameSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.conversation_rename(conversation=conversation, title=serializer.validated_data["title"])
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        summary="Delete a conversation, its messages and their audio",
        responses={204: None, 404: ERROR_RESPONSE},
    )
    def delete(self, request: Request, conv_id: str) -> Response:
        conversation = selectors.conversation_get_for_user(user=request.user, public_id=conv_id)
        services.conversation_delete(conversation=conversation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageListApi(APIView):
    @extend_schema(
        summary="List a conversation's messages (REST and live, oldest first)",
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("after", str, description="Only messages created after this message id."),
        ],
        responses={200: MessageSerializer(many=True), 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
    )
    def get(self, request: Request, conv_id: str) -> Response:
        conversation = selectors.conversation_get_for_user(user=request.user, public_id=conv_id)
        after = None
        if after_id := request.query_params.get("after"):
            after = selectors.message_get_in_conversation(conversation=conversation, public_id=after_id)
            if after is None:
                raise field_error("after", "No message with this id in this conversation.")
        paginator = MessagePagination()
        messages = selectors.message_list(conversation=conversation, after=after).select_related("conversation")
        page = paginator.paginate_queryset(messages, request, self)
        return paginator.get_paginated_response(MessageSerializer(page, many=True).data)


class LiveTurnParser(parsers.MultiPartParser):
    """A multipart form no larger than the longest turn's audio and its fields, judged before reading any of it.

    Django's own limits still apply as it parses: DATA_UPLOAD_MAX_MEMORY_SIZE for the fields (413),
    DATA_UPLOAD_MAX_NUMBER_FIELDS/FILES (400); an upload past FILE_UPLOAD_MAX_MEMORY_SIZE waits in a temporary file.
    """

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = direct_turns.max_request_bytes()
        if declared_length(parser_context or {}) > limit:
            raise RequestTooLarge(
                f"The request body is larger than {limit} bytes "
                f"(a turn's audio is at most {settings.LIVE_DIRECT_TURN_MAX_SECONDS} s)."
            )
        return super().parse(stream, media_type, parser_context)


class LiveTurnApi(APIView):
    """A direct session's turn, posted by the page (docs/live-direct.md); stored by ``live.direct_turns`` as a
    proxied turn is. Here rather than in ``live``: what it answers is a conversation's message, as ``…/messages``
    shows it."""

    parser_classes = [LiveTurnParser]  # this view only: every other endpoint takes apsara.api.JSONParser's JSON

    @extend_schema(
        summary="Store a turn of a direct live session (idempotent by its id)",
        description="One finished turn of a direct session (the page talked to Gemini with an ephemeral token), "
        "stored like a turn of a proxied session. 201 with the new message; 200 with the message already stored "
        "when the same id is posted again; 409 when the id is another message's. See docs/live-direct.md.",
        request={"multipart/form-data": LiveTurnSerializer},
        responses={
            201: MessageSerializer,
            200: MessageSerializer,
            400: ERROR_RESPONSE,
            401: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
            413: ERROR_RESPONSE,
        },
    )
    def post(self, request: Request, conv_id: str) -> Response:
        conversation = selectors.conversation_get_for_user(user=request.user, public_id=conv_id)
        serializer = LiveTurnSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        turn = direct_turns.DirectTurn(
            public_id=data["id"],
            session_id=data["sessionId"],
            role=data["role"],
            transcript=data["transcript"],
            started_at=data["startedAt"],
            interrupted=data["interrupted"],
            usage=data.get("usage") or {},
            audio=data.get("audio"),
        )
        try:
            message, created = direct_turns.direct_turn_save(user=request.user, conversation=conversation, turn=turn)
        except direct_turns.TurnIdTaken:
            return Response(
                error_body(
                    code="message_id_taken",
                    message="id: this id belongs to another message; give the turn a new id.",
                    field="id",
                ),
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            MessageSerializer(message).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class TalkSettingsApi(APIView):
    """The logged-in person's Talk settings: always their own (``me``), there is no way to name another user."""

    @extend_schema(summary="Get your Talk settings", responses={200: TalkSettingsSerializer, 401: ERROR_RESPONSE})
    def get(self, request: Request) -> Response:
        return Response(selectors.talk_settings_for_user(user=request.user))

    @extend_schema(
        summary="Replace your Talk settings (missing ones take their defaults)",
        request=TalkSettingsSerializer,
        responses={200: TalkSettingsSerializer, 400: ERROR_RESPONSE, 401: ERROR_RESPONSE},
    )
    def put(self, request: Request) -> Response:
        return Response(services.talk_settings_save(user=request.user, data=request.data))


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """Always answer errors as JSON, even to a client that only accepts text/event-stream."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


SSE_DESCRIPTION = """Server-sent events, in this order:

- `event: meta` once: `{conversationId, conversationCreated, conversation, userMessage, modelMessageId, model}`;
- `event: chunk` zero or more times: `{text}` (concatenated: the reply);
- then either `event: done`: `{message}` (the saved model message), or `event: error`:
  `{code, message, partialMessage}` where code is GEMINI_ERROR | GEMINI_RATE_LIMITED | GEMINI_UNAVAILABLE |
  GEMINI_BLOCKED | GEMINI_TIMEOUT | INTERNAL_ERROR and partialMessage is what arrived, saved with
  `interrupted: true` (or null).

Each event is `event: <name>\\ndata: <one line of JSON>\\n\\n`. Lines starting with `:` are keep-alive comments
(sent while Gemini is silent): ignore them. See docs/api.md."""


class GenerateApi(APIView):
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(
        summary="Ask Gemini and stream the reply (server-sent events)",
        description="Saves the prompt, sends the conversation's recent history plus the prompt to Gemini, streams "
        "the reply as server-sent events (see the 200 response) and saves it. Bad input is a JSON error before "
        "any event; once the stream has started, failures arrive as an `error` event.",
        request=GenerateRequestSerializer,
        responses={
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description=SSE_DESCRIPTION),
            400: ERROR_RESPONSE,
            401: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            429: ERROR_RESPONSE,
        },
    )
    def post(self, request: Request) -> StreamingHttpResponse | Response:
        serializer = GenerateRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        conversation = None
        if data.get("conversationId"):
            conversation = selectors.conversation_get_for_user(user=request.user, public_id=data["conversationId"])
        try:
            prepared = generation.generation_prepare(
                user=request.user,
                prompt=data["prompt"],
                conversation=conversation,
                model=data.get("model"),
                temperature=data.get("temperature"),
                system_instruction=data.get("systemInstruction"),
                message_id=data.get("messageId"),
            )
        except generation.PromptIdTaken as exc:
            raise field_error("messageId", str(exc)) from None
        except QuotaExceeded as exceeded:
            return quota_refusal(exceeded)
        response = StreamingHttpResponse(generation.generation_stream(prepared), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # reverse proxies must not hold the stream back
        return response


def _is_local(storage: Storage, name: str) -> bool:
    try:
        storage.path(name)
    except NotImplementedError:
        return False
    return True


# ASCII digits, at most 18 (within 64 bits): a longer number is no range of any file, so the header is ignored.
_BYTE_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")


def _local_file_response(
    request: Request, storage: Storage, name: str, *, content_type: str, filename: str, as_attachment: bool
) -> HttpResponseBase:
    """Serve a stored file, honouring a single byte range so audio players can seek."""
    try:
        size = storage.size(name)
        handle = storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("The audio file is missing.") from None
    disposition = content_disposition_header(as_attachment, filename) or ""
    match = _BYTE_RANGE.fullmatch(request.headers.get("Range", "").strip())
    if match is None or not (match[1] or match[2]):
        response: HttpResponseBase = FileResponse(
            handle, content_type=content_type, as_attachment=as_attachment, filename=filename
        )
    else:
        with handle:
            if match[1]:
                start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
            else:  # "bytes=-N": the last N bytes
                start, end = max(size - int(match[2]), 0), size - 1
            if start > end:
                response = HttpResponse(status=416)
                response["Content-Range"] = f"bytes */{size}"
                return response
            handle.seek(start)
            response = HttpResponse(handle.read(end - start + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Disposition"] = disposition
    response["Accept-Ranges"] = "bytes"
    return response


class FileDownloadApi(APIView):
    @extend_schema(
        summary="Download a message's audio (owner or staff)",
        parameters=[OpenApiParameter("download", bool, description="1: as an attachment rather than inline.")],
        responses={
            (200, "audio/wav"): OpenApiResponse(OpenApiTypes.BINARY, description="The file (local storage)."),
            (206, "audio/wav"): OpenApiResponse(OpenApiTypes.BINARY, description="The requested byte range."),
            302: OpenApiResponse(description="Redirect to a short-lived presigned URL (S3 storage)."),
            404: ERROR_RESPONSE,
        },
    )
    def get(self, request: Request, file_id: str) -> HttpResponseBase:
        message = selectors.message_get_audio_for_user(user=request.user, public_id=file_id)
        storage, name = message.audio.storage, message.audio.name or ""
        as_attachment = request.query_params.get("download") in {"1", "true", "yes"}
        filename = f"{message.public_id}.wav"
        mime_type = message.audio_mime_type or "audio/wav"
        if _is_local(storage, name):
            return _local_file_response(
                request, storage, name, content_type=mime_type, filename=filename, as_attachment=as_attachment
            )
        return HttpResponseRedirect(
            storage.url(  # type: ignore[call-arg]  # S3Storage.url takes these; see apsara.settings AUDIO_STORAGE
                name,
                parameters={
                    "ResponseContentType": mime_type,
                    "ResponseContentDisposition": content_disposition_header(as_attachment, filename),
                },
                expire=settings.AWS_QUERYSTRING_EXPIRE,
            )
        )
