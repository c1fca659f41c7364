"""/live under hostile input: whatever a client sends, the answer is on the same socket, never INTERNAL_ERROR or a
logged traceback, and a refused request leaves nothing behind.

Property-based (Hypothesis): messages of every client type (and binary frames, unknown types, non-JSON), each
possibly carrying hostile values — NUL, lone surrogates, NaN/Infinity, numbers no column holds, deep nesting,
frames over the limit, wrong types, other users' ids — sent to the real ASGI app (gemini_sim over TLS behind it) on
the configured database and channel layer. One socket serves all the examples of a test: each example runs in the
test's own event loop (``Harness.run``), and the database is counted between examples while that loop is idle.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import json
import logging
import math
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from hypothesis import currently_in_test_context, given, note
from hypothesis import strategies as st

from conversations.models import Conversation, Message, User
from live.models import LiveSession
from live.protocol import CLIENT_MESSAGE_TYPES
from live.server_messages import validate_server_message
from tests.factories import ConversationFactory, LiveSessionFactory, MessageFactory, UserFactory
from tests.live.conftest import MODEL, LiveSocket, login_cookie

pytestmark = pytest.mark.timeout(600)

FRAME_LIMIT = 512 * 1024  # LIVE_MAX_FRAME_BYTES, set for these tests (it is the default too)


# -- JSON with what json.dumps will not write ----------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text put into a message as is (1e999, deep nesting, a string too large to escape), and why."""

    text: str
    kind: str

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r}... {len(self.text)} characters, {self.kind})"


@dataclass(frozen=True)
class Ref:
    """An id known only when the message is sent: ``session`` (the socket's open session) or ``conversation``."""

    name: str


def encode(value: Any, refs: dict[str, str]) -> str:
    """Write ``value`` as JSON text, NaN and Infinity as Python's json reads them, lone surrogates escaped."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Ref):
        return json.dumps(refs.get(value.name, "live_000000000000000000000000"))
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, bool | int | float | str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v, refs)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v, refs) for v in value) + "]"
    raise TypeError(type(value))


# -- what a client may send ----------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def wav(pcm: bytes, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buffer.getvalue()


@dataclass(frozen=True)
class Ids:
    """Rows of another user, which a client may name but never reach."""

    other_conversation: str
    other_session: str


# Hostile values that must be refused wherever they appear, with the codes that may answer them.
UNSTORABLE = "unstorable"
BAD_NUMBER = "bad_number"
DEEP = "deep"
OVERSIZE = "oversize"
EXPECTED_CODES = {
    UNSTORABLE: {
        "INVALID_MESSAGE",
        "INVALID_CONFIG",
        "CONVERSATION_NOT_FOUND",  # in an id: a malformed id is answered as an unknown one
        "SESSION_NOT_FOUND",
        "NO_ACTIVE_SESSION",
        "SESSION_ALREADY_ACTIVE",
    },
    BAD_NUMBER: {"INVALID_JSON"},
    DEEP: {"INVALID_MESSAGE", "INVALID_JSON"},
    OVERSIZE: {"FRAME_TOO_LARGE"},
}

unstorable_text = st.builds(
    lambda before, bad, after: before + bad + after,
    st.text(max_size=6),
    st.sampled_from(["\x00"]) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.text(max_size=6),
)
bad_numbers = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        Raw("1e999", BAD_NUMBER),
        Raw("-1E400", BAD_NUMBER),
        2**63,
        -(2**63) - 1,
        10**40,
        Raw("9" * 5000, BAD_NUMBER),  # past Python's own limit on an integer's digits
    ]
)
deep_values = st.integers(33, 2000).map(lambda n: Raw("[" * n + "]" * n, DEEP)) | st.sampled_from(
    [Raw('{"a":' * 40 + "1" + "}" * 40, DEEP), Raw("[" * 200_000 + "]" * 200_000, DEEP)]
)
oversize_values = st.sampled_from(
    [
        Raw('"' + "x" * (FRAME_LIMIT + 1) + '"', OVERSIZE),
        Raw('"' + "é" * (FRAME_LIMIT // 2 + 1) + '"', OVERSIZE),  # fewer characters than the limit, more bytes
    ]
)
hostile = st.one_of(unstorable_text, bad_numbers, deep_values, oversize_values)
wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.integers(1_000, 200_000).map(lambda n: "a" * n),  # large, within the frame limit
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
)


def member(valid: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A member's value: mostly ``valid``, sometimes ``bad`` (a hostile value where the member is read)."""
    return st.integers(0, 7).flatmap(lambda n: bad if n == 0 else valid)


def text(*values: str, max_size: int = 20) -> st.SearchStrategy[Any]:
    valid = st.sampled_from(values) | st.text(max_size=max_size) if values else st.text(max_size=max_size)
    return member(valid, unstorable_text | wrong_types)


def number(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return member(valid, bad_numbers | wrong_types)


vad = st.fixed_dictionaries(
    {},
    optional={
        "enabled": member(st.booleans(), wrong_types),
        "sensitivity": number(st.floats(-1, 2, allow_nan=False)),
        "silenceThreshold": number(st.integers(-100, 20_000)),
    },
)


def message_strategies(ids: Ids) -> st.SearchStrategy[dict[str, Any]]:
    """Messages of every client type, each member maybe hostile (the mutations in ``frames`` add more)."""
    conversation_ids = st.sampled_from(
        [
            Ref("conversation"),  # the user's own: works
            "",  # no conversation: a new one
            ids.other_conversation,
            "conv_0123456789abcdef01234567",  # well-formed, unknown
            "conv_\x00",
            "conv_\ud800",
            "c" * 300,
            "../conv_1",
        ]
    )
    session_ids = st.sampled_from(
        [
            Ref("session"),
            ids.other_session,
            "live_0123456789abcdef01234567",
            "live_\x00",
            "\udfff",
            "x" * 300,
        ]
    )
    speech = st.fixed_dictionaries(
        {},
        optional={
            "voiceConfig": st.fixed_dictionaries(
                {},
                optional={
                    "voiceName": text("Puck", "aoede", "Kore", "auto"),
                    "languageCode": text("en-US", "de-DE", "cmn-CN", "english", "x"),
                    "speakingRate": number(st.floats(0.25, 4)),
                    "pitch": number(st.floats(-20, 20)),
                    "volumeGainDb": number(st.floats(-96, 16)),
                },
            ),
            "languageCode": text("en-US", "fr-FR"),
        },
    )
    config = st.fixed_dictionaries(
        {},
        optional={
            "responseModalities": st.lists(text("TEXT", "AUDIO"), max_size=3),
            "mediaResolution": text("LOW", "MEDIUM", "HIGH"),
            "speechConfig": speech,
            "contextWindowCompression": st.fixed_dictionaries(
                {},
                optional={
                    "enabled": member(st.booleans(), wrong_types),
                    "maxTokens": number(st.integers(0, 200_000)),
                    "compressionRatio": number(st.floats(0, 1)),
                },
            ),
            "tools": st.lists(
                text("calculator", "search_conversations", "rm_rf")
                | st.fixed_dictionaries(
                    {"name": text("calculator", "search_conversations")}, optional={"description": text()}
                ),
                max_size=3,
            ),
            "systemInstruction": text(max_size=40),
            "vad": vad,
            "binaryAudio": member(st.booleans(), wrong_types),
        },
    )
    create = st.fixed_dictionaries(
        {"type": st.just("create_session")},
        optional={
            "data": st.fixed_dictionaries(
                {},
                optional={
                    "model": text(
                        MODEL, MODEL, "gemini-0-no-such-live", "gemini-3.5-transcribe-live", "models/" + MODEL
                    ),
                    "conversationId": st.none() | conversation_ids,
                    "loadConversationContext": member(st.booleans(), wrong_types),
                    "userId": st.integers() | text(),
                    "config": config,
                },
            )
        },
    )
    pcm = st.binary(max_size=3200)
    images = st.sampled_from(
        [b"\xff\xd8\xff\xe0" + bytes(32), b"\x89PNG\r\n\x1a\n" + bytes(16), b"RIFF\0\0\0\0WEBPVP8 ", b"GIF89a"]
    ) | st.binary(min_size=1, max_size=64)
    send_data = st.fixed_dictionaries(
        {},
        optional={
            "text": text(max_size=40),
            "audioChunk": member(
                st.one_of(
                    pcm.map(b64),
                    pcm.map(lambda p: b64(wav(p[: len(p) // 2 * 2]))),
                    pcm.map(lambda p: b64(wav(p[: len(p) // 2 * 2], rate=8000))),
                    st.binary(max_size=64).map(lambda b: b64(b"RIFF" + b[:4] + b"WAVE" + b[4:])),
                    st.text(max_size=20),
                ),
                unstorable_text | wrong_types,
            ),
            "mimeType": text("audio/pcm;rate=16000", "audio/wav", "audio/ogg", "audio/pcm;rate=8000"),
            "screenData": member(images.map(b64), unstorable_text | wrong_types),
            "videoFrame": member(images.map(b64), unstorable_text | wrong_types),
            "imageMimeType": text("image/jpeg", "image/png", "image/gif"),
            "turnComplete": member(st.booleans(), wrong_types),
            "tools": wrong_types,
        },
    )

    def typed(kind: str, **members: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({"type": st.just(kind), **members}, optional={"sessionId": session_ids})

    resume = st.fixed_dictionaries(
        {
            "type": st.just("resume_session"),
            "data": st.fixed_dictionaries(
                {"sessionId": session_ids},
                optional={"resumeHandle": st.none() | text(), "binaryAudio": member(st.booleans(), wrong_types)},
            ),
        }
    )
    unknown = st.fixed_dictionaries(
        {"type": st.text(max_size=20).filter(lambda t: t not in CLIENT_MESSAGE_TYPES)},
        optional={"data": st.dictionaries(st.text(max_size=5), text(), max_size=2)},
    )
    return st.one_of(
        create,
        create,  # the request with the most to check
        typed("send_message", data=send_data),
        typed("activity_start"),
        typed("activity_end"),
        typed("configure_vad", data=vad),
        resume,
        typed("end_session"),
        typed(
            "retry_turn",
            data=member(
                st.fixed_dictionaries({"turnId": text("turn_0123456789ab", "turn_000000000000", max_size=40)}),
                wrong_types,
            ),
        ),
        st.just({"type": "ping"}),
        unknown,
    )


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every member and item of a message, the message's own ``type`` aside."""
    if isinstance(value, dict):
        for key, item in value.items():
            if path or key != "type":
                yield (*path, key)
                yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from _paths(item, (*path, index))


def _containers(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from _containers(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _containers(item, (*path, index))


def _at(message: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        message = message[step]
    return message


def _unstorable(text: str) -> bool:
    return "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def hostility(value: Any) -> set[str]:
    """The kinds of hostile values in a message (each must get it refused)."""
    if isinstance(value, Raw):
        return {value.kind}
    if isinstance(value, str):
        return {UNSTORABLE} if _unstorable(value) else set()
    if isinstance(value, float) and not math.isfinite(value):
        return {BAD_NUMBER}
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
        return {BAD_NUMBER}
    if isinstance(value, dict):
        return set().union(set(), *(hostility(k) | hostility(v) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(set(), *(hostility(v) for v in value))
    return set()


@dataclass
class Frame:
    """One frame to send, and what it must get."""

    text: Any = None  # a message (encoded when sent), or str (sent as is)
    data: bytes | None = None
    kind: str = "?"
    hostile: set[str] = field(default_factory=set)  # kinds of hostile values it carries (must be refused)
    size: int = 0  # bytes on the wire, once sent

    def __repr__(self) -> str:
        shown = repr(self.data if self.data is not None else self.text)
        if len(shown) > 3000:
            shown = f"{shown[:3000]}... ({len(shown)} characters)"
        return f"Frame({self.kind}, hostile={sorted(self.hostile)}, {shown})"


@st.composite
def frames(draw: st.DrawFn, ids: Ids) -> Frame:
    """A frame a client might send: a message (maybe with hostile values in it), a binary frame, or not JSON."""
    choice = draw(st.sampled_from(["message"] * 8 + ["binary", "text"]))
    if choice == "binary":
        data = draw(st.binary(max_size=6400) | st.just(bytes(FRAME_LIMIT + 2)) | st.just(b"\x01\x02\x03"))
        return Frame(data=data, kind="binary", hostile={OVERSIZE} if len(data) > FRAME_LIMIT else set())
    if choice == "text":
        text = draw(
            st.text(max_size=60)
            | st.sampled_from(['{"type": "ping"', "{'type': 'ping'}", "[]", "null", "1e999", '"\\ud800"', "NaN"])
        )
        return Frame(text=text, kind="not-json")
    message = copy.deepcopy(draw(message_strategies(ids)))
    for _ in range(draw(st.integers(0, 2))):
        value = draw(hostile | wrong_types)
        if draw(st.booleans()):  # replace a member or item
            paths = list(_paths(message))
            if not paths:
                continue
            path = draw(st.sampled_from(paths))
            _at(message, path[:-1])[path[-1]] = value
        else:  # add a member anywhere
            container = draw(st.sampled_from(list(_containers(message))))
            key = draw((st.text(max_size=8) | unstorable_text).filter(lambda k: k != "type"))
            _at(message, container)[key] = value
    return Frame(text=message, kind=str(message["type"]), hostile=hostility(message))


# -- the socket ----------------------------------------------------------------------------------------------------


class ErrorRecords(logging.Handler):
    """Every ERROR-level (and worse) log record of the process, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Counts:
    conversations: int
    messages: int
    sessions: int
    open_sessions: int
    latest_session_status: str | None

    @classmethod
    def now(cls) -> Counts:
        latest = LiveSession.objects.order_by("pk").last()
        return cls(
            Conversation.objects.count(),
            Message.objects.count(),
            LiveSession.objects.count(),
            LiveSession.objects.filter(status__in=LiveSession.ACTIVE_STATUSES).count(),
            latest.status if latest else None,
        )


class Harness:
    """One logged-in socket on the real ASGI app, driven from a synchronous test through its own event loop."""

    def __init__(self, user: User, conversation: Conversation) -> None:
        self.user = user
        self.refs = {"conversation": conversation.public_id}
        self.loop = asyncio.new_event_loop()
        self.errors = ErrorRecords()
        logging.getLogger().addHandler(self.errors)
        self.checked = 0  # messages received and checked so far
        self.logged = 0  # error records checked so far
        self.exchanges = 0
        self.sent: list[str] = []
        self.socket = self.run(self._open(login_cookie(user)))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _open(self, cookie: str) -> LiveSocket:
        from apsara.asgi import application

        headers = [(b"cookie", cookie.encode()), (b"origin", b"http://testserver"), (b"host", b"testserver")]
        communicator = WebsocketCommunicator(application, "/live", headers=headers)
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        return LiveSocket(communicator)

    def close(self) -> None:
        try:
            if self.socket.closed_code is None:
                self.run(self.socket.communicator.disconnect(timeout=10))
            layer = get_channel_layer()
            if hasattr(layer, "close_pools"):
                self.run(layer.close_pools())
            self.run(self._cancel_the_rest())
        finally:
            logging.getLogger().removeHandler(self.errors)
            self.loop.close()

    async def _cancel_the_rest(self) -> None:
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def counts(self) -> Counts:
        """Count rows on the app's own database thread: in-memory SQLite cannot be read while another thread
        writes."""
        return self.run(database_sync_to_async(Counts.now)())

    @property
    def session_id(self) -> str | None:
        return self.refs.get("session")

    async def send(self, frame: Frame) -> None:
        # Straight to the application: send_to() refuses empty frames, which a client may send.
        event: dict[str, Any]
        if frame.data is not None:
            event = {"type": "websocket.receive", "bytes": frame.data}
            frame.size = len(frame.data)
        else:
            text = frame.text if isinstance(frame.text, str) else encode(frame.text, self.refs)
            event = {"type": "websocket.receive", "text": text}
            frame.size = len(text.encode("utf-8", "surrogatepass"))
        await self.socket.communicator.send_input(event)

    async def exchange(self, frame: Frame) -> list[dict[str, Any]]:
        """Send ``frame``, a ping and a marker; return what answered ``frame`` (all that came before the pong)."""
        self.exchanges += 1
        marker = f"sync:{self.exchanges}"
        self.sent = [*self.sent[-7:], repr(frame)[:300]]  # to say what led up to a failure
        start = len(self.socket.received)
        await self.send(frame)
        await self.socket.send({"type": "ping"})
        await self.socket.send({"type": marker})  # answered UNKNOWN_MESSAGE_TYPE, naming it: nothing stale matches
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            left = deadline - loop.time()
            assert left > 0, f"no answer to {marker} within 30s; got {self.socket.kinds()}; sent {self.sent}"
            item = await self.next(left, f"an answer to {marker}")
            if isinstance(item, dict) and marker in item.get("error", {}).get("message", ""):
                break
        answers = [m for m in self.socket.received[start:-1] if isinstance(m, dict)]
        pongs = [i for i, m in enumerate(answers) if m["type"] == "pong"]
        assert pongs, f"the ping after the frame was not answered: {answers}"  # the socket is usable
        del answers[pongs[-1]]
        return answers

    async def next(self, within: float, waiting_for: str) -> dict[str, Any] | bytes:
        """The next frame from the server (kept in order, as LiveSocket does); fail, saying why, if the application
        ended or nothing came."""
        communicator = self.socket.communicator
        getting = asyncio.ensure_future(communicator.output_queue.get())
        done, _ = await asyncio.wait({getting, communicator.future}, timeout=within, return_when="FIRST_COMPLETED")
        if getting not in done:
            getting.cancel()
            if communicator.future.done():
                communicator.future.result()  # the application crashed: its exception, here
                raise AssertionError(f"the application ended, waiting for {waiting_for}; sent {self.sent}")
            raise AssertionError(f"no {waiting_for} in {within:.0f}s; got {self.socket.kinds()}; sent {self.sent}")
        output = getting.result()
        if output["type"] == "websocket.close":
            self.socket.closed_code = output.get("code", 1000)
            raise AssertionError(f"socket closed ({self.socket.closed_code}) waiting for {waiting_for}")
        item: dict[str, Any] | bytes = json.loads(output["text"]) if output.get("text") is not None else output["bytes"]
        self.socket.received.append(item)
        return item

    async def until(self, *kinds: str, since: int, within: float = 30) -> dict[str, Any]:
        """The first message of one of ``kinds`` received after index ``since`` (waiting for it if need be)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for message in self.socket.received[since:]:
                if isinstance(message, dict) and message.get("type") in kinds:
                    return message
            since = len(self.socket.received)
            left = deadline - loop.time()
            assert left > 0, f"none of {kinds} within {within}s; got {self.socket.kinds()}"
            await self.next(left, " or ".join(kinds))

    async def create(self) -> None:
        """Open a session (the socket must have none)."""
        start = len(self.socket.received)
        await self.socket.send({"type": "create_session", "data": {"model": MODEL}})
        created = await self.until("session_created", "session_error", since=start)
        assert created["type"] == "session_created", created
        self.refs["session"] = created["sessionId"]

    async def end(self) -> None:
        start = len(self.socket.received)
        await self.socket.send({"type": "end_session"})
        await self.until("session_ended", since=start)
        self.refs.pop("session", None)

    def check(self, frame: Frame, answers: list[dict[str, Any]]) -> None:
        """What holds after every frame, whatever it was."""
        if currently_in_test_context():
            note(f"answers: {answers}")
        received, self.checked = self.socket.received[self.checked :], len(self.socket.received)
        for message in received:
            if isinstance(message, dict):
                validate_server_message(message)  # nothing undocumented goes out
                error = message.get("error") or {}
                assert error.get("code") != "INTERNAL_ERROR", message
        logged, self.logged = self.errors.records[self.logged :], len(self.errors.records)
        assert not logged, [self.errors.format(r) for r in logged]
        assert self.socket.closed_code is None
        codes = [m["error"]["code"] for m in answers if m["type"] in ("session_error", "audio_error")]
        if frame.size > FRAME_LIMIT:  # whatever it holds
            assert codes[:1] == ["FRAME_TOO_LARGE"], answers
        elif frame.hostile:
            allowed = set().union(*(EXPECTED_CODES[kind] for kind in frame.hostile))
            if frame.kind not in CLIENT_MESSAGE_TYPES:
                allowed |= {"UNKNOWN_MESSAGE_TYPE", "INVALID_MESSAGE"}
            assert codes and codes[0] in allowed, (frame.hostile, answers)


@pytest.fixture
def hostile_setup(gemini_sim: Any, live_user: User, settings: Any) -> Iterator[tuple[Harness, Ids]]:
    settings.LIVE_MAX_FRAME_BYTES = FRAME_LIMIT
    settings.LIVE_AUDIO_BURST_SECONDS = 3600  # random audio is not a flood here; that has tests of its own
    other = UserFactory.create()
    other_conversation = ConversationFactory.create(owner=other)
    MessageFactory.create(conversation=other_conversation)
    other_session = LiveSessionFactory.create(
        user=other, conversation=other_conversation, status=LiveSession.Status.DETACHED, resumption_handle="h"
    )
    own = ConversationFactory.create(owner=live_user)
    harness = Harness(live_user, own)
    try:
        yield harness, Ids(other_conversation.public_id, other_session.public_id)
    finally:
        harness.close()


def test_hostile_frames_without_a_session_are_refused_and_leave_nothing_behind(hostile_setup):
    """Before any session: each frame is answered (no INTERNAL_ERROR, no logged error), the socket stays usable,
    and a create_session that does not open a session leaves no conversation, message or open session row."""
    harness, ids = hostile_setup

    def one(frame: Frame) -> None:
        before = harness.counts()
        start = len(harness.socket.received)
        answers = harness.run(harness.exchange(frame))
        refused_here = any(m["type"] == "session_error" and m["sessionId"] is None for m in answers)
        created = None
        if frame.kind == "create_session" and not refused_here:
            # Accepted: Gemini opens the session, or refuses it (session_error with its id, then session_ended).
            created = harness.run(harness.until("session_created", "session_ended", since=start))
            if created["type"] == "session_created":
                harness.refs["session"] = created["sessionId"]
                harness.run(harness.end())
            else:
                created = None
        harness.check(frame, answers)
        after = harness.counts()
        assert after.open_sessions == 0
        if created is None:
            assert (after.conversations, after.messages) == (before.conversations, before.messages)
            if after.sessions != before.sessions:  # Gemini refused the setup: a failed row for staff, no more
                assert after.sessions == before.sessions + 1
                assert after.latest_session_status == LiveSession.Status.FAILED
        if frame.hostile:
            assert created is None

    @given(sent=st.lists(frames(ids), min_size=1, max_size=4))
    def example(sent: list[Frame]) -> None:
        for frame in sent:
            one(frame)

    example()
    harness.run(harness.create())  # and a valid request still works
    harness.run(harness.end())
    harness.check(Frame(), [])


def test_hostile_frames_in_a_session_are_refused_and_the_session_goes_on(hostile_setup):
    """In a session: each frame is answered without INTERNAL_ERROR or a logged error, the socket stays usable, and
    the session keeps talking to Gemini (it is opened again only if a frame ended it: end_session)."""
    harness, ids = hostile_setup

    def one(frame: Frame) -> None:
        if harness.session_id is None:
            harness.run(harness.create())
        before = harness.counts()
        answers = harness.run(harness.exchange(frame))
        harness.check(frame, answers)
        if any(m["type"] == "session_ended" for m in answers):
            harness.refs.pop("session", None)
        if frame.kind in ("create_session", "resume_session"):  # refused: one session per socket
            assert not any(m["type"] in ("session_created", "session_resumed") for m in answers)
            assert harness.counts().sessions == before.sessions

    @given(sent=st.lists(frames(ids), min_size=1, max_size=4))
    def example(sent: list[Frame]) -> None:
        for frame in sent:
            one(frame)

    example()
    if harness.session_id is None:
        harness.run(harness.create())
    start = len(harness.socket.received)
    harness.run(harness.socket.send({"type": "send_message", "data": {"text": "Still there?"}}))
    harness.run(harness.until("message_saved", since=start))
    harness.run(harness.end())
    harness.check(Frame(), [])
