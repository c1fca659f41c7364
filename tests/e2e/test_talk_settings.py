"""Talk settings in a real Chromium: chosen in the sheet, saved on the server, and what Gemini's setup then holds
(gemini_sim records it); they follow the person to a reload and to another browser context; a refused value is
shown and the previous one kept; a change of turn detection applies to the call under way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conversations.models import TalkPreferences
from tests.e2e.test_pages import sign_up
from tests.e2e.test_talk import PHONE, check_wire, open_page, talk_browser, wait_state  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e
PASSWORD = "correct-horse-battery"  # sign_up's


def open_settings(page: Page) -> Any:
    """Open the sheet from the button next to Talk; return the dialog."""
    page.get_by_role("button", name="Talk settings").first.click()
    dialog = page.get_by_role("dialog", name="Talk settings")
    expect(dialog).to_be_visible()
    return dialog


def expect_saved(dialog: Any) -> None:
    expect(dialog.locator("#talk-settings-status")).to_have_text("Saved.")


def log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Conversations", exact=True)).to_be_visible()


def member(value: Any, *names: str) -> Any:
    """A nested member of a setup message, as camelCase or snake_case (the SDK sends nested configs as snake_case)."""
    for name in names:
        snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
        value = value[name] if name in value else value[snake]
    return value


def setups(gemini_sim: Any) -> list[dict[str, Any]]:
    return [m["setup"] for m in gemini_sim.client_messages() if "setup" in m]


def choose_everything(dialog: Any) -> None:
    """Model, voice, text answers, automatic turns with low sensitivity and 700 ms of silence, no history."""
    dialog.get_by_label("Model").select_option("gemini-3.8-live")
    expect_saved(dialog)
    expect(dialog.locator("#talk-set-model-hint")).to_contain_text("newest")
    dialog.get_by_label("Voice", exact=True).select_option("Aoede")
    expect_saved(dialog)
    both = dialog.get_by_label("Speech and text")
    expect(both).to_be_disabled()  # no model answers in both at once: the reason is shown
    expect(dialog.locator("#talk-set-modality-TEXT\\+AUDIO-why")).to_contain_text("one modality at a time")
    dialog.get_by_label("Text only (no sound)").check()
    expect_saved(dialog)
    dialog.get_by_label("Sensitivity (start and end of speech)").select_option("low")
    expect_saved(dialog)
    silence = dialog.get_by_label("Silence that ends your turn (ms)")
    silence.fill("700")
    silence.press("Tab")
    expect_saved(dialog)
    dialog.get_by_label("Load earlier messages").uncheck()
    expect_saved(dialog)
    dialog.get_by_label("Compress long calls").check()
    expect_saved(dialog)


def expect_chosen(dialog: Any) -> None:
    expect(dialog.get_by_label("Model")).to_have_value("gemini-3.8-live")
    expect(dialog.get_by_label("Voice", exact=True)).to_have_value("Aoede")
    expect(dialog.get_by_label("Text only (no sound)")).to_be_checked()
    expect(dialog.get_by_label("Sensitivity (start and end of speech)")).to_have_value("low")
    expect(dialog.get_by_label("Silence that ends your turn (ms)")).to_have_value("700")
    expect(dialog.get_by_label("Load earlier messages")).not_to_be_checked()
    expect(dialog.get_by_label("Compress long calls")).to_be_checked()


def test_settings_chosen_in_the_panel_reach_gemini_and_follow_the_person(
    talk_browser: Any,  # noqa: F811
    server_url: str,
    gemini_sim: Any,
    screenshot_dir: Path,
) -> None:
    chromium, _ = talk_browser([1.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="tuner")
    page.get_by_test_id("new-conversation").click()
    dialog = open_settings(page)
    expect(dialog.get_by_label("Model")).to_be_focused()  # focus moves into the sheet
    choose_everything(dialog)
    stored = TalkPreferences.objects.get(user__username="tuner").settings
    assert stored["vad"] == {"enabled": True, "sensitivity": 0.2, "silenceThreshold": 700}
    page.screenshot(path=screenshot_dir / "talk-settings-desktop.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("#talk-settings-open")).to_be_focused()  # focus goes back to the button

    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    setup = setups(gemini_sim)[-1]
    assert setup["model"] == "models/gemini-3.8-live"
    generation = setup["generationConfig"]
    assert member(generation, "speechConfig", "voiceConfig", "prebuiltVoiceConfig", "voiceName") == "Aoede"
    assert generation["responseModalities"] == ["AUDIO"]  # TEXT is its transcription on native-audio models
    detection = member(setup, "realtimeInputConfig", "automaticActivityDetection")
    assert detection["disabled"] is False
    assert member(detection, "startOfSpeechSensitivity") == "START_SENSITIVITY_LOW"
    assert member(detection, "endOfSpeechSensitivity") == "END_SENSITIVITY_LOW"
    assert member(detection, "silenceDurationMs") == 700
    assert "contextWindowCompression" in setup
    types = check_wire(page)
    assert "in:context_loaded" not in types and "in:context_load_skipped" not in types  # history off
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    # Nothing was said, so the call leaves no conversation: the page becomes a new one (reloading the old address
    # before that would meet the 404 of a conversation that is gone).
    expect(page).to_have_url(re.compile(r"/c/new/$"))

    # Nothing was said: the call left no conversation and the page is a new one again; a reload shows the same.
    page.wait_for_url("**/c/new/**")
    page.reload()
    expect_chosen(open_settings(page))
    page.context.close()

    other = open_page(chromium, server_url, viewport=PHONE)  # another browser context: no shared storage
    log_in(other, "tuner")
    other.get_by_test_id("new-conversation").click()
    dialog = open_settings(other)
    expect_chosen(dialog)
    other.screenshot(path=screenshot_dir / "talk-settings-phone.png")
    dialog.get_by_label("Speech and text").scroll_into_view_if_needed()
    other.screenshot(path=screenshot_dir / "talk-settings-phone-scrolled.png")
    other.context.close()


def test_a_refused_value_is_shown_and_the_previous_one_kept(page: Page, screenshot_dir: Path) -> None:
    sign_up(page, username="fumbler")
    page.get_by_test_id("new-conversation").click()
    dialog = open_settings(page)
    silence = dialog.get_by_label("Silence that ends your turn (ms)")
    silence.fill("600")
    silence.press("Tab")
    expect_saved(dialog)
    silence.fill("20000")
    silence.press("Tab")
    error = dialog.get_by_role("alert")
    expect(error).to_contain_text(
        "Not saved — Silence that ends your turn: Input should be less than or equal to 10000"
    )
    expect(silence).to_have_value("600")
    page.screenshot(path=screenshot_dir / "talk-settings-refused.png")
    assert TalkPreferences.objects.get(user__username="fumbler").settings["vad"]["silenceThreshold"] == 600


def test_hold_to_talk_from_the_settings_then_back_to_automatic_in_the_call(
    talk_browser: Any,  # noqa: F811
    server_url: str,
    gemini_sim: Any,
) -> None:
    chromium, _ = talk_browser([1.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="holdfast")
    page.get_by_test_id("new-conversation").click()
    dialog = open_settings(page)
    dialog.get_by_label("Hold to talk — press a button while you speak").check()
    expect_saved(dialog)
    expect(dialog.get_by_label("Silence that ends your turn (ms)")).to_be_hidden()
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    expect(page.locator("#talk-hold")).to_be_visible()
    assert member(setups(gemini_sim)[-1], "realtimeInputConfig", "automaticActivityDetection", "disabled") is True

    page.get_by_role("button", name="Talk settings").click()  # the panel's own button during a call
    dialog = page.get_by_role("dialog", name="Talk settings")
    expect(dialog.locator("#talk-settings-callnote")).to_be_visible()
    dialog.get_by_label("Automatic — Gemini hears when you stop").check()
    expect_saved(dialog)
    page.keyboard.press("Escape")
    expect(page.locator("#talk-hold")).to_be_hidden()  # vad_configured: automatic turns now
    types = check_wire(page)
    assert types.index("out:configure_vad") < types.index("in:vad_configured")
    page.wait_for_function("() => window.apsaraTalk.stats.events.length > 0")
    assert len(setups(gemini_sim)) >= 2  # the session moved to a connection with detection on
    assert member(setups(gemini_sim)[-1], "realtimeInputConfig", "automaticActivityDetection", "disabled") is False
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
