"""A pytest plugin that points google-genai's own live tests, run unmodified from the installed wheel, at gemini_sim.

Their conftest builds the ``client`` the way ``--mode=api`` does, from the environment (``GOOGLE_API_KEY``,
``GOOGLE_CLOUD_PROJECT``, application default credentials) and from their ``http_options`` fixture, which decides the
API version (``v1beta`` for the Gemini API, the SDK default for Vertex). This plugin adds only where the service is and
whom to trust: the simulator's base URL and CA (``GEMINI_SIM_BASE_URL``, ``GEMINI_SIM_CA_FILE``), per client, as
``gemini.client`` does. Loaded with ``-p tests.gemini_sim.google_live_plugin`` by ``test_google_live_tests.py``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Generator
from typing import Any

import pytest
from google.genai import types


def trusting_simulator(http_options: Any) -> Any:
    """The tests' own http options (their API version kept), trusting the simulator's CA for this client only."""
    ctx = ssl.create_default_context(cafile=os.environ["GEMINI_SIM_CA_FILE"])
    update: dict[str, Any] = {"client_args": {"verify": ctx}, "async_client_args": {"verify": ctx, "ssl": ctx}}
    if http_options is None:
        return types.HttpOptions(**update)
    if isinstance(http_options, dict):
        return {**http_options, **update}
    return http_options.model_copy(update=update)


def point_at_simulator(client: Any) -> Any:
    """Send the built client's requests to the simulator instead of googleapis.com.

    Not through ``HttpOptions.base_url``: on Vertex a custom base URL without an explicit project and location (their
    conftest takes both from the environment) is treated as an API-gateway proxy, which changes the Live URL and drops
    OAuth. So the base URL is changed after the client is built, as the one private attribute this plugin touches
    (the test using this plugin fails if an SDK upgrade renames it).
    """
    client._api_client._http_options.base_url = os.environ["GEMINI_SIM_BASE_URL"]
    return client


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """Adjust what their ``http_options`` and ``client`` fixtures produced, before any test uses them."""
    result = yield
    if fixturedef.argname == "http_options":
        result = trusting_simulator(result)
        # getfixturevalue() reads cached_result, not the hook's return value.
        fixturedef.cached_result = (result, fixturedef.cache_key(request), None)  # type: ignore[arg-type]
    elif fixturedef.argname == "client":
        point_at_simulator(result)
    return result
