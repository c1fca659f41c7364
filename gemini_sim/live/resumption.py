"""Session resumption and the session's deadlines: handles, ``goAway``, model session caps, token expiry."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import catalogue, wire
from .errors import DEADLINE, INVALID, TOKEN_EXPIRED, Close

if TYPE_CHECKING:
    from ..server import Options
    from .session import LiveSession
    from .setup import Config


@dataclass
class Snapshot:
    """Conversation state behind one resumption handle."""

    history: list[dict[str, Any]]
    model: str
    session_id: str
    expires_at: float | None = None  # set when the issuing session ends
    started_at: float = 0.0  # when the session (its first connection) began


def session_cap(found: catalogue.Model, options: Options) -> float | None:
    """Seconds a whole session (resumptions included) may last on this model, if it is capped."""
    if found.max_session_seconds is None:
        return None
    return found.max_session_seconds * options.session_cap_factor


class Resumption:
    """One connection's resumption handles (issued, restored, expired) and the deadlines that end it."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.handles: list[str] = []  # issued on this connection; their TTL starts when it ends

    def restore(self, cfg: Config) -> None:
        """Take over the state behind ``cfg.handle`` (1007 if it is unknown, expired, or not for this model)."""
        session = self.session
        if cfg.handle is None:
            return
        snap = session.sim.handles.get(cfg.handle)
        if snap is None or (snap.expires_at is not None and time.time() > snap.expires_at):
            raise Close(1007, INVALID)
        if snap.model != cfg.model.name:
            raise Close(1007, INVALID)
        cap = session_cap(cfg.model, session.sim.options)
        if cap is not None and time.time() >= snap.started_at + cap:
            raise Close(1007, INVALID)  # transcribe-live: the session's 10 minutes are over, resumption too
        session.history = list(snap.history)  # turns are never mutated once appended
        session.started_at = snap.started_at

    def issue(self) -> None:
        """Send a sessionResumptionUpdate with a new handle for the current state."""
        session = self.session
        cfg = session.cfg
        handle = secrets.token_urlsafe(32)
        session.sim.handles[handle] = Snapshot(
            list(session.history), cfg.model_name if cfg else "", session.id, started_at=session.started_at
        )
        self.handles.append(handle)
        update: dict[str, Any] = {"newHandle": handle, "resumable": True}
        if cfg is not None and cfg.transparent:
            update["lastConsumedClientMessageIndex"] = str(max(0, session.messages_in - 1))
        session.send({"sessionResumptionUpdate": update})
        if len(session.sim.handles) % 256 == 0:
            self.purge()

    def issue_after_turn(self) -> None:
        """Issue the handle that covers a finished turn, ``handle_delay`` seconds later when that is set."""
        delay = self.session.sim.options.handle_delay
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._issue_if_open)
        else:
            self.issue()

    def _issue_if_open(self) -> None:
        if not self.session.ended and self.session.close_request is None:
            self.issue()

    def purge(self) -> None:
        """Forget expired handles."""
        handles = self.session.sim.handles
        now = time.time()
        for key in [k for k, s in handles.items() if s.expires_at is not None and s.expires_at < now]:
            handles.pop(key, None)

    def start_expiry(self) -> None:
        """The connection is over: its handles start their 2 h (TTL) clock."""
        sim = self.session.sim
        expiry = time.time() + sim.options.resumption_ttl
        for handle in self.handles:
            snap = sim.handles.get(handle)
            if snap is not None:
                snap.expires_at = expiry

    async def lifetime(self) -> None:
        """goAway ``go_away_before`` seconds before the connection lifetime (or the model's session cap) ends, then
        close."""
        session = self.session
        opts = session.sim.options
        life = max(0.0, opts.connection_lifetime)
        cap = session_cap(session.cfg.model, opts) if session.cfg is not None else None
        if cap is not None:
            life = max(0.0, min(life, session.started_at + cap - time.time()))
        before = min(max(0.0, opts.go_away_before), life)
        await asyncio.sleep(life - before)
        session.send({"goAway": {"timeLeft": wire.duration(before)}})
        await asyncio.sleep(before)
        session.request_close(1011, DEADLINE)

    async def token_expiry(self, expire_time: float) -> None:
        """An ephemeral token's session ends when the token expires."""
        await asyncio.sleep(max(0.0, expire_time - time.time()))
        self.session.request_close(1007, TOKEN_EXPIRED)
