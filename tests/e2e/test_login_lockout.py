"""Login throttling in a real browser, through the ASGI server: the refusal is the login page, saying why."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from conversations.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e


def submit(page: Page, username: str, password: str) -> int:
    """Fill in and send the login form; return the answer's HTTP status."""
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_response(re.compile(r"/login/$")) as answer:
        page.click("button[type=submit]")
    return answer.value.status


def test_locked_out_login_shows_the_wait_on_the_login_page(page: Page, settings, screenshot_dir: Path) -> None:
    """Wrong passwords up to the limit: the login form comes back (429) with the wait, and the right one is refused."""
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    user: User = UserFactory.create()
    page.goto("/login/")
    assert [submit(page, user.username, "wrong password") for _ in range(3)] == [200, 200, 429]
    error = page.locator(".form-error")
    expect(error).to_contain_text("Too many failed login attempts")
    expect(error).to_contain_text("Try again in 15 minutes")
    expect(page.locator("#id_username")).to_have_value(user.username)
    page.screenshot(path=screenshot_dir / "login-locked.png", full_page=True)

    assert submit(page, user.username, "correct horse battery staple") == 429
    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(error).to_contain_text("Too many failed login attempts")
