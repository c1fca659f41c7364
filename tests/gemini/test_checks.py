"""gemini.checks: Gemini settings the live bridge cannot work with are refused at start-up, by every entry point."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from gemini import checks
from gemini.checks import gemini_live_settings

ROOT = Path(__file__).resolve().parents[2]
WHY = "but the Gemini API serves the Live WebSocket only on v1beta (v1alpha for ephemeral tokens)"


@pytest.mark.parametrize("version", ["", "v1beta", "v1alpha"])
def test_the_live_api_versions_the_gemini_api_serves_pass(settings, version):
    settings.GEMINI_LIVE_API_VERSION = version
    assert gemini_live_settings() == []


@pytest.mark.parametrize("version", ["v1", "v1beta1", "beta"])
def test_any_other_live_api_version_is_an_error_that_says_why(settings, version):
    settings.GEMINI_LIVE_API_VERSION = version
    [error] = gemini_live_settings()
    assert error.id == "live.E001"
    assert f"GEMINI_LIVE_API_VERSION is {version!r}, {WHY}" in error.msg
    assert "GEMINI_API_VERSION applies to REST only" in error.msg
    with pytest.raises(SystemCheckError, match=r"\(live\.E001\)"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_a_default_live_model_talk_cannot_use_is_an_error(settings):
    settings.GEMINI_LIVE_MODEL = "gemini-3.5-transcribe-live"
    [error] = gemini_live_settings()
    assert error.id == "live.E002"
    assert error.msg.startswith("GEMINI_LIVE_MODEL: gemini-3.5-transcribe-live cannot hold a conversation")
    settings.GEMINI_LIVE_MODEL = "gemini-9-unknown"  # not catalogued: tried, and Gemini says if it does not exist
    assert gemini_live_settings() == []


ENTRY_POINTS = {
    "apsara.serve": ["-m", "apsara.serve", "--port", "{port}"],
    "runserver": ["manage.py", "runserver", "--noreload", "127.0.0.1:{port}"],
    "manage.py": ["manage.py", "gemini_check", "--skip-live"],
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_entry_point_refuses_to_start_with_live_on_v1(entry, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apsara.settings.production",
        "DJANGO_SECRET_KEY": "test-secret",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
        "GEMINI_SIM_STATE_DIR": str(tmp_path / "sim"),
        "GEMINI_LIVE_API_VERSION": "v1",
    }
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A server that does not refuse keeps serving: the timeout then fails the test.
    done = subprocess.run(
        [sys.executable, *(arg.format(port=port) for arg in ENTRY_POINTS[entry])],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SystemCheckError" in done.stderr and "(live.E001)" in done.stderr
    assert f"GEMINI_LIVE_API_VERSION is 'v1', {WHY}" in done.stderr


@pytest.mark.parametrize("value", ["on", "ALLOWED", "", "yes"])
def test_a_direct_mode_that_means_nothing_is_refused(settings, value):
    settings.LIVE_DIRECT_MODE = value
    [error] = checks.direct_mode_settings()
    assert error.id == "live.E003" and repr(value) in error.msg


def test_direct_mode_allowed_on_vertex_is_a_warning(settings):
    settings.LIVE_DIRECT_MODE = "allowed"
    settings.GEMINI_API_KEY = ""
    settings.GOOGLE_GENAI_USE_VERTEXAI = True
    [warning] = checks.direct_mode_settings()
    assert warning.id == "live.W001" and "Vertex AI" in warning.msg
    settings.GOOGLE_GENAI_USE_VERTEXAI = False
    assert checks.direct_mode_settings() == []
