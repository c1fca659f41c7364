"""Shared fixtures: audio storage in a temp dir (or another backend), users, logged-in API clients."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django.core.files.storage import Storage
    from rest_framework.test import APIClient

    from conversations.models import User


def use_audio_storage(settings: Any, monkeypatch: pytest.MonkeyPatch, config: dict[str, Any]) -> Storage:
    """Point the "audio" storage (and Message.audio, which resolved it at import) at `config` for one test."""
    from django.core.files.storage import storages

    from conversations.models import Message

    settings.STORAGES = {**settings.STORAGES, "audio": config}
    storage = storages["audio"]
    monkeypatch.setattr(Message._meta.get_field("audio"), "storage", storage)
    return storage


@pytest.fixture(autouse=True)
def _media_storage(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep audio files in a per-test temp dir (local storage) unless a test switches to S3."""
    settings.MEDIA_ROOT = tmp_path / "media"
    use_audio_storage(
        settings,
        monkeypatch,
        {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media/"},
        },
    )


# Storage backends the audio save/download tests run against. The S3 server fixture adds "s3".
AUDIO_STORAGE_BACKENDS = ["local"]


@pytest.fixture(params=AUDIO_STORAGE_BACKENDS)
def audio_storage_backend(request: pytest.FixtureRequest) -> str:
    """Name the audio storage under test ("local": the autouse temp dir)."""
    return request.param


@pytest.fixture
def user(db: None) -> User:
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def other_user(db: None) -> User:
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def staff_user(db: None) -> User:
    from tests.factories import UserFactory

    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def api_client(user: User) -> APIClient:
    """An API client logged in as `user` (CSRF checks off, as for DRF's test client)."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def anonymous_client() -> APIClient:
    from rest_framework.test import APIClient

    return APIClient()
