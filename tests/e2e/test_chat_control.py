"""Chat control in a real browser: Stop keeps the partial reply (interrupted), a failed or empty reply is said once
with Retry and the prompt back in the input, code blocks are highlighted with a Copy button, and a silent Live turn
is "No answer" with a Retry that gets one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from live import metrics
from tests.e2e import test_talk
from tests.e2e.conftest import send_prompt, while_server_writes
from tests.e2e.test_pages import sign_up
from tests.e2e.test_talk import SPEECH, check_wire, start_talking, wait_state
from tests.factories import ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.e2e
talk_browser = test_talk.talk_browser  # Chromium with a fake microphone (a fixture)

CODE_REPLY = """Here you go:

```python
def greet(name: str) -> str:
    # Say hello.
    return f"Hello, {name}!"
```
"""


def test_stop_keeps_the_partial_reply_marked_interrupted(page: Page, gemini_sim: Any, screenshot_dir: Path) -> None:
    gemini_sim.set_options(stream_delay=0.4)
    sign_up(page, username="stopper")
    page.get_by_test_id("new-conversation").click()
    send_prompt(page, "Please count to 300 for me")
    stop = page.get_by_role("button", name="Stop the reply")
    expect(stop).to_be_visible()
    expect(page.locator("#send")).to_be_hidden()
    page.wait_for_function(
        """() => (document.querySelector("#messages .msg-model .streaming-text")?.textContent ?? "").includes("1, 2")"""
    )
    page.screenshot(path=screenshot_dir / "chat-stop-streaming.png")
    page.focus("#prompt")
    page.keyboard.press("Escape")  # the keyboard way; the button does the same
    expect(stop).to_be_hidden()
    expect(page.locator("#send")).to_be_visible()
    model = page.locator("#messages .msg-model")
    expect(model.locator(".badge-warn")).to_have_text("interrupted")
    expect(page.locator("#chat")).to_have_attribute("data-state", "idle")
    # The server stores the partial reply once it notices the abort; the page then shows its rendering.
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1)

    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="stopper"))
    stored = while_server_writes(lambda: list(conversation.messages.order_by("created_at", "id")))
    assert [m.role for m in stored] == ["user", "model"]
    assert stored[1].interrupted and stored[1].text.startswith("Sure. 1, 2")
    assert "300." not in stored[1].text
    expect(model.locator(".md")).to_contain_text(stored[1].text[:20])  # the server's rendering replaced the stream
    page.screenshot(path=screenshot_dir / "chat-stopped.png")

    page.reload()
    expect(page.locator("#messages .msg")).to_have_count(2)
    expect(page.locator("#messages .msg-model .badge-warn")).to_have_text("interrupted")
    expect(page.locator("#messages .msg-model")).to_contain_text("1, 2")


def test_rate_limited_reply_is_said_once_with_retry_and_the_prompt_kept(
    page: Page, gemini_sim: Any, screenshot_dir: Path
) -> None:
    sign_up(page, username="ratelimited")
    page.get_by_test_id("new-conversation").click()
    gemini_sim.inject_fault("http", when="rest", status=429)
    send_prompt(page, "Hello there, are you busy?")
    expect(page.locator("#chat")).to_have_attribute("data-state", "error")
    alerts = page.get_by_role("alert")
    expect(alerts).to_have_count(1)
    expect(alerts).to_contain_text("rate limiting")
    expect(page.locator("#messages .msg-model.failed")).to_have_count(1)
    expect(page.locator("#prompt")).to_have_value("Hello there, are you busy?")
    retry = page.get_by_role("button", name="Retry: ask Gemini again")
    expect(retry).to_be_visible()
    page.screenshot(path=screenshot_dir / "chat-rate-limited.png")

    retry.click()
    expect(page.locator("#chat")).to_have_attribute("data-state", "idle", timeout=30_000)
    expect(page.locator("#messages .msg-model")).to_have_count(1)
    expect(page.locator("#messages .msg-model .md")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator("#prompt")).to_have_value("")  # answered: the kept copy is done with
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="ratelimited"))
    roles = list(conversation.messages.order_by("created_at", "id").values_list("role", flat=True))
    assert roles == [Message.Role.USER, Message.Role.MODEL]  # the prompt stored once
    page.reload()
    expect(page.locator("#messages .msg-user")).to_have_count(1)
    page.screenshot(path=screenshot_dir / "chat-retried.png")


def test_empty_reply_shows_no_answer_with_retry(page: Page, gemini_sim: Any, screenshot_dir: Path) -> None:
    sign_up(page, username="emptyreply")
    page.get_by_test_id("new-conversation").click()
    gemini_sim.set_options(empty_turns=1)
    send_prompt(page, "Hello there")
    expect(page.locator("#chat")).to_have_attribute("data-state", "no-answer")
    expect(page.locator("#messages .msg-model .no-answer")).to_have_text("No answer")
    page.screenshot(path=screenshot_dir / "chat-no-answer.png")
    page.get_by_role("button", name="Retry: ask Gemini again").click()
    expect(page.locator("#chat")).to_have_attribute("data-state", "idle", timeout=30_000)
    expect(page.locator("#messages .msg-model")).to_contain_text("Hello")
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="emptyreply"))
    assert conversation.messages.filter(role=Message.Role.USER).count() == 1


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_code_blocks_are_highlighted_and_copied(browser: Any, server_url: str, screenshot_dir: Path, scheme) -> None:
    user = UserFactory.create(username=f"coder-{scheme}")
    conversation = ConversationFactory.create(owner=user, title="Code")
    MessageFactory.create(conversation=conversation, text="Write me a greeting function")
    MessageFactory.create(conversation=conversation, role=Message.Role.MODEL, text=CODE_REPLY)
    context = browser.new_context(base_url=server_url, viewport={"width": 1000, "height": 700}, color_scheme=scheme)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server_url)
    page = context.new_page()
    try:
        page.goto("/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "correct horse battery staple")
        page.click("button[type=submit]")
        page.wait_for_url("**/")
        page.goto(f"/c/{conversation.public_id}/")
        block = page.locator("#messages .codeblock")
        expect(block).to_have_count(1)
        expect(block.locator("pre.highlight span.k").first).to_have_text("def")
        expect(block.locator("pre.highlight span.nf")).to_have_text("greet")
        expect(block.locator("pre.highlight span.c1")).to_have_text("# Say hello.")
        assert block.locator("[style]").count() == 0
        color = block.locator("span.k").first.evaluate("e => getComputedStyle(e).color")
        plain = block.locator("pre").evaluate("e => getComputedStyle(e).color")
        assert color != plain  # the theme colours keywords
        copy = block.get_by_role("button", name="Copy python code")
        copy.click()
        expect(block.get_by_role("button", name="Copied")).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("def greet(name: str) -> str:") and 'return f"Hello, {name}!"' in copied
        page.screenshot(path=screenshot_dir / f"chat-code-{scheme}.png")
        expect(block.get_by_role("button", name="Copy python code")).to_have_text("Copy", timeout=5_000)
    finally:
        context.close()


def test_silent_live_turn_shows_no_answer_and_retry_gets_one(
    talk_browser: Any, server_url: str, gemini_sim: Any, screenshot_dir: Path
) -> None:
    silent_before = metrics.REGISTRY.get_sample_value("apsara_live_silent_turns_total") or 0.0
    gemini_sim.set_options(empty_turns=1)
    chromium, _ = talk_browser([1.0, SPEECH, 4.0])
    page = start_talking(chromium, server_url, username="unanswered")
    wait_state(page, "listening")
    silent = page.locator("#messages .talk-silent")
    expect(silent).to_have_count(1, timeout=30_000)
    expect(silent.locator(".no-answer")).to_have_text("No answer")
    assert metrics.REGISTRY.get_sample_value("apsara_live_silent_turns_total") == silent_before + 1
    # The user's turn is stored; no model message is.
    expect(page.locator("#messages .msg-user[data-message-id]")).to_have_count(1, timeout=30_000)
    page.screenshot(path=screenshot_dir / "talk-no-answer.png")

    texts_before = _texts_sent(gemini_sim)
    silent.get_by_role("button", name="Retry: ask Gemini again").click()
    expect(silent).to_have_count(0)
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    retried = _texts_sent(gemini_sim)[len(texts_before) :]
    assert len(retried) == 1 and re.search(r"seconds of speech|answer what I just said", retried[0]), retried
    page.screenshot(path=screenshot_dir / "talk-no-answer-retried.png")
    types = check_wire(page)
    assert types.count("in:turn_silent") == 1 and types.count("out:retry_turn") == 1
    assert "in:session_error" not in types
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="unanswered"))
    roles = list(conversation.messages.order_by("created_at", "id").values_list("role", flat=True))
    assert roles == [Message.Role.USER, Message.Role.MODEL]


def _texts_sent(sim: Any) -> list[str]:
    """Text turns the bridge sent Gemini (the SDK writes some members in snake case)."""
    texts = []
    for message in sim.client_messages():
        for turn in (message.get("clientContent") or message.get("client_content") or {}).get("turns", []):
            texts += [part["text"] for part in turn.get("parts", []) if part.get("text")]
        realtime = message.get("realtimeInput") or message.get("realtime_input") or {}
        if realtime.get("text"):
            texts.append(realtime["text"])
    return texts
