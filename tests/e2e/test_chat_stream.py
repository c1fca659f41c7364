"""The chat flow in a real browser against daphne and the Gemini simulator: the reply streams into the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from tests.e2e.conftest import send_prompt
from tests.e2e.test_pages import sign_up

pytestmark = pytest.mark.e2e


@pytest.fixture
def slow_simulator(gemini_sim: Any) -> Any:
    """Slow the simulator's stream down, so a person (and the test) can watch text arrive."""
    gemini_sim.set_options(stream_delay=0.4)
    return gemini_sim


def test_prompt_streams_reply_then_reload_shows_both(page: Page, slow_simulator: Any, screenshot_dir: Path) -> None:
    """Sign up, start a conversation, send a prompt: partial text shows before the end; reload keeps both turns."""
    sign_up(page, username="streamer")
    page.get_by_test_id("new-conversation").click()
    expect(page).to_have_url(re.compile(r"/c/new/$"))

    send_prompt(page, "Please count to 40 for me")
    expect(page.locator("#messages .msg-user")).to_contain_text("Please count to 40 for me")

    # Partial text is on screen while the stream is still open (data-state only leaves "streaming" at the end).
    page.wait_for_function(
        """() => {
            const chat = document.getElementById("chat");
            const text = document.querySelector("#messages .msg-model .streaming-text")?.textContent ?? "";
            return chat.dataset.state === "streaming" && text.includes("1, 2") && !text.includes("40.");
        }""",
        timeout=20_000,
    )
    page.screenshot(path=screenshot_dir / "chat-streaming.png")
    expect(page.locator("#chat")).to_have_attribute("data-state", "idle", timeout=30_000)
    model = page.locator("#messages .msg-model")
    expect(model).to_contain_text("39, 40.")
    expect(model.locator(".md")).to_be_visible()  # replaced by the server's rendering
    page.screenshot(path=screenshot_dir / "chat-done.png")

    conversation = Conversation.objects.get(owner__username="streamer")
    expect(page).to_have_url(re.compile(rf"/c/{conversation.public_id}/$"))  # the first prompt created it
    expect(page.get_by_test_id("conversation-title")).to_have_text(conversation.title)
    assert conversation.title.startswith("Please count to 40")
    expect(page.locator(".chat-head details.menu")).to_be_visible()
    roles = list(conversation.messages.order_by("created_at", "id").values_list("role", flat=True))
    assert roles == [Message.Role.USER, Message.Role.MODEL]

    page.reload()
    expect(page.locator("#messages .msg")).to_have_count(2)
    expect(page.locator("#messages .msg-user")).to_contain_text("Please count to 40 for me")
    expect(page.locator("#messages .msg-model")).to_contain_text("39, 40.")


def test_phone_chat_after_a_reply(browser, server_url: str, screenshot_dir: Path) -> None:
    """On a phone a finished exchange reads well: bubbles fit, nothing scrolls sideways."""
    context = browser.new_context(
        base_url=server_url, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    try:
        sign_up(page, username="phonechat")
        page.get_by_test_id("new-conversation").click()
        send_prompt(page, "Hello! Tell me a story in 3 sentences.", press_enter=False)
        expect(page.locator("#chat")).to_have_attribute("data-state", "idle", timeout=30_000)
        expect(page.locator("#messages .msg")).to_have_count(2)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
        page.screenshot(path=screenshot_dir / "phone-chat-reply.png")
    finally:
        context.close()


def test_gemini_failure_is_shown_and_the_prompt_kept(page: Page, slow_simulator: Any) -> None:
    """When Gemini fails the page says so next to the reply, and the person's message is kept."""
    sign_up(page, username="unlucky")
    page.get_by_test_id("new-conversation").click()
    slow_simulator.inject_fault("http", when="rest", status=503)
    send_prompt(page, "Hello there", press_enter=False)
    expect(page.locator("#chat")).to_have_attribute("data-state", "error", timeout=30_000)
    expect(page.locator("#messages .msg-model.failed .msg-error")).not_to_be_empty()
    expect(page.get_by_role("alert")).to_have_count(1)  # said once (visible), where the reply would be
    expect(page.locator("#prompt")).to_have_value("Hello there")  # the prompt is back in the input
    expect(page.locator("#send")).to_be_enabled()
    page.reload()
    expect(page.locator("#messages .msg-user")).to_contain_text("Hello there")


def test_typed_html_is_shown_as_text_while_streaming_and_after(page: Page) -> None:
    """Markup typed into the composer never becomes elements: not in the pending bubble, not once rendered."""
    sign_up(page, username="typist")
    page.get_by_test_id("new-conversation").click()
    send_prompt(page, '<img src=x onerror="window.__pwned = 1"> and **bold**', press_enter=False)
    expect(page.locator("#messages .msg-user")).to_contain_text('<img src=x onerror="window.__pwned = 1">')
    expect(page.locator("#chat")).to_have_attribute("data-state", "idle", timeout=30_000)
    user = page.locator("#messages .msg-user")
    expect(user).to_contain_text('<img src=x onerror="window.__pwned = 1">')
    expect(user.locator("strong")).to_have_text("bold")
    assert page.locator("#messages img").count() == 0
    assert page.evaluate("window.__pwned") is None
