"""Audio files on the configured storage: local disk and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import io
import re
import wave

import pytest
from django.core.files.base import ContentFile

from conversations.models import Message
from tests.factories import MessageFactory
from tests.services import http_get

pytestmark = pytest.mark.django_db


def wav_bytes(seconds: float = 0.25, rate: int = 16000) -> bytes:
    """Return a small mono PCM16 WAV file (a rising ramp, so the bytes are not all zero)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        frames = int(seconds * rate)
        wav.writeframes(b"".join((i % 32768).to_bytes(2, "little", signed=True) for i in range(frames)))
    return buffer.getvalue()


def test_audio_saved_under_seed_key_and_read_back(audio_storage_backend: str) -> None:
    """Audio is stored under audio/{userId}/{conversationId}/{timestamp}_{messageId}.wav and reads back intact."""
    message = MessageFactory.create(message_type=Message.MessageType.LIVE, audio_mime_type="audio/wav")
    data = wav_bytes()
    message.audio.save("ignored.wav", ContentFile(data), save=True)
    conversation = message.conversation
    pattern = rf"audio/{conversation.owner_id}/{conversation.public_id}/\d+_{message.public_id}\.wav"
    assert message.audio.name is not None and re.fullmatch(pattern, message.audio.name)
    stored = Message.objects.get(pk=message.pk)
    with stored.audio.open("rb") as handle:
        assert handle.read() == data
    storage = Message._meta.get_field("audio").storage
    expected = "S3Storage" if audio_storage_backend == "s3" else "FileSystemStorage"
    assert type(storage).__name__ == expected


def test_s3_audio_url_is_presigned_and_serves_the_bytes(s3_audio_storage) -> None:
    """On S3 the storage URL is a short-lived presigned URL that really serves the file."""
    message = MessageFactory.create(message_type=Message.MessageType.LIVE)
    data = wav_bytes(0.1)
    message.audio.save("x.wav", ContentFile(data), save=True)
    url = message.audio.url
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
    assert http_get(url) == (200, data)
    unsigned = url.split("?", 1)[0]
    assert http_get(unsigned)[0] == 403
