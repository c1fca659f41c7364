"""The voice ("Talk") UI in a real Chromium whose fake microphone speaks real speech (espeak-ng), against daphne,
the live bridge and the Gemini simulator: the session opens, the simulator hears the speech and answers with
audio, the page plays it (counted sample by sample), shows transcripts and the saved audio messages, and ends.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from live.models import LiveSession
from live.protocol import parse_client_message
from live.server_messages import validate_server_message
from tests.e2e.conftest import launch_chromium, send_prompt, while_server_writes
from tests.e2e.test_pages import sign_up
from tests.factories import ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.e2e

ESPEAK = shutil.which("espeak-ng")
SPEECH = "Hello Gemini. What is the weather like on the moon today?"
PHONE = {"width": 390, "height": 844}


def speech_wav(path: Path, segments: list[str | float]) -> float:
    """Write a WAV of spoken text (espeak-ng) and silences (seconds), in order; return the seconds of speech."""
    if ESPEAK is None:
        pytest.fail("espeak-ng is missing: run scripts/install-system-packages.sh (make test does).")
    rate = 0
    frames: list[bytes] = []
    spoken = 0.0
    for segment in segments:
        if isinstance(segment, str):
            wav = subprocess.run([ESPEAK, "--stdout", segment], check=True, capture_output=True).stdout
            with wave.open(io.BytesIO(wav)) as reader:
                rate = reader.getframerate()
                assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
                data = reader.readframes(reader.getnframes())
            frames.append(data)
            spoken += len(data) / 2 / rate
        else:
            frames.append(bytes(2 * int(segment * (rate or 22050))))
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate or 22050)
        writer.writeframes(b"".join(frames))
    return spoken


@pytest.fixture
def talk_browser(playwright_driver: Any, tmp_path: Path) -> Iterator[Callable[..., tuple[Any, float]]]:
    """Launch Chromium whose fake microphone plays a WAV once (then silence); return (browser, speech seconds).

    With ``deny=True`` the (fake) permission prompt refuses the microphone.
    """
    launched: list[Any] = []

    def launch(segments: list[str | float], *, deny: bool = False) -> tuple[Any, float]:
        wav = tmp_path / f"mic-{len(launched)}.wav"
        spoken = speech_wav(wav, segments)
        chromium = launch_chromium(
            playwright_driver,
            [
                "--use-fake-ui-for-media-stream=deny" if deny else "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}%noloop",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        launched.append(chromium)
        return chromium, spoken

    yield launch
    for chromium in launched:
        chromium.close()


WIRE: dict[int, list[tuple[str, str | bytes]]] = {}


def record_wire(page: Page) -> None:
    """Keep every /live frame the page sends ("out") and receives ("in")."""
    frames = WIRE.setdefault(id(page), [])

    def on_socket(ws: Any) -> None:
        ws.on("framesent", lambda payload: frames.append(("out", payload)))
        ws.on("framereceived", lambda payload: frames.append(("in", payload)))

    page.on("websocket", on_socket)


def check_wire(page: Page) -> list[str]:
    """Validate every frame against docs/live-protocol.md (live.protocol); return the JSON types, in order."""
    types: list[str] = []
    for direction, payload in WIRE.get(id(page), []):
        if isinstance(payload, bytes):
            assert len(payload) % 2 == 0
            if direction == "out":
                assert len(payload) == 1280  # 40 ms of 16 kHz PCM16
            continue
        if direction == "out":
            message = parse_client_message(payload)
        else:
            message = json.loads(payload)
            validate_server_message(message)
        types.append(f"{direction}:{message['type']}")
    return types


def open_page(
    chromium: Any, server_url: str, *, viewport: dict[str, int] | None = None, color_scheme: str = "light"
) -> Page:
    """A new context and page on the server, logged out; its /live frames are recorded (`check_wire`)."""
    mobile = viewport == PHONE
    context = chromium.new_context(
        base_url=server_url,
        viewport=viewport or {"width": 1280, "height": 800},
        device_scale_factor=2 if mobile else 1,
        is_mobile=mobile,
        has_touch=mobile,
        color_scheme=color_scheme,
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    record_wire(page)
    return page


def talk_state(page: Page) -> str:
    return str(page.evaluate("window.apsaraTalk.state"))


def start_talking(chromium: Any, server_url: str, *, username: str) -> Page:
    """A new user signs up, opens a new conversation and presses Talk."""
    page = open_page(chromium, server_url)
    sign_up(page, username=username)
    page.get_by_test_id("new-conversation").click()
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    return page


def wait_state(page: Page, state: str, timeout: float = 20_000) -> None:
    page.wait_for_function("(s) => window.apsaraTalk?.state === s", arg=state, timeout=timeout)


def wait_played_out(page: Page, timeout: float = 30_000) -> dict[str, Any]:
    """Wait until the page has played every sample of model audio it received; return its counters."""
    page.wait_for_function(
        """() => {
            const s = window.apsaraTalk.stats;
            return s.samplesReceived > 0 && s.playback.played + s.playback.flushed === s.samplesReceived;
        }""",
        timeout=timeout,
    )
    return dict(page.evaluate("window.apsaraTalk.stats"))


def wav_info(message: Message) -> tuple[int, int, float]:
    """(sample rate, frames, seconds) of a stored recording."""
    with message.audio.open("rb") as handle, wave.open(handle) as reader:
        rate, frames = reader.getframerate(), reader.getnframes()
    return rate, frames, frames / rate


def test_talk_new_conversation_speech_reply_saved_and_ended(
    talk_browser: Any, server_url: str, screenshot_dir: Path
) -> None:
    """Press Talk in a new conversation, say a sentence, hear the reply (every sample), see both turns saved."""
    # A second of silence first: the page keeps at most ~3 s of audio while the session opens.
    chromium, spoken = talk_browser([1.0, SPEECH, 4.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="talker")
    page.get_by_test_id("new-conversation").click()
    expect(page).to_have_url(re.compile(r"/c/new/$"))

    talk = page.get_by_role("button", name="Talk with Gemini by voice")
    expect(talk).to_be_visible()
    talk.click()
    # The session opens on a new conversation, which the page adopts (URL, title) as a typed first prompt does.
    wait_state(page, "listening")
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="talker"))
    expect(page).to_have_url(re.compile(rf"/c/{conversation.public_id}/$"))
    # Untitled until its first exchange names it (conversations.titles).
    expect(page.get_by_test_id("conversation-title")).to_have_text(conversation.title or "Untitled conversation")
    expect(page.locator("#talk-status")).to_have_text(re.compile("Listening"))
    expect(page.get_by_role("button", name="Mute microphone")).to_be_visible()
    expect(page.get_by_role("button", name="End voice session")).to_be_focused()
    page.screenshot(path=screenshot_dir / "talk-listening.png")

    # The simulator's VAD ends the turn after the silence, and its answer streams back as audio + transcript.
    page.wait_for_function(
        """() => window.apsaraTalk.state === "speaking" &&
                 (document.querySelector(".talk-pending.msg-model .talk-transcript")?.textContent ?? "").length > 5""",
        timeout=30_000,
    )
    expect(page.locator("#talk-status")).to_have_text(re.compile("Gemini is speaking"))
    page.screenshot(path=screenshot_dir / "talk-speaking.png")

    stats = wait_played_out(page)
    playback = stats["playback"]
    assert playback["flushed"] == 0, stats
    assert playback["played"] == stats["samplesReceived"]
    # Played at the right rate: the time spent playing (at the AudioContext's own rate) is the 24 kHz duration,
    # give or take a render quantum per (re)start.
    played_s = playback["played"] / 24000
    assert playback["outputFrames"] / playback["outputRate"] == pytest.approx(
        played_s, abs=0.01 * (1 + playback["underruns"])
    ), stats
    # The microphone streamed ~40 ms frames of 16 kHz audio, roughly in real time.
    assert stats["framesSent"] > 0
    assert stats["samplesSent"] / stats["framesSent"] == pytest.approx(640, abs=1)

    # Both turns join the message list as the server renders them, each with its recording.
    user_msg = page.locator("#messages .msg-user[data-message-id]")
    model_msg = page.locator("#messages .msg-model[data-message-id]")
    expect(user_msg).to_have_count(1, timeout=30_000)
    expect(model_msg).to_have_count(1, timeout=30_000)
    expect(page.locator("#messages .talk-pending")).to_have_count(0)
    expect(user_msg.locator("audio.msg-audio")).to_have_count(1)
    expect(model_msg.locator("audio.msg-audio")).to_have_count(1)
    expect(user_msg).to_contain_text("seconds of speech")  # the simulator's input transcription
    page.wait_for_function("() => window.apsaraTalk.state === 'listening'")
    page.screenshot(path=screenshot_dir / "talk-saved.png")

    # The stored recordings: the user's 16 kHz turn as long as the speech; the model's 24 kHz turn is exactly the
    # audio the page received and played.
    user_row = Message.objects.get(conversation=conversation, role=Message.Role.USER)
    model_row = Message.objects.get(conversation=conversation, role=Message.Role.MODEL)
    assert user_row.message_type == model_row.message_type == Message.MessageType.LIVE
    rate, _, seconds = wav_info(user_row)
    assert rate == 16000
    assert spoken - 0.6 < seconds < spoken + 1.5, (seconds, spoken)
    rate, frames, seconds = wav_info(model_row)
    assert rate == 24000
    assert frames == stats["samplesReceived"] == stats["playback"]["played"]
    assert seconds > 1.0
    assert not model_row.interrupted
    assert model_row.output_transcription and model_row.output_transcription.strip() in model_msg.inner_text()

    # The audio players serve the stored WAVs.
    src = model_msg.locator("audio").get_attribute("src")
    assert src
    response = page.request.get(src)
    assert response.ok and response.headers["content-type"].startswith("audio/")

    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    expect(page.locator("#talk-status")).to_have_text("Voice session ended.")
    expect(talk).to_be_visible()
    session = LiveSession.objects.get(conversation=conversation)
    assert session.status == LiveSession.Status.ENDED
    page.screenshot(path=screenshot_dir / "talk-ended.png")

    # Every frame either way followed the protocol; the conversation went as the contract describes.
    types = check_wire(page)
    assert types[:3] == ["out:create_session", "in:session_created", "in:context_load_skipped"]
    assert types.count("in:message_saved") == 2
    assert "in:session_error" not in types and "in:audio_error" not in types
    assert types[-2:] == ["out:end_session", "in:session_ended"], types[-6:]

    page.reload()  # the history stays consistent with what was shown
    expect(page.locator("#messages .msg[data-message-id]")).to_have_count(2)


def test_talk_barge_in_flushes_playback(talk_browser: Any, server_url: str, screenshot_dir: Path) -> None:
    """Speaking over the model's answer stops its audio at once: the rest is flushed, the turn saved as interrupted."""
    # Speak, wait for the answer to start, then speak again over it.
    chromium, _ = talk_browser([SPEECH, 2.6, "Stop. Wait a moment please.", 4.0])
    page = start_talking(chromium, server_url, username="interrupter")
    wait_state(page, "listening")
    page.wait_for_function("() => window.apsaraTalk.stats.playback.flushed > 0", timeout=30_000)
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="interrupter"))

    # Then the second question is answered in full.
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(2, timeout=40_000)
    stats = wait_played_out(page)
    playback = stats["playback"]
    assert playback["played"] + playback["flushed"] == stats["samplesReceived"]
    assert playback["played"] > 0
    expect(page.locator("#messages .msg-model[data-message-id]").first.locator(".badge-warn")).to_have_text(
        "interrupted"
    )
    page.screenshot(path=screenshot_dir / "talk-barge-in.png")
    models = list(Message.objects.filter(conversation=conversation, role=Message.Role.MODEL).order_by("created_at"))
    assert [m.interrupted for m in models] == [True, False]
    assert "in:session_error" not in check_wire(page)
    # The interrupted turn's recording holds what the server sent before the barge-in.
    received = sum(wav_info(m)[1] for m in models)
    assert received == stats["samplesReceived"]
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")


def test_talk_reconnects_and_resumes_after_a_dropped_socket(talk_browser: Any, server_url: str) -> None:
    """When the socket drops, the page reconnects, resumes the same session and carries on."""
    chromium, _ = talk_browser([1.0])  # silence: nothing to answer
    page = start_talking(chromium, server_url, username="dropper")
    wait_state(page, "listening")
    session_id = page.evaluate("window.apsaraTalk.sessionId")
    page.evaluate("window.apsaraTalk.dropConnection()")
    page.wait_for_function("() => window.apsaraTalk.stats.events.includes('reconnecting')")
    wait_state(page, "listening")
    assert page.evaluate("window.apsaraTalk.sessionId") == session_id
    assert page.evaluate("window.apsaraTalk.stats.reconnects") == 1
    assert "out:resume_session" in check_wire(page)

    # The resumed session still works: typed text goes through it and comes back as saved messages.
    send_prompt(page, "Can you still hear me?")
    expect(page.locator("#messages .msg-user[data-message-id]")).to_contain_text("Can you still hear me?")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    assert LiveSession.objects.get(public_id=session_id).status == LiveSession.Status.ENDED


def test_talk_on_a_phone_with_earlier_typed_messages(talk_browser: Any, server_url: str, screenshot_dir: Path) -> None:
    """At 390x844 the live controls fit, are labelled and big enough to tap; the typed history is loaded."""
    chromium, _ = talk_browser([SPEECH, 3.0])
    page = open_page(chromium, server_url, viewport=PHONE, color_scheme="dark")
    sign_up(page, username="phonetalker")
    user = UserFactory.create(username="phonetalker")  # get_or_create: the account just signed up
    conversation = ConversationFactory.create(owner=user, title="Trip planning")
    MessageFactory.create(conversation=conversation, role=Message.Role.USER, text="I want to plan a trip to Lisbon.")
    MessageFactory.create(conversation=conversation, role=Message.Role.MODEL, text="Lisbon is lovely in spring.")
    page.goto(f"/c/{conversation.public_id}/")
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    expect(page).to_have_url(re.compile(rf"/c/{conversation.public_id}/$"))  # the same conversation
    expect(page.locator("#talk-info")).to_have_text("Gemini has the last 2 messages of this conversation.")
    page.screenshot(path=screenshot_dir / "talk-phone-listening.png")
    for name in ("Mute microphone", "End voice session"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["width"] >= 44 and box["height"] >= 44, (name, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("button", name="Mute microphone").click()
    expect(page.get_by_role("button", name="Unmute microphone")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#talk-status")).to_have_text(re.compile("Muted"))
    page.get_by_role("button", name="Unmute microphone").click()
    page.wait_for_function("() => window.apsaraTalk.state === 'speaking'", timeout=30_000)
    page.screenshot(path=screenshot_dir / "talk-phone-speaking.png")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(2, timeout=30_000)
    page.screenshot(path=screenshot_dir / "talk-phone-saved.png")
    session = LiveSession.objects.get(conversation=conversation)
    assert session.config["loadConversationContext"] is True
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    assert conversation.messages.count() == 4
    conversation.refresh_from_db()
    assert conversation.kind == Conversation.Kind.HYBRID


def test_talk_microphone_blocked_says_what_to_do(talk_browser: Any, server_url: str, screenshot_dir: Path) -> None:
    """When the microphone permission is refused no session opens and the page says how to allow it."""
    chromium, _ = talk_browser([1.0], deny=True)
    page = start_talking(chromium, server_url, username="nomic")
    wait_state(page, "error")
    expect(page.locator("#talk-status")).to_have_text(
        re.compile(r"^Microphone access is blocked\. Allow the microphone for this site .* press Talk again\.$")
    )
    page.screenshot(path=screenshot_dir / "talk-mic-blocked.png")
    assert not LiveSession.objects.filter(user__username="nomic").exists()
    expect(page).to_have_url(re.compile(r"/c/new/$"))  # nothing was created
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#talk-panel")).to_be_hidden()
    expect(page.get_by_role("button", name="Talk with Gemini by voice")).to_be_focused()


def test_talk_without_a_microphone_says_so(browser: Any, server_url: str) -> None:
    """A machine with no microphone gets a plain explanation, not a silent failure."""
    page = start_talking(browser, server_url, username="nodevice")
    wait_state(page, "error")
    expect(page.locator("#talk-status")).to_have_text("No microphone was found. Connect one and try again.")
    assert not LiveSession.objects.filter(user__username="nodevice").exists()


def test_talk_server_refusal_is_shown(talk_browser: Any, server_url: str, settings: Any) -> None:
    """A session_error from the server (here: the per-user session limit) is shown as the server words it."""
    settings.LIVE_MAX_SESSIONS_PER_USER = 0  # the server thread reads the same settings
    chromium, _ = talk_browser([1.0])
    page = start_talking(chromium, server_url, username="limited")
    wait_state(page, "error")
    expect(page.locator("#talk-status")).to_have_text(re.compile(r"live sessions open \(the limit is 0\)\. End one"))
    expect(page.get_by_role("button", name="Talk with Gemini by voice")).to_be_visible()
    assert page.evaluate("window.apsaraTalk.stats.framesSent") == 0


def test_talk_hold_to_talk(talk_browser: Any, server_url: str, screenshot_dir: Path) -> None:
    """Hold mode turns Gemini's voice activity detection off; holding the button bounds the spoken turn."""
    lead = 6.0  # silence before the speech, while the test switches modes
    chromium, spoken = talk_browser([lead, SPEECH, 3.0])
    page = start_talking(chromium, server_url, username="holder")
    wait_state(page, "listening")
    page.get_by_role("button", name="Hold to talk instead of automatic turns").click()
    hold = page.locator("#talk-hold")
    expect(hold).to_be_visible()
    expect(page.locator("#talk-mode")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#talk-status")).to_have_text("Hold the talk button while you speak")
    sent_before = page.evaluate("window.apsaraTalk.stats.framesSent")
    page.wait_for_timeout(500)
    assert page.evaluate("window.apsaraTalk.stats.framesSent") == sent_before  # nothing is sent while not held

    hold.hover()
    page.mouse.down()
    expect(page.locator("#talk-status")).to_have_text("Talking — release to send")
    page.screenshot(path=screenshot_dir / "talk-holding.png")
    page.wait_for_function(
        "(s) => window.apsaraTalk.stats.framesCaptured * 0.04 >= s", arg=lead + spoken + 0.5, timeout=20_000
    )
    page.mouse.up()
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    types = check_wire(page)
    assert types.index("out:configure_vad") < types.index("in:vad_configured") < types.index("out:activity_start")
    assert types.index("out:activity_start") < types.index("out:activity_end")
    assert "in:session_error" not in types
    expect(page.locator("#messages .msg-user[data-message-id]")).to_contain_text("seconds of speech")
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="holder"))
    user_row = Message.objects.get(conversation=conversation, role=Message.Role.USER)
    rate, _, seconds = wav_info(user_row)
    assert rate == 16000
    assert spoken - 0.6 < seconds < spoken + 1.5, (seconds, spoken)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")


def test_talk_end_while_gemini_speaks_keeps_the_partial_turn(talk_browser: Any, server_url: str) -> None:
    """Ending mid-answer silences it at once, and the cut-off answer is saved and shown (marked interrupted)."""
    chromium, _ = talk_browser([SPEECH, 4.0])
    page = start_talking(chromium, server_url, username="ender")
    wait_state(page, "speaking", timeout=30_000)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    model = page.locator("#messages .msg-model[data-message-id]")
    expect(model).to_have_count(1)
    expect(model.locator(".badge-warn")).to_have_text("interrupted")
    expect(page.locator("#messages .talk-pending")).to_have_count(0)
    stats = page.evaluate("window.apsaraTalk.stats")
    assert stats["playback"]["flushed"] > 0  # what had not played yet was dropped, not played after the end
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="ender"))
    row = Message.objects.get(conversation=conversation, role=Message.Role.MODEL)
    assert row.interrupted


def test_talk_camera_frames_reach_gemini(talk_browser: Any, server_url: str, screenshot_dir: Path) -> None:
    """Sharing the (fake) camera sends a JPEG about once a second; Gemini's next answer has seen them."""
    chromium, _ = talk_browser([1.0])
    page = start_talking(chromium, server_url, username="camera")
    wait_state(page, "listening")
    page.get_by_role("button", name="Share camera").click()
    expect(page.get_by_role("button", name="Stop sharing camera")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("video.talk-preview")).to_be_visible()
    page.wait_for_function("() => window.apsaraTalk.stats.videoFramesSent >= 3", timeout=10_000)
    page.screenshot(path=screenshot_dir / "talk-camera.png")
    send_prompt(page, "What do you see?")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_contain_text("video frames", timeout=30_000)
    page.get_by_role("button", name="Stop sharing camera").click()
    expect(page.locator("video.talk-preview")).to_have_count(0)
    sent = page.evaluate("window.apsaraTalk.stats.videoFramesSent")
    page.wait_for_timeout(1500)
    assert page.evaluate("window.apsaraTalk.stats.videoFramesSent") == sent  # stopped means stopped
    types = check_wire(page)
    assert types.count("out:send_message") >= 4  # the frames (JPEG, validated) and the typed text
    assert "in:session_error" not in types
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")


def test_talk_shows_gemini_reconnecting_then_carries_on(talk_browser: Any, server_url: str, gemini_sim: Any) -> None:
    """When Gemini's connection drops the server resumes it; the page says so, then listens again."""
    chromium, _ = talk_browser([1.0])
    page = start_talking(chromium, server_url, username="upstream")
    wait_state(page, "listening")
    gemini_sim.inject_fault("drop", when="now")
    page.wait_for_function("() => window.apsaraTalk.stats.events.includes('reconnecting')")
    wait_state(page, "listening")
    types = check_wire(page)
    assert types.index("in:session_reconnecting") < types.index("in:session_resumed")
    send_prompt(page, "Are you back?")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")


def test_talk_end_while_the_microphone_is_asked_for(talk_browser: Any, server_url: str) -> None:
    """Ending before the microphone permission is answered ends quietly and releases the microphone granted late."""
    chromium, _ = talk_browser([1.0])
    page = open_page(chromium, server_url)
    # Hold getUserMedia's answer until the test releases it, as a permission prompt left open would.
    page.add_init_script(
        """(() => {
            const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
            navigator.mediaDevices.getUserMedia = (constraints) => new Promise((resolve, reject) => {
                window.releaseMicrophone = () => real(constraints).then((stream) => {
                    window.lateStream = stream;
                    resolve(stream);
                }, reject);
            });
        })()"""
    )
    sign_up(page, username="hasty")
    page.get_by_test_id("new-conversation").click()
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    page.wait_for_function("() => typeof window.releaseMicrophone === 'function'")
    assert talk_state(page) == "connecting"
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    page.evaluate("window.releaseMicrophone()")
    page.wait_for_function("() => window.lateStream?.getTracks().every((t) => t.readyState === 'ended')")
    page.wait_for_timeout(500)
    assert talk_state(page) == "ended"
    expect(page.locator("#talk-status")).to_have_text("Voice session ended.")
    assert not LiveSession.objects.filter(user__username="hasty").exists()


def test_talk_hold_again_within_the_release_tail_continues_the_activity(talk_browser: Any, server_url: str) -> None:
    """A press within 300 ms of a release carries on the same activity: one activity_start, one activity_end."""
    chromium, _ = talk_browser([10.0])
    page = start_talking(chromium, server_url, username="stutter")
    wait_state(page, "listening")
    page.get_by_role("button", name="Hold to talk instead of automatic turns").click()
    hold = page.locator("#talk-hold")
    expect(hold).to_be_enabled()
    hold.hover()
    page.mouse.down()
    expect(page.locator("#talk-status")).to_have_text("Talking — release to send")
    page.wait_for_timeout(400)
    page.mouse.up()
    page.mouse.down()  # well within the 300 ms tail
    page.wait_for_timeout(400)
    page.mouse.up()
    page.wait_for_timeout(800)  # past the tail: activity_end has gone
    types = check_wire(page)
    assert types.count("out:activity_start") == 1, types
    assert types.count("out:activity_end") == 1, types
    assert types.index("out:activity_start") < types.index("out:activity_end")
    assert "in:session_error" not in types
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")


def test_talk_typed_text_before_the_session_opens_goes_to_the_chat(talk_browser: Any, server_url: str) -> None:
    """Text typed while Talk is still connecting is sent as a typed prompt, not into a session that is not open."""
    chromium, _ = talk_browser([10.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="eager")
    user = UserFactory.create(username="eager")  # get_or_create: the account just signed up
    conversation = ConversationFactory.create(owner=user, title="Eager")
    held: list[str | bytes] = []
    routes: list[Any] = []
    released = False

    def hold_server_frames(ws: Any) -> None:
        # Page → server flows as usual; server → page waits, so the page stays "connecting".
        routes.append(ws)
        server = ws.connect_to_server()
        server.on_message(lambda message: ws.send(message) if released else held.append(message))

    page.route_web_socket(re.compile(r"/live$"), hold_server_frames)
    page.goto(f"/c/{conversation.public_id}/")
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    page.wait_for_function("() => window.apsaraTalk.state === 'connecting'")
    page.wait_for_timeout(1000)  # create_session reached the server, its answer is held
    assert talk_state(page) == "connecting"
    send_prompt(page, "Typed while connecting")
    expect(page.locator("#messages .msg-user[data-message-id]")).to_have_text(re.compile("Typed while connecting"))
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=20_000)
    released = True
    for message in held:
        routes[0].send(message)
    wait_state(page, "listening")
    page.wait_for_timeout(500)
    expect(page.locator("#talk-notice")).to_be_hidden()
    row = Message.objects.get(conversation=conversation, role=Message.Role.USER, text="Typed while connecting")
    assert row.message_type == Message.MessageType.REST
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
