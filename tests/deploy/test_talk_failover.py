"""A voice call survives the worker holding it: Chromium's fake microphone talks through nginx to two workers; the
worker holding the call is SIGKILLed (a crash) or SIGTERMed (a rolling restart), and the call carries on on the other
one with Gemini's memory, Hold mode, and every turn stored exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from deploy.cluster import Cluster
from tests.e2e.conftest import CHROMIUM, SCREENSHOTS, launch_chromium, send_prompt
from tests.e2e.test_talk import speech_wav
from tests.live.real_servers import run_django, setup_user
from tests.services import skip_or_fail

pytestmark = pytest.mark.timeout(300)

SESSION = """
import json, sys
import django
django.setup()
from conversations.models import Message
from live.models import LiveSession
s = LiveSession.objects.get(public_id=sys.argv[1])
messages = Message.objects.filter(conversation_id=s.conversation_id).order_by("created_at", "id")
print(json.dumps({
    "worker": s.worker,
    "status": s.status,
    "vad": (s.config.get("request") or {}).get("vad"),
    "messages": [
        {"role": m.role, "type": m.message_type, "text": m.text, "said": m.output_transcription, "audio": bool(m.audio)}
        for m in messages
    ],
}))
"""

# Every text the panel shows, as it changes: nothing that looks like a failure may ever appear.
WATCH_PANEL = """() => {
    window.panelTexts = [];
    const keep = (el) => { if (el && el.textContent) window.panelTexts.push(el.id + ": " + el.textContent); };
    for (const id of ["talk-status", "talk-notice"]) {
        const el = document.getElementById(id);
        new MutationObserver(() => keep(el)).observe(el, {childList: true, characterData: true, subtree: true});
    }
}"""


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium whose fake microphone says one sentence (then silence), from the start of each call."""
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing: run scripts/install-system-packages.sh (make test does)")
    from playwright.sync_api import sync_playwright

    wav = tmp_path_factory.mktemp("mic") / "mic.wav"
    speech_wav(wav, [0.5, "Hello there, I would like to plan a trip to the mountains", 60.0])
    with sync_playwright() as playwright:
        browser = launch_chromium(
            playwright,
            [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}%noloop",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield browser
        browser.close()


def session_state(cluster: Cluster, session_id: str) -> dict[str, Any]:
    return dict(json.loads(run_django(cluster.worker_env(), SESSION, session_id)))


def holder(cluster: Cluster, session_id: str) -> int:
    """The index of the worker holding the session."""
    name = session_state(cluster, session_id)["worker"]
    return next(worker.index for worker in cluster.workers if worker.name == name)


def model_replies(page: Page) -> Any:
    return page.locator("#messages .msg-model[data-message-id]")


def start_call_in_hold_mode(cluster: Cluster, chromium: Any, username: str) -> tuple[Page, str]:
    """Log in through nginx, start a call, let the microphone's sentence be answered, tell Gemini a name (typed,
    the simulator cannot make out spoken words), then switch to Hold mode. Return the page and the session id."""
    _, cookie = setup_user(cluster.worker_env(), username=username)
    name, _, value = cookie.partition("=")
    context = chromium.new_context(base_url=cluster.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    context.add_cookies([{"name": name, "value": value, "url": cluster.url}])
    page = context.new_page()
    page.goto("/")
    page.get_by_test_id("new-conversation").click()
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    page.wait_for_function("() => window.apsaraTalk?.state === 'listening'")
    page.evaluate(WATCH_PANEL)
    expect(model_replies(page)).to_have_count(1, timeout=60_000)  # the spoken sentence, answered and stored
    send_prompt(page, "My name is Ada")
    expect(model_replies(page)).to_have_count(2)
    page.get_by_role("button", name="Hold to talk instead of automatic turns").click()
    expect(page.locator("#talk-hold")).to_be_visible()
    session_id = str(page.evaluate("window.apsaraTalk.sessionId"))
    deadline = time.monotonic() + 15
    while (session_state(cluster, session_id)["vad"] or {}).get("enabled") is not False:
        assert time.monotonic() < deadline, "Hold mode was never stored"
    return page, session_id


def wait_resumed(page: Page, reconnects: int) -> None:
    page.wait_for_function(
        "(n) => window.apsaraTalk.stats.reconnects >= n && window.apsaraTalk.state === 'listening'",
        arg=reconnects,
        timeout=30_000,
    )


def check_after_the_move(cluster: Cluster, page: Page, session_id: str, gone: int) -> None:
    """The call goes on on the other worker: Hold mode kept, Gemini remembers, every turn stored once, and the
    person never saw anything but "Reconnecting…"."""
    assert page.evaluate("window.apsaraTalk.sessionId") == session_id
    expect(page.locator("#talk-mode")).to_have_attribute("aria-pressed", "true")  # Hold mode, as before
    expect(page.locator("#talk-hold")).to_be_visible()
    send_prompt(page, "What is my name?")
    expect(model_replies(page)).to_have_count(3)
    expect(model_replies(page).last).to_contain_text("Ada")
    state = session_state(cluster, session_id)
    assert state["worker"] == cluster.workers[1 - gone].name
    assert state["vad"]["enabled"] is False
    turns = [(m["role"], m["text"] if m["role"] == "user" else "", m["audio"]) for m in state["messages"]]
    spoken = [turn for turn in turns if turn[0] == "user" and turn[2] and not turn[1]]
    assert len(spoken) == 1, turns  # the microphone's sentence, once
    typed = [turn[1] for turn in turns if turn[0] == "user" and turn[1]]
    assert typed == ["My name is Ada", "What is my name?"], turns
    assert [turn[0] for turn in turns] == ["user", "model"] * 3, turns
    shown = page.evaluate("window.panelTexts")
    assert all(text.startswith("talk-status: ") for text in shown), shown  # never a notice
    assert not any(word in text.lower() for text in shown for word in ("error", "lost", "session_", "failed")), shown
    page.get_by_role("button", name="End voice session").click()
    page.wait_for_function("() => window.apsaraTalk.state === 'ended'")
    page.context.close()


def test_sigkill_of_the_worker_holding_the_call_resumes_it_on_the_other_within_3_s(
    cluster: Cluster, chromium: Any
) -> None:
    page, session_id = start_call_in_hold_mode(cluster, chromium, "crash-talker")
    gone = holder(cluster, session_id)
    cluster.kill(gone)
    killed = time.monotonic()
    page.wait_for_function("() => window.apsaraTalk.stats.events.includes('reconnecting')")
    wait_resumed(page, 1)
    took = time.monotonic() - killed
    print(f"\nresumed on worker {1 - gone} {took:.2f} s after SIGKILL of worker {gone}")
    assert took <= 3.0, f"resumed {took:.2f} s after the kill"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "talk-failover-resumed.png")
    check_after_the_move(cluster, page, session_id, gone)
    cluster.restart(gone)


def test_sigterm_of_the_worker_holding_the_call_moves_it_with_nothing_shown(cluster: Cluster, chromium: Any) -> None:
    page, session_id = start_call_in_hold_mode(cluster, chromium, "restart-talker")
    gone = holder(cluster, session_id)
    stopping = threading.Thread(target=cluster.terminate, args=(gone,))
    stopping.start()
    wait_resumed(page, 1)
    stopping.join(30)
    assert not stopping.is_alive()
    process = cluster.workers[gone].process
    assert process is not None and process.returncode in (0, 1, -15)
    log = cluster.workers[gone].log.read_text(errors="replace")
    assert "draining 1 session" in log, log[-3000:]
    check_after_the_move(cluster, page, session_id, gone)
    cluster.restart(gone)


def test_the_deploy_docs_describe_this_topology() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    for needle in ("nginx", "apsara.serve", "SIGTERM", "1012", "LIVE_LEASE_SECONDS", "LIVE_DRAIN_SECONDS"):
        assert needle in docs, needle
