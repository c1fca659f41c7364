"""live.tools: the safe calculator, the search over the caller's own conversations, and the registry."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.genai import types

from conversations.models import Message, User
from live.tools import TOOLS, calculate, tool_declarations, tool_execute
from tests.factories import ConversationFactory, MessageFactory, UserFactory

NOBODY = User(username="nobody")  # unsaved: the calculator never looks at its caller, so no database is needed


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("15 * 23", 345),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("-(3)", -3),
        ("+4", 4),
        ("1.5e3 + 0.5", 1500.5),
        ("sqrt(16)", 4.0),
        ("round(2.675, 1)", 2.7),
        ("round(2.5) + round(3.5)", 6),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("log(8, 2)", 3.0),
        ("floor(-2.5) + ceil(2.1)", 0),
    ],
)
def test_calculate_evaluates_arithmetic(expression: str, expected: float) -> None:
    """Plain arithmetic and the allowed functions give Python's exact results."""
    assert calculate(expression) == pytest.approx(expected)


def test_calculate_knows_constants() -> None:
    """pi, e and tau are the only names."""
    assert calculate("2 * pi") == pytest.approx(math.tau)


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("__import__('os').system('true')", "only these functions"),
        ("().__class__.__bases__[0].__subclasses__()", "only these functions"),
        ("(1).__class__", "not allowed"),
        ("open('/etc/passwd')", "only these functions"),
        ("x + 1", "unknown name 'x'"),
        ("sqrt.__globals__", "not allowed"),
        ("[1, 2, 3]", "not allowed"),
        ("'a' * 3", "only numbers"),
        ("True + 1", "only numbers"),
        ("1 if 1 else 2", "not allowed"),
        ("lambda: 1", "not allowed"),
        ("(x := 5)", "not allowed"),
        ("1 << 10", "only + - * / // % **"),
        ("2 ^ 3", "use ** for powers"),
        ("1j * 1j", "only numbers"),
        ("sqrt(x=4)", "keyword"),
        ("9 ** 9 ** 9", "too large"),
        ("10 ** 1000000", "too large"),
        ("2 ** 1025", "too large"),
        ("(2 ** 1000) * (2 ** 1000)", "too large"),
        ("10.0 ** 400", "too large"),
        ("exp(1000)", "too large"),
        ("round(5, -10 ** 300)", "round()"),
        ("9" * 400, "too large"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("sqrt(-1)", "math error"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 +", "not valid arithmetic"),
        ("1" + "+1" * 120, "too complex"),
        ("1" * 501, "longer than"),
        ("(" * 240 + "1" + ")" * 240, "not valid arithmetic"),
        ("sqrt(1, 2)", "takes 1 to 1"),
    ],
)
def test_calculate_rejects_everything_else(expression: str, error: str) -> None:
    """Anything but bounded arithmetic is refused with a specific message, never evaluated."""
    result = calculate_error(expression)
    assert error in result


def calculate_error(expression: str) -> str:
    from live.tools import ToolError

    with pytest.raises(ToolError) as excinfo:
        calculate(expression)
    return str(excinfo.value)


def test_tool_declarations_are_valid_sdk_tools() -> None:
    """Both tools are declared, and the declarations survive the SDK's own validation and serialisation."""
    declared = tool_declarations()
    # a copy typed as the SDK's list[ToolUnion] (list is invariant, so list[Tool] is not accepted as is)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO], tools=list(declared))
    assert config.tools is not None
    names: list[str | None] = []
    for tool in config.tools:
        assert isinstance(tool, types.Tool) and tool.function_declarations is not None
        names += [f.name for f in tool.function_declarations]
    assert names == ["calculator", "search_conversations"] == list(TOOLS)
    declarations = declared[0].function_declarations
    assert declarations is not None
    calculator = declarations[0]
    assert calculator.parameters is not None
    assert calculator.parameters.required == ["expression"]
    assert "expression" in declared[0].model_dump_json()


async def test_tool_execute_calculator_returns_result() -> None:
    """A calculator call returns the expression and its result."""
    assert await tool_execute(user=NOBODY, name="calculator", args={"expression": "15 * 23"}) == {
        "expression": "15 * 23",
        "result": 345,
    }


async def test_tool_execute_sends_big_integers_as_strings() -> None:
    """Integers beyond JSON's safe range stay exact as strings."""
    response = await tool_execute(user=NOBODY, name="calculator", args={"expression": "2 ** 100"})
    assert response["result"] == str(2**100)


@pytest.mark.parametrize(
    ("name", "args", "error"),
    [
        ("calculator", {"expression": "__import__('os')"}, "only these functions"),
        ("calculator", {}, "'expression' must be a non-empty string"),
        ("calculator", {"expression": 42}, "'expression' must be a non-empty string"),
        ("calculator", ["1+1"], "arguments must be an object"),
        ("rm_rf", {}, "unknown function 'rm_rf'"),
        ("__class__", {}, "unknown function"),
    ],
)
async def test_tool_execute_turns_bad_calls_into_error_responses(name: str, args: object, error: str) -> None:
    """Bad calls come back as {"error": ...} for the model instead of raising."""
    response = await tool_execute(user=NOBODY, name=name, args=args)  # type: ignore[arg-type]  # wrong args on purpose
    assert list(response) == ["error"]
    assert error in response["error"]


async def test_tool_execute_hides_unexpected_failures(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """A crashing tool is logged and reported as a generic error, with no details leaked."""
    from live import tools

    async def boom(user, args):
        raise RuntimeError("secret internals")

    monkeypatch.setitem(tools.TOOLS, "calculator", tools.TOOLS["calculator"].__class__(
        name="calculator", description="", parameters=types.Schema(), handler=boom))  # fmt: skip
    response = await tool_execute(user=NOBODY, name="calculator", args={"expression": "1"})
    assert response == {"error": "calculator failed unexpectedly"}
    assert "secret internals" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_search_conversations_finds_own_messages_only() -> None:
    """The search sees the caller's text and transcripts, newest first, and never another user's messages."""
    from asgiref.sync import sync_to_async

    @sync_to_async
    def setup():
        me, other = UserFactory.create(), UserFactory.create()
        mine = ConversationFactory.create(owner=me, title="Trip planning")
        MessageFactory.create(conversation=mine, role=Message.Role.USER, text="Book a flight to Lisbon")
        MessageFactory.create(
            conversation=mine,
            role=Message.Role.MODEL,
            message_type=Message.MessageType.LIVE,
            output_transcription="Lisbon is lovely in spring",
        )
        MessageFactory.create(conversation=mine, text="unrelated")
        theirs = ConversationFactory.create(owner=other, title="Secret")
        MessageFactory.create(conversation=theirs, text="My Lisbon password is hunter2")
        MessageFactory.create(conversation=theirs, text="only-in-other-users-conversation")
        return me, other, mine

    me, other, mine = await setup()
    response = await tool_execute(user=me, name="search_conversations", args={"query": "lisbon"})
    assert response["count"] == 2
    assert [r["text"] for r in response["results"]] == ["Lisbon is lovely in spring", "Book a flight to Lisbon"]
    assert {r["conversationId"] for r in response["results"]} == {mine.public_id}
    assert response["results"][0]["conversationTitle"] == "Trip planning"
    assert "hunter2" not in str(response)

    missing = await tool_execute(
        user=me, name="search_conversations", args={"query": "only-in-other-users-conversation"}
    )
    assert missing == {"query": "only-in-other-users-conversation", "count": 0, "results": []}
    # The other user does find it: the filter is the caller, not the data.
    found = await tool_execute(
        user=other, name="search_conversations", args={"query": "only-in-other-users-conversation"}
    )
    assert found["count"] == 1


@pytest.mark.django_db(transaction=True)
async def test_search_conversations_bounds_limit_and_query() -> None:
    """The limit is capped, and bad limits or queries get specific errors."""
    from asgiref.sync import sync_to_async

    @sync_to_async
    def setup():
        me = UserFactory.create()
        conversation = ConversationFactory.create(owner=me)
        MessageFactory.create_batch(25, conversation=conversation, text="needle")
        return me

    me = await setup()
    capped = await tool_execute(user=me, name="search_conversations", args={"query": "needle", "limit": 1000})
    assert capped["count"] == 20
    as_float = await tool_execute(user=me, name="search_conversations", args={"query": "needle", "limit": 2.0})
    assert as_float["count"] == 2
    bad_calls: list[tuple[dict[str, Any], str]] = [
        ({"query": ""}, "'query' must be a non-empty string"),
        ({"query": "x" * 201}, "longer than 200"),
        ({"query": "needle", "limit": 0}, "'limit' must be a positive whole number"),
        ({"query": "needle", "limit": "5; DROP TABLE"}, "'limit' must be a positive whole number"),
        ({"query": "needle", "limit": True}, "'limit' must be a positive whole number"),
    ]
    for args, error in bad_calls:
        assert error in (await tool_execute(user=me, name="search_conversations", args=args))["error"]
