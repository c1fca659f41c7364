"""Screenshots of the main states, on a desktop and a phone, for people to look at (the run's `screenshot_dir`):
login, the list, a chat with a reply, Talk connecting / listening / speaking / reconnecting / ended, the settings
dialog and an admin list. Each state is reached for real (Chromium's fake microphone speaks; the /live socket is held
back with Playwright's WebSocket routing to show connecting and reconnecting), and checked before it is taken.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from conversations.models import User
from tests.e2e import test_talk
from tests.e2e.conftest import send_prompt
from tests.e2e.test_pages import sign_up
from tests.e2e.test_talk import PHONE, SPEECH, open_page, wait_state

pytestmark = pytest.mark.e2e
talk_browser = test_talk.talk_browser  # the fixture: Chromium with a fake microphone

DESKTOP = {"width": 1280, "height": 800}
LIVE = re.compile(r"/live$")


class HeldSockets:
    """The page's /live connections, each held (the page sees it open, the server does not yet) until `release`."""

    def __init__(self, page: Page) -> None:
        self.routes: list[WebSocketRoute] = []
        self.servers: list[WebSocketRoute | None] = []
        self.waiting: list[list[str | bytes]] = []
        page.route_web_socket(LIVE, self._on_socket)

    def _on_socket(self, route: WebSocketRoute) -> None:
        n = len(self.routes)
        self.routes.append(route)
        self.servers.append(None)
        self.waiting.append([])

        def forward(message: str | bytes) -> None:
            server = self.servers[n]
            if server is None:
                self.waiting[n].append(message)
            else:
                server.send(message)

        route.on_message(forward)

    def wait_for(self, page: Page, n: int) -> None:
        """Wait until the page has opened its n-th connection (Playwright's handler runs while the page waits)."""
        for _ in range(300):
            if len(self.routes) > n:
                return
            page.wait_for_timeout(100)
        raise AssertionError(f"the page never opened /live connection {n}")

    def release(self, n: int) -> None:
        """Connect connection n to the server, with what the page has sent on it so far."""
        server = self.routes[n].connect_to_server()
        for message in self.waiting[n]:
            server.send(message)
        self.servers[n] = server

    def cut(self, n: int) -> None:
        """Drop connection n as a crashed worker would (no close frame for the page: 1006)."""
        self.routes[n].close(code=1006, reason="")
        server = self.servers[n]
        if server is not None:
            server.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_screenshots_of_the_main_states(talk_browser: Any, server_url: str, screenshot_dir: Path, device: str) -> None:
    chromium, _ = talk_browser([1.0, SPEECH, 30.0])
    page = open_page(chromium, server_url, viewport=PHONE if device == "phone" else DESKTOP)

    def shot(name: str) -> None:
        page.screenshot(path=screenshot_dir / f"states-{device}-{name}.png")

    page.goto("/login/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    shot("login")
    sign_up(page, username=f"shots-{device}")

    page.get_by_test_id("new-conversation").click()
    send_prompt(page, "Hello! Show me a short Python loop, please.")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    expect(page.locator("#stop")).to_be_hidden()
    shot("chat-reply")

    page.goto("/")
    expect(page.locator(".conv-row")).to_have_count(1)
    shot("list")

    page.locator(".conv-row a").first.click()
    page.wait_for_selector("#chat[data-ready=true]")
    sockets = HeldSockets(page)
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "connecting")
    expect(page.locator("#talk-status")).not_to_be_empty()
    sockets.wait_for(page, 0)  # "connecting" starts with the microphone, before the socket opens
    shot("talk-connecting")
    sockets.release(0)
    wait_state(page, "listening")
    shot("talk-listening")
    wait_state(page, "speaking", timeout=40_000)  # Gemini answers what the microphone said
    shot("talk-speaking")

    sockets.cut(0)
    wait_state(page, "reconnecting")
    expect(page.locator("#talk-status")).to_have_text("Reconnecting…")
    shot("talk-reconnecting")
    sockets.wait_for(page, 1)  # the page's first attempt to resume, held until now
    sockets.release(1)
    page.wait_for_function("() => ['listening', 'speaking'].includes(window.apsaraTalk.state)", timeout=30_000)

    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    # The call's last turns are read once more from the server; no "…" bubble is left behind.
    expect(page.locator("#messages .talk-pending")).to_have_count(0)
    shot("talk-ended")

    page.get_by_role("button", name="Talk settings").first.click()
    expect(page.get_by_role("dialog", name="Talk settings")).to_be_visible()
    shot("settings")
    page.keyboard.press("Escape")

    User.objects.filter(username=f"shots-{device}").update(is_staff=True, is_superuser=True)
    page.goto("/admin/live/livesession/")
    expect(page.locator("#result_list")).to_be_visible()
    shot("admin-live-sessions")
    page.goto("/admin/conversations/message/")
    expect(page.locator("#result_list")).to_be_visible()
    shot("admin-messages")
