"""Shared fixtures: audio storage in a temp dir or on a real S3 server (SeaweedFS), users, logged-in API clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import hypothesis_profiles  # noqa: F401  (registers and loads the Hypothesis profiles)
from tests.services import SeaweedS3

# The Gemini simulator fixtures every test directory uses (gemini_sim, gemini_sim_state, gemini_sim_options).
pytest_plugins = ["tests.gemini_fixtures"]

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
def _media_storage(
    request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Keep audio files in a per-test temp dir (local storage) unless a test switches to S3.

    A test parametrized by ``audio_storage_backend`` gets its storage here, before any other fixture
    saves audio, whatever order the test lists its fixtures in.
    """
    settings.MEDIA_ROOT = tmp_path / "media"
    use_audio_storage(
        settings,
        monkeypatch,
        {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media/"},
        },
    )
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("audio_storage_backend") == "s3":
        request.getfixturevalue("s3_audio_storage")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """Run a real S3 server (SeaweedFS from PyPI) on free loopback ports for the session, with a bucket.

    It needs nothing from outside, so it always runs: if it cannot start, the tests that need it fail.
    """
    server = SeaweedS3(directory=tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
    except RuntimeError as error:
        pytest.fail(f"SeaweedFS could not start: {error}")
    yield server
    server.stop()


@pytest.fixture
def s3_audio_storage(settings: Any, monkeypatch: pytest.MonkeyPatch, s3_server: SeaweedS3) -> Storage:
    """Switch the audio storage to django-storages' S3 backend on the SeaweedFS server, for one test."""
    return use_audio_storage(
        settings, monkeypatch, {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_server.storage_options()}
    )


# Storage backends the audio save/download tests run against.
AUDIO_STORAGE_BACKENDS = ["local", "s3"]


@pytest.fixture(params=AUDIO_STORAGE_BACKENDS)
def audio_storage_backend(request: pytest.FixtureRequest) -> str:
    """Run a test once per audio storage: "local" (temp dir) and "s3" (SeaweedFS); `_media_storage` switches it."""
    return str(request.param)


@pytest.fixture
def user(db: None) -> User:
    from tests.factories import UserFactory

    return UserFactory.create()


@pytest.fixture
def other_user(db: None) -> User:
    from tests.factories import UserFactory

    return UserFactory.create()


@pytest.fixture
def staff_user(db: None) -> User:
    from tests.factories import UserFactory

    return UserFactory.create(is_staff=True, is_superuser=True)


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


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Give each test its own channel-layer instance.

    channels_redis keeps asyncio locks (per channel prefix) in the layer instance, bound to the event loop that
    first waited on them; every async test and every ``async_to_sync`` call runs its own loop. A lock left held in
    one test's loop (a receive of ``live.end`` done through async_to_sync, say) made every later socket of the run
    fail with "bound to a different event loop". Processes in production keep one loop, so this is the tests' own.
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
