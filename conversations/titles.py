"""Conversation titles made from the first exchange, by the text model, once, off the request path.

A conversation starts with a placeholder title: empty (a live call) or the first words of the first prompt (typed
chat). When its first model reply is stored, ``title_schedule`` asks Gemini, in a background thread after the
commit, for a short plain-text title; if that fails the first words of what the person said are used. A title the
person set is never replaced: the new title is written only if the title is still the placeholder it was.
"""

from __future__ import annotations

import html
import logging
import re
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils.html import strip_tags
from google.genai import types

from gemini.client import get_client

from .markdown import markdown_render
from .models import Conversation, Message

logger = logging.getLogger(__name__)

TITLE_MAX_WORDS = 8
TITLE_MAX_CHARS = 80
EXCHANGE_CHARS = 1500  # of each side of the first exchange sent to the model: enough to name it
TITLE_INSTRUCTION = (
    "You write the title of a chat conversation. Reply with the title only: at most six words, plain text, "
    "no quotes, no Markdown, no final punctuation."
)

# Two threads: titles are small and rare; they must never queue behind anything else or hold up a request.
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="titles")


def plain_title(text: str) -> str:
    """Text as a one-line plain title: Markdown rendered and its tags dropped, quotes and end punctuation trimmed."""
    plain = html.unescape(strip_tags(markdown_render(text)))
    plain = re.sub(r"\s+", " ", plain).strip().strip("\"'\u201c\u201d\u2018\u2019`*_#").strip()
    plain = plain.removeprefix("Title:").strip().rstrip(" .;:,")
    words = plain.split(" ")
    if len(words) > TITLE_MAX_WORDS:
        plain = " ".join(words[:TITLE_MAX_WORDS]) + "…"
    if len(plain) > TITLE_MAX_CHARS:
        plain = plain[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return plain


def placeholder_titles(first_user_text: str) -> set[str]:
    """The titles the app gives a conversation before it has a real one (never a title the person chose)."""
    from .services import conversation_title_from_prompt  # services imports this module

    return {"", conversation_title_from_prompt(first_user_text)} if first_user_text else {""}


def _words_of(message: Message | None) -> str:
    if message is None:
        return ""
    return message.text or message.input_transcription or message.output_transcription


def title_schedule(*, conversation_id: int) -> None:
    """After the current transaction commits, title the conversation in the background (see the module)."""
    if not settings.CONVERSATION_TITLES:
        return
    transaction.on_commit(lambda: _executor.submit(_title_in_thread, conversation_id))


def _title_in_thread(conversation_id: int) -> None:
    close_old_connections()
    try:
        conversation_title_generate(conversation_id=conversation_id)
    except Exception:
        logger.exception("could not title conversation %s", conversation_id)
    finally:
        connection.close()  # this thread's own: not kept open between titles (it may wait long for the next)


def conversation_title_generate(*, conversation_id: int) -> str | None:
    """Title a conversation from its first exchange (the model, else the person's first words); return the title
    written, or None when it already has one (the person's, or an earlier generated one)."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return None
    messages = conversation.messages.exclude(role=Message.Role.TOOL)
    first_user = messages.filter(role=Message.Role.USER).first()
    first_model = messages.filter(role=Message.Role.MODEL).first()
    user_words = _words_of(first_user)
    if conversation.title not in placeholder_titles(user_words) or first_model is None:
        return None
    title = ""
    try:
        title = plain_title(title_from_model(user_words, _words_of(first_model)))
    except Exception as exc:  # any failure of Gemini: the fallback below is good enough
        logger.warning("title generation failed for conversation %s: %s", conversation.public_id, exc)
    if not title:
        title = plain_title(user_words) or "Voice conversation"
    # Only over the placeholder it had: a rename while Gemini was asked wins.
    updated = Conversation.objects.filter(pk=conversation_id, title=conversation.title).update(title=title)
    return title if updated else None


def title_from_model(user_words: str, model_words: str) -> str:
    """Ask the text model (gemini.client) for a title of this first exchange."""
    exchange = f"User: {user_words[:EXCHANGE_CHARS]}\nAssistant: {model_words[:EXCHANGE_CHARS]}"
    client = get_client()
    try:
        response = client.models.generate_content(
            model=settings.GEMINI_TEXT_MODEL,
            contents=[{"role": "user", "parts": [{"text": exchange}]}],  # type: ignore[arg-type]
            config=types.GenerateContentConfig(
                system_instruction=TITLE_INSTRUCTION, max_output_tokens=32, temperature=0.2
            ),
        )
    finally:
        client.close()
    return response.text or ""
