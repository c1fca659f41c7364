"""live.session.link: the connection-switching state machine, one test per transition (and per non-transition)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from django.conf import settings

from gemini.catalogue import live_model
from live.session import link as link_module
from live.session.link import TRANSITIONS, Link, LinkState, when_to_switch
from live.session_plan import plan_session

S = LinkState
Event = Callable[[Link], Awaitable[None] | None]


def _link() -> Link:
    model = live_model(settings.GEMINI_LIVE_MODEL)
    assert model is not None
    return Link(plan=plan_session(model=model, config={}, available_tools=[]), handle=None, public_id="ls_test")


async def _fire(link: Link, event: Event) -> None:
    result = event(link)
    if result is not None:
        await result


# How to bring a new link into each state.
SETUP: dict[LinkState, list[Event]] = {
    S.CONNECTING: [],
    S.OPEN: [lambda ln: ln.opened()],
    S.SWITCH_AFTER_TURN: [lambda ln: ln.opened(), lambda ln: ln.switch("after_turn")],
    S.SWITCH_AFTER_HANDLE: [lambda ln: ln.opened(), lambda ln: ln.switch("after_handle")],
    S.SWITCHING: [lambda ln: ln.opened(), lambda ln: ln.switch("now")],
    S.BROKEN: [lambda ln: ln.opened(), lambda ln: ln.send_failed()],
    S.CLOSED: [lambda ln: ln.end()],
}

EVENTS: dict[str, Event] = {
    "opened": lambda ln: ln.opened(),
    "switch_now": lambda ln: ln.switch("now"),
    "switch_after_handle": lambda ln: ln.switch("after_handle"),
    "switch_after_turn": lambda ln: ln.switch("after_turn"),
    "turn_complete": lambda ln: ln.turn_complete(),
    "handle_received": lambda ln: ln.handle_received("h-2"),
    "go_away_idle": lambda ln: ln.go_away(30.0, model_busy=False),
    "go_away_busy": lambda ln: ln.go_away(30.0, model_busy=True),
    "send_failed": lambda ln: ln.send_failed(),
    "reconnecting": lambda ln: ln.reconnecting(),
    "end": lambda ln: ln.end(),
}

# Every declared transition, with the event that makes it.
TRANSITION_EVENTS: list[tuple[LinkState, str, LinkState]] = [
    (S.CONNECTING, "opened", S.OPEN),
    (S.CONNECTING, "switch_after_handle", S.SWITCH_AFTER_HANDLE),  # new VAD settings while reconnecting
    (S.CONNECTING, "switch_now", S.SWITCHING),
    (S.CONNECTING, "go_away_idle", S.SWITCHING),
    (S.CONNECTING, "end", S.CLOSED),
    (S.OPEN, "switch_after_turn", S.SWITCH_AFTER_TURN),
    (S.OPEN, "go_away_busy", S.SWITCH_AFTER_TURN),
    (S.OPEN, "switch_after_handle", S.SWITCH_AFTER_HANDLE),
    (S.OPEN, "switch_now", S.SWITCHING),
    (S.OPEN, "go_away_idle", S.SWITCHING),
    (S.OPEN, "send_failed", S.BROKEN),
    (S.OPEN, "reconnecting", S.CONNECTING),  # the receiver reported the connection lost
    (S.OPEN, "end", S.CLOSED),
    (S.SWITCH_AFTER_TURN, "turn_complete", S.SWITCH_AFTER_HANDLE),
    (S.SWITCH_AFTER_TURN, "switch_after_handle", S.SWITCH_AFTER_HANDLE),
    (S.SWITCH_AFTER_TURN, "switch_now", S.SWITCHING),
    (S.SWITCH_AFTER_TURN, "go_away_idle", S.SWITCHING),
    (S.SWITCH_AFTER_TURN, "send_failed", S.BROKEN),
    (S.SWITCH_AFTER_TURN, "reconnecting", S.CONNECTING),
    (S.SWITCH_AFTER_TURN, "end", S.CLOSED),
    (S.SWITCH_AFTER_HANDLE, "handle_received", S.SWITCHING),
    (S.SWITCH_AFTER_HANDLE, "switch_now", S.SWITCHING),
    (S.SWITCH_AFTER_HANDLE, "go_away_idle", S.SWITCHING),
    (S.SWITCH_AFTER_HANDLE, "send_failed", S.BROKEN),
    (S.SWITCH_AFTER_HANDLE, "reconnecting", S.CONNECTING),
    (S.SWITCH_AFTER_HANDLE, "end", S.CLOSED),
    (S.SWITCHING, "reconnecting", S.CONNECTING),
    (S.SWITCHING, "end", S.CLOSED),
    (S.BROKEN, "switch_now", S.SWITCHING),
    (S.BROKEN, "go_away_idle", S.SWITCHING),
    (S.BROKEN, "reconnecting", S.CONNECTING),
    (S.BROKEN, "end", S.CLOSED),
]


async def _in_state(state: LinkState) -> Link:
    link = _link()
    for event in SETUP[state]:
        await _fire(link, event)
    assert link.state is state
    return link


def _assert_consistent(link: Link) -> None:
    # Input flows exactly in OPEN and SWITCH_AFTER_TURN; the relay stops exactly in SWITCHING.
    assert link.input_flows.is_set() == (link.state in (S.OPEN, S.SWITCH_AFTER_TURN))
    assert link.switch_due.is_set() == (link.state is S.SWITCHING)


def test_every_declared_transition_has_a_test():
    declared = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    tested = {(source, target) for source, _, target in TRANSITION_EVENTS}
    assert declared == tested


@pytest.mark.parametrize(("source", "event", "target"), TRANSITION_EVENTS, ids=lambda v: getattr(v, "name", v))
async def test_transition(source: LinkState, event: str, target: LinkState) -> None:
    link = await _in_state(source)
    await _fire(link, EVENTS[event])
    assert link.state is target
    _assert_consistent(link)
    await link.end()


_MOVES = {(source, event) for source, event, _ in TRANSITION_EVENTS}


@pytest.mark.parametrize(
    ("source", "event"),
    [(state, event) for state in LinkState for event in EVENTS if (state, event) not in _MOVES],
    ids=lambda v: getattr(v, "name", v),
)
async def test_other_events_leave_the_state_alone(source: LinkState, event: str) -> None:
    link = await _in_state(source)
    await _fire(link, EVENTS[event])
    assert link.state is source
    _assert_consistent(link)
    await link.end()


def test_an_undeclared_transition_is_refused():
    link = _link()
    with pytest.raises(RuntimeError, match="CONNECTING → BROKEN"):
        link._move(S.BROKEN)


async def test_a_switch_waiting_for_a_handle_goes_ahead_after_a_second_without_one(monkeypatch: Any) -> None:
    monkeypatch.setattr(link_module, "HANDLE_WAIT_SECONDS", 0.01)
    link = await _in_state(S.SWITCH_AFTER_HANDLE)
    await asyncio.wait_for(link.switch_due.wait(), timeout=2)
    assert link.state is S.SWITCHING
    await link.end()


async def test_go_away_switches_before_the_deadline_even_mid_turn() -> None:
    link = await _in_state(S.OPEN)
    link.go_away(0.0, model_busy=True)
    assert link.state is S.SWITCH_AFTER_TURN  # between turns if it can...
    await asyncio.wait_for(link.switch_due.wait(), timeout=2)  # ...but before Gemini closes the connection
    assert link.state is S.SWITCHING
    await link.end()


async def test_reconnecting_cancels_pending_switch_timers(monkeypatch: Any) -> None:
    monkeypatch.setattr(link_module, "HANDLE_WAIT_SECONDS", 0.01)
    link = await _in_state(S.SWITCH_AFTER_HANDLE)
    link.reconnecting()
    link.opened()
    await asyncio.sleep(0.05)
    assert link.state is S.OPEN  # the old connection's timer did not move the new one
    await link.end()


def test_a_handle_is_kept_whatever_the_state():
    link = _link()
    link.handle_received("h-1")
    assert link.handle == "h-1" and link.state is S.CONNECTING


async def test_a_completed_turn_resets_the_failure_count() -> None:
    link = await _in_state(S.OPEN)
    link.failures_in_a_row = 2
    link.turn_complete()
    assert link.failures_in_a_row == 0
    await link.end()


@pytest.mark.parametrize(
    ("mode_change", "model_busy", "pending", "when"),
    [
        (False, True, False, "after_turn"),  # tuning waits for the model to finish speaking
        (False, True, True, "after_turn"),
        (True, True, True, "after_handle"),  # a mode change applies at once, after the covering handle
        (True, True, False, "now"),
        (False, False, True, "after_handle"),
        (False, False, False, "now"),
    ],
)
def test_when_new_vad_settings_apply(mode_change: bool, model_busy: bool, pending: bool, when: str) -> None:
    assert when_to_switch(cut_turn=mode_change, model_busy=model_busy, pending=pending) == when
