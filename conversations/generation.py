"""Streamed text generation: history + prompt to Gemini, reply streamed as server-sent events, both saved.

The SSE contract (events ``meta``, ``chunk``, ``done``, ``error``) is documented in docs/api.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from google.genai import types

from gemini.client import get_client
from gemini.errors import Cause, classify
from usage import quotas as usage_quotas
from usage import services as usage_services

from . import selectors, services
from .models import Conversation, Message, User, new_message_id
from .serializers import ConversationSerializer, MessageSerializer

logger = logging.getLogger(__name__)

BLOCKING_FINISH_REASONS = {
    types.FinishReason.SAFETY,
    types.FinishReason.RECITATION,
    types.FinishReason.BLOCKLIST,
    types.FinishReason.PROHIBITED_CONTENT,
    types.FinishReason.SPII,
    types.FinishReason.LANGUAGE,
}


class PromptIdTaken(Exception):
    """The client's ``messageId`` names a message that is not this prompt (another text, conversation or user)."""


class GenerationFailed(Exception):
    """Gemini did not finish the reply; `code` is one of docs/api.md's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# How a REST reply's error event words each cause gemini.errors.classify finds (the live bridge words the same causes
# as session_error codes). Failures with no cause here are bugs or refused configurations: INTERNAL_ERROR.
_UNREACHED = frozenset({Cause.TLS, Cause.REFUSED, Cause.TIMEOUT, Cause.CLOSED})
_ANSWERED = frozenset(Cause) - _UNREACHED - {Cause.QUOTA, Cause.INTERNAL, Cause.CLIENT_CONFIG, Cause.UNKNOWN}


def generation_error(exc: BaseException) -> GenerationFailed:
    """Classify an exception from the SDK (with gemini.errors) as an SSE error code with a message a person can read."""
    if isinstance(exc, GenerationFailed):
        return exc
    failure = classify(exc)
    cause, status = failure.cause, failure.status
    said = f"{f' ({status})' if status is not None else ''}: {failure.detail or 'no reason given'}"
    if cause is Cause.QUOTA:
        return GenerationFailed("GEMINI_RATE_LIMITED", f"Gemini is rate limiting requests{said}")
    if cause is Cause.INTERNAL or (cause is Cause.CLOSED and status is not None):
        return GenerationFailed("GEMINI_UNAVAILABLE", f"Gemini failed{said}")
    if cause in _UNREACHED:
        return GenerationFailed("GEMINI_UNAVAILABLE", f"Gemini could not be reached: {exc or type(exc).__name__}")
    if cause in _ANSWERED or (cause is Cause.UNKNOWN and status is not None):
        return GenerationFailed("GEMINI_ERROR", f"Gemini refused the request{said}")
    return GenerationFailed("INTERNAL_ERROR", "The reply failed on the server.")


KEEPALIVE = b": keep-alive\n\n"


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    """Frame one server-sent event (one JSON `data` line; JSON never contains a raw newline)."""
    # U+2028/U+2029 are line terminators to JavaScript's regular expressions (docs/api.md's reader uses one): escaped,
    # as DRF's JSONRenderer does, a prompt holding them still arrives as one line of JSON.
    line = json.dumps(data, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"event: {event}\ndata: {line}\n\n".encode()


@dataclass
class Generation:
    """A prompt that has been saved and is ready to be sent, with everything the stream needs."""

    conversation: Conversation
    conversation_created: bool
    user_message: Message
    model: str
    contents: list[dict[str, Any]]
    config: types.GenerateContentConfig | None
    model_message_id: str = field(default_factory=new_message_id)


@transaction.atomic
def generation_prepare(
    *,
    user: User,
    prompt: str,
    conversation: Conversation | None = None,
    model: str | None = None,
    temperature: float | None = None,
    system_instruction: str | None = None,
    message_id: str | None = None,
    history_limit: int = selectors.HISTORY_MESSAGES,
) -> Generation:
    """Save the user's prompt (creating a conversation titled from it if none is given) and build the request.

    With ``message_id`` (the client's idempotency key) a prompt already saved under that id is asked again, not
    saved again: Retry after a failed reply. The id naming anything else raises ``PromptIdTaken``.
    The person's token quota used up, nothing is saved and ``usage.quotas.QuotaExceeded`` is raised; otherwise the
    request is counted in their usage of the day.
    """
    usage_quotas.quota_check(user=user, live=False)
    model_name = (model or settings.GEMINI_TEXT_MODEL).removeprefix("models/")
    user_message = _saved_prompt(user=user, prompt=prompt, conversation=conversation, message_id=message_id)
    created = False
    if user_message is not None:
        conversation = user_message.conversation
    else:
        created = conversation is None
        if conversation is None:
            conversation = services.conversation_create(
                owner=user, title=services.conversation_title_from_prompt(prompt), kind=Conversation.Kind.REST
            )
        try:
            with transaction.atomic():  # a savepoint: a lost race on the id leaves the outer transaction usable
                user_message = services.message_create(
                    conversation=conversation,
                    role=Message.Role.USER,
                    message_type=Message.MessageType.REST,
                    text=prompt,
                    public_id=message_id,
                )
        except IntegrityError:
            # The same Retry arrived twice at once: the other request saved it first.
            raise PromptIdTaken("messageId is being used by another request; try again.") from None
    history = selectors.conversation_history_turns(
        conversation=conversation, limit=max(history_limit - 1, 0), before=user_message
    )
    contents = [*history, {"role": "user", "parts": [{"text": prompt}]}]
    config_kwargs: dict[str, Any] = {}
    if temperature is not None:
        config_kwargs["temperature"] = temperature
    if system_instruction:
        config_kwargs["system_instruction"] = system_instruction
    usage_services.usage_add(user_id=user.pk, model=model_name, requests=1)
    return Generation(
        conversation=conversation,
        conversation_created=created,
        user_message=user_message,
        model=model_name,
        contents=contents,
        config=types.GenerateContentConfig(**config_kwargs) if config_kwargs else None,
    )


def _saved_prompt(
    *, user: User, prompt: str, conversation: Conversation | None, message_id: str | None
) -> Message | None:
    """The prompt already saved under the client's ``message_id`` (None: not saved yet, or no id)."""
    if not message_id:
        return None
    existing = Message.objects.select_related("conversation").filter(public_id=message_id).first()
    if existing is None:
        return None
    same = (
        existing.conversation.owner_id == user.pk
        and (conversation is None or existing.conversation_id == conversation.pk)
        and existing.role == Message.Role.USER
        and existing.message_type == Message.MessageType.REST
        and existing.text == prompt
    )
    if not same:
        raise PromptIdTaken("messageId is already the id of another message.")
    return existing


def _chunk_text(chunk: types.GenerateContentResponse) -> str:
    """Return the visible text of a streamed chunk (thoughts and non-text parts left out)."""
    if not chunk.candidates or not chunk.candidates[0].content or not chunk.candidates[0].content.parts:
        return ""
    return "".join(part.text for part in chunk.candidates[0].content.parts if part.text and not part.thought)


def _check_blocked(chunk: types.GenerateContentResponse) -> None:
    """Raise if Gemini stopped (or refused) the reply for safety or similar reasons."""
    feedback = chunk.prompt_feedback
    if feedback is not None and feedback.block_reason:
        raise GenerationFailed("GEMINI_BLOCKED", f"Gemini blocked the prompt ({feedback.block_reason}).")
    if chunk.candidates:
        reason = chunk.candidates[0].finish_reason
        if reason in BLOCKING_FINISH_REASONS:
            raise GenerationFailed("GEMINI_BLOCKED", f"Gemini stopped the reply ({reason}).")


async def gemini_text_stream(
    *, model: str, contents: list[dict[str, Any]], config: types.GenerateContentConfig | None, usage: dict[str, Any]
) -> AsyncGenerator[str, None]:
    """Yield the reply's text as Gemini streams it; fill `usage` with the token counts it reports."""
    client = await sync_to_async(get_client, thread_sensitive=False)()  # may start the simulator
    try:
        stream = await client.aio.models.generate_content_stream(
            model=model,
            contents=contents,  # type: ignore[arg-type]
            config=config,
        )
        async for chunk in stream:
            if chunk.usage_metadata is not None:
                usage.clear()
                usage.update(chunk.usage_metadata.model_dump(mode="json", exclude_none=True, by_alias=True))
            text = _chunk_text(chunk)
            if text:
                yield text
            _check_blocked(chunk)
    finally:
        await client.aio.aclose()


async def with_keepalive(texts: AsyncIterator[str], *, interval: float) -> AsyncGenerator[str | None, None]:
    """Yield what `texts` yields, and None each time `interval` seconds pass without anything (e.g. while thinking)."""
    pending: asyncio.Future[str] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(texts))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            finished, pending = pending, None
            try:
                text = finished.result()
            except StopAsyncIteration:
                return
            yield text
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


def _save_model_message(generation: Generation, text: str, usage: dict[str, Any], interrupted: bool) -> dict:
    message = services.message_create(
        conversation=generation.conversation,
        role=Message.Role.MODEL,
        message_type=Message.MessageType.REST,
        text=text,
        usage=usage,
        interrupted=interrupted,
        public_id=generation.model_message_id,
        model=generation.model,
    )
    return MessageSerializer(message).data


async def generation_stream(generation: Generation) -> AsyncIterator[bytes]:
    """Stream the reply as SSE events and save it when it ends, however it ends."""
    meta = await sync_to_async(_meta)(generation)
    yield sse_event("meta", meta)
    parts: list[str] = []
    usage: dict[str, Any] = {}
    failure: GenerationFailed | None = None
    save = sync_to_async(_save_model_message)
    texts = gemini_text_stream(
        model=generation.model, contents=generation.contents, config=generation.config, usage=usage
    )
    loop = asyncio.get_running_loop()
    idle_limit = settings.GENERATE_IDLE_TIMEOUT_SECONDS
    heard_at = loop.time()
    try:
        ticking = with_keepalive(texts, interval=settings.GENERATE_KEEPALIVE_SECONDS)
        # Closed in this order: the ticker cancels its pending read before the SDK stream is closed.
        async with contextlib.aclosing(texts), contextlib.aclosing(ticking):
            async for text in ticking:
                if text is None:
                    if loop.time() - heard_at > idle_limit:
                        raise GenerationFailed("GEMINI_TIMEOUT", f"Gemini sent nothing for {idle_limit:g} seconds.")
                    # An SSE comment: keeps proxies from closing a stream that waits for a slow first token.
                    yield KEEPALIVE
                    continue
                heard_at = loop.time()
                parts.append(text)
                yield sse_event("chunk", {"text": text})
    except (asyncio.CancelledError, GeneratorExit):
        # The client went away mid-reply (cancelled while waiting for Gemini, or closed while sending):
        # keep what arrived, then let the cancellation through.
        if parts:
            await asyncio.shield(save(generation, "".join(parts), usage, True))
        raise
    except Exception as exc:
        failure = generation_error(exc)
        if failure.code == "INTERNAL_ERROR":
            logger.exception("generation failed in conversation %s", generation.conversation.public_id)
        else:
            logger.warning("generation failed in %s: %s", generation.conversation.public_id, failure.message)
    if failure is None and not "".join(parts).strip():
        # Gemini finished without a word (it happens): nothing to save, and the client offers to ask again.
        logger.warning("empty reply in conversation %s", generation.conversation.public_id)
        failure = GenerationFailed("EMPTY_REPLY", "Gemini sent no answer.")
        parts = []
    try:
        saved = await save(generation, "".join(parts), usage, failure is not None) if parts or not failure else None
    except Exception:
        logger.exception("could not save the reply in conversation %s", generation.conversation.public_id)
        failure = GenerationFailed("INTERNAL_ERROR", "The reply could not be saved.")
        yield sse_event("error", {"code": failure.code, "message": failure.message, "partialMessage": None})
        return
    if failure is None:
        yield sse_event("done", {"message": saved})
    else:
        yield sse_event("error", {"code": failure.code, "message": failure.message, "partialMessage": saved})


def _meta(generation: Generation) -> dict[str, Any]:
    generation.conversation.refresh_from_db()
    return {
        "conversationId": generation.conversation.public_id,
        "conversationCreated": generation.conversation_created,
        "conversation": ConversationSerializer(generation.conversation).data,
        "userMessage": MessageSerializer(generation.user_message).data,
        "modelMessageId": generation.model_message_id,
        "model": generation.model,
    }
