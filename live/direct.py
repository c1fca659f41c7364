"""Direct mode (docs/live-direct.md): a browser opens Gemini Live itself with an ephemeral token minted here.

The token is minted through the SDK (``auth_tokens.create`` on v1alpha) and locks the whole setup this person's
session may use (model, settings, system instruction, tools: no field mask), so a page cannot widen it; Gemini
applies the token's values whatever a page sends. The page gets the setup to send, the conversation's history to
seed it with, and the Constrained endpoint's URL. The session is a ``LiveSession`` row with transport ``direct``:
it counts against the person's limit until it ends or its token expires, and names the conversation its turns may
be posted to (``live.direct_turns``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import warnings
from dataclasses import dataclass
from typing import Any, cast

from asgiref.sync import async_to_sync
from django.conf import settings
from django.utils import timezone
from google.genai import errors as genai_errors
from google.genai import types

from conversations.models import Message, User, new_message_id
from gemini import sdk_internals
from gemini.catalogue import LiveModel, live_model
from gemini.client import EPHEMERAL_TOKEN_API_VERSION, Mode, current_mode, ephemeral_client, get_client
from live import services, tools
from live.history import load_history
from live.models import LiveSession
from live.protocol import CreateSessionData, ErrorCode, ProtocolError, parse_client_message
from live.server_messages import EffectiveConfig
from live.session_plan import SessionConfig, SessionPlan, plan_session, validate_model_name
from live.turns import TurnRecord, save_turn

ALLOWED = "allowed"
CONSTRAINED_METHOD = "BidiGenerateContentConstrained"
MINT_TIMEOUT_MS = 15_000


class DirectModeRefused(Exception):
    """Direct mode cannot be used here: switched off, or Vertex AI (no ephemeral tokens)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def direct_mode_problem() -> DirectModeRefused | None:
    """Why direct mode cannot be used now (None: it can)."""
    if settings.LIVE_DIRECT_MODE != ALLOWED:
        return DirectModeRefused(
            "direct_mode_off",
            "Direct mode is switched off on this server (LIVE_DIRECT_MODE). Talk goes through the server instead.",
        )
    if current_mode() is Mode.VERTEX:
        return DirectModeRefused(
            "direct_mode_unavailable",
            "Direct mode needs ephemeral tokens, which only the Gemini Developer API has; this server uses Vertex AI. "
            "Talk goes through the server instead.",
        )
    return None


@dataclass(frozen=True)
class Grant:
    """What a browser needs to open its direct session."""

    session: LiveSession
    token: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    new_session_expires_at: dt.datetime
    url: str
    setup: dict[str, Any]
    history: dict[str, Any] | None
    effective: EffectiveConfig

    def as_json(self) -> dict[str, Any]:
        conversation = self.session.conversation
        return {
            "token": self.token,
            "serverTime": _iso(self.issued_at),  # the page corrects its turns' times by its clock's difference
            "expiresAt": _iso(self.expires_at),
            "newSessionExpiresAt": _iso(self.new_session_expires_at),
            "url": self.url,
            "sessionId": self.session.public_id,
            "conversationId": conversation.public_id if conversation is not None else None,
            "model": self.session.model,
            "setup": self.setup,
            "history": self.history,
            "effective": self.effective,
            "limits": {"maxTurnSeconds": settings.LIVE_DIRECT_TURN_MAX_SECONDS},
        }


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_request(data: dict[str, Any]) -> tuple[LiveModel, SessionConfig, bool]:
    """Check a token request's ``model``/``config``/``loadConversationContext`` by create_session's own rules."""
    create = {key: data[key] for key in ("model", "config", "loadConversationContext") if key in data}
    message = parse_client_message(json.dumps({"type": "create_session", "data": create}))
    checked = cast(CreateSessionData, message.get("data") or {})
    model = _model(validate_model_name(checked.get("model") or settings.GEMINI_LIVE_MODEL))
    return model, cast(SessionConfig, checked.get("config") or {}), bool(checked.get("loadConversationContext"))


def _model(name: str) -> LiveModel:
    model = live_model(name)
    if model is None:
        raise ProtocolError(ErrorCode.MODEL_NOT_FOUND, f"{name!r} is not a Live model this server knows.")
    return model


def _plan(model: LiveModel, config: SessionConfig) -> SessionPlan:
    # The page speaks Gemini's protocol itself: audio as base64 JSON, whatever binaryAudio says for /live.
    return plan_session(model=model, config=config, available_tools=tools.tool_declarations())


def grant_new(*, user: User, conversation_id: str | None, data: dict[str, Any]) -> Grant:
    """Open a direct session on the person's conversation (a new live one when none is given) and mint its token.

    Checked first (nothing stored when refused): direct mode allowed, the request valid, the conversation theirs,
    the person under their session limit and quota. The session is stored (and counted) before the token is minted,
    outside any transaction: a slow Gemini holds no lock. A token that cannot be minted fails the session and gives
    back the conversation it created.
    """
    refused = direct_mode_problem()
    if refused is not None:
        raise refused
    model, config, load_context = parse_request(data)
    plan = _plan(model, config)
    window = _Window.now()
    session = services.live_session_create(
        user=user,
        conversation_id=conversation_id,
        model=model.name,
        config={"request": dict(config), "loadConversationContext": load_context},
        channel_name="",
        worker="",
        transport=LiveSession.Transport.DIRECT,
        token_expires_at=window.expires_at,
    )
    try:
        return _mint(session, plan, window, history=load_context, history_config=True)
    except BaseException:
        services.live_session_direct_not_minted(live_session_pk=session.pk)
        raise


def grant_again(*, user: User, session_id: str) -> Grant:
    """A new token for a direct session of this person: its token nears its end, or the page could not resume and
    must start a new Gemini session. The same session, settings and conversation; not counted again against the
    limit, but refused at the person's quota, and early renewals are bounded (``services.live_session_direct_renew``:
    each token can open one more Gemini session). It carries the conversation's history (what this session stored
    included) for a page that starts a new Gemini session, as the bridge reloads it; a page that resumes with its
    handle does not send it. Its setup is the session's own (no history config: a resumed Gemini session never had
    one added, and a new one takes history in clientContent at any point)."""
    refused = direct_mode_problem()
    if refused is not None:
        raise refused
    window = _Window.now()
    session, previous = services.live_session_direct_renew(
        user=user, session_id=session_id, token_expires_at=window.expires_at
    )
    try:
        request = cast(SessionConfig, (session.config or {}).get("request") or {})
        plan = _plan(_model(session.model), request)
        return _mint(session, plan, window, history=True, history_config=False)
    except BaseException:
        services.live_session_direct_renewal_undone(live_session_pk=session.pk, previous=previous)
        raise


@dataclass(frozen=True)
class _Window:
    """A token's lifetimes, decided before it is minted (the session row records them first)."""

    issued_at: dt.datetime
    expires_at: dt.datetime
    new_session_expires_at: dt.datetime

    @classmethod
    def now(cls) -> _Window:
        now = timezone.now()
        return cls(
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=settings.LIVE_DIRECT_TOKEN_SECONDS),
            new_session_expires_at=now + dt.timedelta(seconds=settings.LIVE_DIRECT_NEW_SESSION_SECONDS),
        )


def _mint(session: LiveSession, plan: SessionPlan, window: _Window, *, history: bool, history_config: bool) -> Grant:
    loaded = load_history(session.conversation) if history and session.conversation is not None else None
    send_history = loaded is not None and bool(loaded.turns)
    connect = plan.connect_config(handle=None, with_history=send_history and history_config)
    minter = get_client()
    with warnings.catch_warnings():
        # "The SDK's token creation implementation is experimental": known, and pinned (requirements.txt).
        warnings.simplefilter("ignore", genai_errors.ExperimentalWarning)
        token = _create_token(minter, window, plan, connect)
    name = token.name or ""
    page_client = ephemeral_client(name)
    client_content = None
    if send_history and loaded is not None:
        turns = [turn.model_dump(mode="json", exclude_none=True, by_alias=True) for turn in loaded.turns]
        client_content = {"clientContent": {"turns": turns, "turnComplete": True}}
    return Grant(
        session=session,
        token=name,
        issued_at=window.issued_at,
        expires_at=window.expires_at,
        new_session_expires_at=window.new_session_expires_at,
        url=constrained_url(page_client),
        setup=sdk_internals.live_setup_message(page_client, model=plan.model.name, config=connect),
        history=client_content,
        effective={**plan.effective(), "binaryAudio": False},
    )


def _create_token(minter: Any, window: _Window, plan: SessionPlan, connect: types.LiveConnectConfig) -> types.AuthToken:
    token: types.AuthToken = minter.auth_tokens.create(
        config=types.CreateAuthTokenConfig(
            uses=1,
            expire_time=window.expires_at,
            new_session_expire_time=window.new_session_expires_at,
            # No lock_additional_fields: everything in the constraints is locked (the SDK sends no field mask).
            live_connect_constraints=types.LiveConnectConstraints(model=plan.model.name, config=connect),
            # Bounded: the page waits on this request (the SDK's default is no timeout at all).
            http_options=types.HttpOptions(api_version=EPHEMERAL_TOKEN_API_VERSION, timeout=MINT_TIMEOUT_MS),
        )
    )
    return token


def constrained_url(client: Any) -> str:
    """The Constrained endpoint a browser opens with the token (never ``//ws/``, whatever the base URL ends with)."""
    base = sdk_internals.websocket_base_url(sdk_internals.client_api(client)).rstrip("/")
    service = f"google.ai.generativelanguage.{EPHEMERAL_TOKEN_API_VERSION}.GenerativeService"
    return f"{base}/ws/{service}.{CONSTRAINED_METHOD}"


def session_tool_names(session: LiveSession) -> list[str]:
    """The functions a direct session declared to Gemini (what its token locked)."""
    request = cast(SessionConfig, (session.config or {}).get("request") or {})
    return list(_plan(_model(session.model), request).tool_names)


def live_config(session: LiveSession) -> dict[str, Any]:
    """What a direct session's stored messages say of it: the same keys as a proxied session's (parts.assemble)."""
    request = session.config.get("request") if isinstance(session.config, dict) else None
    wanted = request.get("responseModalities") if isinstance(request, dict) else None
    valid = isinstance(wanted, list) and wanted and all(isinstance(m, str) for m in wanted)
    return {
        "model": session.model,
        "sessionId": session.public_id,
        "responseModalities": list(dict.fromkeys(wanted)) if valid else ["AUDIO"],  # type: ignore[arg-type]
    }


def run_tool_calls(*, session: LiveSession, user: User, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run a direct session's function calls for its page, as the bridge runs them (the session's functions only,
    the same time limit), and store each with its result in the thread, as the bridge's recorder does; a call the
    page sends again (same id) is answered again but stored once."""
    names = session_tool_names(session)
    called_at = timezone.now()
    responses = async_to_sync(_execute)(user, names, calls)
    answers = []
    for call, response in zip(calls, responses, strict=True):
        call_id, name = call.get("id") or "", call["name"]
        record = TurnRecord(
            public_id=new_message_id(),
            role=Message.Role.TOOL,
            created_at=called_at,
            tool_data={"id": call_id, "name": name, "args": call.get("args") or {}, "response": response,
                       "cancelled": False},
        )  # fmt: skip
        _store_tool_call(session, record)
        answers.append({"id": call_id, "name": name, "response": response})
    return answers


async def _execute(user: User, names: list[str], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def one(call: dict[str, Any]) -> dict[str, Any]:
        name = call["name"]
        if name not in names:
            return {"error": f"{name[:60]!r} is not a function of this session"}
        try:
            return await asyncio.wait_for(
                tools.tool_execute(user=user, name=name, args=call.get("args") or {}),
                timeout=settings.LIVE_TOOL_TIMEOUT_SECONDS,
            )
        except TimeoutError:
            return {"error": f"{name} took too long"}

    return list(await asyncio.gather(*(one(call) for call in calls)))


def _store_tool_call(session: LiveSession, record: TurnRecord) -> None:
    conversation = session.conversation
    if conversation is None:
        return
    already = Message.objects.filter(
        conversation=conversation,
        role=Message.Role.TOOL,
        live_config__sessionId=session.public_id,
        tool_data__id=record.tool_data["id"],
    )
    if record.tool_data["id"] and already.exists():
        return
    save_turn(conversation=conversation, live_config=live_config(session), turn=record)
