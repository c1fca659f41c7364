"""GET /api/files/<fileId>/download: audio for its owner and staff only, on every configured storage."""

from __future__ import annotations

import urllib.parse
import urllib.request

import pytest

from conversations import services
from conversations.audio import pcm16_to_wav
from conversations.models import Message

pytestmark = pytest.mark.django_db

AUDIO = pcm16_to_wav(bytes(range(256)) * 50, sample_rate=16_000)


@pytest.fixture
def spoken(user) -> Message:
    conversation = services.conversation_create(owner=user)
    return services.message_create(
        conversation=conversation, role="user", message_type="live", audio=AUDIO, input_transcription="hello"
    )


def download(client, message: Message, query: str = "") -> tuple[bytes, str, str]:
    """Fetch a message's audio the way a browser would (following S3's presigned redirect)."""
    response = client.get(f"/api/files/{message.public_id}/download{query}")
    if response.status_code == 302:
        location = response["Location"]
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        assert "X-Amz-Signature" in params and "X-Amz-Expires" in params, location  # presigned, short-lived
        with urllib.request.urlopen(location, timeout=10) as remote:
            return remote.read(), remote.headers["Content-Type"], remote.headers.get("Content-Disposition", "")
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content), response["Content-Type"], response["Content-Disposition"]


def test_owner_downloads_the_audio(api_client, spoken, audio_storage_backend) -> None:
    """The owner gets the WAV bytes with its content type, inline by default and as an attachment on request."""
    data, content_type, disposition = download(api_client, spoken)
    assert data == AUDIO.data
    assert content_type == "audio/wav"
    assert disposition.startswith("inline")
    _, _, disposition = download(api_client, spoken, "?download=1")
    assert disposition.startswith("attachment")
    assert f"{spoken.public_id}.wav" in disposition


def test_staff_download_anyones_audio(client, staff_user, spoken, audio_storage_backend) -> None:
    """Staff may hear any recording (the admin's player uses this endpoint)."""
    client.force_login(staff_user)
    data, _, _ = download(client, spoken)
    assert data == AUDIO.data


def test_someone_else_gets_404(client, other_user, spoken, audio_storage_backend) -> None:
    """Another (non-staff) user cannot tell the file exists."""
    client.force_login(other_user)
    response = client.get(f"/api/files/{spoken.public_id}/download")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_message_without_audio_is_404(api_client, user) -> None:
    """A message that has no recording has no file."""
    conversation = services.conversation_create(owner=user)
    message = services.message_create(conversation=conversation, role="user", text="typed")
    assert api_client.get(f"/api/files/{message.public_id}/download").status_code == 404


def test_file_missing_from_local_storage_is_404(api_client, spoken) -> None:
    """A row whose file was removed from disk answers 404, not a server error."""
    spoken.audio.storage.delete(spoken.audio.name)
    response = api_client.get(f"/api/files/{spoken.public_id}/download")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "The audio file is missing."


def test_anonymous_download_is_401(anonymous_client, spoken) -> None:
    """Downloads need a login."""
    assert anonymous_client.get(f"/api/files/{spoken.public_id}/download").status_code == 401


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-3", 0, 3), ("bytes=40-", 40, None), ("bytes=-4", -4, None), ("bytes=10-99999999", 10, None)],
)
def test_local_download_serves_byte_ranges(api_client, spoken, header, first, last) -> None:
    """Players seek with Range requests: a single range is answered 206 with the right bytes."""
    response = api_client.get(f"/api/files/{spoken.public_id}/download", HTTP_RANGE=header)
    assert response.status_code == 206
    size = len(AUDIO.data)
    expected = AUDIO.data[first : (last + 1 if last is not None else None)]
    assert response.content == expected
    start = first if first >= 0 else size + first
    assert response["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{size}"
    assert response["Content-Type"] == "audio/wav"


def test_local_download_refuses_an_unsatisfiable_range(api_client, spoken) -> None:
    """A range past the end is 416 with the file's size."""
    response = api_client.get(f"/api/files/{spoken.public_id}/download", HTTP_RANGE="bytes=99999999-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(AUDIO.data)}"


def test_full_download_advertises_ranges(api_client, spoken) -> None:
    """A plain download says ranges are accepted, so players know they can seek."""
    response = api_client.get(f"/api/files/{spoken.public_id}/download")
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(AUDIO.data))
