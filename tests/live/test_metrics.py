"""live.metrics and GET /metrics (Prometheus text format, optional bearer token)."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from live import metrics


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of /metrics keyed by (name, sorted labels)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_endpoint_reflects_every_recorder(client: Client) -> None:
    """Each function the bridge calls moves its series on /metrics by the amount recorded."""
    before = scrape(client)
    metrics.session_created()
    metrics.session_active(1)
    metrics.session_active(1)
    metrics.session_active(-1)
    metrics.message("in", "audio")
    metrics.message("in", "audio")
    metrics.message("out", "session_message")
    metrics.audio_seconds("in", 0.04)
    metrics.audio_seconds("out", 1.5)
    metrics.upstream_error("RATE_LIMIT_EXCEEDED")
    metrics.resumed("goaway", 0.2)
    metrics.resumed("crash", 2.1)
    metrics.sessions_drained(3)
    metrics.observe_time_to_session_created(0.3)
    metrics.observe_time_to_first_audio(0.6)
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert delta("apsara_live_sessions_created_total") == 1
    assert delta("apsara_live_sessions_active") == 1
    assert delta("apsara_live_messages_total", direction="in", kind="audio") == 2
    assert delta("apsara_live_messages_total", direction="out", kind="session_message") == 1
    assert delta("apsara_live_audio_seconds_total", direction="in") == pytest.approx(0.04)
    assert delta("apsara_live_audio_seconds_total", direction="out") == pytest.approx(1.5)
    assert delta("apsara_live_upstream_errors_total", code="RATE_LIMIT_EXCEEDED") == 1
    assert delta("apsara_live_resumes_total", cause="goaway") == 1
    assert delta("apsara_live_time_to_resume_seconds_sum", cause="crash") == pytest.approx(2.1)
    assert delta("apsara_live_sessions_taken_over_total") == 1
    assert delta("apsara_live_sessions_drained_total") == 3
    assert delta("apsara_live_time_to_session_created_seconds_count") == 1
    assert delta("apsara_live_time_to_session_created_seconds_bucket", le="0.5") == 1
    assert delta("apsara_live_time_to_session_created_seconds_bucket", le="0.25") == 0
    assert delta("apsara_live_time_to_first_audio_seconds_sum") == pytest.approx(0.6)
    assert ("process_resident_memory_bytes", ()) in after


def test_metrics_reject_unknown_direction() -> None:
    """A direction outside in/out is a programming error, not a new series."""
    with pytest.raises(ValueError, match="direction"):
        metrics.message("sideways", "audio")
    with pytest.raises(ValueError, match="direction"):
        metrics.audio_seconds("up", 1.0)
    with pytest.raises(ValueError, match="cause"):
        metrics.resumed("boredom", None)


def test_metrics_token_is_required_when_configured(client: Client, settings) -> None:
    """With METRICS_TOKEN set, only the matching bearer token gets the metrics."""
    settings.METRICS_TOKEN = "scrape-me"
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"apsara_live" not in missing.content
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "scrape-me"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Basic scrape-me"}).status_code == 401
    assert ("apsara_live_resumes_total", (("cause", "goaway"),)) in scrape(client, Authorization="Bearer scrape-me")


def test_metrics_are_open_without_a_token(client: Client, settings) -> None:
    """Without METRICS_TOKEN the endpoint is open, as Prometheus scrapers expect by default."""
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200
