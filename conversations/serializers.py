"""JSON shapes of the API (seed 002's message shape) and validation of its inputs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.validators import MaxLengthValidator, RegexValidator
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apsara.validation import check_storable_text, is_public_id
from live.direct_turns import TRANSCRIPT_MAX_CHARS, USAGE_MAX_CHARS, started_at_parse, usage_parse

from .models import Conversation, Message
from .services import TITLE_MAX_CHARS

SYSTEM_INSTRUCTION_MAX_CHARS = 8000
MODEL_NAME_PATTERN = r"^(models/)?[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
MESSAGE_ID_PATTERN = r"^msg_[0-9a-f]{24}$"
# docs/live-direct.md: the page chooses it, "msg_" and 22 base64url characters (132 random bits). Never the shape of
# an id the server makes ("msg_" and 24 hex digits: new ones, imported ones), so a page cannot claim one in advance.
LIVE_TURN_ID_PATTERN = r"^msg_[A-Za-z0-9_-]{22}$"


# OUTPUT
# ------------------------------------------------------------------------------
class ConversationSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    messageCount = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Conversation
        fields = ["id", "title", "kind", "messageCount", "createdAt", "updatedAt"]
        read_only_fields = fields

    def get_messageCount(self, conversation: Conversation) -> int:
        count = getattr(conversation, "message_count", None)  # annotated by conversation_list_for_user
        return count if count is not None else conversation.messages.count()


class AudioDataSerializer(serializers.Serializer):
    fileId = serializers.CharField()
    url = serializers.CharField()
    duration = serializers.FloatField(allow_null=True)
    mimeType = serializers.CharField()


class TranscriptionSerializer(serializers.Serializer):
    text = serializers.CharField()


class LiveContentSerializer(serializers.Serializer):
    audioData = AudioDataSerializer(allow_null=True)
    inputTranscription = TranscriptionSerializer(allow_null=True)
    outputTranscription = TranscriptionSerializer(allow_null=True)


class LiveConfigSerializer(serializers.Serializer):
    model = serializers.CharField()
    sessionId = serializers.CharField()
    responseModalities = serializers.ListField(child=serializers.CharField())


class MessageConfigSerializer(serializers.Serializer):
    live = LiveConfigSerializer(allow_null=True)


class ContentSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)


def audio_data(message: Message) -> dict[str, Any] | None:
    """Describe a message's audio file the way seed 002 does, or None."""
    if not message.audio:
        return None
    return {
        "fileId": message.public_id,
        "url": reverse("api-file-download", kwargs={"file_id": message.public_id}),
        "duration": message.audio_duration,
        "mimeType": message.audio_mime_type or "audio/wav",
    }


class MessageSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    conversationId = serializers.CharField(source="conversation.public_id", read_only=True)
    messageType = serializers.CharField(source="message_type", read_only=True)
    content = serializers.SerializerMethodField()
    liveContent = serializers.SerializerMethodField()
    config = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversationId",
            "messageType",
            "role",
            "content",
            "liveContent",
            "config",
            "interrupted",
            "usage",
            "createdAt",
        ]
        read_only_fields = fields

    @extend_schema_field(ContentSerializer)
    def get_content(self, message: Message) -> dict[str, Any]:
        return {"text": message.text}

    @extend_schema_field(LiveContentSerializer)
    def get_liveContent(self, message: Message) -> dict[str, Any]:
        return {
            "audioData": audio_data(message),
            "inputTranscription": {"text": message.input_transcription} if message.input_transcription else None,
            "outputTranscription": {"text": message.output_transcription} if message.output_transcription else None,
        }

    @extend_schema_field(MessageConfigSerializer)
    def get_config(self, message: Message) -> dict[str, Any]:
        live = message.live_config or None
        if live is not None:
            live = {
                "model": live.get("model", ""),
                "sessionId": live.get("sessionId", ""),
                "responseModalities": live.get("responseModalities", []),
            }
        return {"live": live}

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_usage(self, message: Message) -> dict[str, Any] | None:
        return message.usage or None


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: every field at fault and its messages.",
    )


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (docs/api.md)."""

    error = ErrorDetailSerializer()


class TalkVadSerializer(serializers.Serializer):
    """For the OpenAPI document only: live.talk_settings validates (create_session's rules)."""

    enabled = serializers.BooleanField(required=False, help_text="false: Hold to talk.")
    sensitivity = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, help_text=">= 0.5: HIGH.")
    silenceThreshold = serializers.IntegerField(required=False, min_value=0, max_value=10_000, help_text="ms")


class TalkSettingsSerializer(serializers.Serializer):
    """For the OpenAPI document only: ``GET/PUT /api/me/talk-settings`` (docs/api.md); live.talk_settings validates."""

    model = serializers.CharField(required=False)
    voiceName = serializers.CharField(required=False, allow_null=True, help_text="null: Gemini's default (Puck).")
    responseModalities = serializers.ListField(child=serializers.ChoiceField(["AUDIO", "TEXT"]), required=False)
    vad = TalkVadSerializer(required=False)
    loadConversationContext = serializers.BooleanField(required=False)
    contextCompression = serializers.BooleanField(required=False)
    transport = serializers.ChoiceField(
        ["proxied", "direct"], required=False, help_text='"direct" only where LIVE_DIRECT_MODE is "allowed".'
    )


# INPUT
# ------------------------------------------------------------------------------
# Text and number rules every request shares (NUL, lone surrogates, NaN, nesting, size) are checked by the parser,
# apsara.api.JSONParser, before a serializer runs; these fields add the JSON types the contract states.
class StrictCharField(serializers.CharField):
    """A JSON string, and only that (DRF's CharField also takes numbers and turns them into text).

    With ``trim_whitespace=False`` the text is kept exactly as sent, yet one made only of whitespace is still
    ``blank`` unless ``allow_blank``.
    """

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if not self.trim_whitespace and not self.allow_blank and isinstance(data, str) and not data.strip():
            self.fail("blank")
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number, and only that (DRF's FloatField also takes "1.5" and true); finite, as DRF checks."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class ConversationCreateSerializer(serializers.Serializer):
    title = StrictCharField(max_length=TITLE_MAX_CHARS, required=False, allow_blank=True, default="")


class ConversationRenameSerializer(serializers.Serializer):
    title = StrictCharField(max_length=TITLE_MAX_CHARS)


class GenerateRequestSerializer(serializers.Serializer):
    # The prompt is saved exactly as sent (not trimmed): what the user typed is what the history shows.
    prompt = StrictCharField(
        required=False, trim_whitespace=False, help_text="What to ask. Required (or its alias `contents`)."
    )
    contents = StrictCharField(
        required=False, trim_whitespace=False, write_only=True, help_text="Seed 002's alias for `prompt`."
    )
    conversationId = StrictCharField(
        required=False, allow_null=True, max_length=40, help_text="An existing conversation; omit to start one."
    )
    model = StrictCharField(
        required=False,
        allow_null=True,
        validators=[RegexValidator(MODEL_NAME_PATTERN, message="Not a model name (letters, digits, '.', '-', '_').")],
        help_text="Gemini text model; default GEMINI_TEXT_MODEL.",
    )
    messageId = StrictCharField(
        required=False,
        allow_null=True,
        validators=[RegexValidator(MESSAGE_ID_PATTERN, message="Not a message id (msg_ and 24 hex digits).")],
        help_text="The id to save the prompt under, chosen by the client: asking again with the same id (Retry) "
        "reuses the message saved the first time instead of saving it twice.",
    )
    temperature = StrictFloatField(required=False, allow_null=True, min_value=0.0, max_value=2.0)
    systemInstruction = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=SYSTEM_INSTRUCTION_MAX_CHARS
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The limit is a setting, read when a request is validated, not at import.
        limit = settings.GENERATE_MAX_PROMPT_CHARS
        for name in ("prompt", "contents"):
            field = self.fields[name]
            field.max_length = limit
            field.validators.append(
                MaxLengthValidator(limit, message=f"Ensure this field has no more than {limit} characters.")
            )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        prompt = attrs.pop("prompt", None)
        contents = attrs.pop("contents", None)
        if prompt is None:
            prompt = contents
        if prompt is None:
            raise serializers.ValidationError({"prompt": ["This field is required."]}, code="required")
        attrs["prompt"] = prompt
        return attrs


class LiveTurnSerializer(serializers.Serializer):
    """``POST /api/conversations/<id>/live-turns`` (multipart/form-data): one finished turn of a direct session.

    The form's fields as types; ``live.direct_turns`` checks them against the session, and the audio.
    """

    id = StrictCharField(
        max_length=26,
        validators=[RegexValidator(LIVE_TURN_ID_PATTERN, message="Not a page's message id (msg_ + 22 of A-Za-z0-9_-)")],
        help_text="The message id the page chose when the turn ended: the idempotency key.",
    )
    sessionId = StrictCharField(max_length=40, help_text="A direct session of yours, in this conversation.")
    role = serializers.ChoiceField(["user", "model"])
    transcript = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=TRANSCRIPT_MAX_CHARS,
        help_text="What was said: the input transcription (user), the output transcription or text (model).",
    )
    startedAt = StrictCharField(max_length=64, help_text="ISO 8601 with a time zone: when the turn began.")
    interrupted = serializers.ChoiceField(
        ["true", "false"], required=False, default="false", help_text="A model turn cut by a barge-in."
    )
    usage = StrictCharField(
        required=False, max_length=USAGE_MAX_CHARS, help_text="Gemini's usageMetadata, as a JSON object."
    )
    audio = serializers.FileField(
        required=False,
        allow_empty_file=True,  # refused by live.direct_turns, with the other audio checks
        use_url=False,
        help_text="WAV, PCM16 mono: 16 kHz for a user turn, 24 kHz for a model turn.",
    )

    def to_internal_value(self, data: Any) -> Any:
        getlist = getattr(data, "getlist", None)
        if getlist is not None:  # a form may repeat a field; which copy counts would be a guess
            for name in self.fields:
                if len(getlist(name)) > 1:
                    raise serializers.ValidationError({name: ["Send this field once."]}, code="repeated")
        return super().to_internal_value(data)

    def validate_sessionId(self, value: str) -> str:
        if not is_public_id(value):
            raise serializers.ValidationError("Not a live session id.")
        return value

    def validate_transcript(self, value: str) -> str:
        check_storable_text(value)  # DRF's CharField refuses the same; said here so that it never depends on it
        return value

    def validate_startedAt(self, value: str) -> datetime:
        return started_at_parse(value)

    def validate_interrupted(self, value: str) -> bool:
        return value == "true"

    def validate_usage(self, value: str) -> dict[str, Any]:
        return usage_parse(value)
