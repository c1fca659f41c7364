"""docs/live-protocol.md and live/protocol.py agree: every example validates, every message and field is documented."""

from __future__ import annotations

import json
import math
import re
import typing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from live.protocol import (
    _CLIENT_ADAPTERS,
    CLIENT_MESSAGE_TYPES,
    MAX_JSON_DEPTH,
    PROTOCOL_VERSION,
    ErrorCode,
    ProtocolError,
    decode_base64,
    parse_client_message,
)
from live.server_messages import SERVER_MESSAGES, validate_server_message

DOC = (Path(__file__).resolve().parents[2] / "docs" / "live-protocol.md").read_text()
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC, re.S)]


def test_doc_is_this_protocol_version():
    assert f"version {PROTOCOL_VERSION}" in DOC.splitlines()[0]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e["type"])
def test_every_example_in_the_doc_is_valid(example):
    if example["type"] in CLIENT_MESSAGE_TYPES:
        parse_client_message(json.dumps(example))
    else:
        validate_server_message(example)


def test_every_message_type_has_a_section_and_an_example():
    documented = {e["type"] for e in EXAMPLES}
    for kind in [*CLIENT_MESSAGE_TYPES, *SERVER_MESSAGES]:
        assert f"`{kind}`" in DOC
        assert kind in documented, f"no example of {kind}"


def _fields(definition: typing.Any, seen: set[str]) -> set[str]:
    names: set[str] = set()
    for name, hint in typing.get_type_hints(definition).items():
        names.add(name)
        for arg in [hint, *typing.get_args(hint), *[a for h in typing.get_args(hint) for a in typing.get_args(h)]]:
            if typing.is_typeddict(arg) and arg.__name__ not in seen:
                seen.add(arg.__name__)
                names |= _fields(arg, seen)
    return names


def test_every_field_is_documented():
    definitions = [adapter._type for adapter in _CLIENT_ADAPTERS.values()] + list(SERVER_MESSAGES.values())
    for definition in definitions:
        for name in _fields(definition, set()):
            if name.startswith("__"):
                continue
            assert f"`{name}`" in DOC, f"{definition.__name__}.{name} is not documented"


def test_every_error_code_is_documented():
    for code in ErrorCode:
        assert f"`{code}`" in DOC


def test_the_models_offered_for_create_session_are_the_catalogues_conversational_ones():
    from gemini.catalogue import LIVE_MODELS

    bullet = DOC.split("- `model`: ", 1)[1].split("\n- `", 1)[0]
    offered, refused = bullet.split("cannot hold a conversation", 1)
    names = set(re.findall(r"`(gemini-[^`]+)`", offered))
    assert names == {m.name for m in LIVE_MODELS.values() if m.conversational}
    assert set(re.findall(r"`(gemini-[^`]+)`", refused)) == {
        m.name for m in LIVE_MODELS.values() if not m.conversational
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [("AAEC", b"\x00\x01\x02"), ("-_8=", b"\xfb\xff"), ("+/8=", b"\xfb\xff"), ("AAE", b"\x00\x01")],
)
def test_base64_standard_and_url_safe(value, expected):
    assert decode_base64(value, what="x") == expected


@pytest.mark.parametrize("value", ["", "***", "A"])
def test_bad_base64_is_a_protocol_error(value):
    with pytest.raises(ProtocolError):
        decode_base64(value, what="x")


def test_user_id_from_the_client_is_never_used():
    message = parse_client_message(json.dumps({"type": "create_session", "data": {"userId": 1}}))
    assert message["type"] == "create_session"
    assert message["data"]["userId"] == 1  # accepted, never read (the user is the logged-in one)
    import live.session

    package = Path(live.session.__file__).parent
    assert all("userId" not in module.read_text() for module in package.glob("*.py"))


# -- what a message may hold (docs/live-protocol.md "What a message may hold") --------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)
ID_MEMBERS = {("sessionId",), ("data", "conversationId"), ("data", "sessionId")}


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, "<key>"), key
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


@given(
    st.text(max_size=80)
    | json_values.map(json.dumps)
    | st.fixed_dictionaries(
        {"type": st.sampled_from(CLIENT_MESSAGE_TYPES)}, optional={"data": json_values, "sessionId": json_values}
    ).map(json.dumps)
)
def test_any_text_is_a_valid_message_or_a_protocol_error(text):
    try:
        message = parse_client_message(text)
    except ProtocolError as error:
        assert error.code in ErrorCode and error.message
        return
    for path, value in _leaves(message):
        if isinstance(value, str) and path not in ID_MEMBERS:
            assert "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value), path
        if isinstance(value, float):
            assert math.isfinite(value), path
        if isinstance(value, int) and not isinstance(value, bool):
            assert abs(value) < 2**63, path


@pytest.mark.parametrize(
    ("text", "code", "named"),
    [
        ('{"type": "ping", "x": NaN}', ErrorCode.INVALID_JSON, ""),
        ('{"type": "ping", "x": -Infinity}', ErrorCode.INVALID_JSON, ""),
        ('{"type": "ping", "x": 1e400}', ErrorCode.INVALID_JSON, ""),
        ('{"type": "ping", "x": 9223372036854775808}', ErrorCode.INVALID_JSON, ""),
        ('{"type": "ping", "x": ' + "[" * 32 + "]" * 32 + "}", ErrorCode.INVALID_MESSAGE, "32"),
        ('{"type": "send_message", "data": {"text": "a\\u0000"}}', ErrorCode.INVALID_MESSAGE, "data.text"),
        ('{"type": "send_message", "data": {"text": "\\udc00a"}}', ErrorCode.INVALID_MESSAGE, "data.text"),
        (
            '{"type": "create_session", "data": {"config": {"systemInstruction": "\\u0000"}}}',
            ErrorCode.INVALID_CONFIG,
            "data.config.systemInstruction",
        ),
        ('{"type": "create_session", "data": {"model": "\\ud800"}}', ErrorCode.INVALID_CONFIG, "data.model"),
        ('{"type": "create_session", "data": {"userId": "\\u0000"}}', ErrorCode.INVALID_MESSAGE, "data.userId"),
        ('{"type": "end_session", "x\\u0000": 1}', ErrorCode.INVALID_MESSAGE, "x\\x00"),
    ],
)
def test_what_a_message_may_not_hold(text, code, named):
    with pytest.raises(ProtocolError) as refused:
        parse_client_message(text)
    assert refused.value.code == code
    assert named in refused.value.message


def test_ids_are_left_to_the_lookup_which_answers_a_malformed_one_as_unknown():
    message = parse_client_message('{"type": "create_session", "data": {"conversationId": "conv_\\u0000"}}')
    assert message["type"] == "create_session"
    assert message["data"]["conversationId"] == "conv_\x00"  # services.live_session_create: CONVERSATION_NOT_FOUND
    ended = parse_client_message('{"type": "end_session", "sessionId": "\\ud800"}')
    assert ended["type"] == "end_session"
    assert ended["sessionId"] == "\ud800"


def test_the_doc_states_the_limits_in_force():
    from django.conf import settings

    from apsara.serve import uvicorn_options

    assert settings.LIVE_MAX_FRAME_BYTES == 512 * 1024 and "(default 512 KiB)" in DOC
    assert settings.WEBSOCKET_MAX_MESSAGE_BYTES == 16 * 1024 * 1024 and "(default 16 MiB" in DOC
    # One limit for both servers: runserver's daphne reads DAPHNE_*, apsara.serve passes it to uvicorn.
    assert settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE == settings.WEBSOCKET_MAX_MESSAGE_BYTES
    assert settings.DAPHNE_WEBSOCKET_MAX_FRAME_SIZE == settings.WEBSOCKET_MAX_MESSAGE_BYTES
    assert uvicorn_options()["ws_max_size"] == settings.WEBSOCKET_MAX_MESSAGE_BYTES
    assert f"at most {MAX_JSON_DEPTH} deep" in DOC
    assert "| 1009 |" in DOC


def test_message_saved_names_every_role_and_type_a_message_can_have():
    from typing import get_args

    from conversations.events import SavedRole, SavedType
    from conversations.models import Message

    assert set(get_args(SavedRole)) == set(Message.Role.values)
    assert set(get_args(SavedType)) == set(Message.MessageType.values)
