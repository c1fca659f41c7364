"""The parts of one live session, built and wired together in one place (``LiveRun`` runs them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

from conversations.models import Conversation, Message
from live.models import LiveSession
from live.recorder import Recorder
from live.session.inbound import Inbound
from live.session.ledger import Ledger
from live.session.link import Link
from live.session.media import AudioRateGuard
from live.session.outbound import Outbound
from live.session.row import SessionRow
from live.session.stats import Counters, ReplyClock
from live.session.tool_calls import ToolCalls
from live.session_plan import SessionPlan

if TYPE_CHECKING:
    from live.session.client import LiveClient


@dataclass(frozen=True)
class SessionParts:
    """Each part has one job (see its module); they share only what is passed to them here."""

    counters: Counters
    reply_clock: ReplyClock
    rate_guard: AudioRateGuard
    recorder: Recorder
    ledger: Ledger
    link: Link
    row: SessionRow
    outbound: Outbound
    tool_calls: ToolCalls
    inbound: Inbound


def assemble(
    *,
    client: LiveClient,
    row: LiveSession,
    conversation: Conversation,
    plan: SessionPlan,
    handle: str | None,
    spawn: Callable[[Awaitable[Any]], object],
    on_saved: Callable[[Message], Awaitable[None]] | None = None,
) -> SessionParts:
    """Build the parts of the session ``row`` for ``client``'s socket; ``spawn`` runs a helper task it owns;
    ``on_saved`` hears of each turn the recorder stored."""
    counters, reply_clock = Counters(), ReplyClock()
    rate_guard = AudioRateGuard(
        factor=settings.LIVE_AUDIO_RATE_FACTOR,
        burst_seconds=settings.LIVE_AUDIO_BURST_SECONDS,
        close_after_seconds=settings.LIVE_AUDIO_FLOOD_CLOSE_SECONDS,
    )
    recorder = Recorder(
        conversation=conversation,
        live_config={
            "model": plan.model.name,
            "sessionId": row.public_id,
            "responseModalities": list(plan.browser_modalities),
        },
        on_saved=on_saved,
        pad_ms=settings.LIVE_RECORD_PAD_MS,
        silence_rms=settings.LIVE_SILENCE_RMS,
    )
    ledger = Ledger()
    link = Link(plan=plan, handle=handle, public_id=row.public_id)
    session_row = SessionRow(pk=row.pk, public_id=row.public_id, holder=row.channel_name, lane=client.db)
    outbound = Outbound(
        link=link,
        ledger=ledger,
        plan=plan,
        public_id=row.public_id,
        counters=counters,
        reply_clock=reply_clock,
        recorder=recorder,
        send=client.send,
        tell_browser=lambda message: spawn(client.send(message)),
        spawn=spawn,
    )
    tool_calls = ToolCalls(
        user=client.user,
        public_id=row.public_id,
        recorder=recorder,
        put=outbound.put,
        send=client.send,
        spawn=spawn,
    )
    inbound = Inbound(
        public_id=row.public_id,
        plan=plan,
        link=link,
        ledger=ledger,
        recorder=recorder,
        tool_calls=tool_calls,
        row=session_row,
        counters=counters,
        reply_clock=reply_clock,
        send=client.send,
        send_audio=client.send_audio,
    )
    return SessionParts(
        counters, reply_clock, rate_guard, recorder, ledger, link, session_row, outbound, tool_calls, inbound
    )
