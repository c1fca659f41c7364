"""Writes: conversations and messages. Views, the API, the admin and the live bridge all come through here."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from live import talk_settings
from usage import services as usage_services

from . import events, titles
from .audio import WavAudio
from .models import Conversation, Message, TalkPreferences, User

if TYPE_CHECKING:
    from .transfer import ConversationExport

logger = logging.getLogger(__name__)

TITLE_MAX_CHARS = 200
TITLE_FROM_PROMPT_CHARS = 60
AUDIO_PURGE_BATCH = 500


def conversation_title_from_prompt(prompt: str) -> str:
    """Make a short conversation title from the first words of a prompt."""
    words = re.sub(r"\s+", " ", prompt).strip()
    if len(words) <= TITLE_FROM_PROMPT_CHARS:
        return words
    cut = words[:TITLE_FROM_PROMPT_CHARS].rsplit(" ", 1)[0] or words[:TITLE_FROM_PROMPT_CHARS]
    return cut.rstrip(" ,.;:") + "…"


@transaction.atomic
def user_create(*, username: str, password: str, email: str = "") -> User:
    """Create an active user with a hashed password (sign-up page)."""
    user = User(username=username, email=email)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def conversation_create(
    *,
    owner: User,
    title: str = "",
    kind: Conversation.Kind | str = Conversation.Kind.REST,
    public_id: str | None = None,
    created_at: dt.datetime | None = None,
) -> Conversation:
    """Create an empty conversation; `kind` is where it started (a live session creates a `live` one).

    `public_id` and `created_at` are for an imported conversation (``conversation_import``), which keeps its own.
    """
    conversation = Conversation(owner=owner, title=title.strip(), kind=kind)
    if public_id:
        conversation.public_id = public_id
    if created_at is not None:
        conversation.created_at = conversation.updated_at = created_at
    conversation.full_clean()
    conversation.save()
    return conversation


@transaction.atomic
def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    """Give a conversation a new title."""
    conversation.title = title.strip()
    conversation.updated_at = timezone.now()
    conversation.full_clean()
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def _delete_files_on_commit(names: list[str]) -> None:
    """Delete stored audio once the rows are gone for good (a rolled-back delete keeps its files)."""
    if not names:
        return

    def delete() -> None:
        storage = Message._meta.get_field("audio").storage  # type: ignore[attr-defined]
        for name in names:
            try:
                storage.delete(name)
            except Exception:
                # A file that cannot be removed must not undo the delete the user asked for.
                logger.exception("could not delete audio file %s", name)

    transaction.on_commit(delete)


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation, its messages and their audio files."""
    names = [str(name) for name in conversation.messages.exclude(audio="").values_list("audio", flat=True) if name]
    conversation.delete()
    _delete_files_on_commit(names)


def conversation_derive_kind(*, conversation: Conversation) -> str:
    """Work out a conversation's kind from its messages: rest, live, or hybrid when it has both."""
    types = set(conversation.messages.values_list("message_type", flat=True).distinct())
    if not types:
        return conversation.kind  # an empty conversation keeps the kind it was created with
    if types == {Message.MessageType.REST}:
        return Conversation.Kind.REST
    if types == {Message.MessageType.LIVE}:
        return Conversation.Kind.LIVE
    return Conversation.Kind.HYBRID


@transaction.atomic
def conversation_refresh(*, conversation: Conversation, touch: dt.datetime | None = None) -> Conversation:
    """Re-derive a conversation's kind and, with `touch`, move its `updated_at` forward."""
    fields = []
    kind = conversation_derive_kind(conversation=conversation)
    if kind != conversation.kind:
        conversation.kind = kind
        fields.append("kind")
    if touch is not None and touch > conversation.updated_at:
        conversation.updated_at = touch
        fields.append("updated_at")
    if fields:
        conversation.save(update_fields=fields)
    return conversation


@transaction.atomic
def message_create(
    *,
    conversation: Conversation,
    role: Message.Role | str,
    message_type: Message.MessageType | str = Message.MessageType.REST,
    text: str = "",
    audio: WavAudio | None = None,
    input_transcription: str = "",
    output_transcription: str = "",
    live_config: dict[str, Any] | None = None,
    tool_data: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    interrupted: bool = False,
    created_at: dt.datetime | None = None,
    public_id: str | None = None,
    model: str = "",
    count_usage: bool = True,
) -> Message:
    """Save one message (typed or live, any role), its audio as a WAV file, and update the conversation.

    Every stored message is counted here, in the same transaction, in its owner's usage of the day (``usage``):
    its tokens (``usage``) and audio seconds, for ``model`` (default: the live config's model).
    The owner's open /live sockets hear of it (``message_saved``) once the transaction commits.
    """
    message = Message(
        conversation=conversation,
        role=role,
        message_type=message_type,
        text=text,
        input_transcription=input_transcription,
        output_transcription=output_transcription,
        live_config=live_config or {},
        tool_data=tool_data or {},
        usage=usage or {},
        interrupted=interrupted,
        created_at=created_at or timezone.now(),
    )
    if public_id:
        message.public_id = public_id
    if audio is not None:
        message.audio_duration = round(audio.duration, 3)
        message.audio_mime_type = audio.mime_type
    # The conversation is an instance the caller loaded (for its owner): checking it exists would cost a query.
    message.full_clean(exclude=["audio", "conversation"])
    if audio is not None:
        # Stored before the lock below is taken, so a slow upload (S3) never holds up other writers.
        # The key (audio/{user}/{conversation}/{timestamp}_{message}.wav) comes from the model's upload_to.
        message.audio.save("audio.wav", ContentFile(audio.data), save=False)
    try:
        # Lock the conversation so concurrent writers (REST and a live session) derive its kind in turn.
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        message.save()
        conversation_refresh(conversation=locked, touch=message.created_at)
        if count_usage:  # not for a message that was spent elsewhere (an import)
            usage_services.usage_record_message(
                user_id=locked.owner_id,
                model=model or str(message.live_config.get("model") or ""),
                role=message.role,
                usage=message.usage,
                audio_seconds=message.audio_duration,
            )
    except Exception:
        if message.audio and message.audio.name:
            message.audio.storage.delete(message.audio.name)
        raise
    # Keep the caller's instance in step with what was saved.
    conversation.kind, conversation.updated_at = locked.kind, locked.updated_at
    events.message_saved_on_commit(message=message)
    if message.role == Message.Role.MODEL and not (
        Message.objects.filter(conversation_id=conversation.pk, role=Message.Role.MODEL).exclude(pk=message.pk).exists()
    ):
        titles.title_schedule(conversation_id=conversation.pk)  # the first reply: name the conversation
    return message


@transaction.atomic
def message_update(
    *,
    message: Message,
    text: str | None = None,
    input_transcription: str | None = None,
    output_transcription: str | None = None,
    usage: dict[str, Any] | None = None,
    interrupted: bool | None = None,
) -> Message:
    """Change what is known about a saved message (e.g. a transcription that arrived late)."""
    fields = {
        "text": text,
        "input_transcription": input_transcription,
        "output_transcription": output_transcription,
        "usage": usage,
        "interrupted": interrupted,
    }
    changed = [name for name, value in fields.items() if value is not None]
    for name in changed:
        setattr(message, name, fields[name])
    if changed:
        message.full_clean(exclude=["audio"])
        message.save(update_fields=changed)
    return message


@transaction.atomic
def message_delete(*, message: Message) -> None:
    """Delete a message and its audio file, and re-derive its conversation's kind."""
    conversation = message.conversation
    names = [message.audio.name] if message.audio and message.audio.name else []
    message.delete()
    _delete_files_on_commit(names)
    conversation_refresh(conversation=conversation)


@dataclass(frozen=True)
class AudioPurge:
    """What ``message_audio_purge`` removed (or, on a dry run, would remove)."""

    messages: int
    audio_seconds: float
    cutoff: dt.datetime


def message_audio_purge(
    *, older_than: dt.timedelta, dry_run: bool = False, batch_size: int = AUDIO_PURGE_BATCH
) -> AudioPurge:
    """Delete the audio files of messages created before now - ``older_than``; keep the messages and transcripts."""
    cutoff = timezone.now() - older_than
    stale = Message.objects.filter(created_at__lt=cutoff).exclude(audio="")
    if dry_run:
        totals = stale.aggregate(count=Count("id"), seconds=Sum("audio_duration"))
        return AudioPurge(totals["count"], round(totals["seconds"] or 0.0, 3), cutoff)
    purged, seconds = 0, 0.0
    while True:
        # In batches, each its own transaction: a large purge neither holds locks long nor loads every row.
        with transaction.atomic():
            batch = list(
                stale.select_for_update(skip_locked=True).values_list("pk", "audio", "audio_duration")[:batch_size]
            )
            if not batch:
                break
            Message.objects.filter(pk__in=[pk for pk, _, _ in batch]).update(audio="")
            _delete_files_on_commit([name for _, name, _ in batch if name])
        purged += len(batch)
        seconds += sum(duration or 0.0 for _, _, duration in batch)
    return AudioPurge(purged, round(seconds, 3), cutoff)


class ImportConflictError(Exception):
    """An export whose ids belong to other people here, under both its own ids and the ones an import derives."""


@dataclass(frozen=True)
class ImportResult:
    """What ``conversation_import`` did."""

    conversation: Conversation
    created: bool  # the conversation is new (else the export was imported into it before)
    messages_created: int
    messages_kept: int  # already there from an earlier import: left as they are
    ids_derived: bool  # the export's ids belong to someone else here: the copy has ids of its own


def import_id(public_id: str, owner: User) -> str:
    """The id an imported conversation or message takes when its own belongs to someone else here.

    Derived from the original id and the importing user, so importing the same export again finds the same copy.
    """
    prefix = public_id.split("_", 1)[0]
    return f"{prefix}_{hashlib.sha256(f'apsara-import:{owner.pk}:{public_id}'.encode()).hexdigest()[:24]}"


def conversation_import(*, owner: User, export: ConversationExport) -> ImportResult:
    """Store a checked export (``conversations.transfer.export_read``) as `owner`'s conversation, idempotently.

    Ids decide what is already there: the export's own ids, or, where those belong to someone else (the original
    still on this instance, another person's import), ids derived from them and the owner (``import_id``). Nothing
    of anyone else's is touched. Messages already stored are kept as they are; missing ones are created through
    ``message_create`` (audio to the audio storage, local or S3). All or nothing: on any failure the rows roll back
    and the audio files written so far are deleted.
    """
    stored: list[str] = []
    try:
        with transaction.atomic():
            return _conversation_import(owner=owner, export=export, stored=stored)
    except BaseException:
        storage = Message._meta.get_field("audio").storage  # type: ignore[attr-defined]
        for name in stored:
            with contextlib.suppress(Exception):
                storage.delete(name)
        raise


def _conversation_import(*, owner: User, export: ConversationExport, stored: list[str]) -> ImportResult:
    # One import per person at a time: two runs of the same export would otherwise both find nothing and both write.
    User.objects.select_for_update().filter(pk=owner.pk).first()
    candidates = [export.public_id, import_id(export.public_id, owner)]
    found = {c.public_id: c for c in Conversation.objects.filter(public_id__in=candidates)}
    conversation = next((found[i] for i in candidates if i in found and found[i].owner_id == owner.pk), None)
    created = conversation is None
    if conversation is None:
        free = next((i for i in candidates if i not in found), None)
        if free is None:
            raise ImportConflictError(
                f"Conversation {export.public_id} and the id derived for this user both belong to other users."
            )
        conversation = conversation_create(
            owner=owner, title=export.title, kind=export.kind, public_id=free, created_at=export.created_at
        )
    ids = {m.public_id: [m.public_id, import_id(m.public_id, owner)] for m in export.messages}
    existing = dict(
        Message.objects.filter(public_id__in=[i for pair in ids.values() for i in pair]).values_list(
            "public_id", "conversation_id"
        )
    )
    made = kept = 0
    derived = conversation.public_id != export.public_id
    for item in export.messages:
        if any(existing.get(i) == conversation.pk for i in ids[item.public_id]):
            kept += 1
            continue
        free = next((i for i in ids[item.public_id] if i not in existing), None)
        if free is None:
            raise ImportConflictError(
                f"Message {item.public_id} and the id derived for this user both belong to other conversations."
            )
        derived = derived or free != item.public_id
        message = message_create(
            conversation=conversation,
            count_usage=False,  # spent when and where it was said, not by the person importing it today
            role=item.role,
            message_type=item.message_type,
            text=item.text,
            audio=item.audio,
            input_transcription=item.input_transcription,
            output_transcription=item.output_transcription,
            live_config=item.live_config,
            tool_data=item.tool_data,
            usage=item.usage,
            interrupted=item.interrupted,
            created_at=item.created_at,
            public_id=free,
        )
        if message.audio and message.audio.name:
            stored.append(message.audio.name)
        made += 1
    if created:
        conversation_refresh(conversation=conversation, touch=export.updated_at)
    return ImportResult(conversation, created, made, kept, derived)


def talk_settings_save(*, user: User, data: object) -> talk_settings.TalkSettings:
    """Check and store a person's Talk settings (missing ones take their defaults); ValidationError names the field."""
    chosen = talk_settings.validate(data)
    TalkPreferences.objects.update_or_create(user=user, defaults={"settings": dict(chosen)})
    return chosen
