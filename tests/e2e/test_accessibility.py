"""Every page passes axe-core with no serious or critical violation, on a desktop and a phone, light and dark.

axe-core comes from npm (package.json, installed by `make node-packages`, which `make test` runs); it is injected
into each page from node_modules, never fetched from a CDN. The pages: login, sign-up, the conversation list (empty
and not), a conversation with typed and spoken turns (players, code blocks), the Talk panel during a call (fake
microphone), the Talk settings dialog, and the admin pages staff use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conversations import services
from conversations.audio import pcm16_to_wav
from conversations.models import Conversation, Message, User
from live.models import LiveSession
from tests.e2e import test_talk
from tests.e2e.conftest import while_server_writes
from tests.e2e.test_pages import sign_up
from tests.e2e.test_talk import PHONE, SPEECH, open_page, wait_state
from tests.factories import LiveSessionFactory

pytestmark = pytest.mark.e2e
talk_browser = test_talk.talk_browser  # the fixture: Chromium with a fake microphone

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
SERIOUS = ("serious", "critical")


def audit(page: Page, where: str) -> list[str]:
    """Run axe-core on the page as it is now; return its serious and critical violations, one line each."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make node-packages` (make test does).")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in results["violations"]:
        if violation["impact"] not in SERIOUS:
            continue
        for node in violation["nodes"]:
            detail = node.get("failureSummary", "").replace("\n", " ")
            found.append(f"{where}: {violation['id']} ({violation['impact']}) {node['target']} {detail}")
    return found


def spoken_and_typed(user: User) -> Conversation:
    """A conversation with typed turns (one with a code block) and spoken ones (with recordings)."""
    conversation = services.conversation_create(owner=user, title="Typed and spoken")
    services.message_create(conversation=conversation, role=Message.Role.USER, text="Show me a loop in Python.")
    services.message_create(
        conversation=conversation,
        role=Message.Role.MODEL,
        text="Here it is:\n\n```python\nfor i in range(3):\n    print(i)  # counts\n```\n\nIt prints `0`, `1`, `2`.",
    )
    tone = (b"\x00\x10\x00\xf0" * 4000) * 5  # 2.5 s of 16 kHz audio
    live = Message.MessageType.LIVE
    services.message_create(
        conversation=conversation,
        role=Message.Role.USER,
        message_type=live,
        input_transcription="What is the weather on the moon?",
        audio=pcm16_to_wav(tone, sample_rate=16000),
    )
    services.message_create(
        conversation=conversation,
        role=Message.Role.MODEL,
        message_type=live,
        output_transcription="Sunny, and very cold at night.",
        audio=pcm16_to_wav(tone, sample_rate=24000),
    )
    return conversation


def visit(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("load")


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_every_page_passes_axe(
    talk_browser: Any, server_url: str, screenshot_dir: Path, device: str, color_scheme: str
) -> None:
    chromium, _ = talk_browser([1.0, SPEECH, 4.0])
    page = open_page(chromium, server_url, viewport=PHONE if device == "phone" else DESKTOP, color_scheme=color_scheme)
    found: list[str] = []

    visit(page, "/login/")
    found += audit(page, "login")
    visit(page, "/signup/")
    found += audit(page, "signup")
    sign_up(page, username="auditor")
    found += audit(page, "list (empty)")

    user = User.objects.get(username="auditor")
    conversation = spoken_and_typed(user)
    visit(page, "/")
    found += audit(page, "list")
    visit(page, f"/c/{conversation.public_id}/")
    expect(page.locator("#messages [data-player]")).to_have_count(2)
    expect(page.locator("#messages pre code").first).to_be_visible()
    found += audit(page, "conversation")

    page.screenshot(path=screenshot_dir / f"{device}-{color_scheme}-conversation.png")
    page.get_by_role("button", name="Talk settings").first.click()
    dialog = page.get_by_role("dialog", name="Talk settings")
    expect(dialog).to_be_visible()
    found += audit(page, "Talk settings")
    page.screenshot(path=screenshot_dir / f"{device}-{color_scheme}-settings.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    found += audit(page, "Talk panel (listening)")
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    found += audit(page, "Talk panel (ended)")

    # Staff see the admin: the same person, made a superuser.
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    live_session = while_server_writes(lambda: LiveSession.objects.filter(user=user).first()) or (
        LiveSessionFactory.create(user=user, conversation=conversation)
    )
    message = conversation.messages.filter(message_type=Message.MessageType.LIVE).first()
    assert message is not None
    for where, path in [
        ("admin index", "/admin/"),
        ("admin users", "/admin/conversations/user/"),
        ("admin user", f"/admin/conversations/user/{user.pk}/change/"),
        ("admin conversations", "/admin/conversations/conversation/"),
        ("admin conversation", f"/admin/conversations/conversation/{conversation.pk}/change/"),
        ("admin messages", "/admin/conversations/message/"),
        ("admin message", f"/admin/conversations/message/{message.pk}/change/"),
        ("admin live sessions", "/admin/live/livesession/"),
        ("admin live session", f"/admin/live/livesession/{live_session.pk}/change/"),
    ]:
        visit(page, path)
        found += audit(page, where)
        if path.endswith("/change/"):
            continue
        page.screenshot(path=screenshot_dir / f"{device}-{color_scheme}-{where.replace(' ', '-')}.png")
        if device == "desktop":
            # The lists fit a 1280 px screen: neither the page nor the table scrolls sideways.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= DESKTOP["width"], f"{where} is {width} px wide"
            table = page.evaluate(
                "(() => { const r = document.querySelector('.results');"
                " return r && [r.scrollWidth, r.clientWidth]; })()"
            )
            assert table is None or table[0] <= table[1], f"{where}: the table is {table[0]} px in {table[1]} px"
    assert not found, "axe-core found serious or critical violations:\n" + "\n".join(found)


def test_audit_reports_a_violation(page: Page) -> None:
    """The helper itself finds what it is for: an unlabelled button and low contrast."""
    page.set_content(
        '<main><h1>t</h1><button></button><p style="color:#ccc;background:#fff">faint</p></main>',
    )
    found = audit(page, "fixture")
    assert any("button-name" in line for line in found), json.dumps(found)
    assert any("color-contrast" in line for line in found), json.dumps(found)
