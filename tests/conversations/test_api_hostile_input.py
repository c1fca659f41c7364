"""Hostile input against the real app: never a 5xx, a traceback or an ERROR log; always the JSON error shape on
/api/; nothing saved by a refused request; someone else's objects are a 404; accepted text is stored exactly.

Property-based (Hypothesis, profiles in tests/hypothesis_profiles.py) through Django's test client on the configured
database: PostgreSQL in CI, which is the one that refuses NUL bytes. Each example runs in a savepoint rolled back
after it, so a DELETE in one example leaves the fixtures for the next. The limits themselves (body size, nesting,
numbers, text) are pinned by the example tests at the end, as docs/api.md states them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections, transaction
from django.test import Client, override_settings
from hypothesis import event, example, given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from conversations import services
from conversations.audio import pcm16_to_wav
from conversations.models import Conversation, Message, User

pytestmark = pytest.mark.django_db

STORABLE_CODES = {"null_characters_not_allowed", "surrogate_characters_not_allowed"}
JSON_INT_MAX = 2**63 - 1


# WHAT A HOSTILE CLIENT SENDS
# ------------------------------------------------------------------------------
EDGE_TEXT = [
    "",
    " ",
    " \t\n",
    "\x00",
    "a\x00b",
    "\ud800",  # lone surrogates: JSON spells them "\ud800"
    "\udfff",
    "x\udc80y",
    "\ud83d\ude00",  # a pair that JSON joins into one emoji: storable
    "👩\u200d👩\u200d👧",
    "\u2028\u2029\x85",
    "\u202eevil",
    "\ufeff",
    "e\u0301",
    "\U0010ffff",
    "\uffff",
    "\x7f\x1b[31m",
    "%00",
    "%ED%A0%80",
    "../../../etc/passwd",
    "'; DROP TABLE conversations_conversation; --",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "NaN",
    "Infinity",
    "null",
    "0",
    "-1",
    "1e999",
    "9" * 30,
    "conv_",
    "msg_" + "0" * 24,
    "x" * 200,
    "x" * 201,
    "y" * 5000,
]
HOSTILE_CHARACTERS = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # left out of st.characters() by default
    st.sampled_from('\x00\n\r\t"\\/%&?#=;.\u2028\x85\ufeff'),
)
HOSTILE_TEXT = st.one_of(st.sampled_from(EDGE_TEXT), st.text(HOSTILE_CHARACTERS, max_size=40))
# Text a database can store, awkward as it may be: what an accepted request must keep exactly.
STORABLE_TEXT = st.one_of(
    st.sampled_from([t for t in EDGE_TEXT if "\x00" not in t and not any("\ud800" <= c <= "\udfff" for c in t)]),
    st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=60),
)
NUMBERS = st.one_of(
    st.integers(),
    st.floats(),  # NaN and ±Infinity included: json.dumps writes them as the non-JSON literals
    st.sampled_from([0, -0.0, JSON_INT_MAX, JSON_INT_MAX + 1, -JSON_INT_MAX - 2, 10**400, 1e308, 5e-324, 2.0001]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, HOSTILE_TEXT)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE_TEXT, inner, max_size=3), max_leaves=8
)
PAGE_NUMBERS = st.one_of(
    st.integers(-5, 300).map(str),
    st.sampled_from(["", "0", "1", "200", "201", "2147483647", "2147483648", "9" * 25, "1e3", "1.5", " 7"]),
    st.just("\u0661\u0662"),  # Arabic-Indic digits: int() reads them
    HOSTILE_TEXT,
)
CONTENT_TYPES = st.sampled_from(
    ["application/json"] * 14
    + [
        "application/json; charset=utf-8",
        "application/json; charset=utf-16",
        "application/json; charset=bogus",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ]
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"])


@dataclass(frozen=True)
class Ref:
    """An id resolved when the test runs: a fixture's object, or a well-formed id that names nothing."""

    name: str


# Ids a request can name: yours, someone else's, none at all, or something that is no id.
CONVERSATION_REFS = ["mine", "theirs", "missing_conversation", "mine_audio", "CONVERSATION_ID"]
MESSAGE_REFS = ["mine_audio", "mine_text", "their_audio", "missing_message", "mine"]
# What PostgreSQL refuses in a query, drawn often: a budget of 100 examples must meet it in every id.
ID_TEXT = st.one_of(st.sampled_from(["\x00", "conv_\x00", "msg_0\x00", "\ud800", "conv_\udfff", "%00"]), HOSTILE_TEXT)
# Your own object a third of the time (so accepted requests are exercised too), another ref or hostile text else.
CONVERSATION_IDS = st.one_of(st.just(Ref("mine")), st.sampled_from(CONVERSATION_REFS).map(Ref), ID_TEXT)
MESSAGE_IDS = st.one_of(st.just(Ref("mine_audio")), st.sampled_from(MESSAGE_REFS).map(Ref), ID_TEXT)
ANONYMOUS = st.sampled_from([False, False, False, True])  # mostly logged in: anonymous requests stop at the 401


@dataclass(frozen=True)
class Raw:
    """A body sent as these bytes, whatever they are."""

    data: bytes


def _nested(depth: int, *, member: bool) -> str:
    return '{"a": ' * depth + "1" + "}" * depth if member else "[" * depth + "]" * depth


RAW_BODIES = st.one_of(
    st.integers(0, 50_000).map(lambda n: Raw(_nested(n, member=False).encode())),
    st.integers(0, 2_000).map(lambda n: Raw(('{"title": ' + _nested(n, member=True) + "}").encode())),
    st.integers(0, 2_000).map(lambda n: Raw(('{"prompt": "hi", "model": ' + _nested(n, member=False) + "}").encode())),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"title": "x"',
            b'{"title": "\\ud800"}',
            b'{"title": "\\u0000"}',
            b'{"title": "a\x00b"}',  # a raw control character: not JSON
            b"NaN",
            b'{"title": NaN}',
            b'{"prompt": "x", "temperature": -Infinity}',
            b'{"prompt": "x", "temperature": 1' + b"0" * 5000 + b"}",
            b"\xef\xbb\xbf{}",
            b"\xff\xfe{\x00}\x00",
            b'{"title": "\xed\xa0\x80"}',  # a surrogate encoded straight into the bytes: not UTF-8
            b'{"title": "x", "title": "\\u0000"}',
            b"[]",
            b'"just a string"',
        ]
    ).map(Raw),
    st.binary(max_size=64).map(Raw),
    # Either side of the 1 MiB body limit (API_MAX_BODY_BYTES): parsed (a title far too long), or a 413.
    st.sampled_from([2**20 - 20, 2**20 - 13, 2**20 + 1]).map(lambda n: Raw(b'{"title": "' + b"x" * n + b'"}')),
    JSON_VALUES.map(lambda value: Raw(json.dumps(value).encode())),  # valid JSON, rarely an object
)


def bodies(
    valid: st.SearchStrategy[dict[str, Any]], fields: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """A body for an endpoint: a valid one, its fields given hostile values among stray members, or raw bytes."""
    members = st.fixed_dictionaries(
        {},
        optional={name: st.one_of(field, JSON_VALUES) for name, field in fields.items()} | {"userId": JSON_VALUES},
    )
    stray = st.dictionaries(HOSTILE_TEXT, JSON_VALUES, max_size=2)
    hostile = st.tuples(stray, members).map(lambda pair: {**pair[0], **pair[1]})
    return st.one_of(valid, hostile, hostile, RAW_BODIES)


def query_strings(params: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[list[tuple[str, Any]]]:
    """Query parameters: the endpoint's own (valid or not) and stray ones."""
    known = st.fixed_dictionaries({}, optional=params).map(lambda found: list(found.items()))
    stray = st.lists(st.tuples(HOSTILE_TEXT, HOSTILE_TEXT), max_size=2)
    return st.tuples(known, stray).map(lambda pair: pair[0] + pair[1])


# THE WORLD THE REQUESTS MEET, AND THE CHECKS EVERY ANSWER PASSES
# ------------------------------------------------------------------------------
@dataclass
class World:
    me: User
    api: APIClient
    anonymous: APIClient
    pages: Client
    ids: dict[str, str]
    theirs: Conversation

    def resolve(self, value: Any) -> Any:
        return self.ids[value.name] if isinstance(value, Ref) else value

    def path_part(self, value: Any) -> str:
        """Put an id in a path, percent-encoded (a lone surrogate as the bytes a broken client would send)."""
        return quote(str(self.resolve(value)).encode("utf-8", "surrogatepass"), safe="")

    def query(self, params: list[tuple[str, Any]]) -> str:
        def encode(text: Any) -> str:
            return quote(str(self.resolve(text)).encode("utf-8", "surrogatepass"), safe="")

        return "&".join(f"{encode(name)}={encode(value)}" for name, value in params)

    def encode(self, body: Any) -> bytes:
        """Turn a drawn body into bytes: raw as it is, else JSON (ASCII; lone surrogates as "\\ud800", NaN as NaN)."""
        if isinstance(body, Raw):
            return body.data
        return json.dumps({key: self.resolve(value) for key, value in body.items()}).encode()

    def their_state(self) -> tuple[Any, ...]:
        theirs = Conversation.objects.get(pk=self.theirs.pk)
        return theirs.title, theirs.updated_at, theirs.kind, theirs.messages.count()


@pytest.fixture
def world(user: User, other_user: User) -> World:
    mine = services.conversation_create(owner=user, title="Mine")
    wav = pcm16_to_wav(b"\x01\x00" * 1600, sample_rate=16_000)
    mine_audio = services.message_create(conversation=mine, role="user", message_type="live", audio=wav)
    mine_text = services.message_create(conversation=mine, role="model", text="hello")
    theirs = services.conversation_create(owner=other_user, title="Theirs")
    their_audio = services.message_create(conversation=theirs, role="user", message_type="live", audio=wav)
    api, pages = APIClient(), Client()
    api.force_login(user)
    pages.force_login(user)
    ids = {
        "mine": mine.public_id,
        "theirs": theirs.public_id,
        "mine_audio": mine_audio.public_id,
        "mine_text": mine_text.public_id,
        "their_audio": their_audio.public_id,
        "missing_conversation": "conv_" + "0" * 24,
        "missing_message": "msg_" + "0" * 24,
        "CONVERSATION_ID": "CONVERSATION_ID",
    }
    return World(me=user, api=api, anonymous=APIClient(), pages=pages, ids=ids, theirs=theirs)


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def one_example() -> Iterator[None]:
    """Run one example in a savepoint rolled back after it; fail it on any ERROR-level log record."""
    errors = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(errors)
    try:
        with transaction.atomic():
            yield
            transaction.set_rollback(True)
    finally:
        root.removeHandler(errors)
    assert not errors.records, [f"{r.name}: {r.getMessage()}" for r in errors.records]


def row_counts() -> tuple[int, int, int]:
    return Conversation.objects.count(), Message.objects.count(), User.objects.count()


def send(client: Client, method: str, path: str, *, body: bytes = b"", content_type: str = "", **headers: Any) -> Any:
    response = client.generic(method, path, data=body, content_type=content_type, **headers)
    if response.streaming:  # a file or an event stream, not read here: closed as the test client would
        request_finished.disconnect(close_old_connections)  # else it closes the test's database connection
        try:
            response.close()
        finally:
            request_finished.connect(close_old_connections)
    event(f"{method} answered {response.status_code}")  # --hypothesis-show-statistics: what the examples reached
    return response


def check_answer(method: str, path: str, response: Any) -> dict[str, Any] | None:
    """No 5xx; an error under /api/ has the JSON error shape. Return the error, if there is one."""
    assert response.status_code < 500, (method, path, response.status_code, getattr(response, "content", b"")[:300])
    if response.status_code < 400 or not path.startswith("/api/"):
        return None
    assert response["Content-Type"].startswith("application/json"), (path, response.status_code, response.headers)
    if method == "HEAD":  # no body to read
        return None
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "field"} <= set(error) <= {"code", "message", "field", "fields"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert error["field"] is None or isinstance(error["field"], str), error
    if "fields" in error:
        assert all(isinstance(messages, list) and messages for messages in error["fields"].values()), error
        if error["field"] is not None:
            assert error["field"] in error["fields"], error
    return dict(error)


def _parsed(body: bytes, content_type: str) -> tuple[bool, Any]:
    """Return (parses as the API's JSON, the value), by the rules the API states, for the bodies sent as UTF-8 JSON."""
    if content_type.split(";")[0] != "application/json" or "utf-16" in content_type or not body:
        return False, None
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False, None
    return _depth(value) <= 20 and _numbers_in_range(value), value


def _numbers_in_range(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return abs(value) <= JSON_INT_MAX
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    items = list(value.values()) if isinstance(value, dict) else value
    return all(_numbers_in_range(item) for item in items)


def _depth(value: Any) -> int:
    """Count nesting without recursion: json.loads takes documents deeper than Python's stack."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _has_unstorable_text(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(char) <= 0xDFFF for char in value)
    if isinstance(value, dict):
        return any(_has_unstorable_text(key) or _has_unstorable_text(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_unstorable_text(item) for item in value)
    return False


def check_body_refusal(body: bytes, content_type: str, error: dict[str, Any] | None) -> None:
    """A parseable body holding a NUL or a lone surrogate anywhere is a 400 naming the field at fault.

    A body that is itself a string or an array has no field to name (``field`` is null, as for any bad body).
    """
    parses, value = _parsed(body, content_type)
    if parses and _has_unstorable_text(value):
        assert error is not None and error["code"] in STORABLE_CODES, error
        assert error["field"] or not isinstance(value, dict), error


# PROPERTIES, ONE PER ENDPOINT
# ------------------------------------------------------------------------------
CONVERSATION_FIELDS = {"title": HOSTILE_TEXT}
CONVERSATION_BODIES = bodies(st.fixed_dictionaries({}, optional={"title": STORABLE_TEXT}), CONVERSATION_FIELDS)
RENAME_BODIES = bodies(st.fixed_dictionaries({"title": STORABLE_TEXT}), CONVERSATION_FIELDS)


@given(
    method=st.one_of(st.sampled_from(["GET", "POST"]), METHODS),
    anonymous=ANONYMOUS,
    query=query_strings({"limit": PAGE_NUMBERS, "offset": PAGE_NUMBERS}),
    body=CONVERSATION_BODIES,
    content_type=CONTENT_TYPES,
)
@example(method="POST", anonymous=False, query=[], body=Raw(b"[" * 5000 + b"]" * 5000), content_type="application/json")
@example(method="POST", anonymous=False, query=[], body={"title": "a\x00b"}, content_type="application/json")
@example(method="GET", anonymous=False, query=[("offset", "9" * 25)], body=Raw(b""), content_type="")
def test_conversation_list_and_create_survive_hostile_input(
    world: World, method: str, anonymous: bool, query: list[tuple[str, Any]], body: Any, content_type: str
) -> None:
    """GET/POST /api/conversations: never a 5xx; a refused request creates nothing; a title is stored as sent."""
    path = "/api/conversations"
    data = world.encode(body)
    with one_example():
        before = row_counts()
        client = world.anonymous if anonymous else world.api
        response = send(client, method, f"{path}?{world.query(query)}", body=data, content_type=content_type)
        error = check_answer(method, path, response)
        if response.status_code >= 400:
            assert row_counts() == before
        if anonymous:
            assert response.status_code in {401, 405}
        if method == "POST" and not anonymous:
            check_body_refusal(data, content_type, error)
        if response.status_code == 201:
            created = Conversation.objects.get(public_id=response.json()["id"])
            assert created.owner == world.me
            assert row_counts() == (before[0] + 1, before[1], before[2])
            sent = json.loads(data) if data else {}
            assert created.title == sent.get("title", "").strip()


@given(
    method=st.one_of(st.sampled_from(["GET", "PATCH", "DELETE"]), METHODS),
    anonymous=ANONYMOUS,
    conv_id=CONVERSATION_IDS,
    body=RENAME_BODIES,
    content_type=CONTENT_TYPES,
)
@example(method="GET", anonymous=False, conv_id="conv_\x00", body=Raw(b""), content_type="")
@example(method="DELETE", anonymous=False, conv_id="\ud800", body=Raw(b""), content_type="")
def test_conversation_detail_survives_hostile_input(
    world: World, method: str, anonymous: bool, conv_id: Any, body: Any, content_type: str
) -> None:
    """GET/PATCH/DELETE /api/conversations/<id>: malformed or someone else's id is a 404; nothing else changes."""
    path = f"/api/conversations/{world.path_part(conv_id)}"
    data = world.encode(body)
    with one_example():
        before, theirs_before = row_counts(), world.their_state()
        client = world.anonymous if anonymous else world.api
        response = send(client, method, path, body=data, content_type=content_type)
        error = check_answer(method, path, response)
        assert world.their_state() == theirs_before
        if response.status_code >= 400:
            assert row_counts() == before
        if conv_id == Ref("theirs") and not anonymous and method in {"GET", "PATCH", "DELETE"}:
            assert response.status_code == 404
        if conv_id == Ref("mine") and method == "PATCH" and not anonymous:
            check_body_refusal(data, content_type, error)


@given(body=RENAME_BODIES, content_type=CONTENT_TYPES)
@example(body={"title": "\ud800"}, content_type="application/json")
@example(body={"title": " \U0010ffff\u2028 "}, content_type="application/json")
def test_rename_stores_the_title_or_changes_nothing(world: World, body: Any, content_type: str) -> None:
    """PATCH /api/conversations/<yours>: the title (trimmed) is stored, or the request is refused and nothing moves."""
    path = f"/api/conversations/{world.ids['mine']}"
    data = world.encode(body)
    mine = Conversation.objects.get(public_id=world.ids["mine"])
    with one_example():
        before = (row_counts(), mine.title)
        response = send(world.api, "PATCH", path, body=data, content_type=content_type)
        error = check_answer("PATCH", path, response)
        check_body_refusal(data, content_type, error)
        title = Conversation.objects.get(pk=mine.pk).title
        if response.status_code == 200:
            assert title == json.loads(data)["title"].strip() == response.json()["title"]
        else:
            assert (row_counts(), title) == before


@given(
    anonymous=ANONYMOUS,
    method=st.one_of(st.just("GET"), METHODS),
    conv_id=CONVERSATION_IDS,
    query=query_strings({"limit": PAGE_NUMBERS, "offset": PAGE_NUMBERS, "after": MESSAGE_IDS}),
)
@example(anonymous=False, method="GET", conv_id="conv_\x00", query=[])
@example(anonymous=False, method="GET", conv_id=Ref("mine"), query=[("after", "\x00")])
def test_message_list_survives_hostile_input(
    world: World, anonymous: bool, method: str, conv_id: Any, query: list[tuple[str, Any]]
) -> None:
    """GET /api/conversations/<id>/messages with hostile ids, paging and `after`: a 4xx, never a 5xx."""
    path = f"/api/conversations/{world.path_part(conv_id)}/messages"
    with one_example():
        before = row_counts()
        client = world.anonymous if anonymous else world.api
        response = send(client, method, f"{path}?{world.query(query)}")
        error = check_answer(method, path, response)
        assert row_counts() == before
        if conv_id == Ref("theirs") and not anonymous and method == "GET":
            assert response.status_code == 404
        if error is not None and error["field"] is not None:
            assert error["field"] in {name for name, _ in query}


GENERATE_FIELDS = {
    "prompt": HOSTILE_TEXT,
    "contents": HOSTILE_TEXT,
    "conversationId": st.one_of(st.none(), CONVERSATION_IDS),
    "model": st.sampled_from(["gemini-2.5-flash", "models/gemini-2.5-flash", "../x", "a" * 101]),
    "temperature": st.one_of(st.floats(-1, 3), st.sampled_from([0, 2, "1", True])),
    "systemInstruction": HOSTILE_TEXT,
}
GENERATE_BODIES = bodies(
    st.fixed_dictionaries(
        {"prompt": STORABLE_TEXT},
        optional={
            "conversationId": st.sampled_from([Ref("mine"), Ref("theirs"), None]),
            "model": st.just("gemini-2.5-flash"),
            "temperature": st.floats(0, 2),
            "systemInstruction": STORABLE_TEXT,
        },
    ),
    GENERATE_FIELDS,
)


@given(anonymous=ANONYMOUS, body=GENERATE_BODIES, content_type=CONTENT_TYPES)
@example(anonymous=False, body={"prompt": "hi", "conversationId": "conv_\x00"}, content_type="application/json")
@example(anonymous=False, body=Raw(b'{"prompt": ' + b"[" * 3000 + b"]" * 3000 + b"}"), content_type="application/json")
@example(anonymous=False, body={"prompt": "  exactly\r\n"}, content_type="application/json")
def test_generate_refuses_or_stores_the_prompt_exactly(
    world: World, anonymous: bool, body: Any, content_type: str
) -> None:
    """POST /api/ai/generate: refused before the stream with nothing saved, or the prompt is saved as sent."""
    path = "/api/ai/generate"
    data = world.encode(body)
    with one_example():
        before, theirs_before = row_counts(), world.their_state()
        client = world.anonymous if anonymous else world.api
        response = send(client, "POST", path, body=data, content_type=content_type)
        error = check_answer("POST", path, response)
        assert world.their_state() == theirs_before
        if not anonymous:
            check_body_refusal(data, content_type, error)
        if response.status_code != 200:
            assert row_counts() == before
            return
        # Accepted: the stream (not read here) has not started, but the prompt is saved, exactly as sent.
        assert response["Content-Type"].startswith("text/event-stream")
        sent = json.loads(data)
        prompt = sent["prompt"] if isinstance(sent.get("prompt"), str) else sent["contents"]
        saved = Message.objects.filter(role="user").latest("id")
        assert saved.text == prompt
        assert saved.conversation.owner == world.me
        created = 0 if sent.get("conversationId") else 1
        assert row_counts() == (before[0] + created, before[1] + 1, before[2])


@given(
    anonymous=ANONYMOUS,
    file_id=MESSAGE_IDS,
    query=query_strings({"download": st.one_of(st.sampled_from(["1", "true", "0"]), HOSTILE_TEXT)}),
    byte_range=st.one_of(
        st.none(),
        st.sampled_from(["bytes=0-0", "bytes=-10", "bytes=5-", "bytes=9999999-", "bytes=5-3", "bytes=-0", "bytes=-"]),
        st.sampled_from(["bytes=" + "9" * 19 + "-", "bytes=" + "9" * 5000 + "-", "bytes=0-1,2-3"]),
        st.just("bytes=\u0661-\u0662"),
        st.text(st.characters(max_codepoint=255), max_size=30),
    ),
)
@example(anonymous=False, file_id="\x00", query=[], byte_range=None)
@example(anonymous=False, file_id=Ref("mine_audio"), query=[], byte_range="bytes=" + "9" * 5000 + "-")
def test_file_download_survives_hostile_input(
    world: World, anonymous: bool, file_id: Any, query: list[tuple[str, Any]], byte_range: str | None
) -> None:
    """GET /api/files/<id>/download with hostile ids and Range headers: someone else's audio is a 404."""
    path = f"/api/files/{world.path_part(file_id)}/download"
    headers: dict[str, Any] = {} if byte_range is None else {"HTTP_RANGE": byte_range}
    with one_example():
        client = world.anonymous if anonymous else world.api
        response = send(client, "GET", f"{path}?{world.query(query)}", **headers)
        check_answer("GET", path, response)
        if file_id in {Ref("their_audio"), Ref("mine_text"), Ref("missing_message")} and not anonymous:
            assert response.status_code == 404
        if file_id == Ref("mine_audio") and not anonymous:
            assert response.status_code in {200, 206, 416}


@given(
    anonymous=ANONYMOUS,
    method=METHODS,
    tail=st.one_of(
        HOSTILE_TEXT,
        st.sampled_from(["conversations/", "conversations//messages", "ai/generate/", "files//download", "schema"]),
    ),
    body=CONVERSATION_BODIES,
)
@example(anonymous=False, method="GET", tail="nope", body=Raw(b""))
def test_any_api_url_answers_in_the_json_shape(
    world: World, anonymous: bool, method: str, tail: str, body: Any
) -> None:
    """Unknown /api/ URLs and wrong methods are 404/405 (or another 4xx) in the JSON error shape, never HTML."""
    path = "/api/" + quote(tail.encode("utf-8", "surrogatepass"), safe="/")
    with one_example():
        client = world.anonymous if anonymous else world.api
        response = send(client, method, path, body=world.encode(body), content_type="application/json")
        check_answer(method, path, response)


@given(
    conv_id=CONVERSATION_IDS,
    page=st.sampled_from(["", "messages/", "rename/", "delete/"]),
    title=HOSTILE_TEXT,
    anonymous=ANONYMOUS,
)
@example(conv_id="\x00", page="", title="", anonymous=False)
@example(conv_id="conv_\x00", page="rename/", title="\x00", anonymous=False)
def test_chat_pages_survive_hostile_ids(world: World, conv_id: Any, page: str, title: str, anonymous: bool) -> None:
    """/c/<id>/… pages: a malformed, missing or someone else's id is a plain 404 page; no 5xx."""
    path = f"/c/{world.path_part(conv_id)}/{page}"
    form = ("title=" + quote(title.encode("utf-8", "surrogatepass"), safe="") + "&next=list").encode()
    with one_example():
        before, theirs_before = row_counts(), world.their_state()
        client = Client() if anonymous else world.pages
        if page in {"rename/", "delete/"}:
            response = send(client, "POST", path, body=form, content_type="application/x-www-form-urlencoded")
        else:
            response = send(client, "GET", path)
        check_answer("GET", path, response)
        assert world.their_state() == theirs_before
        if response.status_code == 404:
            assert response["Content-Type"].startswith("text/html")
            assert row_counts() == before
        not_a_chat = conv_id != Ref("mine") and not (page == "" and world.resolve(conv_id) == "new")  # /c/new/
        if not anonymous and not_a_chat:
            assert response.status_code == 404


# THE STREAM: WHAT WAS ACCEPTED IS STORED AND ECHOED EXACTLY
# ------------------------------------------------------------------------------
AWKWARD_PROMPTS = [
    "  indented, with trailing space and newline \n",
    "line\r\nbreaks\rand\ttabs",
    "separators\u2028and\u2029and\x85next",
    "👩\u200d👩\u200d👧 family, 😀 astral, \U0010ffff last code point",
    "e\u0301 combining, \u202eright-to-left override\u202c, \ufeffBOM, \uffff",
    'quotes " and \\ backslashes and {"json": [1]}',
]


@pytest.fixture
async def _close_worker_thread_connections() -> Any:
    """Close the DB connections opened in sync_to_async's worker thread, so the test database can be dropped."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_worker_thread_connections")
@pytest.mark.parametrize("prompt", AWKWARD_PROMPTS)
async def test_generate_stores_and_echoes_an_awkward_prompt_exactly(user, gemini_sim, prompt: str) -> None:
    """Through the real ASGI app and Gemini (simulated): the prompt is saved and echoed in `meta` as sent."""
    from asgiref.sync import sync_to_async

    from tests.asgi import AsgiStream, session_cookie_for

    stream = AsgiStream(
        "/api/ai/generate", body={"prompt": prompt}, session=await sync_to_async(session_cookie_for)(user)
    )
    await stream.start()
    events = [event async for event in stream.events()]
    await stream.finish()
    assert stream.status == 200
    assert [name for name, _ in events][0 :: len(events) - 1] == ["meta", "done"]
    meta = events[0][1]
    assert meta["userMessage"]["content"]["text"] == prompt
    saved = await Message.objects.aget(public_id=meta["userMessage"]["id"])
    assert saved.text == prompt


def test_event_data_holds_no_javascript_line_terminator() -> None:
    """U+2028/U+2029 in an event's data are escaped: a reader splitting lines with a JS regex still sees one line."""
    from conversations.generation import sse_event

    framed = sse_event("meta", {"text": "a\u2028b\u2029c"}).decode()
    assert "\u2028" not in framed and "\u2029" not in framed
    assert json.loads(framed.split("data: ", 1)[1]) == {"text": "a\u2028b\u2029c"}


# THE LIMITS docs/api.md STATES
# ------------------------------------------------------------------------------
def assert_refused(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    error = check_answer(response.request["REQUEST_METHOD"], response.request["PATH_INFO"], response)
    assert response.status_code == status, response.content
    assert error is not None
    assert (error["code"], error["field"]) == (code, field), error
    return error


@override_settings(API_MAX_BODY_BYTES=100)
def test_body_size_limit_is_a_413_before_parsing(api_client) -> None:
    """A body up to API_MAX_BODY_BYTES is parsed; one byte more is a 413 in the JSON shape, and nothing is saved."""
    body = '{"title": "' + "x" * 87 + '"}'
    assert len(body) == 100
    assert api_client.post("/api/conversations", body, content_type="application/json").status_code == 201
    error = assert_refused(
        api_client.post("/api/conversations", body + " ", content_type="application/json"), 413, "request_too_large"
    )
    assert "100 bytes" in error["message"]
    assert Conversation.objects.count() == 1


def test_body_larger_than_djangos_own_limit_is_a_413(api_client) -> None:
    """3 MiB (past Django's DATA_UPLOAD_MAX_MEMORY_SIZE, which used to raise RequestDataTooBig: a 500) is a 413."""
    body = '{"prompt": "' + "x" * (3 * 1024 * 1024) + '"}'
    assert_refused(api_client.post("/api/ai/generate", body, content_type="application/json"), 413, "request_too_large")
    assert not Conversation.objects.exists()


def test_declared_body_size_is_refused_without_reading_it(api_client) -> None:
    """A Content-Length past the limit is refused from the header alone (here 120 MiB announced, 2 bytes sent)."""
    response = api_client.post(
        "/api/conversations", "{}", content_type="application/json", CONTENT_LENGTH=str(120 * 1024 * 1024)
    )
    assert_refused(response, 413, "request_too_large")
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("depth", [20, 21, 100_000])
def test_json_nesting_is_bounded_before_parsing(api_client, depth: int) -> None:
    """Arrays and objects nest at most API_MAX_JSON_DEPTH (20) deep, the body counting as one; deeper is too_deep."""
    body = '{"title": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    response = api_client.post("/api/conversations", body, content_type="application/json")
    if depth <= 20:
        assert_refused(response, 400, "invalid", "title")  # parsed: a list is no title
    else:
        assert_refused(response, 400, "too_deep")
    assert not Conversation.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        '{"prompt": "x", "temperature": NaN}',
        '{"prompt": "x", "temperature": Infinity}',
        '{"prompt": "x", "temperature": -Infinity}',
        '{"prompt": "x", "temperature": 1e999}',
        '{"prompt": "x", "temperature": 9223372036854775808}',
        '{"prompt": "x", "temperature": 1' + "0" * 5000 + "}",
    ],
)
def test_numbers_must_be_finite_and_within_64_bits(api_client, body: str) -> None:
    """NaN, ±Infinity, a number too large to be finite and an integer beyond 64 bits are JSON parse errors."""
    assert_refused(api_client.post("/api/ai/generate", body, content_type="application/json"), 400, "parse_error")
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"), [({"temperature": "1.5"}, "temperature"), ({"temperature": True}, "temperature")]
)
def test_numbers_are_json_numbers(api_client, body: dict[str, Any], field: str) -> None:
    """A number field takes a JSON number only, not a string or a boolean."""
    response = api_client.post("/api/ai/generate", {"prompt": "x", **body}, format="json")
    assert_refused(response, 400, "invalid", field)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ('{"title": "a\\u0000b"}', "null_characters_not_allowed", "title"),
        ('{"title": "\\ud800"}', "surrogate_characters_not_allowed", "title"),
        ('{"prompt": "x\\udfffy"}', "surrogate_characters_not_allowed", "prompt"),
        ('{"prompt": "x", "userId": {"a": [0, {"b": "\\u0000"}]}}', "null_characters_not_allowed", "userId.a.1.b"),
        ('{"prompt": "x", "\\u0000": 1}', "null_characters_not_allowed", "\\x00"),
        ('{"title": 5}', "invalid", "title"),
    ],
)
def test_text_a_database_cannot_store_is_refused_naming_the_field(api_client, body: str, code: str, field: str) -> None:
    """NUL and lone surrogates are refused wherever they are in the body (member names too), naming the field."""
    path = "/api/ai/generate" if "prompt" in body else "/api/conversations"
    assert_refused(api_client.post(path, body, content_type="application/json"), 400, code, field)
    assert not Conversation.objects.exists()


def test_a_surrogate_pair_is_one_character_and_is_stored(api_client) -> None:
    """JSON's escaped surrogate pair is one astral character: accepted and stored as that character."""
    response = api_client.post("/api/conversations", '{"title": "\\ud83d\\ude00"}', content_type="application/json")
    assert response.status_code == 201
    assert Conversation.objects.get().title == "😀"


@pytest.mark.parametrize(
    "path", ["/api/nope", "/api/conversations/", "/api/conversations/conv_%00", "/api/files/%ED%A0%80/download"]
)
def test_unknown_api_urls_are_a_json_404(api_client, anonymous_client, path: str) -> None:
    """An /api/ URL that matches nothing (a malformed id included) is a 404 in the JSON shape, logged in or not."""
    for client in (api_client, anonymous_client):
        assert_refused(client.get(path), 404, "not_found")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_worker_thread_connections")
async def test_unknown_api_url_is_a_json_404_through_asgi() -> None:
    """Served by the ASGI app (the middleware's async path), an unknown /api/ URL is the same JSON 404."""
    from tests.asgi import AsgiStream

    stream = AsgiStream("/api/conversations/conv_%00/nope", method="GET")
    await stream.start()
    body = b"".join([piece async for piece in stream.body_pieces()])
    await stream.finish()
    assert stream.status == 404
    assert stream.headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": {"code": "not_found", "message": "Not found.", "field": None}}


def test_too_many_query_parameters_is_a_400_not_an_error_log(api_client) -> None:
    """Past DATA_UPLOAD_MAX_NUMBER_FIELDS parameters (Django's TooManyFieldsSent) is a 400 bad_request, no 500."""
    query = "&".join(f"p{i}=1" for i in range(1001))
    with one_example():
        assert_refused(api_client.get(f"/api/conversations?{query}"), 400, "bad_request")


def test_wrong_method_is_a_json_405(api_client) -> None:
    """A method an endpoint does not take is a 405 in the JSON shape, with Allow."""
    response = api_client.put("/api/conversations", {}, format="json")
    assert_refused(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


@pytest.mark.parametrize("query", ["after=%00", "after=" + "x" * 41, "offset=2147483648", "limit=" + "9" * 5000])
def test_hostile_query_values_are_a_400_naming_the_parameter(api_client, user, query: str) -> None:
    """A NUL or over-long `after`, an offset past 2147483647, a 5000-digit limit: 400s naming the parameter."""
    conversation = services.conversation_create(owner=user)
    response = api_client.get(f"/api/conversations/{conversation.public_id}/messages?{query}")
    field = query.split("=")[0]
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("path", ["/c/%00/", "/c/%00/messages/", "/c/conv_%ED%A0%80/", "/c/" + "x" * 41 + "/"])
def test_pages_answer_a_404_page_for_a_malformed_id(client, user, path: str) -> None:
    """A chat page for an id that cannot exist is the ordinary 404 page."""
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("query", ["format=%00", "format=yaml%00", "lang=%00", "lang=" + "x" * 300])
def test_schema_survives_hostile_query_values(anonymous_client, query: str) -> None:
    """/api/schema/ with hostile format or lang values: the document or a JSON 4xx, never a 5xx."""
    response = anonymous_client.get(f"/api/schema/?{query}")
    check_answer("GET", "/api/schema/", response)
