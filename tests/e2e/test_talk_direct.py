"""Talk in direct mode (docs/live-direct.md) in a real Chromium: the page asks the server for an ephemeral token, opens
the Gemini simulator's Constrained endpoint itself (the server's bridge carries no audio), hears the reply, and posts
each finished turn back; after a reload the thread holds the spoken turns, with their recordings, in order with a
typed one.
"""

from __future__ import annotations

import io
import re
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from live.metrics import REGISTRY
from live.models import LiveSession
from tests.e2e.conftest import launch_chromium, send_prompt, while_server_writes
from tests.e2e.test_pages import sign_up
from tests.e2e.test_talk import SPEECH, open_page, speech_wav, wait_played_out, wait_state
from tests.e2e.test_talk_settings import expect_saved, open_settings

pytestmark = pytest.mark.e2e
DIRECT_LABEL = re.compile("^Direct")


@pytest.fixture
def direct_browser(playwright_driver: Any, tmp_path: Path) -> Iterator[tuple[Any, float]]:
    """Chromium whose fake microphone says SPEECH once, trusting the simulator's certificate (this browser only)."""
    wav = tmp_path / "mic.wav"
    spoken = speech_wav(wav, [1.0, SPEECH, 4.0])
    chromium = launch_chromium(
        playwright_driver,
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--autoplay-policy=no-user-gesture-required",
            # The page opens gemini_sim's wss:// itself; its CA is the simulator's own.
            "--ignore-certificate-errors",
        ],
    )
    yield chromium, spoken
    chromium.close()


def bridge_audio_seconds() -> float:
    """Seconds of user speech the server's /live bridge has carried in this process."""
    return REGISTRY.get_sample_value("apsara_live_audio_seconds_total", {"direction": "in"}) or 0.0


def wav_rate(body: bytes) -> tuple[int, float]:
    with wave.open(io.BytesIO(body)) as reader:
        return reader.getframerate(), reader.getnframes() / reader.getframerate()


def choose_direct(page: Page, screenshot_dir: Path) -> None:
    dialog = open_settings(page)
    choice = dialog.get_by_label(DIRECT_LABEL)
    expect(choice).to_be_visible()
    choice.check()
    expect_saved(dialog)
    dialog.screenshot(path=screenshot_dir / "talk-settings-direct.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_talk_direct_reply_plays_and_turns_are_stored_in_order(
    direct_browser: tuple[Any, float], server_url: str, gemini_sim: Any, settings: Any, screenshot_dir: Path
) -> None:
    settings.LIVE_DIRECT_MODE = "allowed"
    chromium, spoken = direct_browser
    page = open_page(chromium, server_url)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_up(page, username="direct")
    page.get_by_test_id("new-conversation").click()
    expect(page.locator("#talk-slot")).to_have_attribute("data-direct-mode", "allowed")
    choose_direct(page, screenshot_dir)

    # A typed exchange first (the REST path), then the call in the same conversation.
    send_prompt(page, "Hello there, a typed hello first.")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="direct"))
    audio_before = bridge_audio_seconds()

    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    page.wait_for_function(
        """() => window.apsaraTalk.state === "speaking" &&
                 (document.querySelector(".talk-pending.msg-model .talk-transcript")?.textContent ?? "").length > 5""",
        timeout=30_000,
    )
    stats = wait_played_out(page)
    assert stats["playback"]["played"] == stats["samplesReceived"] > 24000 // 2, stats
    assert stats["framesSent"] > 0

    # Both spoken turns are posted back and join the thread in place of the transcript bubbles.
    user_msgs = page.locator("#messages .msg-user[data-message-id]")
    model_msgs = page.locator("#messages .msg-model[data-message-id]")
    expect(user_msgs).to_have_count(2, timeout=30_000)
    expect(model_msgs).to_have_count(2, timeout=30_000)
    expect(page.locator("#messages .talk-pending")).to_have_count(0)
    page.screenshot(path=screenshot_dir / "talk-direct-saved.png")
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")

    # The page talked to the simulator's Constrained endpoint (v1alpha) with the token; /live was never opened.
    assert not [url for url in sockets if re.search(r"/live/?$", url)], sockets
    assert any("BidiGenerateContentConstrained?access_token=auth_tokens" in url for url in sockets), sockets
    connects = gemini_sim.records(type="connect")
    assert [c["path"] for c in connects] == ["gemini:v1alpha:constrained"], connects
    sessions = LiveSession.objects.filter(conversation=conversation)
    assert [s.transport for s in sessions] == [LiveSession.Transport.DIRECT]
    assert bridge_audio_seconds() == audio_before
    while_server_writes(lambda: LiveSession.objects.get(pk=sessions[0].pk, ended_at__isnull=False))

    # Stored as a proxied call's turns would be: live messages with 16 kHz / 24 kHz recordings.
    rows = list(Message.objects.filter(conversation=conversation).order_by("created_at", "pk"))
    assert [(m.role, m.message_type) for m in rows] == [
        ("user", "rest"),
        ("model", "rest"),
        ("user", "live"),
        ("model", "live"),
    ]
    assert rows[2].input_transcription and "speech" in rows[2].input_transcription

    # After a reload the thread holds them in order, and every recording plays (a WAV at the turn's rate).
    page.reload()
    articles = page.locator("#messages article[data-message-id]")
    expect(articles).to_have_count(4)
    assert [a.get_attribute("data-message-id") for a in articles.all()] == [m.public_id for m in rows]
    rates = []
    for article in articles.all()[2:]:
        src = article.locator("audio").get_attribute("src")
        assert src
        response = page.request.get(src)
        assert response.ok and response.headers["content-type"].startswith("audio/")
        rates.append(wav_rate(response.body()))
    assert [rate for rate, _ in rates] == [16000, 24000]
    assert spoken - 0.6 < rates[0][1] < spoken + 1.5, (rates, spoken)
    assert rates[1][1] == pytest.approx(stats["samplesReceived"] / 24000, abs=0.01)
