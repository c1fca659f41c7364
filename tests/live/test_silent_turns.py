"""Silent turns: Gemini ends a turn with nothing (``gemini_sim`` ``empty_turns``); the bridge says ``turn_silent``,
counts it, and ``retry_turn`` asks again (docs/live-protocol.md)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from live import metrics
from live.protocol import ErrorCode, ProtocolError, parse_client_message
from live.server_messages import validate_server_message
from tests.live.conftest import MODEL, messages_of


def _sample(name: str) -> float:
    return metrics.REGISTRY.get_sample_value(name) or 0.0


def _texts_sent(sim) -> list[str]:
    """The text turns the bridge sent Gemini (clientContent or realtimeInput text)."""
    texts = []
    for message in sim.client_messages():
        for turn in (message.get("clientContent") or message.get("client_content") or {}).get("turns", []):
            texts += [part.get("text") for part in turn.get("parts", []) if part.get("text")]
        realtime = message.get("realtimeInput") or message.get("realtime_input") or {}
        if realtime.get("text"):
            texts.append(realtime["text"])
    return texts


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_silent_turn_is_said_counted_and_retried_once(gemini_sim, connect):
    silent_before = _sample("apsara_live_silent_turns_total")
    retries_before = _sample("apsara_live_silent_turn_retries_total")
    gemini_sim.set_options(empty_turns=1)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"responseModalities": ["AUDIO"]})
    session_id = created["sessionId"]
    await ws.send({"type": "send_message", "sessionId": session_id, "data": {"text": "Hello there"}})
    turn = await ws.until_turn_complete()
    assert not [m for m in turn if isinstance(m, bytes)]
    silent = await ws.expect("turn_silent")
    validate_server_message(silent)
    assert silent["sessionId"] == session_id and silent["turnId"].startswith("turn_")
    assert _sample("apsara_live_silent_turns_total") == silent_before + 1

    # A turn id that is not the silent turn's is refused, and nothing goes to Gemini.
    await ws.send({"type": "retry_turn", "sessionId": session_id, "data": {"turnId": "turn_000000000000"}})
    refused = await ws.expect("session_error")
    assert refused["error"]["code"] == ErrorCode.INVALID_STATE
    assert _texts_sent(gemini_sim) == ["Hello there"]

    await ws.send({"type": "retry_turn", "sessionId": session_id, "data": {"turnId": silent["turnId"]}})
    answer = await ws.until_turn_complete()
    said = "".join(
        m["data"]["serverContent"].get("outputTranscription", {}).get("text", "")
        for m in answer
        if isinstance(m, dict) and m["type"] == "session_message" and "serverContent" in m["data"]
    )
    assert said.startswith("Hello")
    assert _texts_sent(gemini_sim) == ["Hello there", "Hello there"]  # the turn's words, asked again
    assert _sample("apsara_live_silent_turn_retries_total") == retries_before + 1
    assert not ws.of_type("turn_silent")[1:]

    # Retried once: a second retry_turn for it is refused.
    await ws.send({"type": "retry_turn", "sessionId": session_id, "data": {"turnId": silent["turnId"]}})
    assert (await ws.expect("session_error"))["error"]["code"] == ErrorCode.INVALID_STATE

    await ws.send({"type": "end_session", "sessionId": session_id})
    await ws.expect("session_ended")
    saved = await messages_of(created["conversationId"])
    assert [(m.role, m.text if m.role == "user" else "") for m in saved] == [("user", "Hello there"), ("model", "")]
    assert saved[1].output_transcription.startswith("Hello")


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_an_interrupted_turn_is_not_silent(gemini_sim, connect):
    """A reply cut off by the user (interrupted, then turnComplete) is not a silent turn."""
    gemini_sim.set_options(realtime_factor=1)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"responseModalities": ["AUDIO"]})
    session_id = created["sessionId"]
    await ws.send({"type": "send_message", "sessionId": session_id, "data": {"text": "Tell me a story"}})
    await ws.expect("session_message")
    await ws.send({"type": "send_message", "sessionId": session_id, "data": {"text": "Hello there"}})
    await ws.until_turn_complete()
    await ws.until_turn_complete()
    assert not ws.of_type("turn_silent")


def test_retry_turn_is_parsed():
    message = parse_client_message(json.dumps({"type": "retry_turn", "data": {"turnId": "turn_0123456789ab"}}))
    assert message["type"] == "retry_turn"


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"turnId": None},
        {"turnId": 5},
        {"turnId": ["turn_0123456789ab"]},
        {"turnId": "turn_0123456789AB"},
        {"turnId": "turn_0123456789abc"},
        {"turnId": "turn_0123456789ab\n"},
        {"turnId": "turn_0123456789a\x00"},
        {"turnId": "turn_" + "\ud800" * 12},
        {"turnId": "x" * 100_000},
        {"turnId": {"$gt": ""}},
    ],
)
def test_hostile_retry_turn_is_refused(data):
    message: dict = {"type": "retry_turn", "sessionId": "live_x"}
    if data is not None:
        message["data"] = data
    with pytest.raises(ProtocolError) as refused:
        parse_client_message(json.dumps(message))
    assert refused.value.code is ErrorCode.INVALID_MESSAGE


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30))))
def test_any_retry_turn_data_is_parsed_or_refused_as_invalid(data):
    """Whatever data holds, the answer is a valid message or INVALID_MESSAGE (never another error)."""
    try:
        message = parse_client_message(json.dumps({"type": "retry_turn", "data": data}))
    except ProtocolError as error:
        assert error.code in (ErrorCode.INVALID_MESSAGE, ErrorCode.INVALID_JSON)
    else:
        turn_id = json.loads(json.dumps(message))["data"]["turnId"]
        assert turn_id.startswith("turn_") and len(turn_id) == 17
