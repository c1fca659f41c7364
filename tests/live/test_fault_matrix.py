"""Gemini failing at each point of a turn, typed and spoken: every turn is answered (or the failure reported), stored
exactly once, and the turn after it is answered as its own.

Faults (gemini_sim): close 1011 (internal), a dropped connection (1006), a stall, close 1008 (the sporadic "Requested
entity was not found" seen mid-session). Points: ``before`` (the turn is the first message on the connection and is
never processed), ``start`` (as the reply starts), ``mid`` (after its first audio), ``after`` (right after its
turnComplete, before the resumption handle covering it arrives: resuming then must not answer it twice).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from conversations.models import Message
from tests.live.conftest import MODEL, messages_of, silence, speech

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

FAULTS: dict[str, dict[str, Any]] = {
    "close-1011": {"kind": "close", "code": 1011, "reason": "Internal error occurred."},
    "drop": {"kind": "drop"},
    "stall": {"kind": "stall", "seconds": 1.0},
    "close-1008": {"kind": "close", "code": 1008, "reason": "Requested entity was not found."},
}
POINTS = {"before": "message", "start": "turn", "mid": "audio", "after": "now"}
REPEATS = 3


def _replies(received: list[Any]) -> list[str]:
    """The text of each model turn the browser saw complete, in order ("" parts of cut turns are skipped)."""
    replies, current, cut = [], [], False
    for m in received:
        if not isinstance(m, dict) or m.get("type") != "session_message":
            continue
        content = m["data"].get("serverContent", {})
        current.append(content.get("outputTranscription", {}).get("text", ""))
        cut |= bool(content.get("interrupted"))
        if content.get("turnComplete"):
            if not cut:
                replies.append("".join(current).strip())
            current, cut = [], False
    return replies


async def _reply_to(ws: Any, opening: str, within: float = 20) -> str:
    """Read until a complete (not cut) reply starting with ``opening`` arrives; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    start = len(ws.received)
    while loop.time() < deadline:
        errors = [m for m in ws.received[start:] if isinstance(m, dict) and m.get("type") == "session_error"]
        assert not errors, f"the failure was reported instead of recovered: {errors}"
        for reply in _replies(ws.received[start:]):
            if reply.startswith(opening):
                return reply
        try:
            await ws.next(max(0.05, deadline - loop.time()))
        except TimeoutError:
            break
    raise AssertionError(f"no reply starting {opening!r}; got {_replies(ws.received[start:])} / {ws.kinds()}")


@pytest.mark.parametrize("repeat", range(REPEATS))
@pytest.mark.parametrize("mode", ["typed", "spoken"])
@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_fault_at_any_point_of_a_turn_loses_nothing_and_doubles_nothing(
    gemini_sim, connect, caplog, fault, point, mode, repeat
):
    caplog.set_level(logging.WARNING)
    gemini_sim.set_options(realtime_factor=20, handle_delay=0.3)
    ws = await connect()
    created = await ws.create(model=MODEL, config={"binaryAudio": True})
    if point != "after":
        gemini_sim.inject_fault(when=POINTS[point], **FAULTS[fault])

    if mode == "typed":
        await ws.send({"type": "send_message", "data": {"text": "My name is Ada"}})
        opening = "Nice to meet you, Ada"
    else:
        await ws.send_audio(speech(1.0) + silence(1.0))
        opening = "I heard you speak for about 1.0 seconds"
    await _reply_to(ws, opening)
    if point == "after":
        gemini_sim.inject_fault(when="now", **FAULTS[fault])

    await ws.send({"type": "send_message", "data": {"text": "What is my name?"}})
    follow_up = await _reply_to(ws, "Your name is Ada" if mode == "typed" else "You haven't told me your name")
    await ws.send({"type": "end_session"})
    await ws.expect("session_ended")

    stored = await messages_of(created["conversationId"])
    users = [m for m in stored if m.role == Message.Role.USER]
    models = [m for m in stored if m.role == Message.Role.MODEL]
    if mode == "typed":
        assert [m.text for m in users] == ["My name is Ada", "What is my name?"]
    else:
        assert [(m.input_transcription, bool(m.audio)) for m in users[:1]] == [("(1.0 seconds of speech)", True)]
        assert [m.text for m in users[1:]] == ["What is my name?"]
    complete = [m.text for m in models if not m.interrupted]
    assert [t for t in complete if t.startswith(opening)] == [complete[0]], "the turn answered once"
    assert complete[1:] == [follow_up], "the next turn answered as its own"
    assert len(models) - len(complete) <= 1, "at most the cut reply is kept, flagged"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
