"""Fixtures for the conversations tests: the real Gemini simulator behind apsara.gemini."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def gemini_sim_handle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start one gemini_sim for the session (its own CA and state dir), as fast as it goes."""
    from gemini_sim import start_background

    handle = start_background(tmp_path_factory.mktemp("gemini_sim"), host="127.0.0.1", port=0, realtime_factor=0)
    yield handle
    handle.stop()


@pytest.fixture
def gemini_sim(gemini_sim_handle: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Make apsara.gemini's embedded simulator this one, with fresh options, faults and records per test."""
    import apsara.gemini

    monkeypatch.setattr(apsara.gemini, "_embedded_simulator", lambda: gemini_sim_handle)
    saved = dataclasses.asdict(gemini_sim_handle.options)
    gemini_sim_handle.clear_records()
    yield gemini_sim_handle
    gemini_sim_handle.simulator.faults.clear()
    gemini_sim_handle.set_options(**saved)
