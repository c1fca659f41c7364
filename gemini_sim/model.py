"""The simulated assistant: deterministic, plain helpful sentences, recalls facts from the conversation.

``respond()`` looks at the whole history (``{"role", "parts"}`` dicts with camelCase keys), so anything said
earlier in the session, or sent as history in ``clientContent``, is remembered: "My name is Alice" then "What is
my name?" answers "Your name is Alice."; "Remember the number 42" then "What number did I ask you to remember?"
answers with 42. When the last user request plainly names a declared function (its name, or two words of its
description), the reply is a function call; once a ``functionResponse`` is in the history, the answer uses it.
Handy prompts for tests: "count to 20" (a long reply, for barge-in), "tell me a story", "what is 6 times 7",
"which model are you".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import wire

_GENERIC = {"get", "set", "fetch", "find", "lookup", "look", "search", "query", "current", "make", "do", "run", "the"}
_STOP = {
    "about", "after", "their", "there", "these", "those", "which", "where", "would", "should", "could", "given",
    "returns", "return", "value", "values", "string", "number", "using", "other", "items", "specified",
}  # fmt: skip
_NUMBER_WORDS = {"plus": "+", "minus": "-", "times": "*", "multiplied by": "*", "divided by": "/", "x": "*"}


@dataclass
class Reply:
    """What the model does next: call functions, or say ``text``."""

    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def part_text(parts: Any) -> str:
    """Join the text parts of a turn (anything malformed counts as no text)."""
    if not isinstance(parts, list):
        return ""
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)).strip()


def instruction_text(content: Any) -> str:
    """The text of a system instruction (a Content, or a bare string as some clients send)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, dict) or not isinstance(content.get("parts", []), list):
        raise wire.InvalidArgument("systemInstruction must be a Content")
    return part_text(content.get("parts", []))


def declared_functions(tools: Any) -> list[dict[str, Any]]:
    """The function declarations in a ``tools`` list (or contextUpdate's ``{"tools": [...]}``)."""
    if tools is None:
        return []
    if isinstance(tools, dict):
        tools = tools.get("tools", [tools])
    if not isinstance(tools, list):
        raise wire.InvalidArgument("tools must be a list")
    out: list[dict[str, Any]] = []
    for tool in tools:
        if not isinstance(tool, dict):
            raise wire.InvalidArgument("a tool must be an object")
        declarations = tool.get("functionDeclarations") or []
        if not isinstance(declarations, list) or not all(isinstance(f, dict) for f in declarations):
            raise wire.InvalidArgument("functionDeclarations must be a list of objects")
        for fn in declarations:
            if not isinstance(fn.get("name"), str) or not fn["name"]:
                raise wire.InvalidArgument("a function declaration needs a name")
            _check_schema(fn.get("parameters"))
            out.append(fn)
    return out


def _check_schema(schema: Any) -> None:
    """A function's parameter Schema: objects all the way down (properties, items), enums as lists."""
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise wire.InvalidArgument("a Schema must be an object")
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise wire.InvalidArgument("Schema.properties must be an object")
        for sub in props.values():
            if not isinstance(sub, dict):
                raise wire.InvalidArgument("a property Schema must be an object")
            _check_schema(sub)
    if schema.get("items") is not None:
        _check_schema(schema["items"])
    if schema.get("enum") is not None and not isinstance(schema["enum"], list):
        raise wire.InvalidArgument("Schema.enum must be a list")


def _facts(history: list[dict[str, Any]]) -> tuple[str | None, list[str], dict[str, str]]:
    """Collect the user's name, things to remember, and "my X is Y" facts, latest winning."""
    name: str | None = None
    remembered: list[str] = []
    mine: dict[str, str] = {}
    for turn in history:
        if turn.get("role") != "user":
            continue
        text = part_text(turn.get("parts", []))
        for m in re.finditer(r"\b(?:my name is|call me|i am called|i'm called)\s+([A-Z][\w'-]*|\w+)", text, re.I):
            name = m.group(1).strip(".,!?").capitalize() if m.group(1).islower() else m.group(1).strip(".,!?")
        for m in re.finditer(r"\bremember(?: that)?\s+(.+?)(?:[.!?]|$)", text, re.I):
            fact = m.group(1).strip()
            if fact and not fact.lower().startswith(("what", "which", "who")):
                remembered.append(_second_person(fact))
        for m in re.finditer(r"\bmy ([a-z][a-z ]{1,30}?) is ([\w' -]{1,40}?)(?:[.,!?]|$| and )", text, re.I):
            if m.group(1).lower() != "name":
                mine[m.group(1).lower()] = m.group(2).strip()
    return name, remembered, mine


def _second_person(text: str) -> str:
    swaps = {"my": "your", "i": "you", "me": "you", "am": "are", "mine": "yours"}
    return " ".join(swaps.get(w.lower(), w) for w in text.split())


def _numbers(text: str) -> list[str]:
    return re.findall(r"-?\d+(?:\.\d+)?", text)


def _arithmetic(q: str) -> str | None:
    expr = q.lower()
    for word, op in _NUMBER_WORDS.items():
        expr = re.sub(rf"\b{word}\b", op, expr)
    m = re.search(r"(-?\d+(?:\.\d+)?)\s*([-+*/])\s*(-?\d+(?:\.\d+)?)", expr)
    if not m:
        return None
    a, op, b = float(m.group(1)), m.group(2), float(m.group(3))
    if op == "/" and b == 0:
        return "Dividing by zero is undefined, so there is no answer to that one."
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}[op]
    shown = int(value) if value == int(value) else round(value, 4)
    return f"{m.group(1)} {op} {m.group(3)} is {shown}."


def _tokens(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower())}


def _match_function(q: str, functions: list[dict[str, Any]]) -> dict[str, Any] | None:
    words = _tokens(q)
    for fn in functions:
        name = str(fn.get("name", ""))
        if name and name.lower() in q.lower():
            return fn
        key = [w for w in re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", name.lower()) if len(w) >= 3 and w not in _GENERIC]
        if key and any(k in words or k.rstrip("s") in words for k in key):
            return fn
        desc = [w for w in _tokens(str(fn.get("description", ""))) if len(w) >= 5 and w not in _STOP]
        if len([w for w in desc if w in words]) >= 2:
            return fn
    return None


def _arguments(q: str, fn: dict[str, Any]) -> dict[str, Any]:
    """Fill a function's declared parameters from the request as well as a simple reading allows."""
    props = (fn.get("parameters") or fn.get("parametersJsonSchema") or {}).get("properties") or {}
    args: dict[str, Any] = {}
    places = re.findall(r"\b(?:in|for|at|near|of|from|to)\s+([A-Z][\w-]*(?:\s+[A-Z][\w-]*)*)", q)
    capitalised = re.findall(r"(?<!^)(?<![.!?]\s)\b([A-Z][a-z][\w-]*)", q)
    numbers = _numbers(q)
    for pname, schema in props.items():
        kind = str((schema or {}).get("type", "STRING")).upper()
        if kind in ("NUMBER", "INTEGER"):
            if numbers:
                num = numbers.pop(0)
                args[pname] = int(float(num)) if kind == "INTEGER" else float(num)
        elif kind == "BOOLEAN":
            args[pname] = not re.search(r"\b(no|not|off|false|disable)\b", q, re.I)
        elif kind == "STRING":
            enum = (schema or {}).get("enum")
            if enum:
                picked = next((e for e in enum if str(e).lower() in q.lower()), enum[0])
                args[pname] = picked
            elif places:
                args[pname] = places.pop(0)
            elif capitalised:
                args[pname] = capitalised.pop(0)
            else:
                args[pname] = q.strip(" ?.!")
    return args


def _summarise(value: Any) -> str:
    if isinstance(value, dict):
        if set(value) == {"result"} or set(value) == {"output"}:
            return _summarise(next(iter(value.values())))
        return ", ".join(f"{k} {_summarise(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_summarise(v) for v in value)
    return str(value)


def _story(n: int) -> str:
    sentences = [
        "Once upon a time, a small lighthouse stood at the edge of a quiet bay.",
        "Every night its keeper climbed the spiral stairs to light the lamp.",
        "One stormy evening a fishing boat lost its way in the fog.",
        "The keeper rang the old bell again and again until the boat found the harbour.",
        "In the morning the whole village came to thank her with bread and warm soup.",
        "From then on, the children of the bay took turns helping her climb the stairs.",
    ]
    return " ".join(sentences[i % len(sentences)] for i in range(n))


def respond(
    history: list[dict[str, Any]],
    *,
    model: str,
    system_instruction: str = "",
    functions: list[dict[str, Any]] | None = None,
    note: str = "",
    heard: float | None = None,
) -> Reply:
    """Decide the next model turn for a conversation whose last turn is the user's (or a function's result).

    ``heard`` marks a spoken turn (seconds of speech): the simulator cannot make out words, so it says so.
    """
    last: dict[str, Any] = history[-1] if history else {"role": "user", "parts": []}
    results = [p["functionResponse"] for p in last.get("parts", []) if isinstance(p, dict) and "functionResponse" in p]
    if results:
        said = " ".join(f"The {r.get('name', 'tool')} result is: {_summarise(r.get('response', {}))}." for r in results)
        return Reply(text=f"{said} I hope that helps.")
    if heard is not None:
        prefix = f"{note} " if note else ""
        return Reply(
            text=f"{prefix}I heard you speak for about {heard:.1f} seconds. I'm the Gemini simulator, so I can't "
            "make out the words, but I'm listening."
        )
    q = part_text(last.get("parts", []))
    ql = q.lower()
    if re.search(r"\btitle\b", system_instruction, re.IGNORECASE):
        return Reply(text=_title(q))
    if functions and q:
        fn = _match_function(q, functions)
        if fn is not None:
            return Reply(calls=[(str(fn["name"]), _arguments(q, fn))])
    return Reply(text=_answer(q, ql, history, model=model, note=note))


def _answer(q: str, ql: str, history: list[dict[str, Any]], *, model: str, note: str) -> str:
    name, remembered, mine = _facts(history)
    prefix = f"{note} " if note else ""
    if not q:
        return prefix + ("I'm listening. What would you like to talk about?" if not note else "How can I help?")
    if re.search(r"\b(what is|what's|whats|do you know|tell me) my name\b|\bwho am i\b", ql):
        return prefix + (f"Your name is {name}." if name else "You haven't told me your name yet.")
    m = re.search(r"\b(?:what is|what's|whats) my ([a-z ]+?)\??$", ql)
    if m and m.group(1) in mine:
        return prefix + f"Your {m.group(1)} is {mine[m.group(1)]}."
    if re.search(r"\bremember\b", ql) and re.search(r"\b(what|which|do you)\b", ql):
        if not remembered:
            return prefix + "You haven't asked me to remember anything yet."
        return prefix + f"You asked me to remember {' and '.join(remembered)}."
    if re.search(r"\bmy name is\b|\bcall me\b", ql) and name:
        return prefix + f"Nice to meet you, {name}. I'll remember your name."
    if re.search(r"\bremember\b", ql) and remembered:
        return prefix + f"Got it. I'll remember {remembered[-1]}."
    if re.search(r"\b(which|what) model\b", ql):
        return prefix + f"I am {model}, running in the Gemini simulator."
    m = re.search(r"\bcount (?:to|up to) (\d+)", ql)
    if m:
        n = min(int(m.group(1)), 500)
        return prefix + "Sure. " + ", ".join(str(i) for i in range(1, n + 1)) + "."
    if "story" in ql:
        m = re.search(r"(\d+)\s*sentences?", ql)
        return prefix + _story(int(m.group(1)) if m else 4)
    arithmetic = _arithmetic(q)
    if arithmetic:
        return prefix + arithmetic
    if re.match(r"^(hi|hello|hey|good (morning|afternoon|evening))\b", ql):
        return prefix + (f"Hello, {name}! " if name else "Hello! ") + "How can I help you today?"
    if re.search(r"\b(thanks|thank you)\b", ql):
        return prefix + "You're welcome. Is there anything else I can help with?"
    m = re.match(r"^(?:my (?!name\b)([a-z][a-z ]{1,30}?) is|i am called|i'm called)\b", ql)
    if m and m.group(1) and m.group(1) in mine:
        return prefix + f"Thanks, I'll remember that your {m.group(1)} is {mine[m.group(1)]}."
    if name and re.match(r"^(i am called|i'm called)\b", ql):
        return prefix + f"Nice to meet you, {name}. I'll remember your name."
    topic = _topic(q)
    if _REQUEST.match(ql):
        return prefix + (
            f"Sure, I can help with {topic}. I'm the offline Gemini simulator, so my answer is short: begin with a "
            "clear goal, keep each step simple, and check the result as you go."
        )
    if _QUESTION.match(ql) or q.rstrip().endswith("?"):
        return prefix + (
            f"Good question about {topic}. I'm the offline Gemini simulator, so I can't look that up, but here is "
            "how I would approach it: start with the basics, then work through the details one step at a time."
        )
    return prefix + "Thanks for telling me. I'm the offline Gemini simulator; ask me anything, and I'll do my best."


_QUESTION = re.compile(r"^(what|what's|whats|who|whom|whose|when|where|why|how|which|can|could|would|should|is|are|"
                       r"do|does|did|will|may)\b")  # fmt: skip
_REQUEST = re.compile(r"^(please |could you |can you |would you )?(help|explain|write|tell|describe|give|make|"
                      r"create|list|show|summari[sz]e|translate|draft|plan|suggest)\b")  # fmt: skip
_LEAD = re.compile(
    r"^(?:please |could you |can you |would you |will you )?(?:help me(?: to)?|tell me(?: about)?|explain(?: to me)?|"
    r"describe|how (?:do|can|should|would) (?:i|you|we)|what (?:is|are|was|were)(?: the| a| an)?|who (?:is|was)|"
    r"why (?:is|are|do|does)|where (?:is|are)|when (?:is|was|did)|write(?: me)?|give me|show me|list|summari[sz]e|"
    r"translate|draft|plan|suggest|create|make)\s+",
    re.IGNORECASE,
)


def _title(q: str) -> str:
    """A title for the exchange in ``q`` (a titling instruction): the topic of its first line, capitalised.

    Markdown in the request is kept, as a real model sometimes keeps it, so callers must make it plain.
    """
    first = q.strip().splitlines()[0] if q.strip() else ""
    first = re.sub(r"^(user|you)\s*:\s*", "", first, flags=re.IGNORECASE)
    if not first or re.fullmatch(r"\([\d.]+ seconds of speech\)", first):
        return "A voice chat"
    topic = " ".join(_topic(first).split()[:6])
    return topic[:1].upper() + topic[1:]


def _topic(q: str) -> str:
    """The subject of a request, e.g. "How do I bake bread?" → "bake bread"."""
    topic = q.strip().rstrip("?.!")
    for _ in range(2):
        topic = _LEAD.sub("", topic)
    words = topic.split()
    if words and words[0][:1].isupper() and words[0][1:].islower() and words[0].lower() in _COMMON_STARTS:
        words[0] = words[0].lower()
    return " ".join(words[:10]) if words else "that"


_COMMON_STARTS = {"is", "are", "the", "a", "an", "this", "that", "it", "my", "your", "there", "do", "does", "will"}


def estimate_tokens(text: str) -> int:
    """Roughly four characters per token, at least one for non-empty text."""
    return (len(text) + 3) // 4 if text else 0


def history_tokens(history: list[dict[str, Any]]) -> int:
    """Token estimate for a whole history (text parts and function data)."""
    total = 0
    for turn in history:
        for p in turn.get("parts", []):
            if not isinstance(p, dict):
                continue
            if "text" in p:
                total += estimate_tokens(str(p["text"]))
            elif "functionCall" in p or "functionResponse" in p:
                total += estimate_tokens(json.dumps(p))
    return total
