"""docs/live-protocol.md and live/protocol.py agree: every example validates, every message and field is documented."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest

from live.protocol import (
    _CLIENT_ADAPTERS,
    CLIENT_MESSAGE_TYPES,
    PROTOCOL_VERSION,
    SERVER_MESSAGES,
    ErrorCode,
    ProtocolError,
    decode_base64,
    parse_client_message,
    validate_server_message,
)

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
    from apsara.gemini import LIVE_MODELS

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
    assert message["data"]["userId"] == 1  # accepted, and LiveBridge never reads it (the user is the logged-in one)
    from live import bridge

    assert "userId" not in Path(bridge.__file__).read_text()
