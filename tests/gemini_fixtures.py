"""The Gemini simulator for tests that run the app: one pytest plugin (registered in ``tests/conftest.py``).

The app is pointed at a simulator the public way, through settings, as an operator points it at a stand-alone
``python -m gemini_sim``: with neither ``GEMINI_API_KEY`` nor Vertex set, ``GEMINI_BASE_URL`` and ``GEMINI_CA_FILE``
name the simulator the client factory uses (``gemini.client.simulator_address``). pytest-django's ``settings``
fixture undoes it after each test, and the app's other threads (the browser tests' server) see it too.

``tests/gemini_sim`` tests the simulator on its own, without the app, with its own fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gemini_sim import SimHandle, start_background

# As fast as it goes: no pacing of reply audio and no latency before a reply.
FAST: dict[str, Any] = {"realtime_factor": 0, "latency": 0}


def use_simulator(settings: Any, sim: SimHandle) -> None:
    """Point the app at ``sim`` (simulator mode), through the settings the client factory reads."""
    settings.GEMINI_API_KEY = ""
    settings.GOOGLE_GENAI_USE_VERTEXAI = False
    settings.GEMINI_BASE_URL = sim.base_url
    settings.GEMINI_CA_FILE = str(sim.ca_path)


def use_vertex(settings: Any, sim: SimHandle, credentials_file: Any = "") -> None:
    """Point the app at ``sim`` in Vertex mode (project sim-project, us-central1), authenticated by
    ``credentials_file`` (GOOGLE_APPLICATION_CREDENTIALS: a service-account or authorized-user file from
    ``sim.service_account_file`` / ``sim.authorized_user_file``) with google-auth's real credential classes."""
    settings.GEMINI_API_KEY = ""
    settings.GOOGLE_GENAI_USE_VERTEXAI = True
    settings.GOOGLE_CLOUD_PROJECT = "sim-project"
    settings.GOOGLE_CLOUD_LOCATION = "us-central1"
    settings.GOOGLE_APPLICATION_CREDENTIALS = str(credentials_file)
    settings.GEMINI_BASE_URL = sim.base_url
    settings.GEMINI_CA_FILE = str(sim.ca_path)


@pytest.fixture(scope="session")
def gemini_sim_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state dir (and so one CA) for every simulator of the run: the CA is made once."""
    return tmp_path_factory.mktemp("gemini_sim")


@pytest.fixture
def gemini_sim_options() -> dict[str, Any]:
    """The options ``gemini_sim`` starts with (``FAST``); a test directory overrides this to pace it otherwise."""
    return dict(FAST)


@pytest.fixture
def gemini_sim(gemini_sim_state: Path, gemini_sim_options: dict[str, Any], settings: Any) -> Iterator[SimHandle]:
    """A simulator of this test's own (fresh options, faults, sessions and records), with the app pointed at it."""
    sim = start_background(gemini_sim_state, host="127.0.0.1", port=0, **gemini_sim_options)
    use_simulator(settings, sim)
    yield sim
    sim.stop()
