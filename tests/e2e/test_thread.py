"""The thread reads well (issue 13): new turns come into view and the Talk panel never covers them, a "New
messages" button when the person has scrolled up, recordings' players that are wide enough and show their length
before playing, typed and spoken turns labelled, the person's words shown as they are recognised, conversations
titled from their first exchange, and a call in which nothing was said leaves no conversation.

Chromium's fake microphone speaks (espeak-ng) against daphne, the live bridge and the Gemini simulator.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conversations import services
from conversations.audio import pcm16_to_wav
from conversations.models import Conversation, Message
from tests.e2e import test_talk
from tests.e2e.conftest import send_prompt, while_server_writes
from tests.e2e.test_pages import sign_up
from tests.e2e.test_talk import PHONE, SPEECH, open_page, wait_state
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e
talk_browser = test_talk.talk_browser  # the fixture: Chromium with a fake microphone

DESKTOP = {"width": 1280, "height": 800}


def history(username: str, *, turns: int = 8) -> Conversation:
    """A conversation long enough to scroll, whose spoken turns have recordings (one with no transcript)."""
    user = UserFactory.create(username=username)  # get_or_create: the account just signed up
    conversation = services.conversation_create(owner=user, title="Long talk")
    tone = (b"\x00\x10\x00\xf0" * 4000) * 7  # 3.5 s of 16 kHz audio
    for i in range(turns):
        services.message_create(conversation=conversation, role=Message.Role.USER, text=f"Question {i}: " + "why " * 30)
        services.message_create(conversation=conversation, role=Message.Role.MODEL, text=f"Answer {i}. " + "so " * 60)
    live = Message.MessageType.LIVE
    recording = pcm16_to_wav(tone, sample_rate=16000)
    services.message_create(conversation=conversation, role=Message.Role.USER, message_type=live, audio=recording)
    services.message_create(
        conversation=conversation,
        role=Message.Role.USER,
        message_type=live,
        input_transcription="(3.5 seconds of speech)",
        audio=pcm16_to_wav(tone, sample_rate=16000),
    )
    services.message_create(
        conversation=conversation,
        role=Message.Role.MODEL,
        message_type=live,
        output_transcription="A spoken answer.",
        audio=pcm16_to_wav(tone, sample_rate=24000),
    )
    return conversation


def newest_in_view(page: Page) -> dict[str, Any]:
    """Where the newest message sits: its box, the list's, and the Talk panel's (null when hidden)."""
    return dict(
        page.evaluate(
            """() => {
                const box = (el) => el && !el.hidden ? el.getBoundingClientRect().toJSON() : null;
                const list = document.getElementById("messages");
                const items = list.querySelectorAll("article.msg");
                return {
                    last: box(items[items.length - 1]),
                    list: box(list),
                    panel: box(document.getElementById("talk-panel")),
                    pill: box(document.getElementById("new-messages")),
                };
            }"""
        )
    )


def _newest_shown(where: dict[str, Any]) -> bool:
    last, lst, panel = where["last"], where["list"], where["panel"]
    return bool(
        last["bottom"] <= lst["bottom"] + 1  # in the list's viewport (its end shown) …
        and last["top"] < lst["bottom"]
        and last["bottom"] > lst["top"]
        and (not panel or last["bottom"] <= panel["top"] + 1)  # … and not under the Talk panel
    )


def assert_newest_visible(page: Page, *, within: float = 1.0) -> None:
    """The newest message is in view, once the layout has settled: the list follows a change of its size (the Talk
    panel opening, say) on the next animation frames, so a check made in the same instant can see the old scroll."""
    deadline = time.monotonic() + within
    where = newest_in_view(page)
    while not _newest_shown(where) and time.monotonic() < deadline:
        page.wait_for_timeout(50)
        where = newest_in_view(page)
    assert _newest_shown(where), where


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_spoken_reply_scrolls_into_view_above_the_talk_panel(
    talk_browser: Any, server_url: str, screenshot_dir: Path, viewport: dict[str, int]
) -> None:
    chromium, _ = talk_browser([1.0, SPEECH, 4.0])
    page = open_page(chromium, server_url, viewport=viewport)
    name = f"scroller{viewport['width']}"
    sign_up(page, username=name)
    conversation = history(name)
    page.goto(f"/c/{conversation.public_id}/")
    assert_newest_visible(page)
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    assert_newest_visible(page)  # the panel opened and the list kept its end in view
    page.wait_for_function(
        "() => (document.querySelector('.talk-pending.msg-model .talk-transcript')?.textContent ?? '').length > 20",
        timeout=30_000,
    )
    assert_newest_visible(page)  # streaming
    tag = "desktop" if viewport == DESKTOP else "phone"
    page.screenshot(path=screenshot_dir / f"thread-{tag}-during-call.png")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(9 + 1, timeout=30_000)
    expect(page.locator("#messages .talk-pending")).to_have_count(0)
    page.wait_for_timeout(300)
    assert_newest_visible(page)  # saved
    expect(page.locator("#new-messages")).to_be_hidden()
    page.screenshot(path=screenshot_dir / f"thread-{tag}-saved.png")
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    page.wait_for_timeout(600)
    assert_newest_visible(page)
    page.screenshot(path=screenshot_dir / f"thread-{tag}-after-call.png")


def test_scrolled_up_new_turns_show_a_new_messages_button(
    talk_browser: Any, server_url: str, screenshot_dir: Path
) -> None:
    chromium, _ = talk_browser([2.0, SPEECH, 4.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="reader")
    conversation = history("reader")
    page.goto(f"/c/{conversation.public_id}/")
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    page.locator("#messages").hover()
    page.mouse.wheel(0, -2000)  # the person scrolls up to read
    page.wait_for_function("() => document.getElementById('messages').scrollTop < 200")
    pill = page.get_by_role("button", name="New messages")
    expect(pill).to_be_visible(timeout=30_000)  # the turns arrive below
    top = page.evaluate("document.getElementById('messages').scrollTop")
    assert top < 200  # the page did not pull the reader down
    page.screenshot(path=screenshot_dir / "thread-new-messages-button.png")
    pill_box = newest_in_view(page)["pill"]
    panel_box = newest_in_view(page)["panel"]
    assert pill_box["bottom"] <= panel_box["top"] + 1  # above the Talk panel, not on it
    pill.click()
    expect(pill).to_be_hidden()
    assert_newest_visible(page)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")


def test_players_are_wide_and_show_their_length_before_playing(
    talk_browser: Any, server_url: str, screenshot_dir: Path
) -> None:
    chromium, _ = talk_browser([1.0, SPEECH, 4.0])
    page = open_page(chromium, server_url, viewport=PHONE)
    sign_up(page, username="listener")
    conversation = history("listener", turns=1)
    page.goto(f"/c/{conversation.public_id}/")
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(3, timeout=40_000)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    page.wait_for_timeout(600)
    players = page.locator("#messages [data-player]")
    expect(players).to_have_count(5)  # three from before, two from the call
    rows = {m.public_id: m.audio_duration for m in conversation.messages.exclude(audio="")}
    for i in range(players.count()):
        player = players.nth(i)
        player.scroll_into_view_if_needed()
        box = player.bounding_box()
        assert box is not None and box["width"] >= 240, box
        message_id = player.locator("xpath=ancestor::article[1]").get_attribute("data-message-id")
        duration = rows[message_id or ""]
        assert duration
        seconds = round(duration)
        expect(player.locator(".player-duration")).to_have_text(f"{seconds // 60}:{seconds % 60:02d}")
        assert page.evaluate("(el) => el.querySelector('audio').currentTime", player.element_handle()) == 0
    page.screenshot(path=screenshot_dir / "thread-phone-players.png", full_page=True)
    # It plays: the toggle says Pause and the clock moves.
    first = players.nth(0)
    first.get_by_role("button", name="Play recording").click()
    expect(first.get_by_role("button", name="Pause recording")).to_be_visible()
    expect(first.locator(".player-current")).not_to_have_text("0:00", timeout=5_000)
    first.get_by_role("button", name="Pause recording").click()


def test_typed_and_spoken_turns_are_labelled_and_what_is_heard_shows_as_it_is_recognised(
    talk_browser: Any, server_url: str, screenshot_dir: Path
) -> None:
    chromium, _ = talk_browser([1.0, SPEECH, 6.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="labeller")
    page.get_by_test_id("new-conversation").click()
    # Every text the person's pending bubble shows, in order (interim, then final).
    page.evaluate(
        """() => {
            window.heardTexts = [];
            new MutationObserver(() => {
                const text = document.querySelector(".talk-pending.msg-user .talk-transcript")?.textContent;
                if (text && window.heardTexts.at(-1) !== text) window.heardTexts.push(text);
            }).observe(document.getElementById("messages"), {childList: true, subtree: true, characterData: true});
        }"""
    )
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    page.wait_for_function("() => window.heardTexts.length > 0", timeout=30_000)
    assert page.evaluate("window.apsaraTalk.stats.samplesReceived") == 0  # shown before the turn ended
    page.screenshot(path=screenshot_dir / "thread-heard-as-recognised.png")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    heard = page.evaluate("window.heardTexts")
    assert heard[0] == "(" and re.fullmatch(r"\(\d+\.\d seconds of speech\)", heard[-1]), heard
    spoken = page.locator("#messages .msg-user[data-message-id]").first
    expect(spoken.locator(".badge")).to_have_text("spoken")
    expect(page.locator("#messages .msg-model[data-message-id] .badge").first).to_have_text("spoken")
    wait_state(page, "listening")
    send_prompt(page, "Typed during the call")
    typed_pending = page.locator("#messages .talk-pending.msg-user", has_text="Typed during the call")
    expect(typed_pending.locator(".badge")).to_have_text("typed")
    typed = page.locator("#messages .msg-user[data-message-id]", has_text="Typed during the call")
    expect(typed.locator(".badge")).to_have_text("typed", timeout=20_000)
    page.screenshot(path=screenshot_dir / "thread-typed-and-spoken.png")
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    row = Message.objects.get(text="Typed during the call")
    assert row.message_type == Message.MessageType.LIVE and row.input_mode == "typed"


def test_a_typed_conversation_is_titled_from_its_first_exchange(page: Page, server_url: str, settings: Any) -> None:
    settings.CONVERSATION_TITLES = True
    sign_up(page, username="titler")
    page.get_by_test_id("new-conversation").click()
    send_prompt(page, "How do I bake **sourdough** bread?")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1)
    # The page follows the title the server makes in the background: plain text, no Markdown.
    expect(page.get_by_test_id("conversation-title")).to_have_text("Bake sourdough bread", timeout=30_000)
    expect(page.locator("#side-list a.current")).to_have_text("Bake sourdough bread")
    assert Conversation.objects.get(owner__username="titler").title == "Bake sourdough bread"
    page.goto("/")
    expect(page.locator(".conv-title")).to_have_text(["Bake sourdough bread"])


def test_a_call_is_titled_and_falls_back_to_the_first_words(
    talk_browser: Any, server_url: str, settings: Any, gemini_sim: Any, screenshot_dir: Path
) -> None:
    settings.CONVERSATION_TITLES = True
    gemini_sim.inject_fault("http", when="rest", status=500)  # the title model fails: the first words are used
    chromium, _ = talk_browser([1.0, SPEECH, 4.0])
    page = open_page(chromium, server_url, viewport=PHONE)
    sign_up(page, username="fallback")
    page.get_by_test_id("new-conversation").click()
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=40_000)
    expect(page.get_by_test_id("conversation-title")).to_have_text(
        re.compile(r"^\(\d+\.\d seconds of speech\)$"), timeout=30_000
    )
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    # The list on a phone: one line of details per row, nothing wider than the screen.
    services.conversation_create(owner=UserFactory.create(username="fallback"), title="A much longer title " * 4)
    page.goto("/")
    page.screenshot(path=screenshot_dir / "conversation-list-phone.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for meta in page.locator(".conv-meta").all():
        box = meta.bounding_box()
        assert box is not None and box["height"] < 24, box  # one line


def test_a_call_in_which_nothing_was_said_leaves_no_conversation(talk_browser: Any, server_url: str) -> None:
    chromium, _ = talk_browser([6.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="silent")
    page.get_by_test_id("new-conversation").click()
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="silent"))
    expect(page).to_have_url(re.compile(rf"/c/{conversation.public_id}/$"))
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    # The page is a new conversation again; nothing is left in the list.
    expect(page).to_have_url(re.compile(r"/c/new/$"))
    assert not Conversation.objects.filter(owner__username="silent").exists()
    # What is typed next starts a conversation of its own.
    send_prompt(page, "Hello after all")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1)
    assert Conversation.objects.filter(owner__username="silent").count() == 1


def test_a_call_in_which_something_was_typed_keeps_its_conversation(talk_browser: Any, server_url: str) -> None:
    chromium, _ = talk_browser([10.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="typist")
    page.get_by_test_id("new-conversation").click()
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="typist"))
    expect(page).to_have_url(re.compile(rf"/c/{conversation.public_id}/$"))  # the page moved to it
    send_prompt(page, "Just typing")
    expect(page.locator("#messages .msg-user[data-message-id]")).to_have_count(1, timeout=20_000)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    page.wait_for_timeout(1000)
    expect(page).to_have_url(re.compile(rf"/c/{conversation.public_id}/$"))
    assert Conversation.objects.filter(pk=conversation.pk).exists()
