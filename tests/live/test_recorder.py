"""The recorder on its own: turn segmentation, trimming, spilling long turns to disk, flushing on close."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from conversations.models import Message
from live.recorder import Recorder, pcm_rms
from live.turns import PcmBuffer
from tests.factories import ConversationFactory
from tests.live.conftest import frames, silence, speech

pytestmark = pytest.mark.django_db(transaction=True)


def test_pcm_buffer_spills_to_disk_and_truncates():
    buffer = PcmBuffer(b"ab", memory_bytes=16)
    for _ in range(10):
        buffer.append(b"0123456789")
    assert len(buffer) == 102
    assert buffer._file._rolled  # type: ignore[attr-defined]  # on disk now
    buffer.truncate(12)
    buffer.append(b"XY")
    assert buffer.read() == b"ab0123456789XY"


def test_rms_tells_speech_from_silence():
    assert pcm_rms(silence(0.04)) == 0
    assert pcm_rms(speech(0.04)) > 1000
    assert pcm_rms(b"\x01") == 0


async def make_recorder(**kwargs) -> tuple[Recorder, list[Message]]:
    conversation = await database_sync_to_async(ConversationFactory)()
    saved: list[Message] = []

    async def on_saved(message: Message) -> None:
        saved.append(message)

    recorder = Recorder(conversation=conversation, live_config={"model": "m"}, on_saved=on_saved, **kwargs)
    recorder.start()
    return recorder, saved


async def test_silence_alone_is_not_a_turn_and_speech_is_trimmed_to_what_was_said():
    recorder, saved = await make_recorder(pad_ms=200)
    for frame in frames(silence(2.0) + speech(0.6) + silence(0.4) + speech(0.4) + silence(3.0)):
        recorder.user_audio(frame)
    recorder.model_started()
    await recorder.model_audio(b"\x10\x00" * 2400)
    recorder.output_transcription("Hi.")
    await recorder.turn_complete()
    await recorder.close()
    user, model = saved
    # 0.2 s before the speech, the speech with its pause (1.4 s), 0.2 s after; not the 5 s of silence around it.
    assert user.audio_duration == pytest.approx(1.8, abs=0.041)
    assert model.audio_duration == pytest.approx(0.1) and model.text == "Hi."


async def test_close_flushes_partial_turns_and_flags_the_model_cut_off():
    recorder, saved = await make_recorder()
    for frame in frames(speech(0.5)):
        recorder.user_audio(frame)
    recorder.input_transcription("(0.5 seconds of speech)")
    await recorder.model_audio(b"\x10\x00" * 24000)  # the model started answering...
    for frame in frames(speech(0.3)):  # ...and the user talks over it; then the socket goes
        recorder.user_audio(frame)
    await recorder.close()
    assert [(m.role, m.interrupted) for m in saved] == [("user", False), ("model", True), ("user", False)]
    assert saved[0].input_transcription == "(0.5 seconds of speech)"
    assert saved[1].audio_duration == pytest.approx(1.0)
    assert saved[2].audio_duration == pytest.approx(0.3)  # the speech over the model (nothing came after it)
    stored = await database_sync_to_async(list)(Message.objects.order_by("created_at", "id"))
    assert [m.role for m in stored] == ["user", "model", "user"]


async def test_a_save_that_committed_before_failing_is_not_stored_twice(monkeypatch):
    """The database commits, then the connection fails before the answer arrives: the retry finds the turn by the
    id chosen for it before the first attempt, and announces it once."""
    from live import turns as turns_module

    real = turns_module.message_create
    calls = []

    def commit_then_fail(**fields):
        calls.append(fields["public_id"])
        message = real(**fields)
        if len(calls) == 1:
            raise ConnectionError("server closed the connection unexpectedly")
        return message

    monkeypatch.setattr(turns_module, "message_create", commit_then_fail)
    recorder, saved = await make_recorder()
    await recorder.typed_text("Hello there")
    await recorder.close()
    stored = await database_sync_to_async(list)(Message.objects.all())
    assert [m.text for m in stored] == ["Hello there"]
    assert calls == [stored[0].public_id]  # the retry did not insert again
    assert [m.public_id for m in saved] == [stored[0].public_id]


async def test_a_repeated_transcription_of_replayed_audio_is_not_a_new_turn():
    recorder, saved = await make_recorder()
    for frame in frames(speech(0.5) + silence(1.0)):
        recorder.user_audio(frame)
    recorder.input_transcription("(0.5 seconds of speech)")
    recorder.expect_repeated_transcription()  # a reconnect replays the audio: Gemini transcribes it again
    recorder.input_transcription("(0.5 seconds of speech)")
    await recorder.model_audio(b"\x10\x00" * 2400)
    await recorder.turn_complete()
    recorder.input_transcription("(0.7 seconds of speech)")  # the next turn's is recorded again
    await recorder.close()
    assert [(m.role, m.input_transcription) for m in saved] == [
        ("user", "(0.5 seconds of speech)"),
        ("model", ""),
        ("user", "(0.7 seconds of speech)"),
    ]


async def test_a_turn_the_database_keeps_refusing_is_retried_then_counted_lost(monkeypatch, caplog):
    """Three attempts with backoff, then the turn is counted as failed and logged; the recorder goes on."""
    from live import turns as turns_module

    attempts = []

    def always_fail(**fields):
        attempts.append(fields["public_id"])
        raise ConnectionError("the database is gone")

    monkeypatch.setattr(turns_module, "SAVE_BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr(turns_module, "message_create", always_fail)
    recorder, saved = await make_recorder()
    await recorder.typed_text("Hello there")
    await recorder.close()
    assert len(attempts) == turns_module.SAVE_ATTEMPTS and len(set(attempts)) == 1  # one idempotency key
    assert (recorder.writer.saved, recorder.writer.failed, saved) == (0, 1, [])
    assert "failed 3 times; it is not stored" in caplog.text
