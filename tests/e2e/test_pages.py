"""The pages in a real browser: sign up, conversations, rename, delete, phone layout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from conversations.models import User
from tests.factories import ConversationFactory

pytestmark = pytest.mark.e2e


def sign_up(page: Page, username: str = "ada", password: str = "correct-horse-battery") -> None:
    """Create an account through the sign-up form."""
    page.goto("/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Conversations", exact=True)).to_be_visible()


def test_signup_new_conversation_rename_delete_logout(page: Page, screenshot_dir: Path) -> None:
    """A new person signs up, starts a conversation, renames it, deletes it and logs out."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))
    expect(page.get_by_test_id("simulator-banner")).to_be_visible()
    page.screenshot(path=screenshot_dir / "login.png", full_page=True)
    sign_up(page)
    page.screenshot(path=screenshot_dir / "list-empty.png", full_page=True)

    page.get_by_test_id("new-conversation").click()
    expect(page).to_have_url(re.compile(r"/c/new/$"))
    expect(page.locator("#prompt")).to_be_visible()
    expect(page.locator("#talk-slot")).to_be_attached()
    expect(page.locator(".chat-head details.menu")).to_be_hidden()

    conversation = ConversationFactory.create(owner=User.objects.get(username="ada"), title="")
    page.goto(f"/c/{conversation.public_id}/")
    page.locator(".chat-head details.menu summary").click()
    page.locator(".chat-head .rename-form input[name=title]").fill("Trip to Lisbon")
    page.locator(".chat-head .rename-form button").click()
    expect(page.get_by_test_id("conversation-title")).to_have_text("Trip to Lisbon")

    page.goto("/")
    expect(page.get_by_test_id("conversation-list")).to_contain_text("Trip to Lisbon")
    page.screenshot(path=screenshot_dir / "list.png", full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".conv-row details.menu summary").first.click()
    page.locator(".conv-row .menu-panel .btn-danger").first.click()
    expect(page.locator(".flash")).to_contain_text("Deleted")
    expect(page.get_by_test_id("conversation-list")).to_have_count(0)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/"))


def test_phone_sized_screen(browser, server_url: str, screenshot_dir: Path) -> None:
    """On a phone the chat view fits the width: no sidebar, no horizontal scrolling, composer visible."""
    context = browser.new_context(
        base_url=server_url, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    try:
        sign_up(page, username="phone")
        page.screenshot(path=screenshot_dir / "phone-list.png")
        page.get_by_test_id("new-conversation").click()
        expect(page).to_have_url(re.compile(r"/c/new/$"))
        expect(page.locator("#prompt")).to_be_visible()
        expect(page.locator(".sidebar")).to_be_hidden()
        expect(page.locator(".chat-head .back")).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
        page.screenshot(path=screenshot_dir / "phone-chat.png")

        ConversationFactory.create(
            owner=User.objects.get(username="phone"), title="A rather long title for a small screen"
        )
        page.goto("/")
        page.locator(".conv-row details.menu summary").click()
        panel = page.locator(".conv-row .menu-panel")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390  # the menu fits on screen
        page.screenshot(path=screenshot_dir / "phone-list-menu.png")
    finally:
        context.close()
