"""``manage.py gemini_check`` against gemini_sim: success, and each real-world failure explained with cause and fix."""

from __future__ import annotations

import json
import socket
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.gemini_fixtures import use_vertex

KEY = "test-key-0123456789-wxyz"


def check(*args: str) -> tuple[str, int]:
    """Run gemini_check; return what it printed and its exit code (1 when it raised CommandError)."""
    out = StringIO()
    try:
        call_command("gemini_check", *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return out.getvalue() + f"\n{error}", error.returncode
    return out.getvalue(), 0


def check_json(*args: str) -> tuple[dict[str, Any], int]:
    out, code = check("--json", *args)
    return json.loads(out[: out.rindex("}") + 1]), code


def step(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["steps"] if s["name"] == name)


@pytest.fixture
def api_key_sim(gemini_sim: Any, settings: Any) -> Any:
    """API-key mode, with GEMINI_BASE_URL and GEMINI_CA_FILE pointing at the per-test simulator."""
    settings.GEMINI_API_KEY = KEY
    settings.GEMINI_BASE_URL = gemini_sim.base_url
    settings.GEMINI_CA_FILE = str(gemini_sim.ca_path)
    settings.GEMINI_API_VERSION = ""
    return gemini_sim


def test_every_step_passes_against_the_simulator_with_a_spoken_turn(gemini_sim):
    report, code = check_json("--audio")
    assert code == 0 and report["ok"]
    assert [s["name"] for s in report["steps"]] == [
        "configuration",
        "rest.models",
        "rest.generate",
        "live.connect",
        "live.text",
        "live.audio",
    ]
    assert report["connection"]["mode"] == "simulator"
    assert [c["path"] for c in gemini_sim.records(type="connect")] == ["gemini:v1beta"]
    models = step(report, "rest.models")["details"]
    assert "gemini-3.1-flash-live-preview" in models["liveModels"]
    assert "gemini-2.5-flash" in models["textModels"] and "gemini-2.5-flash" not in models["liveModels"]
    assert step(report, "rest.generate")["details"]["reply"]
    text = step(report, "live.text")["details"]
    assert text["modality"] == "AUDIO" and text["sampleRate"] == 24_000
    assert text["audioBytes"] > 0 and text["audioSeconds"] == round(text["audioBytes"] / 2 / 24_000, 3)
    assert text["timeToFirstByteMs"] is not None and text["text"]
    spoken = step(report, "live.audio")["details"]
    assert spoken["audioBytes"] > 0 and spoken["sentAudio"] == {"seconds": 2.0, "sampleRate": 16_000}
    assert "seconds of speech" in spoken["inputTranscription"]
    # The spoken turn went up as 16 kHz PCM realtime input.
    inputs = [m.get("realtimeInput") or m.get("realtime_input") or {} for m in gemini_sim.client_messages()]
    audio = [i["audio"] for i in inputs if "audio" in i]
    assert len(audio) == 50 and {a.get("mimeType") or a.get("mime_type") for a in audio} == {"audio/pcm;rate=16000"}


def test_api_key_mode_shows_endpoints_versions_and_auth_but_never_the_key(api_key_sim, monkeypatch):
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")  # the SDK's default, pinned whatever the SDK version
    out, code = check("-v", "2")
    assert code == 0, out
    assert "Mode:        api_key" in out
    assert f"REST:        {api_key_sim.base_url}/v1/models (API version v1, SDK default)" in out
    live_path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    assert (
        f"Live:        wss://{api_key_sim.base_url.removeprefix('https://')}{live_path} (API version v1beta, the "
        "Gemini API serves Live only on v1beta)"
    ) in out
    assert "x-goog-api-key" in out and "…wxyz" in out
    assert KEY not in out
    assert api_key_sim.records(type="http", path="/v1/models")  # REST stays on the SDK's default
    connect = api_key_sim.records(type="connect")[0]
    assert connect["path"] == "gemini:v1beta"
    assert {k.lower(): v for k, v in connect["headers"].items()}["x-goog-api-key"] == KEY
    assert "key" not in connect["query"]
    assert "All checks passed." in out


def test_a_base_url_with_a_path_is_a_404_at_the_handshake_explained(api_key_sim, settings):
    settings.GEMINI_BASE_URL = api_key_sim.base_url + "/v1beta"
    out, code = check("--skip-rest")
    assert code == 1
    assert "HTTP 404 at the WebSocket handshake: wrong endpoint path or API version: the SDK uses wss://" in out
    assert "/v1beta/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent" in out
    assert "The Gemini API serves Live only on v1beta (v1alpha for ephemeral tokens)" in out
    assert (
        f"check GEMINI_BASE_URL ({api_key_sim.base_url}/v1beta) and GEMINI_LIVE_API_VERSION (unset, so v1beta)" in out
    )
    assert "GEMINI_BASE_URL has a path (/v1beta)" in out
    assert api_key_sim.records(type="ws_rejected")[0]["status"] == 404


def test_a_wrong_rest_api_version_is_a_404_explained_and_live_stays_on_v1beta(api_key_sim, settings):
    settings.GEMINI_API_VERSION = "v2"
    report, code = check_json()
    assert code == 1
    for name in ("rest.models", "rest.generate"):
        failed = step(report, name)
        assert failed["status"] == "failed" and failed["cause"] == "endpoint_not_found"
        assert "HTTP 404 for the REST URL: wrong endpoint path or API version" in failed["explanation"]
        assert "(API version v2)" in failed["explanation"] and "GEMINI_API_VERSION (v2)" in failed["explanation"]
        assert "GEMINI_API_VERSION to v1beta" in failed["fix"]
    assert step(report, "live.connect")["status"] == step(report, "live.text")["status"] == "ok"
    assert report["connection"]["api_version"] == "v2"
    assert report["connection"]["live_api_version"] == "v1beta"
    assert [c["path"] for c in api_key_sim.records(type="connect")] == ["gemini:v1beta"]


@pytest.mark.parametrize(
    ("live", "path"), [("", "gemini:v1beta"), ("v1beta", "gemini:v1beta"), ("v1alpha", "gemini:v1alpha")]
)
def test_rest_on_v1_and_live_where_the_gemini_api_serves_it(api_key_sim, settings, monkeypatch, live, path):
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")
    settings.GEMINI_API_VERSION = "v1"
    settings.GEMINI_LIVE_API_VERSION = live
    report, code = check_json()
    assert code == 0, report
    assert api_key_sim.records(type="http", path="/v1/models")
    assert [c["path"] for c in api_key_sim.records(type="connect")] == [path]
    source = "GEMINI_LIVE_API_VERSION" if live else "the Gemini API serves Live only on v1beta"
    assert report["connection"]["live_api_version_source"] == source


def test_a_404_at_the_handshake_on_v1_names_the_cause_and_the_fix(api_key_sim, monkeypatch):
    """Were Live ever opened on the SDK's default v1 (the app refuses that setting), the 404 is explained."""
    from gemini import client

    monkeypatch.setattr(client, "live_api_version", lambda api_key="": client.ApiVersion("v1", "SDK default"))
    report, code = check_json("--skip-rest")
    assert code == 1
    failed = step(report, "live.connect")
    assert failed["cause"] == "endpoint_not_found"
    assert "GenerativeService.BidiGenerateContent (API version v1)" in failed["explanation"]
    assert (
        "The Gemini API serves Live only on v1beta (v1alpha for ephemeral tokens), never on the SDK's default v1"
        in failed["explanation"]
    )
    assert "leave GEMINI_LIVE_API_VERSION empty (v1beta) or set it to v1alpha" in failed["fix"]
    assert api_key_sim.records(type="ws_rejected")[0]["status"] == 404


def test_a_live_api_version_gemini_does_not_serve_fails_the_configuration_step(api_key_sim, settings):
    settings.GEMINI_LIVE_API_VERSION = "v1"  # the system check refuses this at start-up; call_command skips it
    report, code = check_json()
    assert code == 1
    configuration = step(report, "configuration")
    assert configuration["cause"] == "client_config"
    assert (
        "GEMINI_LIVE_API_VERSION is 'v1', but the Gemini API serves the Live WebSocket only on v1beta"
        in (configuration["explanation"])
    )
    assert api_key_sim.records(type="connect") == []


def test_a_key_gemini_refuses_is_explained(api_key_sim):
    api_key_sim.set_options(api_keys={"the-real-key"})
    report, code = check_json()
    assert code == 1
    for name in ("rest.models", "rest.generate", "live.connect"):
        failed = step(report, name)
        assert failed["cause"] == "bad_credentials"
        assert "Gemini refused the credentials …wxyz" in failed["explanation"]
        assert "GEMINI_API_KEY" in failed["fix"]
        assert failed["gemini_said"] == "API key not valid. Please pass a valid API key."
    assert KEY not in json.dumps(report)


@pytest.mark.parametrize("extra", [[], ["--skip-rest"]])
def test_an_unknown_live_model_lists_the_live_models_gemini_reports(gemini_sim, extra):
    out, code = check("--model", "gemini-2.0-flash-live-001", *extra)
    assert code == 1
    assert "Gemini does not serve gemini-2.0-flash-live-001 over the Live API (bidiGenerateContent)" in out
    assert "Live models Gemini reports (models.list, supportedGenerationMethods bidiGenerateContent): " in out
    assert "gemini-3.8-live," in out and "gemini-3.1-flash-live-preview" in out
    assert "not found for API version v1beta, or is not supported for bidiGenerateContent" in out  # Gemini said
    assert "set GEMINI_LIVE_MODEL" in out


def test_a_rest_only_model_is_not_live_capable(gemini_sim):
    report, code = check_json("--model", "gemini-2.5-flash")
    assert code == 1
    assert step(report, "rest.models")["status"] == "warning"
    assert step(report, "live.connect")["cause"] == "model_not_found"


def test_text_on_a_native_audio_model_is_explained(gemini_sim):
    out, code = check("--skip-rest", "--modality", "text")
    assert code == 1
    assert "gemini-3.1-flash-live-preview is a native-audio model: it answers in AUDIO only" in out
    assert "Gemini said: The requested combination of response modalities (TEXT) is not supported by the model" in out


def test_audio_on_the_text_only_transcribe_model_is_explained(gemini_sim):
    out, code = check("--skip-rest", "--model", "gemini-3.5-transcribe-live", "--modality", "audio")
    assert code == 1
    assert "gemini-3.5-transcribe-live answers in TEXT only, and asking it for AUDIO closes the session" in out
    assert "fix: Ask for TEXT; for this check, drop --modality AUDIO." in out
    assert "Gemini said: The requested combination of response modalities (AUDIO) is not supported" in out


def test_an_internal_error_during_the_turn_is_explained(gemini_sim):
    gemini_sim.inject_fault("close", when="turn", code=1011, reason="Internal error occurred.")
    report, code = check_json("--skip-rest", "--audio")
    assert code == 1
    assert step(report, "live.connect")["status"] == "ok"
    failed = step(report, "live.text")
    assert failed["cause"] == "internal" and "close 1011" in failed["explanation"]
    assert failed["gemini_said"] == "Internal error occurred."
    assert step(report, "live.audio")["status"] == "skipped"


def test_an_untrusted_certificate_points_at_gemini_ca_file(api_key_sim, settings):
    settings.GEMINI_CA_FILE = ""
    report, code = check_json()
    assert code == 1
    for name in ("rest.models", "live.connect"):
        failed = step(report, name)
        assert failed["cause"] == "tls"
        assert "no trusted CA signs the server's certificate" in failed["explanation"]
        assert "Set GEMINI_CA_FILE" in failed["fix"]


def test_nothing_listening_is_explained(api_key_sim, settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.GEMINI_BASE_URL = f"https://127.0.0.1:{port}"
    report, code = check_json()
    assert code == 1
    for name in ("rest.models", "live.connect"):
        assert step(report, name)["cause"] == "refused"
        assert f"Nothing answered at 127.0.0.1:{port}" in step(report, name)["explanation"]


def test_a_silent_gemini_times_out(gemini_sim):
    gemini_sim.inject_fault("stall", when="setup", seconds=5)
    report, code = check_json("--skip-rest", "--timeout", "0.5")
    assert code == 1
    failed = step(report, "live.connect")
    assert failed["cause"] == "timeout" and "within 0.5 s" in failed["explanation"]


def test_an_ephemeral_token_as_the_server_key_is_explained(api_key_sim, settings):
    settings.GEMINI_API_KEY = "auth_tokens/0123456789abcdef"
    report, code = check_json()
    assert code == 1
    configuration = step(report, "configuration")
    assert configuration["status"] == "warning"
    assert "works only on the Constrained Live endpoint on API version v1alpha" in configuration["explanation"]
    assert report["connection"]["live_url"].endswith("v1alpha.GenerativeService.BidiGenerateContentConstrained")
    assert step(report, "rest.models")["status"] == "skipped"
    failed = step(report, "live.connect")
    assert "GEMINI_API_KEY holds an ephemeral token" in failed["explanation"] and "v1alpha" in failed["fix"]


def test_a_missing_ca_file_fails_the_configuration_step(api_key_sim, settings, tmp_path):
    settings.GEMINI_CA_FILE = str(tmp_path / "missing.pem")
    report, code = check_json()
    assert code == 1
    assert [s["name"] for s in report["steps"]] == ["configuration"]
    assert "GEMINI_CA_FILE" in step(report, "configuration")["fix"]


def test_quiet_success_prints_nothing_and_failure_prints_only_the_failure(gemini_sim):
    assert check("--skip-live", "-v", "0") == ("", 0)
    out, code = check("--skip-rest", "-v", "0", "--model", "gemini-0-none")
    assert code == 1 and "[FAIL] live.connect" in out and "[ok" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "soon"], "--timeout must be a number of seconds"),
        (["--timeout", "0"], "--timeout must be more than 0"),
        (["--timeout", "301"], "at most 300 seconds"),
        (["--model", "x y"], "--model must be a model name"),
        (["--text-model", "../etc"], "--text-model must be a model name"),
        (["--modality", "VIDEO"], "--modality must be AUDIO or TEXT"),
        (["--skip-rest", "--skip-live"], "leave nothing to check"),
        (["--audio", "--skip-live"], "--audio needs the Live steps"),
    ],
)
def test_bad_flags_are_refused_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("gemini_check", *args, stdout=StringIO())


def test_vertex_mode_shows_its_endpoint_and_explains_missing_oauth_credentials(
    gemini_sim, settings, monkeypatch, tmp_path
):
    settings.GOOGLE_GENAI_USE_VERTEXAI = True
    settings.GOOGLE_CLOUD_PROJECT = "apsara-test"
    settings.GOOGLE_APPLICATION_CREDENTIALS = ""
    settings.GEMINI_BASE_URL = gemini_sim.base_url
    settings.GEMINI_CA_FILE = str(gemini_sim.ca_path)
    # Application Default Credentials point at a file that is not there: google.auth fails at once, offline.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    report, code = check_json("--model", "gemini-live-2.5-flash-native-audio")
    assert code == 1
    connection = report["connection"]
    assert connection["mode"] == "vertex" and connection["api_version"] == "v1beta1"
    assert connection["live_url"].endswith("/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent")
    assert "/projects/apsara-test/locations/us-central1/publishers/google/models" in connection["rest_url"]
    assert connection["auth"] == "OAuth 2 Bearer token from Application Default Credentials"
    for name in ("rest.models", "live.connect"):
        failed = step(report, name)
        assert failed["cause"] == "no_credentials"
        assert "no usable OAuth 2 access token" in failed["explanation"]
        assert "gcloud auth application-default login" in failed["fix"]


def test_an_ephemeral_token_is_minted_on_v1alpha_and_opens_a_live_session(gemini_sim):
    report, code = check_json("--ephemeral", "--skip-rest")
    assert code == 0, report
    token_step = step(report, "live.ephemeral")
    assert token_step["status"] == "ok"
    assert token_step["details"]["liveUrl"].endswith(
        "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
    )
    created = gemini_sim.records(type="http", path="/v1alpha/auth_tokens")
    assert len(created) == 1 and created[0]["body"]["uses"] == 1
    assert [c["path"] for c in gemini_sim.records(type="connect")] == ["gemini:v1beta", "gemini:v1alpha:constrained"]
    headers = [{k.lower(): v for k, v in r["headers"].items()} for r in gemini_sim.records(type="connect")]
    token = next(h["authorization"].removeprefix("Token ") for h in headers if "authorization" in h)
    assert token.startswith("auth_tokens/") and token not in json.dumps(report)
    assert f"…{token[-4:]}" in token_step["summary"]


def test_a_refused_ephemeral_token_is_explained(gemini_sim):
    gemini_sim.inject_fault("close", when="setup", code=1007, reason="The ephemeral token has expired.", count=2)
    report, code = check_json("--ephemeral", "--skip-rest")
    assert code == 1
    failed = step(report, "live.ephemeral")
    assert failed["cause"] == "bad_credentials"
    assert "A freshly minted ephemeral token was refused at wss://" in failed["explanation"]
    assert "v1alpha" in failed["fix"]


def test_creating_an_ephemeral_token_on_a_wrong_path_is_a_404_explained(api_key_sim, settings):
    settings.GEMINI_BASE_URL = api_key_sim.base_url + "/api"
    report, code = check_json("--ephemeral", "--skip-rest")
    failed = step(report, "live.ephemeral")
    assert code == 1 and failed["cause"] == "endpoint_not_found"
    assert (
        f"HTTP 404 creating an ephemeral token at {api_key_sim.base_url}/api/v1alpha/auth_tokens"
        in failed["explanation"]
    )
    assert "auth_tokens exists only on API version v1alpha" in failed["explanation"]


def test_vertex_live_keeps_the_sdk_default_version_whatever_gemini_api_version_says(gemini_sim, settings, monkeypatch):
    import google.auth
    from google.oauth2.credentials import Credentials

    settings.GOOGLE_GENAI_USE_VERTEXAI = True
    settings.GOOGLE_CLOUD_PROJECT = "sim-project"
    settings.GOOGLE_APPLICATION_CREDENTIALS = ""
    settings.GEMINI_BASE_URL = gemini_sim.base_url
    settings.GEMINI_CA_FILE = str(gemini_sim.ca_path)
    settings.GEMINI_API_VERSION = "v1"
    # ADC, as on a GCP host: offline here, so hand the SDK an already-issued access token.
    token = gemini_sim.access_token()
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (Credentials(token=token), "sim-project"))
    report, code = check_json("--skip-rest", "--model", "gemini-live-2.5-flash-native-audio")
    assert code == 0, report
    connection = report["connection"]
    assert connection["api_version"] == "v1" and connection["live_api_version"] == "v1beta1"
    assert connection["live_api_version_source"] == "SDK default, as Vertex AI serves Live on it"
    assert [c["path"] for c in gemini_sim.records(type="connect")] == ["vertex:v1beta1"]


@pytest.mark.parametrize(
    ("model", "modality", "reply"),
    [
        ("gemini-3.5-transcribe-live", "TEXT", "(1.0 seconds of speech)"),
        ("gemini-3.5-live-translate-preview", "AUDIO", "translation"),
    ],
)
def test_a_speech_only_model_is_checked_with_a_spoken_turn(gemini_sim, model, modality, reply):
    """Talk cannot use them, but gemini_check can: what the model serves, audio in, no text turn, no tools."""
    report, code = check_json("--skip-rest", "--model", model)
    assert code == 0, report
    configuration = step(report, "configuration")
    assert configuration["status"] == "warning"
    assert f"{model} cannot hold a conversation, so Talk cannot use it" in configuration["explanation"]
    assert "tests it with a spoken turn instead of a text turn" in configuration["explanation"]
    assert step(report, "live.connect")["details"]["modality"] == modality
    assert step(report, "live.text")["status"] == "skipped"
    spoken = step(report, "live.audio")
    assert spoken["status"] == "ok" and spoken["details"]["modality"] == modality
    assert reply in spoken["details"]["text"]
    setup = gemini_sim.client_messages()[0]["setup"]
    assert setup["generationConfig"]["responseModalities"] == [modality]
    assert "tools" not in setup
    assert ("outputAudioTranscription" in setup) is (modality == "AUDIO")
    assert not any(
        "text" in (m.get("realtimeInput") or m.get("realtime_input") or {}) for m in gemini_sim.client_messages()
    )


@pytest.fixture
def trusting_token_service(gemini_sim, monkeypatch):
    """google-auth reaches the simulator's /token through requests, which trusts REQUESTS_CA_BUNDLE."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(gemini_sim.ca_path))
    return gemini_sim


@pytest.mark.parametrize(
    ("kind", "auth", "account"),
    [
        ("service_account", "a service-account key file", "service account apsara-sim@sim-project"),
        ("authorized_user", "an authorized-user (ADC) file", "user credentials (authorized_user)"),
    ],
)
def test_vertex_names_the_credential_its_scope_and_expiry_never_the_token(
    trusting_token_service, settings, tmp_path, kind, auth, account
):
    sim = trusting_token_service
    sim.set_options(access_token_lifetime=1800)
    path = (sim.service_account_file if kind == "service_account" else sim.authorized_user_file)(tmp_path / "c.json")
    use_vertex(settings, sim, path)
    # --skip-rest: the simulator serves no Vertex ListModels (publishers/google/models); REST is tested elsewhere.
    report, code = check_json("--skip-rest", "--model", "gemini-live-2.5-flash-native-audio")
    assert code == 0, report
    assert report["connection"]["auth"] == f"OAuth 2 Bearer token from {auth} (GOOGLE_APPLICATION_CREDENTIALS)"
    token_step = step(report, "auth.token")
    assert token_step["status"] == "ok" and token_step["summary"].startswith(f"access token for {account}")
    assert token_step["details"]["scopes"] == ["https://www.googleapis.com/auth/cloud-platform"]
    assert 1700 < token_step["details"]["expiresInSeconds"] <= 1800
    assert "expires in" in token_step["summary"]
    for token in sim.simulator.access_tokens:
        assert token not in json.dumps(report)
    assert [s["name"] for s in report["steps"]][:3] == ["configuration", "auth.token", "live.connect"]


def _vertex_with_token(settings, monkeypatch, sim, token):
    """ADC that is an access token handed over as is (google-auth's Credentials(token=…)): it cannot refresh."""
    import google.auth
    from google.oauth2.credentials import Credentials

    use_vertex(settings, sim)
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (Credentials(token=token), "sim-project"))


def test_an_expired_access_token_is_a_401_explained(gemini_sim, settings, monkeypatch):
    _vertex_with_token(settings, monkeypatch, gemini_sim, gemini_sim.access_token(lifetime=-1))
    out, code = check("--model", "gemini-live-2.5-flash-native-audio")
    assert code == 1
    report, _ = check_json("--model", "gemini-live-2.5-flash-native-audio")
    for name in ("rest.generate", "live.connect"):
        failed = step(report, name)
        assert failed["cause"] == "bad_credentials"
        assert "Request had invalid authentication credentials" in failed["gemini_said"]
        assert "expired" in failed["explanation"] and "GOOGLE_APPLICATION_CREDENTIALS" in failed["fix"]
    assert "HTTP 401 UNAUTHENTICATED" in out


def test_a_token_without_the_cloud_platform_scope_is_a_403_explained(gemini_sim, settings, monkeypatch):
    narrow = gemini_sim.access_token(scope="https://www.googleapis.com/auth/generative-language")
    _vertex_with_token(settings, monkeypatch, gemini_sim, narrow)
    report, code = check_json("--model", "gemini-live-2.5-flash-native-audio")
    assert code == 1
    for name in ("rest.generate", "live.connect"):
        failed = step(report, name)
        assert failed["cause"] == "insufficient_scope"
        assert "https://www.googleapis.com/auth/cloud-platform" in failed["explanation"]
        assert "insufficient authentication scopes" in failed["gemini_said"]


def test_a_refused_grant_is_explained(trusting_token_service, settings, tmp_path):
    sim = trusting_token_service
    path = sim.service_account_file(tmp_path / "key.json")
    sim.simulator.oauth_grants.clear()  # the key was deleted: Google answers invalid_grant
    use_vertex(settings, sim, path)
    report, code = check_json("--skip-live")
    failed = step(report, "auth.token")
    assert code == 1 and failed["cause"] == "bad_credentials"
    assert "invalid_grant" in failed["gemini_said"] and "token service refused the grant" in failed["explanation"]


def test_an_api_key_where_oauth_is_needed_is_explained_with_the_variables_to_set(api_key_sim):
    # What Google sent when its Live endpoint wanted OAuth from an API key (google-gemini/cookbook#1122).
    reason = (
        "API keys are not supported by this API. Expected OAuth2 access token or other authentication credentials "
        "that assert a prin"
    )
    api_key_sim.inject_fault("close", when="setup", code=1008, reason=reason)
    report, code = check_json("--skip-rest")
    failed = step(report, "live.connect")
    assert code == 1 and failed["cause"] == "oauth_required"
    assert "it wants an OAuth 2 access token" in failed["explanation"]
    for variable in ("GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI=true", "GOOGLE_CLOUD_PROJECT",
                     "GOOGLE_CLOUD_LOCATION", "GOOGLE_APPLICATION_CREDENTIALS"):  # fmt: skip
        assert variable in failed["fix"]
