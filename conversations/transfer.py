"""A conversation as a directory, and back: ``manage.py conversation_export`` and ``conversation_import``.

An export is a directory holding ``conversation.json`` (the manifest) and ``audio/<message id>.wav``, one file per
message with audio. The manifest is the JSON API's shape (``ConversationSerializer``, ``MessageSerializer``), so
whoever gets the archive reads what the API shows, plus per message an ``export`` member with what the API shape
does not carry: the audio file's name inside the export (the API's ``url`` only works on the instance it came from)
and a tool message's ``toolData``::

    {"format": "apsara.conversation", "version": 1, "exportedAt": "…",
     "conversation": {…ConversationSerializer…},
     "messages": [{…MessageSerializer…, "export": {"audioFile": "audio/msg_….wav" | null, "toolData": {…}}}]}

Reading an export (``export_read``) trusts nothing in it: every member is checked for its JSON type and value, the
audio files must be real WAV files at the one name their message allows (no other path is ever opened), and the
whole export is read and checked before anything is written. The write is ``services.conversation_import``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apsara.validation import find_unstorable_text, json_constant, json_float, json_int, json_nesting_exceeds

from .audio import AudioError, WavAudio, wav_read
from .models import Conversation, Message
from .selectors import message_list
from .serializers import ConversationSerializer, MessageSerializer
from .services import TITLE_MAX_CHARS

FORMAT = "apsara.conversation"
VERSION = 1
MANIFEST = "conversation.json"
AUDIO_DIR = "audio"
MANIFEST_MAX_BYTES = 64 * 1024 * 1024
AUDIO_MAX_BYTES = 256 * 1024 * 1024  # one message's recording; a live turn is minutes at most
MESSAGES_MAX = 100_000
JSON_MAX_DEPTH = 32

CONVERSATION_ID = re.compile(r"conv_[0-9a-f]{24}")
# The server's ids, and those a page chose for its direct-mode turns (conversations.serializers.LIVE_TURN_ID_PATTERN).
MESSAGE_ID = re.compile(r"msg_(?:[0-9a-f]{24}|[A-Za-z0-9_-]{22})")


class ExportError(Exception):
    """An export that cannot be written, or a directory that is not a valid export: the message says what and why."""


@dataclass(frozen=True)
class ExportedMessage:
    """One message of an export, checked: what ``services.message_create`` takes."""

    public_id: str
    role: str
    message_type: str
    text: str
    input_transcription: str
    output_transcription: str
    live_config: dict[str, Any]
    tool_data: dict[str, Any]
    usage: dict[str, Any]
    interrupted: bool
    created_at: dt.datetime
    audio: WavAudio | None


@dataclass(frozen=True)
class ConversationExport:
    """A whole export, checked: the conversation and its messages in order, audio included."""

    public_id: str
    title: str
    kind: str
    created_at: dt.datetime
    updated_at: dt.datetime
    messages: list[ExportedMessage]


def audio_file_name(public_id: str) -> str:
    """Name a message's audio inside an export (the only name ``export_read`` accepts for it)."""
    return f"{AUDIO_DIR}/{public_id}.wav"


# EXPORT
# ------------------------------------------------------------------------------
def manifest_build(conversation: Conversation) -> dict[str, Any]:
    """Describe a conversation and its messages in the API's JSON shape, plus each message's ``export`` member."""
    messages = []
    for message in message_list(conversation=conversation).select_related("conversation"):
        data = dict(MessageSerializer(message).data)
        data["export"] = {
            "audioFile": audio_file_name(message.public_id) if message.audio else None,
            "toolData": message.tool_data or {},
        }
        messages.append(data)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exportedAt": timezone.now().isoformat(),
        "conversation": dict(ConversationSerializer(conversation).data),
        "messages": messages,
    }


def export_write(*, conversation: Conversation, directory: Path, force: bool = False) -> dict[str, Any]:
    """Write the conversation's manifest and audio files (read from the audio storage, local or S3) to `directory`.

    An existing directory that is not empty is refused unless `force` (then the export's own files are overwritten,
    nothing else is removed). The manifest is written last, so an export cut short has none and cannot be imported.
    """
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory} exists and is not a directory; choose another --out.")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise ExportError(f"{directory} is not empty; choose an empty or new directory, or add --force to overwrite.")
    manifest = manifest_build(conversation)
    audio_dir = directory / AUDIO_DIR
    audio_dir.mkdir(parents=True, exist_ok=True)
    for message in message_list(conversation=conversation).exclude(audio=""):
        name = message.audio.name or ""
        target = directory / audio_file_name(message.public_id)
        try:
            with message.audio.storage.open(name, "rb") as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
        except FileNotFoundError:
            raise ExportError(
                f"The audio of message {message.public_id} ({name}) is missing from the audio storage; restore the "
                "file, or remove the message's audio (conversations_purge_audio) and export again."
            ) from None
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(directory / MANIFEST)
    return manifest


# IMPORT: reading and checking
# ------------------------------------------------------------------------------
def _fail(path: str, problem: str) -> ExportError:
    return ExportError(f"{MANIFEST}: {path}: {problem}")


def _member(data: dict[str, Any], key: str, path: str) -> Any:
    if key not in data:
        raise _fail(f"{path}.{key}" if path else key, "missing")
    return data[key]


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"must be an object, not {_json_type(value)}")
    return value


def _string(value: Any, path: str, *, max_length: int | None = None, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"must be a string, not {_json_type(value)}")
    if max_length is not None and len(value) > max_length:
        raise _fail(path, f"longer than {max_length} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise _fail(path, f"{value[:60]!r} is not a valid id")
    return value


def _choice(value: Any, path: str, choices: list[str]) -> str:
    text = _string(value, path)
    if text not in choices:
        raise _fail(path, f"{text[:30]!r} is not one of {', '.join(choices)}")
    return text


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"must be true or false, not {_json_type(value)}")
    return value


def _number(value: Any, path: str, *, nullable: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _fail(path, f"must be a number of at least 0, not {_json_type(value)}")
    return float(value)


def _timestamp(value: Any, path: str) -> dt.datetime:
    text = _string(value, path, max_length=40)
    try:
        parsed = parse_datetime(text)
        # A time the database cannot store in UTC (year 1 east of Greenwich, say) is as unusable as a malformed one.
        utc = parsed.astimezone(dt.UTC) if parsed is not None and not timezone.is_naive(parsed) else None
    except (ValueError, OverflowError):
        utc = None
    if utc is None:
        raise _fail(path, f"{text!r} is not an ISO 8601 date and time with a time zone")
    return utc


def _nullable(value: Any, path: str, read: Callable[[Any, str], Any]) -> Any:
    return None if value is None else read(value, path)


def _transcription(value: Any, path: str) -> str:
    return _string(_member(_object(value, path), "text", path), f"{path}.text")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _manifest_load(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise ExportError(f"{directory} is not a directory; give the directory conversation_export wrote.")
    path = directory / MANIFEST
    if path.is_symlink() or not path.is_file():
        raise ExportError(f"{path} is missing (or not a regular file); is {directory} an export?")
    if path.stat().st_size > MANIFEST_MAX_BYTES:
        raise ExportError(f"{path} is larger than {MANIFEST_MAX_BYTES // (1024 * 1024)} MiB; not an export.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ExportError(f"{path} is not UTF-8 text: {error}") from None
    if json_nesting_exceeds(text, JSON_MAX_DEPTH):
        raise ExportError(f"{path} nests deeper than {JSON_MAX_DEPTH} levels; not an export.")
    try:
        data = json.loads(text, parse_int=json_int, parse_float=json_float, parse_constant=json_constant)
    except ValueError as error:  # json.JSONDecodeError included
        raise ExportError(f"{path} is not valid JSON: {error}") from None
    found = find_unstorable_text(data)
    if found is not None:
        where, problem = found
        raise _fail(where or "(document)", problem.messages[0])
    return _object(data, "(document)")


def _audio_load(directory: Path, public_id: str) -> WavAudio:
    """Read one message's audio, at the only name it may have, refusing links and anything that is not a WAV."""
    name = audio_file_name(public_id)
    audio_dir, path = directory / AUDIO_DIR, directory / name
    try:
        if audio_dir.is_symlink():
            raise ExportError(f"{audio_dir} is a symbolic link; an export's audio directory must be a real one.")
        info = os.lstat(path)
    except FileNotFoundError:
        raise ExportError(f"{name} is missing from the export (message {public_id} has audio).") from None
    if not stat.S_ISREG(info.st_mode):
        raise ExportError(f"{name} is not a regular file (a link or a directory); refusing it.")
    if info.st_size > AUDIO_MAX_BYTES:
        raise ExportError(f"{name} is larger than {AUDIO_MAX_BYTES // (1024 * 1024)} MiB.")
    try:
        return wav_read(path.read_bytes())
    except AudioError as error:
        raise ExportError(f"{name} is not a playable WAV file ({error}).") from None


def _message_read(data: Any, path: str, *, conversation_id: str, directory: Path) -> ExportedMessage:
    item = _object(data, path)
    public_id = _string(_member(item, "id", path), f"{path}.id", pattern=MESSAGE_ID)
    if _string(_member(item, "conversationId", path), f"{path}.conversationId") != conversation_id:
        raise _fail(f"{path}.conversationId", f"is not the conversation's id ({conversation_id})")
    message_type = _choice(_member(item, "messageType", path), f"{path}.messageType", Message.MessageType.values)
    role = _choice(_member(item, "role", path), f"{path}.role", Message.Role.values)
    content = _object(_member(item, "content", path), f"{path}.content")
    text = _string(_member(content, "text", f"{path}.content"), f"{path}.content.text")

    live_path = f"{path}.liveContent"
    live = _object(_member(item, "liveContent", path), live_path)
    audio_data = _member(live, "audioData", live_path)
    if audio_data is not None:
        audio_path = f"{live_path}.audioData"
        audio_data = _object(audio_data, audio_path)
        if _string(_member(audio_data, "fileId", audio_path), f"{audio_path}.fileId") != public_id:
            raise _fail(f"{audio_path}.fileId", "is not the message's id")
        _string(_member(audio_data, "url", audio_path), f"{audio_path}.url")
        _number(_member(audio_data, "duration", audio_path), f"{audio_path}.duration", nullable=True)
        _string(_member(audio_data, "mimeType", audio_path), f"{audio_path}.mimeType")
    input_text = _nullable(
        _member(live, "inputTranscription", live_path), f"{live_path}.inputTranscription", _transcription
    )
    output_text = _nullable(
        _member(live, "outputTranscription", live_path), f"{live_path}.outputTranscription", _transcription
    )

    config_path = f"{path}.config"
    config = _object(_member(item, "config", path), config_path)
    live_config: dict[str, Any] = {}
    live_setup = _member(config, "live", config_path)
    if live_setup is not None:
        setup_path = f"{config_path}.live"
        live_setup = _object(live_setup, setup_path)
        modalities = _member(live_setup, "responseModalities", setup_path)
        if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
            raise _fail(f"{setup_path}.responseModalities", "must be an array of strings")
        model = _string(_member(live_setup, "model", setup_path), f"{setup_path}.model", max_length=200)
        session = _string(_member(live_setup, "sessionId", setup_path), f"{setup_path}.sessionId", max_length=40)
        live_config = {"model": model, "sessionId": session, "responseModalities": modalities}
    interrupted = _boolean(_member(item, "interrupted", path), f"{path}.interrupted")
    usage = _nullable(_member(item, "usage", path), f"{path}.usage", _object) or {}
    created_at = _timestamp(_member(item, "createdAt", path), f"{path}.createdAt")

    extra_path = f"{path}.export"
    extra = _object(_member(item, "export", path), extra_path)
    audio_file = _member(extra, "audioFile", extra_path)
    if audio_file is not None and audio_file != audio_file_name(public_id):
        name = _string(audio_file, f"{extra_path}.audioFile")
        raise _fail(f"{extra_path}.audioFile", f"{name[:80]!r} is not {audio_file_name(public_id)!r}")
    if (audio_file is None) != (audio_data is None):
        raise _fail(f"{extra_path}.audioFile", "must be given exactly when liveContent.audioData is")
    tool_data = _object(_member(extra, "toolData", extra_path), f"{extra_path}.toolData")
    return ExportedMessage(
        public_id=public_id,
        role=role,
        message_type=message_type,
        text=text,
        input_transcription=input_text or "",
        output_transcription=output_text or "",
        live_config=live_config,
        tool_data=tool_data,
        usage=usage,
        interrupted=interrupted,
        created_at=created_at,
        audio=_audio_load(directory, public_id) if audio_file is not None else None,
    )


def export_read(directory: Path) -> ConversationExport:
    """Read and check a whole export (manifest and audio); ExportError names the first thing wrong in it."""
    data = _manifest_load(directory)
    if data.get("format") != FORMAT:
        raise _fail("format", f"must be {FORMAT!r}; is {directory} a conversation export?")
    if type(data.get("version")) is not int or data.get("version") != VERSION:
        raise _fail("version", f"must be {VERSION} (this version of Apsara reads version {VERSION} exports only)")
    _timestamp(_member(data, "exportedAt", ""), "exportedAt")
    conversation = _object(_member(data, "conversation", ""), "conversation")
    public_id = _string(_member(conversation, "id", "conversation"), "conversation.id", pattern=CONVERSATION_ID)
    title = _string(_member(conversation, "title", "conversation"), "conversation.title", max_length=TITLE_MAX_CHARS)
    kind = _choice(_member(conversation, "kind", "conversation"), "conversation.kind", Conversation.Kind.values)
    count = _member(conversation, "messageCount", "conversation")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise _fail("conversation.messageCount", f"must be a whole number of at least 0, not {_json_type(count)}")
    created_at = _timestamp(_member(conversation, "createdAt", "conversation"), "conversation.createdAt")
    updated_at = _timestamp(_member(conversation, "updatedAt", "conversation"), "conversation.updatedAt")
    items = _member(data, "messages", "")
    if not isinstance(items, list):
        raise _fail("messages", f"must be an array, not {_json_type(items)}")
    if len(items) > MESSAGES_MAX:
        raise _fail("messages", f"more than {MESSAGES_MAX} messages")
    if len(items) != count:
        raise _fail("conversation.messageCount", f"is {count} but there are {len(items)} messages")
    messages = [
        _message_read(item, f"messages.{index}", conversation_id=public_id, directory=directory)
        for index, item in enumerate(items)
    ]
    seen: set[str] = set()
    for index, message in enumerate(messages):
        if message.public_id in seen:
            raise _fail(f"messages.{index}.id", f"{message.public_id} appears twice")
        seen.add(message.public_id)
    return ConversationExport(
        public_id=public_id,
        title=title,
        kind=kind,
        created_at=created_at,
        updated_at=updated_at,
        messages=messages,
    )
