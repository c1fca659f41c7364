"""google-genai's own live integration tests (``google/genai/tests/live_api`` in the wheel), unmodified, against
gemini_sim, for both backends: the Gemini API with a key and Vertex with OAuth (application default credentials whose
tokens come from the simulator's ``/token``). An SDK upgrade that brings new live tests is checked here automatically.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import google.genai

from gemini_sim import start_background

ROOT = Path(__file__).resolve().parents[2]
SDK_TESTS = Path(google.genai.__file__).parent / "tests"


def test_google_genai_live_tests_pass_against_the_simulator(tmp_path: Path) -> None:
    assert (SDK_TESTS / "live_api" / "test_live_session.py").is_file(), "the google-genai wheel ships its live tests"
    sim = start_background(tmp_path / "state", realtime_factor=0, latency=0)
    try:
        adc = sim.service_account_file(tmp_path / "service-account.json")
        (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        report = tmp_path / "report.xml"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GEMINI_", "DJANGO_"))}
        env.update(
            GOOGLE_API_KEY="sim-api-key",
            GOOGLE_CLOUD_PROJECT="sim-project",
            GOOGLE_CLOUD_LOCATION="global",  # as Google's own wrapper sets it; their conftest pins us-central1
            GOOGLE_APPLICATION_CREDENTIALS=str(adc),
            REQUESTS_CA_BUNDLE=str(sim.ca_path),  # google-auth's token refresh (requests) trusts the simulator
            GEMINI_SIM_BASE_URL=sim.base_url,
            GEMINI_SIM_CA_FILE=str(sim.ca_path),
        )
        run = subprocess.run(
            [sys.executable, "-m", "pytest", str(SDK_TESTS / "live_api"), "--mode=api",
             "-p", "tests.gemini_sim.google_live_plugin", "-p", "no:django", "-p", "no:cacheprovider",
             "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(SDK_TESTS), "--confcutdir", str(SDK_TESTS),
             f"--junitxml={report}", "-q", "-rA"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        output = run.stdout + run.stderr
        assert run.returncode == 0, output
        suite = ET.parse(report).getroot().find("testsuite")
        assert suite is not None, output
        counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
        assert counts["tests"] >= 7 and counts["failures"] == counts["errors"] == counts["skipped"] == 0, output
        paths = {r["path"] for r in sim.records(type="connect")}
        assert paths == {"gemini:v1beta", "vertex:v1beta1"}, paths  # Gemini API on v1beta; Vertex on its default
        bearers = {r["headers"]["authorization"] for r in sim.records(type="connect", path="vertex:v1beta1")}
        issued = {f"Bearer {token}" for token in sim.simulator.access_tokens}
        assert bearers and bearers <= issued  # access tokens the simulator's /token issued for the key file
        assert sim.records(type="oauth", grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer")
    finally:
        sim.stop()
