"""Talk in direct mode (docs/live-direct.md) in a real Chromium: the page asks the server for an ephemeral token, opens
the Gemini simulator's Constrained endpoint itself (the server's bridge carries no audio), hears the reply, and posts
each finished turn back; after a reload the thread holds the spoken turns, with their recordings, in order with a
typed one. Then the page side under conditions a quiet call never meets: a call ended while the model still answers
keeps its turns (stored before the end is sent), a login in another tab does not make the posts fail on a stale CSRF
token, kept turns are sent only for the person who spoke them, and no turn is longer than the grant's limit.
"""

from __future__ import annotations

import io
import json
import re
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from conversations import services
from conversations.models import Conversation, Message, User
from live.metrics import REGISTRY
from live.models import LiveSession
from tests.e2e.conftest import launch_chromium, send_prompt, while_server_writes
from tests.e2e.test_pages import sign_up
from tests.e2e.test_talk import SPEECH, open_page, speech_wav, wait_played_out, wait_state, wav_info
from tests.e2e.test_talk_settings import expect_saved, open_settings
from tests.factories import ConversationFactory

pytestmark = pytest.mark.e2e
DIRECT_LABEL = re.compile("^Direct")


Launch = Callable[[list[str | float]], tuple[Any, float]]


@pytest.fixture
def direct_browser(playwright_driver: Any, tmp_path: Path, server_url: str) -> Iterator[Launch]:
    """Chromium whose fake microphone plays spoken `segments` once, trusting the simulator's certificate (only this
    browser: the page opens gemini_sim's wss:// itself); returns (browser, seconds of speech).

    It depends on `server_url` so that it is closed before the test's database is flushed: a page still open keeps
    posting (its turns, its call's end), and a write racing the flush's TRUNCATE can deadlock it.
    """
    launched: list[Any] = []

    def launch(segments: list[str | float]) -> tuple[Any, float]:
        wav = tmp_path / f"mic-{len(launched)}.wav"
        spoken = speech_wav(wav, segments)
        chromium = launch_chromium(
            playwright_driver,
            [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}%noloop",
                "--autoplay-policy=no-user-gesture-required",
                "--ignore-certificate-errors",
            ],
        )
        launched.append(chromium)
        return chromium, spoken

    yield launch
    for chromium in launched:
        for context in chromium.contexts:
            for leaving in context.pages:
                leaving.goto("about:blank")  # the page leaves as a person's would: it ends its call
        chromium.close()
    # The call's end (a keepalive POST sent as the page left) reaches the server before the flush.
    open_calls = LiveSession.objects.filter(transport=LiveSession.Transport.DIRECT, status=LiveSession.Status.ACTIVE)
    deadline = time.monotonic() + 5
    while while_server_writes(open_calls.exists) and time.monotonic() < deadline:
        time.sleep(0.1)


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until `check()` holds (the server answers the page's requests on its own thread)."""
    deadline = time.monotonic() + seconds
    while not while_server_writes(check):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


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
    direct_browser: Any, server_url: str, gemini_sim: Any, settings: Any, screenshot_dir: Path
) -> None:
    settings.LIVE_DIRECT_MODE = "allowed"
    chromium, spoken = direct_browser([1.0, SPEECH, 4.0])
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
    # Both spoken turns are posted back and join the thread in place of the transcript bubbles.
    user_msgs = page.locator("#messages .msg-user[data-message-id]")
    model_msgs = page.locator("#messages .msg-model[data-message-id]")
    expect(user_msgs).to_have_count(2, timeout=30_000)
    expect(model_msgs).to_have_count(2, timeout=30_000)
    # The model's turn is complete (stored): all its audio has arrived, so "played everything received" is final
    # (mid-turn, playback can catch up with the audio that has arrived so far).
    stats = wait_played_out(page)
    assert stats["playback"]["played"] == stats["samplesReceived"] > 24000 // 2, stats
    assert stats["framesSent"] > 0
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
    eventually(lambda: LiveSession.objects.get(pk=sessions[0].pk).ended_at is not None)  # POST …/end

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


def test_talk_direct_moves_on_at_go_away_and_resumes_after_a_drop(
    direct_browser: Any, server_url: str, gemini_sim: Any, settings: Any
) -> None:
    """goAway: the page moves to a new connection with the newest handle; a dropped connection is resumed the same
    way (ReconnectPolicy); one direct session throughout, never a second token's new session."""
    settings.LIVE_DIRECT_MODE = "allowed"
    chromium, _ = direct_browser([1.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="mover")
    services.talk_settings_save(user=User.objects.get(username="mover"), data={"transport": "direct"})
    page.get_by_test_id("new-conversation").click()
    gemini_sim.set_options(connection_lifetime=4.0, go_away_before=3.0)  # goAway a second after each connect
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    page.wait_for_function("() => window.apsaraTalk.stats.events.includes('reconnecting')")
    gemini_sim.set_options(connection_lifetime=600.0, go_away_before=60.0)
    wait_state(page, "listening")
    connects = len(gemini_sim.records(type="connect"))
    assert connects >= 2

    gemini_sim.inject_fault("drop", when="now")
    page.wait_for_function("(n) => window.apsaraTalk.stats.reconnects >= n", arg=connects)
    wait_state(page, "listening")

    records = gemini_sim.records(type="connect")
    assert {c["path"] for c in records} == {"gemini:v1alpha:constrained"}
    setups = [m["setup"] for m in gemini_sim.client_messages() if "setup" in m]
    assert len(setups) == len(records) > connects
    assert "handle" not in (setups[0].get("sessionResumption") or {})
    assert all(s["sessionResumption"]["handle"] for s in setups[1:]), setups
    [session] = LiveSession.objects.filter(user__username="mover")
    assert session.transport == LiveSession.Transport.DIRECT

    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    # Ended (POST …/end); a call in which nothing was stored also gives back the conversation it created.
    eventually(lambda: not LiveSession.objects.filter(pk=session.pk, ended_at__isnull=True).exists())


def test_talk_direct_typed_text_and_a_tool_call(
    direct_browser: Any, server_url: str, gemini_sim: Any, settings: Any
) -> None:
    """Text typed into a direct call goes to Gemini as the bridge sends it; Gemini's function call is run by the server
    (POST …/tool-calls) and answered with a toolResponse, after which the model replies."""
    settings.LIVE_DIRECT_MODE = "allowed"
    chromium, _ = direct_browser([1.0])
    page = open_page(chromium, server_url)
    sign_up(page, username="calculating")
    services.talk_settings_save(user=User.objects.get(username="calculating"), data={"transport": "direct"})
    page.get_by_test_id("new-conversation").click()
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    with page.expect_response(re.compile(r"/tool-calls$")) as answer:
        send_prompt(page, "Use the calculator: what is 12 * 7?")
    assert answer.value.status == 200
    responses = answer.value.json()["responses"]
    assert responses[0]["name"] == "calculator"
    # The reply after the tool's answer plays.
    page.wait_for_function("() => window.apsaraTalk.stats.samplesReceived > 0", timeout=30_000)
    sent = gemini_sim.client_messages()
    texts = [m for m in sent if "realtimeInput" in m and "text" in m["realtimeInput"]]
    typed = [m for m in sent if "clientContent" in m and "turns" in m["clientContent"]]
    assert texts or typed
    [tool_response] = [m["toolResponse"] for m in sent if "toolResponse" in m]
    assert tool_response["functionResponses"] == responses
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")


def test_talk_falls_back_to_the_server_when_direct_mode_was_switched_off(
    direct_browser: Any, server_url: str, gemini_sim: Any, settings: Any, screenshot_dir: Path
) -> None:
    """A page that chose direct mode while it was allowed, then the operator switched it off: Talk still works,
    through the server, and says so."""
    settings.LIVE_DIRECT_MODE = "allowed"
    chromium, _ = direct_browser([1.0, SPEECH, 4.0])
    page = open_page(chromium, server_url)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_up(page, username="fallback")
    page.get_by_test_id("new-conversation").click()
    choose_direct(page, screenshot_dir)
    settings.LIVE_DIRECT_MODE = "off"  # the server thread reads the same settings

    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    expect(page.get_by_text("talking through the server instead")).to_be_visible()
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    assert any(re.search(r"/live/?$", url) for url in sockets), sockets
    assert not [url for url in sockets if "Constrained" in url], sockets
    transports = while_server_writes(lambda: list(LiveSession.objects.values_list("transport", flat=True)))
    assert transports == [LiveSession.Transport.PROXIED]


PASSWORD = "correct-horse-battery"
TURNS_URL = re.compile(r"/api/conversations/[^/]+/live-turns$")
END_URL = re.compile(r"/api/live/sessions/[^/]+/end$")


def direct_user(page: Page, username: str) -> User:
    sign_up(page, username=username, password=PASSWORD)
    user = User.objects.get(username=username)
    services.talk_settings_save(user=user, data={"transport": "direct"})
    return user


def log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Conversations", exact=True)).to_be_visible()


def page_until(page: Page, check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until `check()` holds over what the page's event handlers record (they run while Playwright waits)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(100)


def record_posts(page: Page) -> list[tuple[str, str, int]]:
    """("request" | "response", url, status) of the page's POSTs, in the order the page saw them."""
    events: list[tuple[str, str, int]] = []
    page.on("request", lambda r: events.append(("request", r.url, 0)) if r.method == "POST" else None)
    page.on(
        "response",
        lambda r: events.append(("response", r.url, r.status)) if r.request.method == "POST" else None,
    )
    return events


def test_end_while_the_model_answers_keeps_the_turns_of_a_new_conversation(
    direct_browser: Any, server_url: str, gemini_sim: Any, settings: Any
) -> None:
    """End pressed as the reply starts: the last turns reach the outbox at that moment, and the page posts the end
    only once they are stored, so the server never takes the new conversation back as unused; `{}`, as the call
    recorded turns."""
    settings.LIVE_DIRECT_MODE = "allowed"
    chromium, _ = direct_browser([SPEECH, 6.0])
    page = open_page(chromium, server_url)
    direct_user(page, "hasty")
    page.get_by_test_id("new-conversation").click()
    events = record_posts(page)
    ends: list[Any] = []
    page.on("request", lambda r: ends.append(r.post_data) if END_URL.search(r.url) else None)
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "speaking", timeout=30_000)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    page_until(page, lambda: bool(ends))
    assert [json.loads(body) for body in ends] == [{}]
    # Every turn's post was answered (201) before the end was sent.
    end_at = next(i for i, (kind, url, _) in enumerate(events) if kind == "request" and END_URL.search(url))
    answered = [
        (i, status) for i, (kind, url, status) in enumerate(events) if kind == "response" and TURNS_URL.search(url)
    ]
    assert len(answered) == 2 and all(i < end_at and status == 201 for i, status in answered), events

    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="hasty"))
    session = LiveSession.objects.get(conversation=conversation)
    eventually(lambda: LiveSession.objects.get(pk=session.pk).ended_at is not None)
    rows = list(Message.objects.filter(conversation=conversation).order_by("created_at", "pk"))
    assert [(m.role, m.message_type) for m in rows] == [("user", "live"), ("model", "live")]
    assert rows[1].interrupted
    page.goto(f"/c/{conversation.public_id}/")
    articles = page.locator("#messages article[data-message-id]")
    expect(articles).to_have_count(2)
    assert [a.get_attribute("data-message-id") for a in articles.all()] == [m.public_id for m in rows]


def test_a_call_in_which_nothing_was_said_asks_for_its_conversation_to_be_given_back(
    direct_browser: Any, server_url: str, gemini_sim: Any, settings: Any
) -> None:
    settings.LIVE_DIRECT_MODE = "allowed"
    chromium, _ = direct_browser([1.0])
    page = open_page(chromium, server_url)
    direct_user(page, "silent")
    page.get_by_test_id("new-conversation").click()
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    with page.expect_request(END_URL) as end:
        page.get_by_role("button", name="End voice session").click()
    assert json.loads(end.value.post_data or "") == {"discardIfUnused": True}
    wait_state(page, "ended")
    # The server gave back the conversation the call created.
    eventually(lambda: not Conversation.objects.filter(owner__username="silent").exists())


def test_a_login_in_another_tab_does_not_make_the_posts_fail(
    direct_browser: Any, server_url: str, gemini_sim: Any, settings: Any
) -> None:
    """Django rotates the CSRF token at login: the page reads the current one (the cookie) at each post, and a post
    refused for its CSRF token stays kept and is sent again rather than dropped."""
    settings.LIVE_DIRECT_MODE = "allowed"
    chromium, _ = direct_browser([SPEECH, 6.0])
    page = open_page(chromium, server_url)
    direct_user(page, "twotabs")
    page.get_by_test_id("new-conversation").click()
    expect(page.locator("#talk-slot")).to_have_attribute("data-direct-mode", "allowed")
    form_token = page.locator("#composer input[name=csrfmiddlewaretoken]").input_value()

    other = page.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Log out").click()
    expect(other).to_have_url(re.compile(r"/login/"))
    log_in(other, "twotabs")
    other.close()
    [cookie] = [c for c in page.context.cookies() if c["name"] == "csrftoken"]
    assert cookie["value"] != form_token  # masked differently in any case; the secret under it changed at login

    # The whole call works with the page's form token stale: the token request, the turns, the end.
    events = record_posts(page)
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="twotabs"))
    session = LiveSession.objects.get(conversation=conversation)
    assert not [e for e in events if e[0] == "response" and e[2] == 403], events

    # Without the cookie, the form's (stale) token is sent and refused: the turn is kept, and stored once it is back.
    page.context.clear_cookies(name="csrftoken")
    refused = page.evaluate(
        """async ({conversationId, sessionId}) => {
            const { TurnOutbox } = await import("/static/js/talk/outbox.js");
            const outbox = new TurnOutbox({
                userId: document.getElementById("talk-slot").dataset.userId,
                csrfToken: document.querySelector("#composer input[name=csrfmiddlewaretoken]").value,
                onSaved: () => {},
            });
            window.testOutbox = outbox;
            const id = "msg_csrfRetryTurn000000000";
            const turn = { id, role: "user", transcript: "Typed while the cookie was gone.", interrupted: false,
                           startedAt: new Date().toISOString(), usage: null, audio: null };
            outbox.add(turn, { conversationId, sessionId });
            return id;
        }""",
        {"conversationId": conversation.public_id, "sessionId": session.public_id},
    )
    page_until(page, lambda: any(e[0] == "response" and e[2] == 403 and TURNS_URL.search(e[1]) for e in events))
    assert page.evaluate("window.testOutbox.pending") == 1  # kept, not dropped
    page.context.add_cookies([{"name": "csrftoken", "value": cookie["value"], "url": server_url}])
    page.evaluate("window.testOutbox.retryNow()")
    page.wait_for_function("window.testOutbox.pending === 0")
    assert Message.objects.filter(conversation=conversation, public_id=refused).exists()
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")


KEEP_FOR_LATER = """async ({conversationId}) => {
    const { TurnOutbox } = await import("/static/js/talk/outbox.js");
    const outbox = new TurnOutbox({
        userId: document.getElementById("talk-slot").dataset.userId,
        csrfToken: "",
        onSaved: () => {},
    });
    const turn = { id: "msg_keptForItsOwner0000000", role: "user", transcript: "Said by the first person.",
                   interrupted: false, startedAt: new Date().toISOString(), usage: null, audio: null };
    outbox.add(turn, { conversationId, sessionId: "sess_notARealSession0000" });
    await outbox.kept.get(turn.id);
}"""

KEPT_IDS = """async (userId) => {
    const db = await new Promise((resolve, reject) => {
        const request = indexedDB.open("apsara-talk-user-" + userId, 1);
        request.onupgradeneeded = () => request.result.createObjectStore("live-turns", { keyPath: "id" });
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
    });
    const all = await new Promise((resolve) => {
        const request = db.transaction("live-turns").objectStore("live-turns").getAll();
        request.onsuccess = () => resolve(request.result);
    });
    db.close();
    return all.map((entry) => entry.id);
}"""


def test_kept_turns_are_sent_only_for_the_person_who_spoke_them(
    browser: Any, server_url: str, gemini_sim: Any, settings: Any
) -> None:
    """Two people in one browser profile: A's turn kept for later (the network failed) is not sent as B's when B
    opens Talk (the server would refuse it and it would be lost); it is sent when A is back."""
    settings.LIVE_DIRECT_MODE = "allowed"
    page = open_page(browser, server_url)
    ada = direct_user(page, "first")
    conversation = ConversationFactory.create(owner=ada)
    page.goto(f"/c/{conversation.public_id}/")
    expect(page.locator("#talk-slot")).to_have_attribute("data-user-id", str(ada.pk))
    page.route(TURNS_URL, lambda route: route.abort())  # offline: the turn stays kept
    page.evaluate(KEEP_FOR_LATER, {"conversationId": conversation.public_id})
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/"))
    page.unroute(TURNS_URL)

    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if TURNS_URL.search(r.url) else None)
    bea = direct_user(page, "second")
    page.get_by_test_id("new-conversation").click()
    expect(page.locator("#talk-slot")).to_have_attribute("data-user-id", str(bea.pk))
    page.wait_for_function("window.apsaraTalk !== undefined")
    page.wait_for_timeout(1500)  # the outbox's resend at load has run
    assert posts == []
    assert page.evaluate(KEPT_IDS, ada.pk) == ["msg_keptForItsOwner0000000"]
    assert page.evaluate(KEPT_IDS, bea.pk) == []

    page.get_by_role("button", name="Log out").click()
    log_in(page, "first")
    with page.expect_request(TURNS_URL) as resent:
        page.goto(f"/c/{conversation.public_id}/")
    assert "msg_keptForItsOwner0000000" in (resent.value.post_data or "")


def test_no_turn_is_longer_than_the_grant_allows(
    direct_browser: Any, server_url: str, gemini_sim: Any, settings: Any
) -> None:
    """limits.maxTurnSeconds from the grant: a turn is cut at exactly that many samples (the server takes it) and
    what follows goes on in a new turn of the same role; the person's turn is posted at the cut, answered or not."""
    settings.LIVE_DIRECT_MODE = "allowed"
    settings.LIVE_DIRECT_TURN_MAX_SECONDS = 1
    chromium, spoken = direct_browser([SPEECH, 6.0])
    page = open_page(chromium, server_url)
    direct_user(page, "longwinded")
    page.get_by_test_id("new-conversation").click()
    events = record_posts(page)
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    # The first second of speech is posted at the cut, long before Gemini answers.
    page.wait_for_function(
        """() => window.apsaraTalk.stats.samplesReceived === 0 &&
                 document.querySelector("#messages .msg-user[data-message-id]")""",
        timeout=30_000,
    )
    two_answers = "document.querySelectorAll('#messages .msg-model[data-message-id]').length >= 2"
    page.wait_for_function(f"() => {two_answers}", timeout=30_000)
    page.wait_for_timeout(2000)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    turns = [e for e in events if e[0] == "response" and TURNS_URL.search(e[1])]
    assert turns and all(status == 201 for _, _, status in turns), turns

    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="longwinded"))
    rows = list(Message.objects.filter(conversation=conversation).order_by("created_at", "pk"))
    users = [m for m in rows if m.role == "user"]
    models = [m for m in rows if m.role == "model"]
    assert len(users) >= 3 and len(models) >= 2, [(m.role, m.input_transcription) for m in rows]
    lengths = [(m.role, wav_info(m)[1]) for m in rows if m.audio]
    # Cut at exactly one second: every turn but the last of a run is 16000 (user) or 24000 (model) samples.
    assert ("user", 16000) in lengths and ("model", 24000) in lengths, lengths
    assert all(frames <= {"user": 16000, "model": 24000}[role] for role, frames in lengths), lengths
    assert spoken > 2


DEVICE_CLOCK_BEHIND = """(() => {
    // This device's clock runs seven minutes behind the server's.
    const skew = -7 * 60 * 1000;
    const RealDate = Date;
    class DeviceDate extends RealDate {
        constructor(...args) {
            if (args.length) super(...args);
            else super(RealDate.now() + skew);
        }
        static now() {
            return RealDate.now() + skew;
        }
    }
    globalThis.Date = DeviceDate;
})();"""


def test_turns_carry_the_servers_time_when_the_devices_clock_is_off(
    direct_browser: Any, server_url: str, gemini_sim: Any, settings: Any
) -> None:
    """The grant's serverTime against the device's clock gives the skew; every startedAt is corrected by it, so the
    server neither refuses the turns (before the session began) nor puts them out of order."""
    settings.LIVE_DIRECT_MODE = "allowed"
    chromium, _ = direct_browser([SPEECH, 6.0])
    page = open_page(chromium, server_url)
    page.context.add_init_script(DEVICE_CLOCK_BEHIND)
    direct_user(page, "skewed")
    grants: list[dict[str, Any]] = []

    def grant_with_server_time(route: Any) -> None:
        # The server's own serverTime when it sends one; else the time it answered (what it would say).
        response = route.fetch()
        body = response.json()
        body.setdefault("serverTime", timezone.now().isoformat())
        grants.append(body)
        route.fulfill(response=response, json=body)

    page.route(re.compile(r"/api/live/token$"), grant_with_server_time)
    page.get_by_test_id("new-conversation").click()
    assert page.evaluate("Date.now()") < time.time() * 1000 - 6 * 60 * 1000
    events = record_posts(page)
    page.get_by_role("button", name="Talk with Gemini by voice").click()
    wait_state(page, "listening")
    expect(page.locator("#messages .msg-model[data-message-id]")).to_have_count(1, timeout=30_000)
    page.get_by_role("button", name="End voice session").click()
    wait_state(page, "ended")
    assert grants
    turns = [e for e in events if e[0] == "response" and TURNS_URL.search(e[1])]
    assert [status for _, _, status in turns] == [201, 201], events

    conversation = while_server_writes(lambda: Conversation.objects.get(owner__username="skewed"))
    session = LiveSession.objects.get(conversation=conversation)
    rows = list(Message.objects.filter(conversation=conversation).order_by("created_at", "pk"))
    assert [m.role for m in rows] == ["user", "model"]
    for row in rows:
        assert abs((row.created_at - session.started_at).total_seconds()) < 60, (row.created_at, session.started_at)
