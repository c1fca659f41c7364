"""``conversation_create``, ``conversation_export`` and ``conversation_import``: operators' conversation commands."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import Storage
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from conversations import services
from conversations.audio import pcm16_to_wav, wav_pcm16
from conversations.models import Conversation, Message, User
from conversations.serializers import ConversationSerializer, MessageSerializer
from conversations.services import conversation_create, conversation_delete, import_id, message_create
from conversations.transfer import MANIFEST
from tests.factories import UserFactory
from usage.models import UsageDay

pytestmark = pytest.mark.django_db(transaction=True)  # audio files written by an import are deleted on rollback

LIVE_CONFIG = {"model": "gemini-3.1-flash-live-preview", "sessionId": "live_0123", "responseModalities": ["AUDIO"]}


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def pcm(samples: int, step: int) -> bytes:
    """PCM16 samples that are not all zero (a ramp), so frames can be compared."""
    return b"".join(((i * step) % 32768).to_bytes(2, "little", signed=True) for i in range(samples))


DIRECT_TURN_ID = "msg_" + "Dz-_" * 5 + "q1"


def conversation_with_typed_and_live_messages(owner: User) -> Conversation:
    conversation = conversation_create(owner=owner, title="Trip plans")
    start = timezone.now() - dt.timedelta(hours=1)
    at = [start + dt.timedelta(seconds=n) for n in range(6)]
    message_create(conversation=conversation, role="user", text="Where should I go in April?", created_at=at[0])
    message_create(
        conversation=conversation,
        role="model",
        text="**Kyoto**, for the blossoms.",
        usage={"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12},
        created_at=at[1],
    )
    message_create(
        conversation=conversation,
        role="user",
        message_type="live",
        audio=pcm16_to_wav(pcm(8000, 37), sample_rate=16_000),
        input_transcription="And how long should I stay?",
        live_config=LIVE_CONFIG,
        created_at=at[2],
        public_id=DIRECT_TURN_ID,  # a direct-mode turn keeps the id its page chose
    )
    message_create(
        conversation=conversation,
        role="tool",
        message_type="live",
        tool_data={"functionCall": {"name": "get_time", "args": {}}, "response": {"time": "12:00"}},
        live_config=LIVE_CONFIG,
        created_at=at[3],
    )
    message_create(
        conversation=conversation,
        role="model",
        message_type="live",
        audio=pcm16_to_wav(pcm(12000, 101), sample_rate=24_000),
        output_transcription="A week is enough for Kyoto.",
        live_config=LIVE_CONFIG,
        interrupted=True,
        created_at=at[4],
    )
    message_create(conversation=conversation, role="user", text="Thanks!", created_at=at[5])
    return conversation


def snapshot(conversation: Conversation) -> list[tuple[Any, ...]]:
    """What must survive a round trip, message by message in order: everything but ids, and the audio's frames."""
    rows = []
    for message in conversation.messages.order_by("created_at", "id"):
        frames = None
        if message.audio:
            with message.audio.open("rb") as handle:
                frames = wav_pcm16(handle.read())
        rows.append(
            (
                message.role,
                message.message_type,
                message.text,
                message.input_transcription,
                message.output_transcription,
                message.live_config,
                message.tool_data,
                message.usage,
                message.interrupted,
                message.created_at,
                message.audio_duration,
                frames,
            )
        )
    return rows


def stored_files(storage: Storage, directory: str = "audio") -> set[str]:
    """Every file under `directory` of the audio storage (local or S3)."""
    try:
        folders, files = storage.listdir(directory)
    except FileNotFoundError:
        return set()
    found = {f"{directory}/{name}" for name in files}
    for folder in folders:
        found |= stored_files(storage, f"{directory}/{folder}")
    return found


def audio_storage() -> Storage:
    return Message._meta.get_field("audio").storage  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def exported(user: User, tmp_path: Path) -> tuple[Conversation, Path]:
    conversation = conversation_with_typed_and_live_messages(user)
    out = tmp_path / "export"
    run("conversation_export", conversation.public_id, "--out", str(out))
    return conversation, out


def write_manifest(directory: Path, manifest: Any) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def read_manifest(directory: Path) -> dict[str, Any]:
    return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# CREATE
# ------------------------------------------------------------------------------
def test_create_prints_only_the_id_of_a_new_conversation(user: User) -> None:
    out = run("conversation_create", "--user", user.username, "--title", "  Notes  ")
    public_id = out.strip()
    assert out == public_id + "\n" and public_id.startswith("conv_")
    conversation = Conversation.objects.get(public_id=public_id)
    assert (conversation.owner, conversation.title, conversation.kind) == (user, "Notes", "rest")
    assert conversation.messages.count() == 0


def test_create_live_kind_starts_a_live_conversation(user: User) -> None:
    public_id = run("conversation_create", "--user", user.username, "--kind", "live").strip()
    conversation = Conversation.objects.get(public_id=public_id)
    assert (conversation.kind, conversation.title) == ("live", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "No user 'nobody'"),
        (["--user", "a\x00b"], "No user"),
        (["--user", "{user}", "--title", "x" * 201], "shorten it to 200"),
    ],
)
def test_create_refuses_bad_flags_by_name(user: User, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("conversation_create", *[a.format(user=user.username) for a in args])
    assert not Conversation.objects.exists()


def test_create_bad_kind_and_unknown_user_exit_1_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--user", "nobody"], ["--user", "x", "--kind", "hybrid"]):
        with pytest.raises(SystemExit) as exited:
            ManagementUtility(["manage.py", "conversation_create", *argv]).execute()
        assert exited.value.code in (1, 2)
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert "No user 'nobody'" in err or "invalid choice: 'hybrid'" in err


# EXPORT
# ------------------------------------------------------------------------------
@pytest.mark.parametrize("audio_storage_backend", ["local", "s3"], indirect=True)
def test_export_writes_the_api_shape_and_every_audio_file(
    audio_storage_backend: str, user: User, tmp_path: Path
) -> None:
    conversation = conversation_with_typed_and_live_messages(user)
    out = tmp_path / "export"
    summary = json.loads(run("conversation_export", conversation.public_id, "--out", str(out), "--json"))
    assert summary == {"conversation": conversation.public_id, "messages": 6, "audioFiles": 2, "out": str(out)}
    manifest = read_manifest(out)
    assert (manifest["format"], manifest["version"]) == ("apsara.conversation", 1)
    assert manifest["conversation"] == json.loads(json.dumps(ConversationSerializer(conversation).data))
    messages = list(conversation.messages.order_by("created_at", "id"))
    for data, message in zip(manifest["messages"], messages, strict=True):
        extra = data.pop("export")
        assert data == json.loads(json.dumps(MessageSerializer(message).data))  # the API's shape, as is
        assert extra["toolData"] == message.tool_data
        if message.audio:
            assert extra["audioFile"] == f"audio/{message.public_id}.wav"
            with message.audio.open("rb") as handle:
                assert (out / extra["audioFile"]).read_bytes() == handle.read()
        else:
            assert extra["audioFile"] is None
    assert sorted(p.name for p in (out / "audio").iterdir()) == sorted(
        f"{m.public_id}.wav" for m in messages if m.audio
    )


def test_export_refuses_a_non_empty_directory_unless_forced(user: User, tmp_path: Path) -> None:
    conversation = conversation_with_typed_and_live_messages(user)
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CommandError, match=r"not empty.*--force"):
        run("conversation_export", conversation.public_id, "--out", str(out))
    assert not (out / MANIFEST).exists()
    assert "6 messages, 2 audio files" in run(
        "conversation_export", conversation.public_id, "--out", str(out), "--force"
    )
    assert (out / "notes.txt").read_text() == "mine" and (out / MANIFEST).is_file()


@pytest.mark.parametrize("public_id", ["conv_000000000000000000000000", "not an id\x00", ""])
def test_export_unknown_conversation_is_named(public_id: str, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No conversation"):
        run("conversation_export", public_id, "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_export_names_audio_missing_from_storage(exported: tuple[Conversation, Path], tmp_path: Path) -> None:
    conversation, _ = exported
    message = conversation.messages.exclude(audio="").first()
    assert message is not None and message.audio.name
    audio_storage().delete(message.audio.name)
    with pytest.raises(CommandError, match=f"audio of message {message.public_id}.*missing"):
        run("conversation_export", conversation.public_id, "--out", str(tmp_path / "again"))
    assert not (tmp_path / "again" / MANIFEST).exists()


# IMPORT: round trips and idempotence
# ------------------------------------------------------------------------------
@pytest.mark.parametrize("audio_storage_backend", ["local", "s3"], indirect=True)
def test_round_trip_to_another_user_then_to_a_fresh_database(
    audio_storage_backend: str, user: User, tmp_path: Path
) -> None:
    original = conversation_with_typed_and_live_messages(user)
    expected = snapshot(original)
    out = tmp_path / "export"
    run("conversation_export", original.public_id, "--out", str(out))

    # Another user on the same instance, the original still here: a copy with ids of its own.
    other = UserFactory.create()
    result = json.loads(run("conversation_import", str(out), "--user", other.username, "--json"))
    assert result == {
        "conversation": import_id(original.public_id, other),
        "created": True,
        "messagesCreated": 6,
        "messagesKept": 0,
        "idsDerived": True,
    }
    copy_ = Conversation.objects.get(public_id=result["conversation"])
    assert (copy_.owner, copy_.title, copy_.kind, copy_.created_at) == (
        other,
        "Trip plans",
        "hybrid",
        original.created_at,
    )
    assert copy_.updated_at == original.updated_at
    assert snapshot(copy_) == expected
    assert snapshot(original) == expected  # the original is not touched
    assert set(copy_.messages.values_list("public_id", flat=True)).isdisjoint(
        original.messages.values_list("public_id", flat=True)
    )

    # A fresh database state: the original gone, imported again for its owner: the same ids come back.
    original_ids = list(original.messages.order_by("created_at", "id").values_list("public_id", flat=True))
    conversation_delete(conversation=original)
    assert "Imported" in run("conversation_import", str(out), "--user", user.username)
    restored = Conversation.objects.get(public_id=original.public_id)
    assert restored.owner == user
    assert list(restored.messages.order_by("created_at", "id").values_list("public_id", flat=True)) == original_ids
    assert snapshot(restored) == expected


def test_an_import_is_not_counted_as_the_importers_usage(exported: tuple[Conversation, Path]) -> None:
    """What the conversation cost was spent when it was said: importing it today spends nothing of a quota."""
    _, out = exported
    other = UserFactory.create()
    run("conversation_import", str(out), "--user", other.username)
    assert Message.objects.filter(conversation__owner=other).count() == 6
    assert not UsageDay.objects.filter(user=other).exists()


def test_importing_twice_changes_nothing(exported: tuple[Conversation, Path]) -> None:
    conversation, out = exported
    other = UserFactory.create()
    run("conversation_import", str(out), "--user", other.username)
    storage = audio_storage()
    before = (Conversation.objects.count(), Message.objects.count(), stored_files(storage))
    copy_ = Conversation.objects.get(owner=other)
    state = (copy_.title, copy_.kind, copy_.updated_at, snapshot(copy_))
    again = json.loads(run("conversation_import", str(out), "--user", other.username, "--json"))
    assert (again["created"], again["messagesCreated"], again["messagesKept"]) == (False, 0, 6)
    assert (Conversation.objects.count(), Message.objects.count(), stored_files(storage)) == before
    copy_.refresh_from_db()
    assert (copy_.title, copy_.kind, copy_.updated_at, snapshot(copy_)) == state
    # Its owner importing their own export: it is already there.
    mine = json.loads(run("conversation_import", str(out), "--user", conversation.owner.username, "--json"))
    assert (mine["conversation"], mine["created"], mine["messagesCreated"]) == (conversation.public_id, False, 0)
    assert Message.objects.count() == before[1]


def test_import_adds_only_the_messages_that_are_missing(exported: tuple[Conversation, Path]) -> None:
    conversation, out = exported
    last = conversation.messages.order_by("created_at", "id").last()
    assert last is not None
    last_id = last.public_id
    services.message_delete(message=last)
    result = json.loads(run("conversation_import", str(out), "--user", conversation.owner.username, "--json"))
    assert (result["created"], result["messagesCreated"], result["messagesKept"]) == (False, 1, 5)
    assert conversation.messages.filter(public_id=last_id, text="Thanks!").exists()


def test_import_refuses_ids_that_belong_to_others_under_both_names(
    exported: tuple[Conversation, Path], tmp_path: Path
) -> None:
    conversation, out = exported
    other, squatter = UserFactory.create(), UserFactory.create()
    conversation_create(owner=squatter, public_id=import_id(conversation.public_id, other))
    counts = (Conversation.objects.count(), Message.objects.count())
    with pytest.raises(CommandError, match=r"belong to other users.*Nothing was written"):
        run("conversation_import", str(out), "--user", other.username)
    assert (Conversation.objects.count(), Message.objects.count()) == counts


def test_import_unknown_user_is_named(exported: tuple[Conversation, Path]) -> None:
    _, out = exported
    with pytest.raises(CommandError, match="No user 'ghost'"):
        run("conversation_import", str(out), "--user", "ghost")


def test_a_failure_midway_leaves_no_rows_and_no_audio_files(
    exported: tuple[Conversation, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out = exported
    other = UserFactory.create()
    storage = audio_storage()
    before = (Conversation.objects.count(), Message.objects.count(), stored_files(storage))
    real = services.message_create
    calls = {"n": 0}

    def failing(**kwargs: Any) -> Message:
        calls["n"] += 1
        if calls["n"] == 5:  # after both recordings were stored
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(services, "message_create", failing)
    with pytest.raises(RuntimeError, match="database went away"):
        run("conversation_import", str(out), "--user", other.username)
    assert (Conversation.objects.count(), Message.objects.count(), stored_files(storage)) == before


# IMPORT: hostile or corrupt exports
# ------------------------------------------------------------------------------
def _audio_of(manifest: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in manifest["messages"] if m["export"]["audioFile"])


def _set(manifest: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    target: Any = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return manifest


def _hostile_cases(directory: Path) -> dict[str, tuple[Any, str]]:
    """Each: a change to a valid export (a function of its directory), and what the error must say."""
    audio = directory / "audio"

    def manifest_change(change: Any) -> Any:
        def apply() -> None:
            write_manifest(directory, change(read_manifest(directory)))

        return apply

    def traversal(m: dict[str, Any]) -> dict[str, Any]:
        _audio_of(m)["export"]["audioFile"] = "../../../../etc/passwd"
        return m

    def not_wav() -> None:
        first = sorted(audio.iterdir())[0]
        first.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + b"\x00" * 40)

    def missing_audio() -> None:
        sorted(audio.iterdir())[-1].unlink()

    def symlinked_audio() -> None:
        first = sorted(audio.iterdir())[0]
        secret = directory.parent / "secret.wav"
        shutil.copy(first, secret)
        first.unlink()
        os.symlink(secret, first)

    def last_message_broken(m: dict[str, Any]) -> dict[str, Any]:
        m["messages"][-1]["createdAt"] = "yesterday"
        return m

    def duplicate(m: dict[str, Any]) -> dict[str, Any]:
        m["messages"][5]["id"] = m["messages"][0]["id"]
        return m

    return {
        "no manifest": (lambda: (directory / MANIFEST).unlink(), "conversation.json is missing"),
        "not JSON": (lambda: (directory / MANIFEST).write_text("{not json"), "not valid JSON"),
        "not UTF-8": (lambda: (directory / MANIFEST).write_bytes(b'{"a": "\xff"}'), "not UTF-8"),
        "NaN": (lambda: (directory / MANIFEST).write_text('{"format": NaN}'), "not valid JSON"),
        "too deep": (lambda: (directory / MANIFEST).write_text("[" * 200 + "]" * 200), "nests deeper"),
        "not an object": (manifest_change(lambda m: [m]), "must be an object"),
        "other format": (manifest_change(lambda m: _set(m, ["format"], "zip")), "format: must be"),
        "future version": (manifest_change(lambda m: _set(m, ["version"], 2)), "version: must be 1"),
        "version true": (manifest_change(lambda m: _set(m, ["version"], True)), "version: must be 1"),
        "bad conversation id": (
            manifest_change(lambda m: _set(m, ["conversation", "id"], "../conv")),
            "conversation.id: '../conv' is not a valid id",
        ),
        "title too long": (manifest_change(lambda m: _set(m, ["conversation", "title"], "t" * 201)), "longer than 200"),
        "bad role": (manifest_change(lambda m: _set(m, ["messages", 1, "role"], "admin")), "messages.1.role"),
        "text not a string": (
            manifest_change(lambda m: _set(m, ["messages", 0, "content", "text"], 42)),
            "messages.0.content.text: must be a string, not a number",
        ),
        "NUL in text": (
            manifest_change(lambda m: _set(m, ["messages", 0, "content", "text"], "a\x00b")),
            "messages.0.content.text: Null characters",
        ),
        "interrupted not a boolean": (
            manifest_change(lambda m: _set(m, ["messages", 4, "interrupted"], "yes")),
            "messages.4.interrupted: must be true or false",
        ),
        "naive time": (
            manifest_change(lambda m: _set(m, ["messages", 2, "createdAt"], "2026-01-01T10:00:00")),
            "with a time zone",
        ),
        "time out of range": (
            manifest_change(lambda m: _set(m, ["messages", 1, "createdAt"], "0001-01-01T00:00:00+05:00")),
            "messages.1.createdAt",
        ),
        "last message broken": (manifest_change(last_message_broken), "messages.5.createdAt"),
        "duplicate ids": (manifest_change(duplicate), "appears twice"),
        "wrong count": (
            manifest_change(lambda m: _set(m, ["conversation", "messageCount"], 7)),
            "is 7 but there are 6",
        ),
        "path traversal": (manifest_change(traversal), "'../../../../etc/passwd' is not 'audio/msg_"),
        "audio file without audioData": (
            manifest_change(lambda m: _set(m, ["messages", 2, "liveContent", "audioData"], None)),
            "must be given exactly when",
        ),
        "another conversation's message": (
            manifest_change(lambda m: _set(m, ["messages", 3, "conversationId"], "conv_" + "1" * 24)),
            "is not the conversation's id",
        ),
        "audio not WAV": (not_wav, "is not a playable WAV file"),
        "audio missing": (missing_audio, "is missing from the export"),
        "audio a symlink": (symlinked_audio, "not a regular file"),
    }


HOSTILE = list(_hostile_cases(Path("/nonexistent")))


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_exports_are_refused_with_nothing_written(case: str, exported: tuple[Conversation, Path]) -> None:
    _, out = exported
    change, message = _hostile_cases(out)[case]
    change()
    other = UserFactory.create()
    storage = audio_storage()
    before = (Conversation.objects.count(), Message.objects.count(), stored_files(storage))
    with pytest.raises(CommandError, match="Not imported: ") as raised:
        run("conversation_import", str(out), "--user", other.username)
    assert message in str(raised.value)
    assert (Conversation.objects.count(), Message.objects.count(), stored_files(storage)) == before


def test_import_of_a_directory_that_is_not_there(user: User, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is not a directory"):
        run("conversation_import", str(tmp_path / "nowhere"), "--user", user.username)


# PROPERTY: a corrupted manifest
# ------------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
FREE_FORM = {"usage", "toolData"}  # any JSON object is valid inside these


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [(*path, key)] if key in FREE_FORM else _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _json_type(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(type(value))
    return "number" if isinstance(value, int | float) else repr(type(value))


def test_a_corrupted_manifest_is_a_command_error_or_valid_never_a_crash(
    exported: tuple[Conversation, Path],
) -> None:
    _, out = exported
    valid = read_manifest(out)
    paths = _paths(valid)
    other = UserFactory.create()
    storage = audio_storage()
    before = (Conversation.objects.count(), Message.objects.count(), stored_files(storage))
    outcomes: list[str] = []

    @given(path=st.sampled_from(paths), value=JSON_VALUES, delete=st.booleans())
    def corrupt(path: tuple[Any, ...], value: Any, delete: bool) -> None:
        manifest = copy.deepcopy(valid)
        parent: Any = manifest
        for key in path[:-1]:
            parent = parent[key]
        old = parent[path[-1]]
        if delete:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
        write_manifest(out, manifest)
        try:
            run("conversation_import", str(out), "--user", other.username)
        except CommandError as error:
            assert str(error).startswith("Not imported: ") and len(str(error)) > 20
            assert (Conversation.objects.count(), Message.objects.count(), stored_files(storage)) == before
            outcomes.append("refused")
            return
        outcomes.append("accepted")
        try:
            # Accepted: only a value as valid as the one it replaced (same JSON type, or a null where one may be).
            if delete:  # only a member of a list that may be shorter
                assert "responseModalities" in path
            elif path[-1] in FREE_FORM:  # any object (or null: none) is valid there
                assert value is None or isinstance(value, dict)
            else:
                assert value is None or _json_type(value) == _json_type(old)
        finally:  # whatever the verdict, the next example starts from the same state
            for conversation in Conversation.objects.filter(owner=other):
                conversation_delete(conversation=conversation)

    corrupt()
    assert outcomes.count("refused") > len(outcomes) // 2, outcomes  # the corruption mostly breaks the export
