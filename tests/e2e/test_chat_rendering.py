"""The chat view in a real browser: stored messages render as formatted, inert Markdown; audio gets a player."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import Page, expect

from conversations.models import Message
from tests.conversations.test_audio_storage import wav_bytes
from tests.factories import ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.e2e

INJECTIONS = (
    "<script>window.__pwned = 'script'</script>\n\n"
    "<img src=x onerror=\"window.__pwned = 'img'\">\n\n"
    "[click me](javascript:window.__pwned='link')\n\n"
    "<a href=\"javascript:window.__pwned='a'\">raw link</a>\n\n"
    "![tracker](http://127.0.0.1:9/pixel.png)\n\n"
    "<iframe src=\"javascript:parent.__pwned='iframe'\"></iframe>"
)

REPLY = """Here is a **plan**:

1. Pack light
2. Take the `28` tram

| day | what |
|:--|--:|
| Mon | Alfama |

```python
print("olá")
```
"""


def log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_stored_markdown_is_formatted_and_injection_is_inert(page: Page, screenshot_dir: Path) -> None:
    """Model and user text render as Markdown; scripts, handlers, javascript: links and images never run or load."""
    user = UserFactory.create(username="reader")
    conversation = ConversationFactory.create(owner=user, title="Lisbon")
    MessageFactory.create(conversation=conversation, text=INJECTIONS)
    MessageFactory.create(conversation=conversation, role=Message.Role.MODEL, text=REPLY + "\n\n" + INJECTIONS)
    MessageFactory.create(
        conversation=conversation,
        role=Message.Role.MODEL,
        message_type=Message.MessageType.LIVE,
        text="",
        output_transcription="Try pastéis de nata.",
        interrupted=True,
    )

    external_requests: list[str] = []
    page.on("request", lambda request: external_requests.append(request.url))
    log_in(page, "reader")
    page.goto(f"/c/{conversation.public_id}/")
    messages = page.locator("#messages")
    expect(messages.locator(".msg")).to_have_count(3)

    model = messages.locator(".msg-model").first
    expect(model.locator("strong")).to_have_text("plan")
    expect(model.locator("ol li")).to_have_count(2)
    expect(model.locator("table td").first).to_have_text("Mon")
    expect(model.locator("pre code")).to_contain_text('print("olá")')

    assert page.evaluate("window.__pwned") is None
    assert messages.locator("script, img, iframe").count() == 0
    hrefs = messages.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert not [href for href in hrefs if href and not href.startswith(("http://", "https://", "mailto:"))]
    expect(messages.locator(".msg-user").first).to_contain_text("<script>window.__pwned")  # shown as text
    assert not [url for url in external_requests if "pixel.png" in url or ":9/" in url]

    expect(messages).to_contain_text("Try pastéis de nata.")
    expect(messages.locator(".badge-warn")).to_have_text("interrupted")
    page.screenshot(path=screenshot_dir / "chat-rendering.png", full_page=True)

    page.emulate_media(color_scheme="dark")
    page.screenshot(path=screenshot_dir / "chat-rendering-dark.png", full_page=True)


def test_audio_message_plays_from_storage(page: Page, audio_storage_backend: str, screenshot_dir: Path) -> None:
    """A spoken message shows a player that loads the recording (S3: through the presigned redirect) and its words."""
    user = UserFactory.create(username=f"listener-{audio_storage_backend}")
    conversation = ConversationFactory.create(owner=user, title="Voice")
    spoken = MessageFactory.create(
        conversation=conversation,
        message_type=Message.MessageType.LIVE,
        text="",
        input_transcription="What should I eat there?",
        audio_mime_type="audio/wav",
        audio_duration=0.25,
    )
    spoken.audio.save("q.wav", ContentFile(wav_bytes()), save=True)

    log_in(page, user.username)
    page.goto(f"/c/{conversation.public_id}/")
    audio = page.locator("#messages audio")
    expect(audio).to_have_attribute("src", f"/api/files/{spoken.public_id}/download")
    expect(page.locator("#messages")).to_contain_text("What should I eat there?")
    duration = audio.evaluate(
        """el => new Promise(resolve => {
            el.addEventListener("loadedmetadata", () => resolve(el.duration), { once: true });
            el.addEventListener("error", () => resolve(-1), { once: true });
            el.preload = "metadata";
            el.load();
        })"""
    )
    assert duration == pytest.approx(0.25, abs=0.02)  # the browser fetched and decoded the recording
    page.screenshot(path=screenshot_dir / f"chat-audio-{audio_storage_backend}.png")
