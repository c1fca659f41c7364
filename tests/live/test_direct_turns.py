"""``POST /api/conversations/<id>/live-turns``: a direct session's turns, posted by the page, stored exactly as the
server's recorder stores a proxied turn (live.direct_turns, docs/live-direct.md)."""

from __future__ import annotations

import io
import json
import logging
import struct
import threading
import wave
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.utils import timezone
from hypothesis import event, given
from hypothesis import strategies as st

from conversations import events, services
from conversations.audio import wav_pcm16
from conversations.models import Conversation, Message, User
from live.models import LiveSession
from live.turns import TurnRecord, save_turn

pytestmark = pytest.mark.django_db

MODEL = "gemini-3.1-flash-live-preview"
TURN_ID = "msg_" + "a1B-_" * 4 + "x2"  # as the page makes them: msg_ and 22 base64url characters


def direct_session(
    user: User,
    conversation: Conversation | None,
    *,
    age: float = 120,
    modalities: list[str] | None = None,
    status: str = LiveSession.Status.ACTIVE,
    transport: str = LiveSession.Transport.DIRECT,
) -> LiveSession:
    """A session as the token endpoint makes it, begun ``age`` seconds ago."""
    request: dict[str, Any] = {"model": MODEL}
    if modalities is not None:
        request["responseModalities"] = modalities
    started = timezone.now() - timedelta(seconds=age)
    return LiveSession.objects.create(
        user=user,
        conversation=conversation,
        model=MODEL,
        transport=transport,
        status=status,
        config={"request": request, "loadConversationContext": False},
        token_expires_at=started + timedelta(minutes=30),
        started_at=started,
        ended_at=started + timedelta(seconds=10) if status == LiveSession.Status.ENDED else None,
    )


def wav(
    seconds: float = 1.0, *, rate: int = 16_000, channels: int = 1, width: int = 2, data: bytes | None = None
) -> bytes:
    frames = int(seconds * rate)
    samples = data if data is not None else bytes(range(256)) * (frames * channels * width // 256 + 1)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(samples[: frames * channels * width])
    return buffer.getvalue()


def float_wav(seconds: float = 0.5, rate: int = 16_000) -> bytes:
    """A WAV of 32-bit float samples (format 3), as some recorders write."""
    frames = int(seconds * rate)
    data = struct.pack(f"<{frames}f", *([0.25] * frames))
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def form(session: LiveSession, **overrides: Any) -> dict[str, Any]:
    """A valid user turn with audio (1 s at 16 kHz), begun 10 s ago; ``overrides`` replace fields (None drops)."""
    fields: dict[str, Any] = {
        "id": TURN_ID,
        "sessionId": session.public_id,
        "role": "user",
        "transcript": "  Hello there  ",
        "startedAt": iso(timezone.now() - timedelta(seconds=10)),
        "interrupted": "false",
        "audio": wav(1.0),
    }
    fields.update(overrides)
    return {
        name: SimpleUploadedFile("turn.wav", value, content_type="audio/wav") if isinstance(value, bytes) else value
        for name, value in fields.items()
        if value is not None
    }


def url(conversation: Conversation | str) -> str:
    conv_id = conversation.public_id if isinstance(conversation, Conversation) else conversation
    return f"/api/conversations/{conv_id}/live-turns"


@pytest.fixture
def client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def conversation(user: User) -> Conversation:
    return services.conversation_create(owner=user, title="Direct")


@pytest.fixture
def session(user: User, conversation: Conversation) -> LiveSession:
    return direct_session(user, conversation)


def assert_error(response: Any, status: int, field: str | None, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["field"] == field, error
    assert error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


# STORING
# ------------------------------------------------------------------------------
def test_user_turn_is_stored_as_a_live_message(
    client: Client, conversation: Conversation, session: LiveSession
) -> None:
    started = timezone.now() - timedelta(seconds=10)
    response = client.post(url(conversation), form(session, startedAt=iso(started)))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] == TURN_ID
    assert body["conversationId"] == conversation.public_id
    assert (body["messageType"], body["role"], body["interrupted"]) == ("live", "user", False)
    assert body["liveContent"]["inputTranscription"] == {"text": "Hello there"}
    assert body["liveContent"]["audioData"]["duration"] == 1.0
    assert body["liveContent"]["audioData"]["mimeType"] == "audio/wav"
    assert body["config"]["live"] == {"model": MODEL, "sessionId": session.public_id, "responseModalities": ["AUDIO"]}
    message = Message.objects.get(public_id=TURN_ID)
    assert abs((message.created_at - started).total_seconds()) < 0.001
    conversation.refresh_from_db()
    assert conversation.kind == Conversation.Kind.LIVE


def test_model_turn_keeps_usage_it_knows_and_drops_the_rest(
    client: Client, conversation: Conversation, session: LiveSession
) -> None:
    usage = {
        "promptTokenCount": 12,
        "responseTokenCount": 30,
        "totalTokenCount": 42,
        "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 30}],
        "trafficType": "ON_DEMAND",
        "somethingNew": {"a": 1},
    }
    response = client.post(
        url(conversation),
        form(session, role="model", audio=wav(0.5, rate=24_000), interrupted="true", usage=json.dumps(usage)),
    )

    assert response.status_code == 201, response.content
    message = Message.objects.get(public_id=TURN_ID)
    assert message.usage == {k: v for k, v in usage.items() if k != "somethingNew"}
    assert message.interrupted is True
    assert (message.text, message.output_transcription) == ("Hello there", "Hello there")


def test_text_session_model_turn_is_text_only(client: Client, user: User, conversation: Conversation) -> None:
    session = direct_session(user, conversation, modalities=["TEXT"])

    response = client.post(url(conversation), form(session, role="model", audio=None, transcript="Hi."))

    assert response.status_code == 201, response.content
    message = Message.objects.get(public_id=TURN_ID)
    assert (message.text, message.output_transcription, bool(message.audio)) == ("Hi.", "", False)
    assert message.live_config["responseModalities"] == ["TEXT"]


def test_turn_without_audio_needs_only_a_transcript(
    client: Client, conversation: Conversation, session: LiveSession
) -> None:
    response = client.post(url(conversation), form(session, audio=None))

    assert response.status_code == 201, response.content
    assert response.json()["liveContent"]["audioData"] is None


@pytest.mark.parametrize("role", ["user", "model"])
def test_same_stored_shape_as_a_proxied_turn(
    client: Client, user: User, conversation: Conversation, session: LiveSession, role: str
) -> None:
    rate = 16_000 if role == "user" else 24_000
    audio = wav(0.75, rate=rate)
    started = timezone.now() - timedelta(seconds=5)
    usage = {"totalTokenCount": 7} if role == "model" else {}
    response = client.post(
        url(conversation),
        form(
            session,
            role=role,
            audio=audio,
            transcript="Same words",
            startedAt=iso(started),
            **({"usage": json.dumps(usage)} if usage else {}),
        ),
    )
    assert response.status_code == 201, response.content
    posted = Message.objects.get(public_id=TURN_ID)

    # What the proxied recorder stores for the same turn (live/recorder.py: _flush_user_turn, _finish_model_turn).
    other = services.conversation_create(owner=user, title="Proxied")
    pcm, _ = wav_pcm16(audio)
    proxied = save_turn(
        conversation=other,
        live_config={"model": MODEL, "sessionId": session.public_id, "responseModalities": ["AUDIO"]},
        turn=TurnRecord(
            public_id="msg_" + "b2" * 12,
            role=Message.Role(role),
            created_at=started,
            text="Same words" if role == "model" else "",
            input_transcription="Same words" if role == "user" else "",
            output_transcription="Same words" if role == "model" else "",
            pcm=pcm,
            sample_rate=rate,
            usage=usage,
        ),
    )

    fields = [
        "role",
        "message_type",
        "text",
        "input_transcription",
        "output_transcription",
        "audio_duration",
        "audio_mime_type",
        "live_config",
        "tool_data",
        "usage",
        "interrupted",
    ]
    assert {f: getattr(posted, f) for f in fields} == {f: getattr(proxied, f) for f in fields}
    assert abs((posted.created_at - proxied.created_at).total_seconds()) < 0.001
    with posted.audio.open("rb") as a, proxied.audio.open("rb") as b:
        assert a.read() == b.read()  # the same WAV, byte for byte: packed by the same code
    name = posted.audio.name or ""
    assert name.endswith(f"_{TURN_ID}.wav") and f"/{conversation.public_id}/" in name
    session.refresh_from_db()  # the session counts the turn, as the bridge counts a proxied one
    counted = (
        (session.audio_seconds_in, session.messages_in)
        if role == "user"
        else (session.audio_seconds_out, session.messages_out)
    )
    assert counted == (0.75, 1)


def test_stored_turn_is_announced_like_every_message(
    client: Client,
    conversation: Conversation,
    session: LiveSession,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    announced: list[str] = []
    original = events.message_saved_on_commit

    def spy(*, message: Message) -> None:
        announced.append(message.public_id)
        original(message=message)

    monkeypatch.setattr(events, "message_saved_on_commit", spy)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url(conversation), form(session))
        client.post(url(conversation), form(session))  # a replay stores nothing, announces nothing

    assert response.status_code == 201
    assert announced == [TURN_ID]
    assert callbacks  # the send waits for the commit


def test_ended_session_still_takes_turns_posted_late(client: Client, user: User, conversation: Conversation) -> None:
    session = direct_session(user, conversation, age=3600, status=LiveSession.Status.ENDED)

    response = client.post(url(conversation), form(session, startedAt=iso(session.started_at + timedelta(seconds=5))))

    assert response.status_code == 201, response.content


# IDEMPOTENCY
# ------------------------------------------------------------------------------
def test_same_id_again_answers_the_stored_message(
    client: Client, conversation: Conversation, session: LiveSession
) -> None:
    first = client.post(url(conversation), form(session))
    again = client.post(url(conversation), form(session, transcript="something else", audio=None))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Message.objects.filter(public_id=TURN_ID).count() == 1
    assert conversation.messages.count() == 1


def test_id_of_another_persons_message_is_a_conflict(
    client: Client, conversation: Conversation, session: LiveSession, other_user: User
) -> None:
    theirs = services.conversation_create(owner=other_user, title="Theirs secret")
    their_message = services.message_create(conversation=theirs, role="user", text="private", public_id=TURN_ID)

    response = client.post(url(conversation), form(session))

    error = assert_error(response, 409, "id", "message_id_taken")
    assert theirs.public_id not in json.dumps(error) and "private" not in json.dumps(error)
    assert Message.objects.get(public_id=TURN_ID).pk == their_message.pk
    assert conversation.messages.count() == 0


def test_id_of_my_message_elsewhere_is_a_conflict(
    client: Client, user: User, conversation: Conversation, session: LiveSession
) -> None:
    other = services.conversation_create(owner=user, title="Other")
    other_session = direct_session(user, other)
    assert client.post(url(other), form(other_session)).status_code == 201
    another_session_here = direct_session(user, conversation)
    services.message_create(conversation=conversation, role="user", text="typed", public_id="msg_" + "c3" * 11)

    assert_error(client.post(url(conversation), form(session)), 409, "id", "message_id_taken")
    assert_error(
        client.post(url(conversation), form(another_session_here, id="msg_" + "c3" * 11)), 409, "id", "message_id_taken"
    )
    assert_error(client.post(url(other), form(direct_session(user, other))), 409, "id", "message_id_taken")


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_post_stores_once(user: User) -> None:
    conversation = services.conversation_create(owner=user, title="Race")
    session = direct_session(user, conversation)
    clients = [Client(), Client()]
    for c in clients:
        c.force_login(user)
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def post(c: Client) -> None:
        try:
            barrier.wait(timeout=10)
            statuses.append(c.post(url(conversation), form(session)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(statuses) == [200, 201]
    assert Message.objects.filter(public_id=TURN_ID).count() == 1


# WHO MAY POST
# ------------------------------------------------------------------------------
def test_login_required(conversation: Conversation, session: LiveSession) -> None:
    response = Client().post(url(conversation), form(session))

    assert_error(response, 401, None)
    assert not Message.objects.exists()


def test_csrf_enforced(user: User, conversation: Conversation, session: LiveSession) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    refused = client.post(url(conversation), form(session))
    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    accepted = client.post(url(conversation), form(session), headers={"X-CSRFToken": token})

    assert_error(refused, 403, None)
    assert accepted.status_code == 201, accepted.content


@pytest.mark.parametrize(
    "case",
    [
        "their_conversation",
        "their_session_in_my_conversation",
        "proxied_session",
        "session_of_my_other_conversation",
        "session_without_conversation",
        "unknown_session",
        "unknown_conversation",
    ],
)
def test_anything_not_yours_is_not_found(
    client: Client, user: User, other_user: User, conversation: Conversation, session: LiveSession, case: str
) -> None:
    theirs = services.conversation_create(owner=other_user, title="Theirs")
    their_session = direct_session(other_user, theirs)
    target: Conversation | str = conversation
    if case == "their_conversation":
        target, chosen = theirs, their_session
    elif case == "their_session_in_my_conversation":
        chosen = direct_session(other_user, conversation)  # cannot happen through the token endpoint; still a 404
    elif case == "proxied_session":
        chosen = direct_session(user, conversation, transport=LiveSession.Transport.PROXIED)
    elif case == "session_of_my_other_conversation":
        chosen = direct_session(user, services.conversation_create(owner=user, title="Other"))
    elif case == "session_without_conversation":
        chosen = direct_session(user, None)
    elif case == "unknown_session":
        chosen = LiveSession(public_id="live_" + "0" * 24)
    else:
        target, chosen = "conv_" + "0" * 24, session

    response = client.post(url(target), form(chosen))

    error = assert_error(response, 404, None, "not_found")
    assert their_session.public_id not in json.dumps(error)
    assert not Message.objects.filter(public_id=TURN_ID).exists()


# EVERY FIELD
# ------------------------------------------------------------------------------
def _now_plus(seconds: float) -> str:
    return iso(timezone.now() + timedelta(seconds=seconds))


BAD_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "id_missing": ({"id": None}, "id"),
    "id_too_short": ({"id": "msg_123"}, "id"),
    "id_too_long": ({"id": "m" * 41}, "id"),
    "id_bad_characters": ({"id": "msg_" + "a" * 20 + "/.."}, "id"),
    "id_of_the_servers_shape": ({"id": "msg_" + "ab" * 12}, "id"),  # new and imported ids: never the page's
    "id_without_prefix": ({"id": "a" * 26}, "id"),
    "session_missing": ({"sessionId": None}, "sessionId"),
    "session_not_an_id": ({"sessionId": "live_\x00"}, "sessionId"),
    "role_missing": ({"role": None}, "role"),
    "role_tool": ({"role": "tool"}, "role"),
    "role_upper": ({"role": "USER"}, "role"),
    "transcript_nul": ({"transcript": "a\x00b"}, "transcript"),
    "transcript_too_long": ({"transcript": "x" * 20_001}, "transcript"),
    "nothing_said": ({"transcript": "   ", "audio": None}, "transcript"),
    "started_missing": ({"startedAt": None}, "startedAt"),
    "started_not_iso": ({"startedAt": "yesterday"}, "startedAt"),
    "started_no_such_day": ({"startedAt": "2026-02-30T10:00:00Z"}, "startedAt"),
    "started_naive": ({"startedAt": "2026-01-01T10:00:00"}, "startedAt"),
    "started_epoch_number": ({"startedAt": "1767261600"}, "startedAt"),
    "started_overflow": ({"startedAt": "0001-01-01T00:00:00+14:00"}, "startedAt"),
    "started_future": ({"startedAt": "FUTURE"}, "startedAt"),
    "started_before_session": ({"startedAt": "BEFORE"}, "startedAt"),
    "interrupted_yes": ({"interrupted": "yes"}, "interrupted"),
    "interrupted_user_turn": ({"interrupted": "true"}, "interrupted"),
    "usage_not_json": ({"role": "model", "audio": None, "usage": "{"}, "usage"),
    "usage_not_object": ({"role": "model", "audio": None, "usage": "[1, 2]"}, "usage"),
    "usage_too_big": ({"role": "model", "audio": None, "usage": json.dumps({"x": "y" * 5000})}, "usage"),
    "usage_too_deep": ({"role": "model", "audio": None, "usage": '{"a": [[[[1]]]]}'}, "usage"),
    "usage_count_text": (
        {"role": "model", "audio": None, "usage": '{"totalTokenCount": "7"}'},
        "usage.totalTokenCount",
    ),
    "usage_count_negative": (
        {"role": "model", "audio": None, "usage": '{"totalTokenCount": -1}'},
        "usage.totalTokenCount",
    ),
    "usage_count_float": (
        {"role": "model", "audio": None, "usage": '{"totalTokenCount": 1.5}'},
        "usage.totalTokenCount",
    ),
    "usage_count_bool": (
        {"role": "model", "audio": None, "usage": '{"totalTokenCount": true}'},
        "usage.totalTokenCount",
    ),
    "usage_count_huge": ({"role": "model", "audio": None, "usage": '{"totalTokenCount": 1' + "0" * 30 + "}"}, "usage"),
    "usage_nan": ({"role": "model", "audio": None, "usage": '{"totalTokenCount": NaN}'}, "usage"),
    "usage_bad_modality": (
        {"role": "model", "audio": None, "usage": '{"promptTokensDetails": [{"modality": "SMELL"}]}'},
        "usage.promptTokensDetails.0.modality",
    ),
    "usage_details_not_list": (
        {"role": "model", "audio": None, "usage": '{"promptTokensDetails": {"modality": "TEXT"}}'},
        "usage.promptTokensDetails",
    ),
    "usage_on_user_turn": ({"usage": '{"totalTokenCount": 1}'}, "usage"),
    "audio_not_wav": ({"audio": b"not a wav file at all"}, "audio"),
    "audio_empty_file": ({"audio": b""}, "audio"),
    "audio_as_text": ({"audio": "UklGRg=="}, "audio"),
    "audio_header_only": ({"audio": wav(1.0)[:44]}, "audio"),
    "audio_cut_in_header": ({"audio": wav(1.0)[:30]}, "audio"),
    "audio_truncated": ({"audio": wav(1.0)[:-1000]}, "audio"),
    "audio_stereo": ({"audio": wav(1.0, channels=2)}, "audio"),
    "audio_8_bit": ({"audio": wav(1.0, width=1)}, "audio"),
    "audio_24_bit": ({"audio": wav(1.0, width=3)}, "audio"),
    "audio_float": ({"audio": float_wav()}, "audio"),
    "audio_user_at_24k": ({"audio": wav(1.0, rate=24_000)}, "audio"),
    "audio_model_at_16k": ({"role": "model", "audio": wav(1.0, rate=16_000)}, "audio"),
    "audio_no_samples": ({"audio": wav(0.0)}, "audio"),
    "audio_trailing_junk": ({"audio": wav(1.0) + b"\x00" * 10_000}, "audio"),
    "audio_too_long": ({"audio": wav(3.0)}, "audio"),
    "audio_longer_than_session": ({"audio": wav(2.5), "startedAt": "SESSION_START"}, "audio"),
    "audio_riff_lies": ({"audio": b"RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\xff"}, "audio"),
}


@pytest.fixture
def short_turns(settings: Any) -> None:
    settings.LIVE_DIRECT_TURN_MAX_SECONDS = 2


@pytest.mark.parametrize("case", list(BAD_FIELDS))
@pytest.mark.usefixtures("short_turns")
def test_every_field_is_checked(client: Client, user: User, conversation: Conversation, case: str) -> None:
    overrides, field = BAD_FIELDS[case]
    session = direct_session(user, conversation, age=1.5 if case == "audio_longer_than_session" else 120)
    times = {
        "FUTURE": _now_plus(120),
        "BEFORE": iso(session.started_at - timedelta(seconds=120)),
        "SESSION_START": iso(session.started_at),
    }
    overrides = {k: times.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()}

    response = client.post(url(conversation), form(session, **overrides))

    assert_error(response, 400, field)
    assert not Message.objects.exists()


def test_repeated_field_is_refused(client: Client, conversation: Conversation, session: LiveSession) -> None:
    response = client.post(url(conversation), {**form(session), "role": ["user", "model"]})

    assert_error(response, 400, "role", "repeated")


def test_json_body_is_unsupported(client: Client, conversation: Conversation, session: LiveSession) -> None:
    response = client.post(url(conversation), {"id": TURN_ID}, content_type="application/json")

    assert_error(response, 415, None)


@pytest.mark.usefixtures("short_turns")
def test_body_past_the_longest_turn_is_too_large(
    client: Client, conversation: Conversation, session: LiveSession
) -> None:
    response = client.post(url(conversation), form(session, role="model", audio=wav(8.0, rate=24_000)))

    assert_error(response, 413, None, "request_too_large")
    assert not Message.objects.exists()


def test_openapi_document_describes_the_endpoint(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    operation = schema["paths"]["/api/conversations/{conv_id}/live-turns"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert {"200", "201", "400", "404", "409", "413"} <= set(operation["responses"])


# HOSTILE FORMS
# ------------------------------------------------------------------------------
HOSTILE_TEXT = st.one_of(
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ufeff", "null", "true", "-1", "1e999", "NaN", "x" * 41, "é" * 30]),
    st.text(max_size=50),
)
AUDIO = st.one_of(
    st.none(),
    st.sampled_from(
        [
            wav(0.2),
            wav(0.2, rate=24_000),
            wav(0.2, channels=2),
            wav(0.2, width=1),
            wav(0.2)[:50],
            wav(0.2)[:-3],
            float_wav(0.1),
            b"",
        ]
    ),
    st.binary(max_size=100),
    st.binary(max_size=60).map(lambda tail: b"RIFF\x24\x00\x00\x00WAVEfmt " + tail),
)
USAGE = st.one_of(
    st.none(),
    st.sampled_from(['{"totalTokenCount": 3}', "{}", "[]", '{"promptTokensDetails": [{}]}', "1", "nul"]),
    st.dictionaries(
        st.sampled_from(["totalTokenCount", "promptTokensDetails", "trafficType", "x"]),
        st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.lists(st.integers(), max_size=3), st.none()),
        max_size=3,
    ).map(json.dumps),
    HOSTILE_TEXT,
)


# Each field a hostile value, a few at a time, the rest valid: so that accepted turns, replays and conflicts are
# reached as well as refusals. None drops the field.
HOSTILE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(st.sampled_from(["REPLAY", "THEIRS"]), HOSTILE_TEXT),
    "sessionId": st.one_of(st.sampled_from(["theirs", "proxied", "other_conversation", "unknown"]), HOSTILE_TEXT),
    "role": st.one_of(st.none(), HOSTILE_TEXT),
    "transcript": st.one_of(st.none(), HOSTILE_TEXT, st.integers(19_990, 20_010).map(lambda n: "w" * n)),
    "startedAt": st.one_of(
        st.integers(-200, 200).map(_now_plus),
        st.sampled_from(["2026-01-01T10:00:00", "1e9", "", "0000-00-00T00:00:00Z", "9999-12-31T23:59:59-14:00"]),
        HOSTILE_TEXT,
    ),
    "interrupted": st.one_of(st.none(), st.sampled_from(["true", "false", "1", "True"]), HOSTILE_TEXT),
    "usage": USAGE,
    "audio": AUDIO,
}


@given(
    role=st.sampled_from(["user", "model"]),
    with_audio=st.booleans(),
    hostile=st.dictionaries(st.sampled_from(list(HOSTILE_FIELDS)), st.none(), max_size=3).flatmap(
        lambda names: st.fixed_dictionaries({name: HOSTILE_FIELDS[name] for name in names})
    ),
)
def test_hostile_forms_never_fail_the_server(
    client: Client,
    user: User,
    other_user: User,
    conversation: Conversation,
    session: LiveSession,
    caplog: pytest.LogCaptureFixture,
    role: str,
    with_audio: bool,
    hostile: dict[str, Any],
) -> None:
    caplog.clear()
    with caplog.at_level(logging.WARNING), transaction.atomic():
        answer = _post_hostile(client, user, other_user, conversation, session, role, with_audio, hostile)
        transaction.set_rollback(True)
    assert answer in {200, 201, 400, 404, 409, 413}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


def _post_hostile(
    client: Client,
    user: User,
    other_user: User,
    conversation: Conversation,
    session: LiveSession,
    role: str,
    with_audio: bool,
    hostile: dict[str, Any],
) -> int:
    """Post one form; check the answer's shape, that a refusal stored nothing, an acceptance what was sent."""
    theirs = services.conversation_create(owner=other_user, title="T")
    sessions = {
        "theirs": direct_session(other_user, theirs).public_id,
        "proxied": direct_session(user, conversation, transport=LiveSession.Transport.PROXIED).public_id,
        "other_conversation": direct_session(user, services.conversation_create(owner=user, title="O")).public_id,
        "unknown": "live_" + "0" * 24,
    }
    replay_id, their_id = "msg_" + "e5" * 11, "msg_" + "f6" * 11
    services.message_create(conversation=theirs, role="user", text="theirs", public_id=their_id)
    replayed = client.post(url(conversation), form(session, id=replay_id, audio=None))
    assert replayed.status_code == 201, replayed.content
    ids = {"REPLAY": replay_id, "THEIRS": their_id}

    fields = form(
        session,
        role=role,
        audio=wav(0.2, rate=16_000 if role == "user" else 24_000) if with_audio else None,
        usage='{"totalTokenCount": 3}' if role == "model" else None,
    )
    for name, value in hostile.items():
        if name == "id" and value in ids:
            value = ids[value]
        elif name == "sessionId" and value in sessions:
            value = sessions[value]
        if value is None:
            fields.pop(name, None)
        elif isinstance(value, bytes):
            fields[name] = SimpleUploadedFile("a.wav", value)
        else:
            # Text a form cannot carry (lone surrogates) goes as a browser would send it: replaced.
            fields[name] = str(value).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    before = Message.objects.count()

    response = client.post(url(conversation), fields)

    event(f"answered {response.status_code}")  # --hypothesis-show-statistics: what the examples reached
    assert response.status_code in {200, 201, 400, 404, 409, 413}, response.content[:500]
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}, response.content[:500]
        assert Message.objects.count() == before
    else:
        assert response.json()["id"] == fields["id"]
        assert Message.objects.count() == before + (response.status_code == 201)
        if response.status_code == 201 and fields.get("transcript", "").strip():
            stored = Message.objects.get(public_id=fields["id"])
            assert fields["transcript"].strip() in (stored.input_transcription, stored.text)
    return int(response.status_code)


@pytest.mark.parametrize("stored_in", ["this_session", "elsewhere"])
def test_id_stored_between_the_check_and_the_save(
    client: Client,
    user: User,
    conversation: Conversation,
    session: LiveSession,
    monkeypatch: pytest.MonkeyPatch,
    stored_in: str,
) -> None:
    """The race two retries run: the first check finds nothing, then the save meets the stored id."""
    first = client.post(url(conversation), form(session))
    assert first.status_code == 201
    if stored_in == "elsewhere":
        Message.objects.filter(public_id=TURN_ID).update(live_config={"sessionId": "live_other"})
    real_filter = Message.objects.filter
    misses = iter([True])

    def filter_missing_once(*args: Any, **kwargs: Any) -> Any:
        found = real_filter(*args, **kwargs)
        return found.none() if kwargs.get("public_id") == TURN_ID and next(misses, False) else found

    monkeypatch.setattr(Message.objects, "filter", filter_missing_once)

    again = client.post(url(conversation), form(session))

    assert next(misses, None) is None  # the first check did miss: the save met the stored id
    if stored_in == "this_session":
        assert again.status_code == 200, again.content
        assert again.json()["id"] == TURN_ID
    else:
        assert_error(again, 409, "id", "message_id_taken")
    assert real_filter(public_id=TURN_ID).count() == 1
