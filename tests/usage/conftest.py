"""The live fixtures (logged-in sockets on the real ASGI app) for the usage tests."""

from tests.live.conftest import _quick_upstream_retries, connect, live_user  # noqa: F401
