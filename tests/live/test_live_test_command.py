"""``manage.py live_test``: seed 002's interactive live test, run through the page's bridge against gemini_sim."""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import wave
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conversations.models import Conversation, Message, User
from gemini_sim import SimHandle
from live.models import LiveSession
from tests.factories import ConversationFactory, MessageFactory, UserFactory

MODEL = "gemini-3.1-flash-live-preview"


@pytest.fixture
def user(transactional_db: None) -> User:
    return UserFactory.create(username="ada")


@pytest.fixture(autouse=True)
def _close_lane_connections() -> Any:
    """The bridge's database lanes keep connections open in their threads: close them, or the test database cannot
    be dropped at the end of the run."""
    yield
    from django.db import connections

    from live import db_lanes

    for lane in list(db_lanes._lanes):
        lane.submit(connections.close_all).result()


def live_test(*args: str, stdin: str | None = None) -> tuple[str, int]:
    """Run the command; return its output and exit status."""
    out = io.StringIO()
    options: dict[str, Any] = {"stdout": out}
    if stdin is not None:
        options["stdin"] = io.StringIO(stdin)
    try:
        call_command("live_test", *args, **options)
    except CommandError as exc:
        return out.getvalue() + f"\nCommandError: {exc}", exc.returncode
    return out.getvalue(), 0


def events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_text_turns_non_interactive_json(gemini_sim: SimHandle, user: User) -> None:
    """Two typed turns: events in order as JSON Lines, the second reply remembers the first, turns stored, exit 0."""
    out, status = live_test(
        "--user", "ada", "--model", MODEL, "--text", "My name is Ada", "--text", "What is my name?", "--json"
    )
    assert status == 0, out
    got = events(out)
    kinds = [e["type"] for e in got]
    assert kinds[0] == "config" and kinds[-1] == "result"
    assert kinds.index("session_created") < kinds.index("user_text") < kinds.index("turn_complete")
    turns = [e for e in got if e["type"] == "turn_complete"]
    assert len(turns) == 2
    assert "Ada" in turns[1]["text"]
    result = got[-1]
    assert result["ok"] is True and result["exitStatus"] == 0 and result["turns"] == 2
    stored = list(Message.objects.filter(conversation__public_id=result["conversationId"]).order_by("created_at", "id"))
    assert [m.role for m in stored] == ["user", "model", "user", "model"]
    assert stored[0].text == "My name is Ada"
    assert "Ada" in stored[3].text
    assert all(m.live_config["sessionId"] == result["sessionId"] for m in stored)
    assert [s["id"] for s in result["stored"]] == [m.public_id for m in stored]
    row = LiveSession.objects.get(public_id=result["sessionId"])
    assert row.status == LiveSession.Status.ENDED and row.user == user


def test_a_spoken_wav_file_is_converted_sent_and_the_reply_saved(
    gemini_sim: SimHandle, user: User, tmp_path: Path
) -> None:
    """--audio: espeak-ng's 22050 Hz WAV arrives at Gemini as 16 kHz PCM; --save-audio writes the reply, 24 kHz."""
    spoken, saved = tmp_path / "hello.wav", tmp_path / "reply.wav"
    subprocess.run(["espeak-ng", "-w", str(spoken), "hello there"], check=True, capture_output=True)
    with wave.open(str(spoken)) as wav:
        assert wav.getframerate() == 22050  # so the conversion is exercised
        spoken_seconds = wav.getnframes() / wav.getframerate()

    out, status = live_test("--user", "ada", "--audio", str(spoken), "--save-audio", str(saved), "--json")

    assert status == 0, out
    got = events(out)
    [sent] = [e for e in got if e["type"] == "user_audio"]
    assert sent["seconds"] == pytest.approx(spoken_seconds, abs=0.01)
    assert [e for e in got if e["type"] == "input_transcription"], "Gemini heard it"
    result = got[-1]
    assert result["ok"] is True and result["savedAudio"] == str(saved)
    with wave.open(str(saved)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        assert wav.getnframes() / 24000 == pytest.approx(result["audioSeconds"], abs=0.01)
        assert result["audioSeconds"] > 0.5
    # What Gemini received: the file as 16 kHz PCM16 (plus the trailing silence), in frames of 40 ms.
    sent_in = [m.get("realtime_input") or m.get("realtimeInput") or {} for m in gemini_sim.client_messages()]
    audio = [m["audio"] for m in sent_in if "audio" in m]
    assert {a.get("mime_type") or a.get("mimeType") for a in audio} == {"audio/pcm;rate=16000"}
    received = sum(len(base64.urlsafe_b64decode(a["data"])) for a in audio)
    assert received / 2 / 16000 == pytest.approx(spoken_seconds + 1.0, abs=0.1)
    assert any("audioStreamEnd" in m or "audio_stream_end" in m for m in sent_in)
    user_turn, model_turn = Message.objects.filter(conversation__public_id=result["conversationId"]).order_by(
        "created_at", "id"
    )
    assert user_turn.role == "user" and user_turn.audio and user_turn.input_transcription
    assert model_turn.role == "model" and model_turn.audio


def test_interactive_answers_on_standard_input_take_the_seed_defaults(gemini_sim: SimHandle, user: User) -> None:
    """Enter at each question takes its default (the seed's); then typed lines are the turns, EOF ends it."""
    answers = "\n" * 5 + "ada\n" + "\n" + "My name is Ada\n" + "What is my name?\n"
    out, status = live_test(stdin=answers)

    assert status == 0, out
    for prompt in (
        f"Enter Live model (default: {MODEL}): ",
        "📡 Response Modalities:\n1. TEXT only\n2. AUDIO only\n3. TEXT + AUDIO (default)\n",
        "Choose modality (1-3, default: 3): ",
        "🎥 Media Resolution:\n1. LOW\n2. MEDIUM (default)\n3. HIGH\n",
        "Choose resolution (1-3, default: 2): ",
        "🎤 Voice Configuration:\n1. Default voice\n2. Custom voice settings\n",
        "Choose voice (1-2, default: 1): ",
        "Load previous messages into Live session? (y/n, default: y): ",
        "User (username, email or id): ",
        "Conversation ID (default: a new conversation): ",
    ):
        assert prompt in out
    summary = out[out.index("📋 Configuration Summary:") :]
    for line in (
        f"🤖 Model: {MODEL}",
        "📡 Response Modalities: TEXT, AUDIO",
        "🎥 Media Resolution: MEDIUM",
        "🎤 Voice: default",
        "🔗 Load Context: Yes",
        f"👤 User ID: ada ({user.pk})",
        "💬 Conversation ID: (a new conversation)",
    ):
        assert line in summary
    assert "👤 You: 🤖 Gemini: Your name is Ada." in out  # the typed line itself is echoed by a terminal
    assert "✅ The session worked: 2 turn(s) answered; 4 message(s) stored" in out
    assert Message.objects.filter(conversation__owner=user).count() == 4


def test_interactive_choices_and_an_existing_conversation_with_its_context(gemini_sim: SimHandle, user: User) -> None:
    """Typed choices (TEXT only, HIGH, a custom voice) and a conversation whose messages are loaded first."""
    conversation = ConversationFactory.create(owner=user)
    MessageFactory.create(conversation=conversation, role="user", text="My name is Grace")
    MessageFactory.create(conversation=conversation, role="model", text="Hello Grace.")
    answers = f"{MODEL}\n1\n3\n2\nkore\ny\nada\n{conversation.public_id}\nWhat is my name?\n\n"
    out, status = live_test(stdin=answers)

    assert status == 0, out
    assert "📡 Response Modalities: TEXT\n" in out and "🎥 Media Resolution: HIGH" in out
    assert "🎤 Voice: Kore" in out and f"💬 Conversation ID: {conversation.public_id}" in out
    assert "🔗 Context loaded: 2 messages as 2 turns" in out
    assert "Your name is Grace." in out
    [setup] = [m["setup"] for m in gemini_sim.client_messages() if "setup" in m]
    assert "'Kore'" in str(setup["generationConfig"]["speechConfig"])
    assert setup["generationConfig"]["mediaResolution"] == "MEDIA_RESOLUTION_HIGH"
    assert Message.objects.filter(conversation=conversation).count() == 4


def test_a_retired_model_is_refused_with_the_current_ones(gemini_sim: SimHandle, user: User) -> None:
    out, status = live_test("--user", "ada", "--model", "gemini-2.0-flash-live-001", "--text", "Hi", "--json")
    assert status == 2
    result = events(out.split("\nCommandError")[0])[-1]
    assert result["ok"] is False and result["exitStatus"] == 2
    assert "gemini-2.0-flash-live-001 was retired: Google shut it down on 2025-12-09" in result["message"]
    assert (
        f"Current Live models: gemini-3.8-live, gemini-3.8-live-extended-thinking, {MODEL} (default)"
        in (result["message"])
    )
    assert gemini_sim.records(type="connect") == []


def test_an_unknown_model_typed_is_asked_again(gemini_sim: SimHandle, user: User) -> None:
    answers = f"gemini-9-imaginary\n{MODEL}\n" + "\n" * 4 + "ada\n\nHi\n"
    out, status = live_test(stdin=answers)
    assert status == 0, out
    assert "gemini-9-imaginary is not a Live model Apsara knows. Current Live models:" in out


def test_a_bad_voice_is_refused_by_the_bridge_before_gemini(gemini_sim: SimHandle, user: User) -> None:
    out, status = live_test("--user", "ada", "--voice", "auto", "--text", "Hi")
    assert status == 2, out
    assert "Voice 'auto' is not available" in out and "Aoede" in out
    assert gemini_sim.records(type="connect") == []
    assert not LiveSession.objects.exists() and not Conversation.objects.exists()


def test_an_unreachable_gemini_names_the_fix(gemini_sim: SimHandle, user: User, settings: Any) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.GEMINI_BASE_URL = f"https://127.0.0.1:{port}"
    out, status = live_test("--user", "ada", "--text", "Hi")
    assert status == 1, out
    assert "❌ The live test failed: Gemini cannot be reached right now." in out
    assert f"cause: Nothing answered at 127.0.0.1:{port}" in out
    assert f"fix: Check GEMINI_BASE_URL (https://127.0.0.1:{port})" in out
    row = LiveSession.objects.get()
    assert row.status == LiveSession.Status.FAILED and row.last_error_code == "UPSTREAM_UNAVAILABLE"


def test_an_unknown_user_is_refused(gemini_sim: SimHandle, user: User) -> None:
    out, status = live_test("--user", "nobody", "--text", "Hi")
    assert status == 2
    assert "No user 'nobody'" in out
    out, status = live_test("--no-input", "--text", "Hi")
    assert status == 2 and "A user is needed" in out


def test_an_answer_that_does_not_come_in_time_fails_and_ends_the_session(gemini_sim: SimHandle, user: User) -> None:
    gemini_sim.set_options(latency=5, realtime_factor=1)
    out, status = live_test("--user", "ada", "--text", "Hi", "--timeout", "1", "--json")
    assert status == 1, out
    result = events(out.split("\nCommandError")[0])[-1]
    assert result == {
        "type": "result",
        "ok": False,
        "exitStatus": 1,
        "code": "TIMEOUT",
        "message": "No answer within 1 s.",
    }
    row = LiveSession.objects.get()
    assert row.status == LiveSession.Status.ENDED  # not left resumable
