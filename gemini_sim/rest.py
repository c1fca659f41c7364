"""REST: ``models`` (list/get), ``:generateContent``, ``:streamGenerateContent?alt=sse``, ``:countTokens``,
``auth_tokens`` (v1alpha only), Vertex's ``projects/…/publishers/google/models/…`` forms, and the simulator's
own control endpoints under ``/_sim/`` (options, faults, records; for tests and tools against a stand-alone run).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from . import catalogue, model, oauth, wire

if TYPE_CHECKING:
    from .server import HttpRequest, HttpResponse, Simulator

log = logging.getLogger("gemini_sim")
VERSIONS = ("v1", "v1alpha", "v1beta")
VERTEX_VERSIONS = ("v1", "v1beta1")
_GEMINI = re.compile(r"^/(v1|v1alpha|v1beta)/(models(?:/([^/:]+))?(?::(\w+))?|auth_tokens)$")
_VERTEX = re.compile(r"^/(v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+):(\w+)$")
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip
_FAULT_TEXT = {429: "Resource has been exhausted (e.g. check quota).", 500: "An internal error has occurred.",
               503: "The model is overloaded. Please try again later."}  # fmt: skip
UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
BAD_KEY = "API key not valid. Please pass a valid API key."
EMPTY_TEXT = (
    "Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again."
)


def error(status: int, message: str, reason: str = "", service: str = "") -> HttpResponse:
    """A Google API error body (with its ``google.rpc.ErrorInfo`` detail when there is a ``reason``)."""
    from .server import HttpResponse

    payload: dict[str, Any] = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
    if reason:
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}
        payload["details"] = [{**info, "metadata": {"service": service}} if service else info]
    return HttpResponse(status, wire.dumps({"error": payload}))


def refused(refusal: oauth.Refusal, api: str) -> HttpResponse:
    """The REST answer to refused OAuth credentials on ``api``."""
    service = "aiplatform.googleapis.com" if api == catalogue.VERTEX else "generativelanguage.googleapis.com"
    return error(refusal.status, refusal.message, refusal.reason, service)


def bearer_token(request: HttpRequest) -> str | None:
    """The ``Authorization: Bearer`` token of a request (None when there is none)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" and credential.strip() else None


def not_found_page(path: str) -> HttpResponse:
    """Google's front end answers unknown URLs with an HTML 404, not a JSON error."""
    from .server import HttpResponse

    page = (
        "<!DOCTYPE html><title>Error 404 (Not Found)</title>"
        f"<p><b>404.</b> The requested URL {path} was not found on this server."
    )
    return HttpResponse(404, page.encode(), content_type="text/html; charset=UTF-8")


def ok(body: dict[str, Any]) -> HttpResponse:
    """A 200 JSON response."""
    from .server import HttpResponse

    return HttpResponse(200, wire.dumps(body))


def api_key_error(sim: Simulator, key: str | None) -> HttpResponse | None:
    """Check a Gemini API key the way the service does (None when it is accepted)."""
    if not key:
        return error(403, UNREGISTERED)
    if key.startswith("auth_tokens/") or (sim.options.api_keys is not None and key not in sim.options.api_keys):
        return error(400, BAD_KEY)
    return None


def model_resource(m: catalogue.Model) -> dict[str, Any]:
    """The Model resource ListModels returns."""
    return {
        "name": f"models/{m.name}",
        "version": "001",
        "displayName": m.display_name,
        "description": f"{m.display_name} (simulated)",
        "inputTokenLimit": m.input_token_limit,
        "outputTokenLimit": m.output_token_limit,
        "supportedGenerationMethods": catalogue.generation_methods(m),
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }


async def handle(sim: Simulator, request: HttpRequest) -> HttpResponse:
    """Answer one REST request (a bug answers 500 like the service, never a dropped connection)."""
    try:
        return await _handle(sim, request)
    except Exception:
        log.exception("gemini_sim: REST request failed")
        return error(500, "Internal error encountered.")


async def _handle(sim: Simulator, request: HttpRequest) -> HttpResponse:
    body: Any = None
    if request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = {"_unparsed": request.body[:2000].decode("utf-8", "replace")}
    if request.path.startswith("/_sim/"):
        return control(sim, request, body)
    if request.path == "/token":  # OAuth 2.0 (form-encoded, not JSON)
        return oauth.token(sim, request, f"https://{request.headers.get('host', '')}")
    sim.recorder.add(
        {
            "type": "http",
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": request.headers,
            "body": body,
        }
    )
    fault = sim.take_fault("rest")
    if fault is not None and fault.kind == "http":
        return error(fault.status, _FAULT_TEXT.get(fault.status, "Simulated failure."))
    if isinstance(body, dict) and "_unparsed" in body:
        return error(400, "Invalid JSON payload received.")
    m = _GEMINI.match(request.path)
    if m:
        ver, resource, model_name, method = m.groups()
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        bearer = bearer_token(request)
        # OAuth on the Gemini API (ai.google.dev/gemini-api/docs/oauth): a Bearer token instead of a key, its scope
        # generative-language or cloud-platform; a key sent with it is checked too.
        refusal = oauth.check_access_token(sim, bearer, catalogue.GEMINI) if bearer else None
        denied = refused(refusal, catalogue.GEMINI) if refusal else None
        if denied is None and (key or not bearer):
            denied = api_key_error(sim, key)
        if resource == "auth_tokens":
            if ver != "v1alpha" or request.method != "POST":
                return not_found_page(request.path)
            return denied or create_token(sim, body or {})
        if denied:
            return denied
        if model_name is None:
            if request.method != "GET":
                return not_found_page(request.path)
            models = [model_resource(x) for x in catalogue.MODELS.values() if catalogue.GEMINI in x.apis]
            return ok({"models": models})
        found = catalogue.find(model_name, catalogue.GEMINI)
        if method is None:
            if request.method != "GET":
                return not_found_page(request.path)
            if found is None:
                return error(404, f"models/{model_name} is not found for API version {ver}.")
            return ok(model_resource(found))
        return await generate(sim, request, body, ver, model_name, method, found)
    v = _VERTEX.match(request.path)
    if v:
        ver, _project, _location, model_name, method = v.groups()
        bearer = bearer_token(request)
        if bearer:
            refusal = oauth.check_access_token(sim, bearer, catalogue.VERTEX)
        elif request.headers.get("x-goog-api-key") or request.query.get("key"):
            # A project's endpoint wants a principal: an API key (express mode has no project in its URL) is refused.
            refusal = oauth.Refusal(401, oauth.API_KEYS_NOT_SUPPORTED, "CREDENTIALS_MISSING")
        else:
            refusal = oauth.Refusal(401, oauth.MISSING_CREDENTIALS, "CREDENTIALS_MISSING")
        if refusal is not None:
            return refused(refusal, catalogue.VERTEX)
        return await generate(sim, request, body, ver, model_name, method, catalogue.find(model_name, catalogue.VERTEX))
    return not_found_page(request.path)


def _validate_contents(body: dict[str, Any]) -> list[dict[str, Any]]:
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not isinstance(contents, list) or not contents:
        raise wire.InvalidArgument("* GenerateContentRequest.contents: contents is not specified")
    for turn in contents:
        if not isinstance(turn, dict) or not isinstance(turn.get("parts"), list) or not turn["parts"]:
            raise wire.InvalidArgument("* GenerateContentRequest.contents.parts: contents.parts must not be empty.")
        for part in turn["parts"]:
            if not isinstance(part, dict) or not part:
                raise wire.InvalidArgument("* GenerateContentRequest.contents.parts: part must not be empty.")
            if "text" in part and (not isinstance(part["text"], str) or not part["text"].strip()):
                raise wire.InvalidArgument(EMPTY_TEXT)
        turn.setdefault("role", "user")
    return contents


async def generate(
    sim: Simulator,
    request: HttpRequest,
    raw: Any,
    ver: str,
    model_name: str,
    method: str,
    found: catalogue.Model | None,
) -> HttpResponse:
    """``generateContent``, ``streamGenerateContent`` and ``countTokens``."""
    from .server import HttpResponse

    if request.method != "POST" or method not in ("generateContent", "streamGenerateContent", "countTokens"):
        return not_found_page(request.path)
    if found is None or found.live:
        return error(
            404,
            f"models/{model_name} is not found for API version {ver}, or is not supported for {method}. "
            "Call ListModels to see the list of available models and their supported methods.",
        )
    body = wire.camelize(raw) if isinstance(raw, dict) else {}
    try:
        contents = _validate_contents(body)
        instruction = model.instruction_text(body.get("systemInstruction"))
        functions = model.declared_functions(body.get("tools"))
        generation_config = body.get("generationConfig") or {}
        if not isinstance(generation_config, dict):
            raise wire.InvalidArgument("generationConfig must be an object")
    except wire.InvalidArgument as exc:
        return error(400, str(exc))
    prompt_tokens = model.history_tokens(contents) + model.estimate_tokens(instruction)
    if method == "countTokens":
        return ok({"totalTokens": prompt_tokens})
    reply = model.respond(
        contents,
        model=found.name,
        system_instruction=instruction,
        functions=functions,
    )
    response_id = secrets.token_urlsafe(12)
    max_tokens = generation_config.get("maxOutputTokens")
    finish = "STOP"
    text = reply.text
    if isinstance(max_tokens, int) and max_tokens > 0 and model.estimate_tokens(text) > max_tokens:
        text, finish = text[: max_tokens * 4], "MAX_TOKENS"

    def chunk(parts: list[dict[str, Any]], last: bool, out_tokens: int) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        }
        if last:
            candidate["finishReason"] = finish
            usage["candidatesTokenCount"] = out_tokens
            usage["totalTokenCount"] = prompt_tokens + out_tokens
        else:
            usage["totalTokenCount"] = prompt_tokens
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": found.name,
            "responseId": response_id,
        }

    if sim.take_empty_turn():
        # An empty reply (Options.empty_turns): one candidate that finished with no content at all.
        empty = chunk([], True, 0)
        del empty["candidates"][0]["content"]
        if method == "generateContent":
            return ok(empty)

        async def nothing() -> AsyncIterator[bytes]:
            yield b"data: " + wire.dumps(empty) + b"\r\n\r\n"

        return HttpResponse(200, content_type="text/event-stream", stream=nothing())
    pieces: list[tuple[list[dict[str, Any]], bool]]
    if reply.calls:
        parts: list[dict[str, Any]] = [{"functionCall": {"name": name, "args": args}} for name, args in reply.calls]
        pieces = [(parts, True)]
        out_tokens = model.estimate_tokens(json.dumps(parts))
    else:
        out_tokens = model.estimate_tokens(text)
        words = text.split(" ")
        step = max(1, -(-len(words) // 4)) if len(words) > 3 else len(words)
        texts = [
            " ".join(words[i : i + step]) + (" " if i + step < len(words) else "") for i in range(0, len(words), step)
        ]
        pieces = [([{"text": t}], i == len(texts) - 1) for i, t in enumerate(texts)]
    if method == "generateContent":
        return ok(chunk([{"text": text}] if not reply.calls else pieces[0][0], True, out_tokens))

    async def events() -> AsyncIterator[bytes]:
        for i, (parts, last) in enumerate(pieces):
            if i and sim.options.stream_delay > 0:
                await asyncio.sleep(sim.options.stream_delay)
            yield b"data: " + wire.dumps(chunk(parts, last, out_tokens)) + b"\r\n\r\n"

    return HttpResponse(200, content_type="text/event-stream", stream=events())


def create_token(sim: Simulator, raw: Any) -> HttpResponse:
    """``POST /v1alpha/auth_tokens``."""
    if not isinstance(raw, dict):
        return error(400, "Invalid JSON payload received.")
    try:
        token = sim.tokens.create(wire.camelize(raw))
    except wire.InvalidArgument as exc:
        return error(400, str(exc))
    return ok(token.as_json())


def control(sim: Simulator, request: HttpRequest, body: Any) -> HttpResponse:
    """``/_sim/options`` (GET/POST), ``/_sim/faults`` (POST), ``/_sim/records`` (GET; DELETE clears)."""
    from .server import Fault

    try:
        if request.path == "/_sim/options":
            if request.method == "POST":
                sim.options.update(**(body or {}))
            opts = asdict(sim.options)
            opts["api_keys"] = sorted(opts["api_keys"]) if opts["api_keys"] is not None else None
            return ok(opts)
        if request.path == "/_sim/faults" and request.method == "POST":
            sim.add_fault(Fault(**(body or {})))
            return ok({"queued": len(sim.faults)})
        if request.path == "/_sim/records":
            if request.method == "DELETE":
                sim.recorder.clear()
                return ok({})
            return ok({"records": sim.recorder.items()})
    except (TypeError, ValueError) as exc:
        return error(400, str(exc))
    return not_found_page(request.path)
