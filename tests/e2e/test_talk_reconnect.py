"""The Talk page when its /live socket goes away mid-call (docs/live-protocol.md, "Reconnecting").

Playwright routes the page's WebSockets (``page.route_web_socket``): the first connection goes through to the real
server (daphne, the live bridge, the Gemini simulator); the test then cuts it as a crash, a network drop or a
graceful restart (close 1012) would, and decides what each reconnect attempt meets: refusal, ``SESSION_IN_USE``, or
the real server again. Playwright's fake clock (``page.clock``) runs a whole reconnect window in a moment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.e2e.conftest import launch_chromium
from tests.e2e.test_pages import sign_up
from tests.e2e.test_talk import speech_wav, wait_state

pytestmark = pytest.mark.e2e

LIVE = re.compile(r"/live$")
LOST = "The connection to the voice server was lost and could not be restored. Press Talk to start again."
# Whatever a failed attempt was answered, none of it reaches the person.
RAW = ("SESSION_IN_USE", "still open on another connection", "1006", "1011", "1012")


@pytest.fixture
def quiet_browser(playwright_driver: Any, tmp_path: Path) -> Iterator[Any]:
    """Chromium whose fake microphone (and camera) is granted and hears silence: nothing for Gemini to answer."""
    wav = tmp_path / "silence.wav"
    speech_wav(wav, [30.0])
    chromium = launch_chromium(
        playwright_driver,
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    yield chromium
    chromium.close()


class Sockets:
    """Every /live connection the page opens, and what each meets: `plan(n, route)` for the n-th (0 = the call's)."""

    def __init__(self, page: Page, plan: Callable[[int, WebSocketRoute], None]) -> None:
        self.routes: list[WebSocketRoute] = []
        self.servers: list[WebSocketRoute | None] = []
        self.sent: list[list[str | bytes]] = []  # page → server, per connection (when the plan records it)
        self._plan = plan
        page.route_web_socket(LIVE, self._on_socket)

    def _on_socket(self, route: WebSocketRoute) -> None:
        self.routes.append(route)
        self.servers.append(None)
        self.sent.append([])
        self._plan(len(self.routes) - 1, route)

    def through(self, n: int, route: WebSocketRoute) -> None:
        """Connect to the real server, keeping a copy of what the page sends."""
        server = route.connect_to_server()
        self.servers[n] = server

        def forward(message: str | bytes) -> None:
            self.sent[n].append(message)
            server.send(message)

        route.on_message(forward)

    def cut(self, n: int, *, code: int) -> None:
        """End connection n as a failure would: the page sees `code`, the server sees its socket go."""
        self.routes[n].close(code=code, reason="")
        server = self.servers[n]
        if server is not None:
            server.close()

    def json_sent(self, n: int) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.sent[n] if isinstance(m, str)]


def open_call(
    chromium: Any, server_url: str, username: str, plan: Callable[..., None], *, init_script: str = ""
) -> tuple[Page, Sockets]:
    """A new user, a new conversation, Talk pressed; the call is listening through connection 0."""
    context = chromium.new_context(base_url=server_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    if init_script:
        page.add_init_script(init_script)
    sockets = Sockets(page, lambda n, route: plan(sockets, n, route))
    sign_up(page, username=username)
    page.get_by_test_id("new-conversation").click()
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    return page, sockets


def stats(page: Page) -> dict[str, Any]:
    return dict(page.evaluate("window.apsaraTalk.stats"))


def watch_status(page: Page) -> None:
    """Keep every text the status line shows from now on (`window.statusTexts`)."""
    page.evaluate(
        """() => {
            const el = document.getElementById("talk-status");
            window.statusTexts = [el.textContent];
            new MutationObserver(() => window.statusTexts.push(el.textContent))
                .observe(el, {childList: true, characterData: true, subtree: true});
        }"""
    )


def assert_nothing_raw(page: Page) -> None:
    panel = page.locator("#talk-panel").inner_text()
    for text in RAW:
        assert text not in panel
    expect(page.locator("#talk-notice")).to_be_hidden()


def test_keeps_trying_with_jittered_backoff_for_the_window_then_gives_up(
    quiet_browser: Any, server_url: str, settings: Any, screenshot_dir: Path
) -> None:
    """Every attempt refused: the page tries for the whole window (from the server's setting), each wait random in
    [d/2, d] with d doubling from 250 ms to 5 s, "Reconnecting…" all along; then the friendly words, no code."""
    settings.LIVE_RECONNECT_WINDOW_SECONDS = 60  # the server thread renders the same settings

    def plan(sockets: Sockets, n: int, route: WebSocketRoute) -> None:
        if n == 0:
            sockets.through(n, route)
        else:
            route.close(code=1011, reason="upstream down")  # what a proxy with no worker behind it would do

    context = quiet_browser.new_context(base_url=server_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.clock.install()  # time flows until the call is open, then the test moves it
    sockets = Sockets(page, lambda n, route: plan(sockets, n, route))
    sign_up(page, username="patient")
    page.get_by_test_id("new-conversation").click()
    expect(page.locator("#talk-slot")).to_have_attribute("data-reconnect-window-seconds", "60")
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")

    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.5)  # a moment ahead: never in the past
    watch_status(page)
    dropped_at = page.evaluate("performance.now()")
    sockets.cut(0, code=1006)  # a crashed worker: no close frame
    wait_state(page, "reconnecting")
    status = page.get_by_role("region", name="Voice session").get_by_role("status")
    expect(status).to_have_text("Reconnecting…")
    page.screenshot(path=screenshot_dir / "talk-reconnecting.png")

    attempt = 0
    while True:
        page.wait_for_function(
            "(k) => window.apsaraTalk.stats.reconnectDelays.length > k || window.apsaraTalk.state === 'error'",
            arg=attempt,
        )
        if page.evaluate("window.apsaraTalk.state") == "error":
            break
        assert page.evaluate("window.apsaraTalk.state") == "reconnecting"
        delay = stats(page)["reconnectDelays"][attempt]
        ceiling = min(5000, 250 * 2**attempt)
        assert ceiling / 2 - 1 <= delay <= ceiling + 1, (attempt, delay)
        assert stats(page)["reconnectAttempts"] == attempt
        page.clock.run_for(delay)  # the attempt starts now, and is refused
        page.wait_for_function("(k) => window.apsaraTalk.stats.reconnectAttempts > k", arg=attempt)
        attempt += 1

    gave_up_after = page.evaluate("performance.now()") - dropped_at
    assert 60_000 <= gave_up_after < 60_000 + 5_000 + 10, gave_up_after
    assert len(sockets.routes) == 1 + attempt
    delays = stats(page)["reconnectDelays"]
    assert len(delays) == attempt >= 15
    assert len(set(delays[6:])) > 1  # jittered, not one fixed delay (the capped ones)
    assert all(d >= 2500 for d in delays[5:])  # no hammering once capped
    expect(status).to_have_text(LOST)
    # Until then the person saw only "Reconnecting…".
    texts = page.evaluate("window.statusTexts")
    assert set(texts[1:-1]) == {"Reconnecting…"}, set(texts)
    assert_nothing_raw(page)
    expect(page.get_by_role("button", name="Talk with Gemini by voice")).to_be_visible()


def test_server_restart_reconnects_at_once_and_keeps_hold_mode_mute_and_sharing(
    quiet_browser: Any, server_url: str
) -> None:
    """session_reconnecting SERVER_RESTART then close 1012: the page resumes at once (≤ 250 ms), with binary audio
    asked for again; Hold mode (its button too), mute and the shared camera carry on."""
    # No randomness: "at once" is then exactly 0 ms, where a backoff's first wait would be 125 ms.
    page, sockets = open_call(
        quiet_browser,
        server_url,
        "restarted",
        lambda s, n, route: s.through(n, route),
        init_script="Math.random = () => 0;",
    )
    page.get_by_role("button", name="Hold to talk instead of automatic turns").click()
    expect(page.locator("#talk-hold")).to_be_visible()
    page.get_by_role("button", name="Mute microphone").click()
    page.get_by_role("button", name="Share camera").click()
    page.wait_for_function("() => window.apsaraTalk.stats.videoFramesSent >= 2", timeout=10_000)
    session_id = page.evaluate("window.apsaraTalk.sessionId")
    watch_status(page)

    sockets.routes[0].send(
        json.dumps(
            {
                "type": "session_reconnecting",
                "sessionId": session_id,
                "reason": "SERVER_RESTART",
                "timestamp": "2026-11-21T10:40:00.000Z",
            }
        )
    )
    sockets.cut(0, code=1012)
    wait_state(page, "listening")
    counters = stats(page)
    assert counters["reconnectDelays"][0] == 0  # at once, not after a backoff
    assert counters["reconnects"] == 1
    assert page.evaluate("window.apsaraTalk.sessionId") == session_id
    assert "Reconnecting…" in page.evaluate("window.statusTexts")
    resumes = [m for n in range(1, len(sockets.routes)) for m in sockets.json_sent(n) if m["type"] == "resume_session"]
    assert resumes and resumes[-1]["data"] == {"sessionId": session_id, "binaryAudio": True}

    # The server's config (push-to-talk) is the page's mode again; mute and the camera were never dropped.
    expect(page.locator("#talk-hold")).to_be_visible()
    expect(page.locator("#talk-hold")).to_be_enabled()
    expect(page.locator("#talk-mode")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Unmute microphone")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Stop sharing camera")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("video.talk-preview")).to_be_visible()
    last = len(sockets.routes) - 1
    frames: list[dict[str, Any]] = []
    for _ in range(50):  # the camera's next frames, on the new socket
        frames = [m for m in sockets.json_sent(last) if m["type"] == "send_message" and "videoFrame" in m["data"]]
        if len(frames) >= 2:
            break
        page.wait_for_timeout(100)
    assert len(frames) >= 2, "camera frames did not go on after the resume"
    assert_nothing_raw(page)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")


def test_session_in_use_is_retried_quietly_until_the_lease_runs_out(quiet_browser: Any, server_url: str) -> None:
    """A crashed worker's lease still holds the session: two resumes are answered SESSION_IN_USE (one with
    retryAfter), the third resumes; the person sees only "Reconnecting…", and the speech meanwhile is delivered."""
    retry_after = 600

    def plan(sockets: Sockets, n: int, route: WebSocketRoute) -> None:
        if n in (1, 2):

            def refuse(message: str | bytes, n: int = n) -> None:
                if isinstance(message, str) and json.loads(message)["type"] == "resume_session":
                    error: dict[str, Any] = {
                        "code": "SESSION_IN_USE",
                        "message": "That live session is still open on another connection; end it first.",
                    }
                    if n == 1:
                        error["retryAfter"] = retry_after
                    route.send(
                        json.dumps(
                            {
                                "type": "session_error",
                                "sessionId": None,
                                "error": error,
                                "timestamp": "2026-11-21T10:40:00.000Z",
                            }
                        )
                    )

            route.on_message(refuse)
        else:
            sockets.through(n, route)

    page, sockets = open_call(quiet_browser, server_url, "leased", plan)
    session_id = page.evaluate("window.apsaraTalk.sessionId")
    watch_status(page)
    sockets.cut(0, code=1006)
    page.wait_for_function("() => window.apsaraTalk.stats.reconnects === 1", timeout=20_000)
    wait_state(page, "listening")
    counters = stats(page)
    assert counters["reconnectAttempts"] >= 3
    assert counters["reconnectDelays"][1] >= retry_after  # the server's retryAfter was honoured
    assert page.evaluate("window.apsaraTalk.sessionId") == session_id
    assert "error" not in counters["events"]
    texts = page.evaluate("window.statusTexts")
    assert "Reconnecting…" in texts
    assert all(t == "Reconnecting…" or t.startswith("Listening") for t in texts), texts
    assert_nothing_raw(page)

    # What the microphone captured during the outage (~1 s of 40 ms frames) went to the resumed session.
    last = len(sockets.routes) - 1
    page.wait_for_timeout(200)
    binary = [m for m in sockets.sent[last] if isinstance(m, bytes)]
    assert len(binary) >= 15, len(binary)
    assert stats(page)["framesDropped"] == 0
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
