"""Pages: sign up, conversation list, chat view. Thin: reads via selectors, writes via services."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations import selectors, services
from conversations.forms import ConversationRenameForm, SignUpForm
from conversations.models import Conversation
from live import talk_settings


def _owned_conversation(request: HttpRequest, conversation_id: str) -> Conversation:
    return selectors.conversation_get_for_user(user=request.user, public_id=conversation_id)  # type: ignore[arg-type]


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and log it in."""
    if request.user.is_authenticated:
        return redirect("conversation-list")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_create(username=form.cleaned_data["username"], password=form.cleaned_data["password1"])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("conversation-list")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    """List the user's conversations."""
    conversations = selectors.conversation_list_for_user(user=request.user)  # type: ignore[arg-type]
    return render(request, "conversations/list.html", {"conversations": conversations})


@login_required
@require_GET
def conversation_new(request: HttpRequest) -> HttpResponse:
    """Show an empty chat view; the first prompt creates the conversation (titled from it) through the API."""
    return render(request, "conversations/detail.html", _chat_context(request, None))


@login_required
@require_GET
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """Show the chat view: messages in order, the composer, the Talk slot."""
    conversation = _owned_conversation(request, conversation_id)
    return render(request, "conversations/detail.html", _chat_context(request, conversation))


MESSAGES_SHOWN = 200  # the chat view shows the latest messages; `?all=1` shows every one


def _messages_context(request: HttpRequest, conversation: Conversation | None) -> dict[str, object]:
    """Return the latest messages of a conversation (oldest first), or all of them when asked."""
    if conversation is None:
        return {"conversation": None, "messages_list": [], "messages_hidden": 0}
    messages = selectors.message_list(conversation=conversation)
    total = messages.count()
    hidden = 0 if request.GET.get("all") == "1" else max(total - MESSAGES_SHOWN, 0)
    return {"conversation": conversation, "messages_list": messages[hidden:], "messages_hidden": hidden}


def _chat_context(request: HttpRequest, conversation: Conversation | None) -> dict[str, object]:
    return {
        **_messages_context(request, conversation),
        "conversations": selectors.conversation_list_for_user(user=request.user)[:50],  # type: ignore[arg-type]
        "prompt_max_chars": settings.GENERATE_MAX_PROMPT_CHARS,
        # How long the Talk page tries to resume a dropped call (static/js/talk/reconnect.js).
        "live_reconnect_window_seconds": settings.LIVE_RECONNECT_WINDOW_SECONDS,
        # Whether a call may go straight from the page to Gemini (static/js/talk/direct.js, docs/live-direct.md).
        "live_direct_mode": "allowed" if talk_settings.direct_allowed() else "off",
        # Rendered into the page (json_script) so a call started at once already uses them (talk/settings.js).
        "talk_settings": {
            "settings": selectors.talk_settings_for_user(user=request.user),  # type: ignore[arg-type]
            "choices": talk_settings.choices(),
        },
    }


@login_required
@require_GET
def conversation_messages(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """Render just the message list, so the chat view can refresh it after a streamed reply."""
    conversation = _owned_conversation(request, conversation_id)
    return render(request, "conversations/_messages.html", _messages_context(request, conversation))


@login_required
@require_POST
def conversation_rename(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """Rename a conversation, then go back where the form was."""
    conversation = _owned_conversation(request, conversation_id)
    form = ConversationRenameForm(request.POST)
    if form.is_valid():
        services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
        flash.success(request, "Conversation renamed.")
    else:
        flash.error(request, "Title: " + " ".join(str(error) for error in form.errors.get("title", ["invalid."])))
    return redirect(_next_url(request, conversation))


@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """Delete a conversation and everything in it."""
    conversation = _owned_conversation(request, conversation_id)
    title = str(conversation)
    services.conversation_delete(conversation=conversation)
    flash.success(request, f"Deleted “{title}”.")
    return redirect("conversation-list")


def _next_url(request: HttpRequest, conversation: Conversation) -> str:
    if request.POST.get("next") == "list":
        return reverse("conversation-list")
    return reverse("conversation-detail", kwargs={"conversation_id": conversation.public_id})
