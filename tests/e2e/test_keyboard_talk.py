"""The whole Talk flow with the keyboard alone (Tab, Shift+Tab, Enter, Space, Escape), in a real Chromium with a
fake microphone: open a conversation, start a call, mute and unmute, change a setting in the settings dialog (focus
comes back), switch to Hold mode and hold to talk with Space, end the call. At every step the focused element shows
a focus ring (`:focus-visible` with an outline) and focus is never lost to <body>.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from conversations import services
from conversations.models import User
from tests.e2e import test_talk
from tests.e2e.test_pages import sign_up
from tests.e2e.test_talk import open_page, wait_state

pytestmark = pytest.mark.e2e
talk_browser = test_talk.talk_browser  # the fixture: Chromium with a fake microphone

# "" when focus is on an element that shows it; else what is wrong. The message box draws its ring on the composer
# around it (the box itself is borderless), so a ring there counts for it.
FOCUS_PROBLEM = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "focus lost to <body>";
  const name = `${el.tagName.toLowerCase()}#${el.id} "${el.getAttribute("aria-label") || el.textContent.trim()}"`;
  if (!el.matches(":focus-visible")) return `no :focus-visible on ${name}`;
  const ring = (node) => {
    const style = getComputedStyle(node);
    return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  };
  if (ring(el) || (el.closest(".composer") && ring(el.closest(".composer")))) return "";
  return `no focus ring on ${name}`;
}"""


def focus_shown(page: Page) -> None:
    problem = page.evaluate(FOCUS_PROBLEM)
    assert not problem, problem


def focused(target: Locator) -> bool:
    return bool(target.evaluate("(el) => el === document.activeElement"))


def tab_to(page: Page, target: Locator, *, back: bool = False, limit: int = 40) -> None:
    """Press Tab (Shift+Tab with `back`) until `target` has focus, checking the focus ring at every stop."""
    target.wait_for(state="visible")
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        focus_shown(page)
        if focused(target):
            return
    raise AssertionError(f"{target} never got focus by {'Shift+' if back else ''}Tab")


def press(page: Page, key: str) -> None:
    page.keyboard.press(key)
    focus_shown(page)


def test_the_whole_talk_flow_by_keyboard(talk_browser: Any, server_url: str, screenshot_dir: Path) -> None:
    chromium, _ = talk_browser([30.0])  # a quiet room: nothing is said, so nothing answers
    page = open_page(chromium, server_url)
    sign_up(page, username="keyboard")
    conversation = services.conversation_create(owner=User.objects.get(username="keyboard"), title="By keyboard")
    page.goto("/")

    # Open the conversation from the list.
    tab_to(page, page.get_by_role("link", name="By keyboard"))
    page.keyboard.press("Enter")  # a navigation: the new page is checked from its first Tab on
    expect(page).to_have_url(f"{server_url}/c/{conversation.public_id}/")
    page.wait_for_selector("#chat[data-ready=true]")

    # Reach Talk and start a call: focus moves to End.
    talk = page.get_by_role("button", name="Talk with Gemini by voice")
    tab_to(page, talk)
    press(page, "Enter")
    wait_state(page, "listening")
    end = page.get_by_role("button", name="End voice session")
    expect(end).to_be_focused()
    focus_shown(page)
    page.screenshot(path=screenshot_dir / "keyboard-talk-listening.png")

    # Mute and unmute with Space.
    mute = page.locator("#talk-mute")
    tab_to(page, mute, back=True)
    press(page, "Space")
    expect(mute).to_have_attribute("aria-pressed", "true")
    expect(mute).to_be_focused()
    press(page, "Space")
    expect(mute).to_have_attribute("aria-pressed", "false")

    # The settings dialog: open, change a setting, close with Escape; focus returns to the button that opened it.
    settings = page.locator("#talk-panel-settings")
    tab_to(page, settings)
    press(page, "Enter")
    dialog = page.get_by_role("dialog", name="Talk settings")
    expect(dialog).to_be_visible()
    focus_shown(page)
    history = dialog.get_by_label("Load earlier messages")
    was = history.is_checked()
    tab_to(page, history)
    press(page, "Space")
    expect(history).to_be_checked(checked=not was)
    expect(dialog.locator("#talk-settings-status")).to_have_text("Saved.")
    page.screenshot(path=screenshot_dir / "keyboard-talk-settings.png")
    press(page, "Escape")
    expect(dialog).to_be_hidden()
    expect(settings).to_be_focused()

    # Hold mode: switch with Enter; focus goes to Hold, which Space holds down while pressed.
    mode = page.locator("#talk-mode")
    tab_to(page, mode, back=True)
    press(page, "Enter")
    expect(mode).to_have_attribute("aria-pressed", "true")
    hold = page.get_by_role("button", name="Hold to talk", exact=True)
    expect(hold).to_be_focused()
    focus_shown(page)
    page.keyboard.down("Space")
    expect(hold).to_have_class(test_talk.re.compile(r"\bholding\b"))
    focus_shown(page)
    page.keyboard.up("Space")
    expect(hold).not_to_have_class(test_talk.re.compile(r"\bholding\b"))
    focus_shown(page)
    # And back to automatic turns: focus stays on the switch.
    tab_to(page, mode)
    press(page, "Enter")
    expect(mode).to_have_attribute("aria-pressed", "false")
    page.wait_for_timeout(300)
    focus_shown(page)

    # End the call: focus goes back to Talk.
    tab_to(page, end)
    press(page, "Enter")
    wait_state(page, "ended")
    page.wait_for_timeout(300)
    focus_shown(page)
    page.screenshot(path=screenshot_dir / "keyboard-talk-ended.png")
