"""Fixtures: simulator instances (fast pacing) and google-genai clients that trust them per client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import types

from gemini_sim import SimHandle, start_background

FAST: dict[str, Any] = {"realtime_factor": 0, "latency": 0, "stream_delay": 0, "audio_chunk_ms": 200}


@pytest.fixture(scope="module")
def sim_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim-state")


@pytest.fixture(scope="module")
def sim(sim_state: Path) -> Iterator[SimHandle]:
    """A fast simulator shared by a test module."""
    handle = start_background(sim_state, **FAST)
    yield handle
    handle.stop()


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., SimHandle]]:
    """Start simulators with per-test options (stopped after the test)."""
    started: list[SimHandle] = []

    def make(**options: Any) -> SimHandle:
        handle = start_background(tmp_path / "state", **{**FAST, **options})
        started.append(handle)
        return handle

    yield make
    for handle in started:
        handle.stop()


def http_options(sim: SimHandle, **extra: Any) -> types.HttpOptions:
    """Trust the simulator's CA for this client only (the way gemini.client does)."""
    ctx = sim.ssl_context
    return types.HttpOptions(
        base_url=sim.base_url, client_args={"verify": ctx}, async_client_args={"verify": ctx, "ssl": ctx}, **extra
    )


def client_for(
    sim: SimHandle, api_key: str = "test-key", api_version: str | None = "v1beta", **extra: Any
) -> genai.Client:
    """A Gemini Developer API client pointed at the simulator, on ``v1beta`` (the Gemini API serves Live only there;
    ``api_version=None`` keeps the SDK's default, ``v1``)."""
    if api_version is not None:
        extra["api_version"] = api_version
    return genai.Client(api_key=api_key, http_options=http_options(sim, **extra))


def vertex_client_for(sim: SimHandle, token: str | None = None) -> genai.Client:
    """A Vertex client (OAuth Bearer) pointed at the simulator, with ``token`` or one the simulator issued."""
    from google.oauth2.credentials import Credentials

    token = token or sim.access_token()
    return genai.Client(
        vertexai=True,
        project="sim-project",
        location="us-central1",
        credentials=Credentials(token=token),
        http_options=http_options(sim),
    )


def text_of(response: types.GenerateContentResponse) -> str:
    """The response's text (the SDK types it optional: a reply without text parts has none); the test expects some."""
    text = response.text
    assert text is not None
    return text
