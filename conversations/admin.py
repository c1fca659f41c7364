"""Staff views of users, conversations and messages (with their recordings); live sessions are in live.admin.

Every write goes through conversations.services, like the API and the live bridge.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apsara.admin_display import EMPTY, audio_seconds, count, cut

from . import services
from .forms import AdminLoginForm
from .models import Conversation, Message, User

PREVIEW_CHARS = 80

# /admin/login/ throttled like the site's login page (django-axes; conversations/login_throttling.py). Staff unlock
# in Axes → Access attempts (delete the rows), or with `manage.py axes_reset_username` / `axes_reset_ip`.
admin.site.login_form = AdminLoginForm
# No app list beside every page: on a 1280 px screen it takes the width the tables need (the index lists the apps).
admin.site.enable_nav_sidebar = False


def _preview(message: Message) -> str:
    words = message.text or message.input_transcription or message.output_transcription
    return words if len(words) <= PREVIEW_CHARS else words[: PREVIEW_CHARS - 1] + "…"


def _audio_player(message: Message) -> SafeString | str:
    """Render an HTML5 player and a download link for a message's recording (empty when it has none)."""
    if not message.audio or not message.public_id:
        return EMPTY
    url = reverse("api-file-download", kwargs={"file_id": message.public_id})
    duration = audio_seconds(message.audio_duration) if message.audio_duration is not None else ""
    # The player is named for screen readers (an <audio> has no name of its own).
    return format_html(
        '<audio controls preload="none" src="{}" aria-label="Recording of {}"></audio> '
        '<a href="{}?download=1">Download</a> {}',
        url,
        message.get_role_display().lower(),
        url,
        duration,
    )


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "conversation_count", "last_login")
    # Plain multiple selects: Django's two-box widget leaves unlabelled controls (the accessibility audit's
    # "aria-prohibited-attr"); and when someone joined or last logged in is a record, not a form field (its split
    # date and time inputs have no labels either).
    filter_horizontal = ()
    readonly_fields = ("last_login", "date_joined")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).annotate(conversation_count=Count("conversations"))

    @admin.display(description="Conversations", ordering="conversation_count")
    def conversation_count(self, user: User) -> str:
        return count(user.conversation_count)  # type: ignore[attr-defined]


class MessageInline(admin.TabularInline):
    """A conversation's messages in the order they were said; read-only (they come from chats and live talks)."""

    model = Message
    fields = ("created_at", "role", "message_type", "preview", "player", "interrupted")
    readonly_fields = fields
    ordering = ("created_at", "id")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Words")
    def preview(self, message: Message) -> str:
        return _preview(message)

    @admin.display(description="Audio")
    def player(self, message: Message) -> SafeString | str:
        return _audio_player(message)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    # Fits a 1280 px screen: ids and titles cut short (whole in their title), creation dates in the filter.
    list_display = ("short_id", "short_title", "owner", "kind", "message_count", "updated_at")
    list_filter = ("kind", ("owner", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = (
        "title",
        "public_id",
        "owner__username",
        "messages__text",
        "messages__input_transcription",
        "messages__output_transcription",
    )
    date_hierarchy = "created_at"
    fields = ("public_id", "owner", "title", "kind", "created_at", "updated_at")
    readonly_fields = ("public_id", "kind", "created_at", "updated_at")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    inlines = (MessageInline,)
    actions = ("refresh_kind",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).annotate(message_count=Count("messages"))

    def get_readonly_fields(self, request: HttpRequest, obj: Conversation | None = None) -> tuple[str, ...]:
        # The owner is chosen once, when staff create a conversation for someone.
        return (*self.readonly_fields, "owner") if obj is not None else self.readonly_fields

    @admin.display(description="Messages", ordering="message_count")
    def message_count(self, conversation: Conversation) -> str:
        return count(conversation.message_count)  # type: ignore[attr-defined]

    @admin.display(description="Conversation", ordering="public_id")
    def short_id(self, conversation: Conversation) -> SafeString | str:
        return cut(conversation.public_id, 14)

    @admin.display(description="Title", ordering="title")
    def short_title(self, conversation: Conversation) -> SafeString | str:
        return cut(conversation.title, 40)

    def save_model(self, request: HttpRequest, obj: Conversation, form: ModelForm, change: bool) -> None:
        # The form has validated the fields already; the services apply the rules about them.
        if change:
            services.conversation_rename(conversation=obj, title=form.cleaned_data["title"])
        else:
            created = services.conversation_create(owner=form.cleaned_data["owner"], title=form.cleaned_data["title"])
            obj.pk, obj.public_id, obj.kind = created.pk, created.public_id, created.kind

    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        services.conversation_delete(conversation=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            services.conversation_delete(conversation=conversation)

    @admin.action(description="Re-derive kind from messages")
    def refresh_kind(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            services.conversation_refresh(conversation=conversation)
        self.message_user(request, f"Re-derived the kind of {queryset.count()} conversation(s).", messages.SUCCESS)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("short_id", "conversation_display", "role", "message_type", "preview", "duration", "created_at")
    list_filter = ("message_type", "role", "interrupted", "created_at")
    search_fields = ("public_id", "text", "input_transcription", "output_transcription", "conversation__public_id")
    list_select_related = ("conversation",)
    date_hierarchy = "created_at"
    fields = (
        "public_id",
        "conversation",
        "role",
        "message_type",
        "created_at",
        "text",
        "input_transcription",
        "output_transcription",
        "player",
        "audio_length",
        "audio_mime_type",
        "live_config",
        "tool_data",
        "usage",
        "interrupted",
    )
    # Staff may correct what was said and the interrupted flag; everything else is a record of what happened.
    readonly_fields = tuple(
        f for f in fields if f not in ("text", "input_transcription", "output_transcription", "interrupted")
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # messages come from chats and live sessions

    @admin.display(description="Words")
    def preview(self, message: Message) -> SafeString | str:
        return cut(message.text or message.input_transcription or message.output_transcription, 48)

    @admin.display(description="Message", ordering="public_id")
    def short_id(self, message: Message) -> SafeString | str:
        return cut(message.public_id, 14)

    @admin.display(description="Conversation", ordering="conversation__title")
    def conversation_display(self, message: Message) -> SafeString | str:
        return cut(str(message.conversation), 28)

    @admin.display(description="Audio", ordering="audio_duration")
    def duration(self, message: Message) -> str:
        return audio_seconds(message.audio_duration) if message.audio_duration is not None else ""

    @admin.display(description="Audio length")
    def audio_length(self, message: Message) -> str:
        return audio_seconds(message.audio_duration)

    @admin.display(description="Audio")
    def player(self, message: Message) -> SafeString | str:
        return _audio_player(message)

    def save_model(self, request: HttpRequest, obj: Message, form: ModelForm, change: bool) -> None:
        services.message_update(
            message=obj,
            text=form.cleaned_data["text"],
            input_transcription=form.cleaned_data["input_transcription"],
            output_transcription=form.cleaned_data["output_transcription"],
            interrupted=form.cleaned_data["interrupted"],
        )

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        services.message_delete(message=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        for message in queryset.select_related("conversation"):
            services.message_delete(message=message)
