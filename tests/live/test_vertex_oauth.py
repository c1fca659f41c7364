"""A live call on Vertex AI outlives its access tokens: the bridge's reconnections each carry a valid, fresh one."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from tests.gemini_fixtures import use_vertex
from tests.live.test_resilience import said

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

VERTEX_MODEL = "gemini-live-2.5-flash-native-audio"


async def test_a_live_call_continues_across_access_token_refreshes(
    gemini_sim: Any, connect: Any, settings: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    import google.auth._helpers

    # Tokens last 2 s and connections 1.5 s (goAway after 0.5 s): a 4 s call needs new connections and new tokens.
    gemini_sim.set_options(access_token_lifetime=2, connection_lifetime=1.5, go_away_before=1.0)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(gemini_sim.ca_path))  # google-auth's token requests
    # google-auth refreshes 3 min 45 s before expiry; scaled down with the lifetime, so each token is used a while.
    monkeypatch.setattr(google.auth._helpers, "REFRESH_THRESHOLD", datetime.timedelta(seconds=0.5))
    use_vertex(settings, gemini_sim, gemini_sim.service_account_file(tmp_path / "key.json"))
    ws = await connect()
    await ws.create(model=VERTEX_MODEL)
    await ws.send({"type": "send_message", "data": {"text": "My name is Ada"}})
    await ws.until_turn_complete()
    await asyncio.sleep(2.2)  # past the first token's expiry, through at least one goAway
    await ws.send({"type": "send_message", "data": {"text": "What is my name?"}})
    assert "Your name is Ada" in said(await ws.until_turn_complete())
    await asyncio.sleep(2.2)
    await ws.send({"type": "send_message", "data": {"text": "Who am I?"}})
    assert "Your name is Ada" in said(await ws.until_turn_complete())
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")

    kinds = {m["type"] for m in ws.received if isinstance(m, dict)}
    assert not kinds & {"session_reconnecting", "session_error"}
    connects = gemini_sim.records(type="connect")
    assert {c["path"] for c in connects} == {"vertex:v1beta1"} and len(connects) >= 3
    tokens = [c["headers"]["authorization"] for c in connects]
    assert len(set(tokens)) >= 2, "every connection reused the first token"
    assert not gemini_sim.records(type="close", code=1008), "a connection was opened with an expired token"
    assert len(gemini_sim.records(type="oauth")) == len(set(tokens))
