"""Server-side functions declared to Gemini Live and executed when the model sends a toolCall.

The bridge calls exactly two things:
- ``tool_declarations()`` for ``LiveConnectConfig.tools``;
- ``await tool_execute(user=..., name=..., args=...)``, whose dict becomes ``FunctionResponse.response``.
``tool_execute`` never raises for bad input or a failing tool: the model gets ``{"error": "..."}`` and can recover.
"""

from __future__ import annotations

import ast
import logging
import math
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.genai import types

from live import db_lanes
from live.selectors import message_search

if TYPE_CHECKING:
    from conversations.models import User

logger = logging.getLogger(__name__)

ToolHandler = Callable[["User", dict[str, Any]], Awaitable[dict[str, Any]]]


class ToolError(Exception):
    """A tool refused its input; the message is safe to show to the model (and so to the user)."""


@dataclass(frozen=True)
class LiveTool:
    """One function the model may call: its declaration and the coroutine that runs it."""

    name: str
    description: str
    parameters: types.Schema
    handler: ToolHandler

    def declaration(self) -> types.FunctionDeclaration:
        """Return the declaration Gemini sees."""
        return types.FunctionDeclaration(name=self.name, description=self.description, parameters=self.parameters)


# CALCULATOR
# ------------------------------------------------------------------------------
# Parsed with `ast` and evaluated node by node: only numbers, arithmetic and a few math functions exist here, so
# no name lookup, attribute access, subscripting or call of anything else can ever happen (no eval()).
MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_INT_BITS = 1024  # bounds every intermediate integer, so `9**9**9` or `10**10**6` cannot eat CPU or memory
MAX_ABS_EXPONENT = 10_000
MAX_ROUND_DIGITS = 100

_BINARY_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _log(x: float, base: float = math.e) -> float:
    return math.log(x, base)


def _round(x: float, digits: int | None = None) -> float:
    if digits is None:
        return round(x)
    # round(5, -10**300) would compute 10**(10**300): bound the digits.
    if not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
        raise ToolError(f"round() needs a whole number of digits between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    return round(x, digits)


_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {  # name: (function, min args, max args)
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "log": (_log, 1, 2),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "exp": (math.exp, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "degrees": (math.degrees, 1, 1),
    "radians": (math.radians, 1, 1),
    "min": (min, 2, 20),
    "max": (max, 2, 20),
}


def _checked(value: Any) -> int | float:
    """Reject results that are not finite real numbers or integers past the size bound."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("the result is too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is not a finite number")
    return value


def _power(base: int | float, exponent: int | float) -> int | float:
    if abs(exponent) > MAX_ABS_EXPONENT:
        raise ToolError("the exponent is too large")
    # int ** int is exact and can be arbitrarily big: check a lower bound of its size before computing it.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise ToolError("the result is too large")
    result = base**exponent
    if isinstance(result, complex):
        raise ToolError("the result is not a real number")
    return result


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ToolError("only numbers are allowed")
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"unknown name {node.id!r}; allowed constants: {', '.join(_CONSTANTS)}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _checked(_UNARY_OPS[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.BitXor):
            raise ToolError("'^' is not allowed; use ** for powers")
        if type(node.op) not in _BINARY_OPS:
            raise ToolError("only + - * / // % ** are allowed")
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _checked(_power(left, right))
        return _checked(_BINARY_OPS[type(node.op)](left, right))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise ToolError(f"only these functions are allowed: {', '.join(_FUNCTIONS)}")
        if node.keywords:
            raise ToolError("keyword arguments are not allowed")
        function, least, most = _FUNCTIONS[node.func.id]
        if not least <= len(node.args) <= most:
            raise ToolError(f"{node.func.id}() takes {least} to {most} arguments")
        arguments = [_evaluate(arg) for arg in node.args]
        return _checked(function(*arguments))
    raise ToolError(f"{type(node).__name__} is not allowed; use numbers, + - * / // % **, parentheses")


def calculate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely, raising ToolError for anything else."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ToolError("the expression is not valid arithmetic") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError("the expression is too complex")
    try:
        return _evaluate(tree)
    except ZeroDivisionError as exc:
        raise ToolError("division by zero") from exc
    except OverflowError as exc:
        raise ToolError("the result is too large") from exc
    except (ValueError, TypeError) as exc:  # math domain errors, e.g. sqrt(-1) or log(0)
        raise ToolError(f"math error: {exc}") from exc
    except RecursionError as exc:
        raise ToolError("the expression is too deeply nested") from exc


async def _calculator(user: User, args: dict[str, Any]) -> dict[str, Any]:
    expression = args.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("'expression' must be a non-empty string")
    value = calculate(expression)
    # JSON numbers beyond 2**53 lose precision in many readers; send big integers as exact strings.
    result: int | float | str = str(value) if isinstance(value, int) and abs(value) > 2**53 else value
    return {"expression": expression, "result": result}


# SEARCH OVER THE CALLER'S OWN CONVERSATIONS
# ------------------------------------------------------------------------------
SEARCH_DEFAULT_LIMIT = 5
SEARCH_MAX_LIMIT = 20
SEARCH_MAX_QUERY_CHARS = 200
SEARCH_SNIPPET_CHARS = 300


def _snippet(message: Any, query: str) -> str:
    """Return the part of the matching field around the first match, at most SEARCH_SNIPPET_CHARS long."""
    fields = (message.text, message.input_transcription, message.output_transcription)
    for field in fields:
        at = field.casefold().find(query.casefold())
        if at >= 0:
            start = max(0, min(at - SEARCH_SNIPPET_CHARS // 3, len(field) - SEARCH_SNIPPET_CHARS))
            return field[start : start + SEARCH_SNIPPET_CHARS]
    return next((field for field in fields if field), "")[:SEARCH_SNIPPET_CHARS]


async def _search_conversations(user: User, args: dict[str, Any]) -> dict[str, Any]:
    query = args.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ToolError("'query' must be a non-empty string")
    if len(query) > SEARCH_MAX_QUERY_CHARS:
        raise ToolError(f"'query' is longer than {SEARCH_MAX_QUERY_CHARS} characters")
    limit = args.get("limit", SEARCH_DEFAULT_LIMIT)
    if isinstance(limit, float) and limit.is_integer():  # JSON/proto numbers often arrive as floats
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ToolError("'limit' must be a positive whole number")
    hits = await db_lanes.for_user(user.pk, message_search)(
        user=user, query=query.strip(), limit=min(limit, SEARCH_MAX_LIMIT)
    )
    results = []
    for message in hits:
        results.append(
            {
                "conversationId": message.conversation.public_id,
                "conversationTitle": message.conversation.title,
                "messageId": message.public_id,
                "role": message.role,
                "createdAt": message.created_at.isoformat(),
                "text": _snippet(message, query.strip()),
            }
        )
    return {"query": query.strip(), "count": len(results), "results": results}


# REGISTRY
# ------------------------------------------------------------------------------
TOOLS: dict[str, LiveTool] = {
    tool.name: tool
    for tool in (
        LiveTool(
            name="calculator",
            description=(
                "Evaluate an arithmetic expression exactly. Supports numbers, + - * / // % ** and parentheses, "
                "the constants pi, e, tau and the functions " + ", ".join(_FUNCTIONS) + ". Use ** for powers."
            ),
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={
                    "expression": types.Schema(
                        type=types.Type.STRING, description="The expression, e.g. '15 * 23' or 'sqrt(2) / 3'"
                    )
                },
                required=["expression"],
            ),
            handler=_calculator,
        ),
        LiveTool(
            name="search_conversations",
            description=(
                "Search the user's own earlier conversations (typed messages and voice transcripts) for a word "
                "or phrase. Returns the most recent matching messages with their conversation."
            ),
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={
                    "query": types.Schema(type=types.Type.STRING, description="Word or phrase to look for"),
                    "limit": types.Schema(
                        type=types.Type.INTEGER, description=f"How many messages to return (1-{SEARCH_MAX_LIMIT})"
                    ),
                },
                required=["query"],
            ),
            handler=_search_conversations,
        ),
    )
}


def tool_declarations() -> list[types.Tool]:
    """Return the function declarations to put in ``LiveConnectConfig.tools``."""
    return [types.Tool(function_declarations=[tool.declaration() for tool in TOOLS.values()])]


async def tool_execute(*, user: User, name: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """Run the named tool for ``user`` and return the FunctionResponse ``response`` (``{"error": ...}`` on failure)."""
    tool = TOOLS.get(name)
    if tool is None:
        return {"error": f"unknown function {name!r}; available: {', '.join(TOOLS)}"}
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return {"error": "arguments must be an object"}
    try:
        return await tool.handler(user, args)
    except ToolError as exc:
        return {"error": str(exc)}
    except Exception:
        # The model must get an answer whatever happens, and the details stay in the server log.
        logger.exception("live tool %s failed", name)
        return {"error": f"{name} failed unexpectedly"}
