"""Writes of the live app: live sessions (with the per-user limit, by intent: open, claim, handle, finish) and control
of sessions from outside their socket (the admin, commands).

All functions are synchronous; async callers run them through ``live.db_lanes`` off the audio hot path.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict, cast

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from apsara.validation import is_public_id
from conversations.models import Conversation, Message, User
from conversations.services import conversation_create
from live.models import LiveSession, LiveWorker
from live.protocol import ErrorCode, ProtocolError
from usage import quotas as usage_quotas
from usage import services as usage_services

END_MESSAGE_TYPE = "live.end"  # handled by LiveConsumer.live_end in whichever process holds the session
ENDED_BY_STAFF = "ENDED_BY_STAFF"  # last_error_code of a session staff ended: it cannot be resumed
# Key of LiveSession.config: the session made its conversation (none was asked for), which it takes back if it
# ends before it ever opened, with nothing stored (see live_session_finish).
CREATED_CONVERSATION = "createdConversation"


# Direct sessions' tokens (live.direct): a new one any time within this of the last one's expiry, and before that at
# most this many per session (each can open one more Gemini session).
DIRECT_RENEW_MARGIN = timedelta(minutes=5)
DIRECT_EARLY_RENEWALS = 3


def live_session_group(public_id: str) -> str:
    """Name the channel-layer group that the consumer holding a live session joins."""
    return f"live_session_{public_id}"


class EndRequest(enum.StrEnum):
    REQUESTED = "requested"
    ALREADY_ENDED = "already_ended"


def live_session_end_request(*, live_session: LiveSession, reason: str = "ended by staff") -> EndRequest:
    """End a live session from outside its socket: mark it ended and tell the holding consumer, wherever it runs.

    The row is ended here rather than left to the consumer: nothing tells whether a consumer still holds it (a
    crashed process cannot answer), and a detached session has none. The consumer's own end is idempotent; it
    closes the browser socket and the Gemini session and flushes what was recorded. The resumption handle is
    dropped so a staff-ended session cannot be resumed.
    """
    with transaction.atomic():
        session = LiveSession.objects.select_for_update().get(pk=live_session.pk)
        if session.status in (LiveSession.Status.ENDED, LiveSession.Status.FAILED):
            return EndRequest.ALREADY_ENDED
        session.status = LiveSession.Status.ENDED
        session.ended_at = timezone.now()
        session.channel_name = ""
        session.resumption_handle = ""
        session.resumption_handle_issued_at = None
        session.last_error_code = ENDED_BY_STAFF
        session.last_error = reason
        session.full_clean()
        session.save()
        message = {"type": END_MESSAGE_TYPE, "session_id": session.public_id, "reason": reason}
        group = live_session_group(session.public_id)
        # Only after commit, so a consumer that re-reads the row sees it ended.
        transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(group, message))
    live_session.refresh_from_db()
    return EndRequest.REQUESTED


def live_conversation_get_or_create(*, user: User, conversation_id: str | None) -> Conversation:
    """Return the user's conversation by public id, or a new live one when none is given; another's is not found."""
    if conversation_id:
        # A malformed id (a NUL, which PostgreSQL refuses in a query, say) names no conversation: the same answer.
        conversation = (
            Conversation.objects.for_user(user).filter(public_id=conversation_id).first()
            if is_public_id(conversation_id)
            else None
        )
        if conversation is None:
            raise ProtocolError(ErrorCode.CONVERSATION_NOT_FOUND, f"No conversation {conversation_id[:60]!r}.")
        return conversation
    # Untitled until its first exchange names it (conversations.titles).
    return conversation_create(owner=user, kind=Conversation.Kind.LIVE)


SERVER_GONE = "SERVER_GONE"  # last_error_code of a session whose holding process died (its lease ran out)
SERVER_RESTART = "SERVER_RESTART"  # last_error_code of a session its process let go while shutting down (drained)


class ResumeCause(enum.StrEnum):
    """Why a session is being resumed on a new socket (a metric label: a fixed set)."""

    DROP = "drop"  # the browser's socket went away (network, tab asleep); its process let the session go
    DRAIN = "drain"  # its process was shutting down and let it go (a deploy, a restart)
    CRASH = "crash"  # its process died without letting go: taken over once its lease ran out


@dataclass(frozen=True)
class Claim:
    """A session claimed by a new socket: the row, why it needed resuming, and since when it had no holder."""

    session: LiveSession
    cause: ResumeCause
    lost_at: datetime | None


def _detach_orphaned_sessions(user: User) -> int:
    """Open sessions nobody can be using become detached: their holding process died (its lease ran out), or,
    direct, their token expired. They stop counting against the user's limit and can be resumed. Called only when
    an open session is in the way."""
    orphaned = LiveSession.objects.for_user(user).orphaned()
    proxied = orphaned.filter(transport=LiveSession.Transport.PROXIED).update(
        status=LiveSession.Status.DETACHED,
        ended_at=timezone.now(),
        channel_name="",
        last_error_code=SERVER_GONE,
        last_error="The server process holding this session stopped (its lease ran out).",
    )
    direct = orphaned.filter(transport=LiveSession.Transport.DIRECT).update(
        status=LiveSession.Status.DETACHED, ended_at=timezone.now()
    )
    return proxied + direct


def _check_limit(user: User, limit: int) -> None:
    """Refuse another open session when the user has ``limit`` (sessions of dead processes do not count)."""
    active = LiveSession.objects.for_user(user).filter(status__in=LiveSession.ACTIVE_STATUSES)
    count = active.count()
    if count >= limit and _detach_orphaned_sessions(user):
        count = active.count()
    if count >= limit:
        raise ProtocolError(
            ErrorCode.SESSION_LIMIT_REACHED,
            f"You already have {count} live sessions open (the limit is {limit}). End one and try again.",
        )


def _check_quota(user: User) -> None:
    """Refuse a new session when the person's daily tokens or live minutes are used up (``usage.quotas``)."""
    try:
        usage_quotas.quota_check(user=user, live=True)
    except usage_quotas.QuotaExceeded as exceeded:
        raise ProtocolError(
            ErrorCode.QUOTA_EXCEEDED,
            exceeded.message,
            retry_after_ms=exceeded.seconds_left() * 1000,
            resets_at=exceeded.resets_at_iso,
        ) from None


def live_session_create(
    *,
    user: User,
    conversation_id: str | None,
    model: str,
    config: dict[str, Any],
    channel_name: str,
    worker: str,
    transport: LiveSession.Transport = LiveSession.Transport.PROXIED,
    token_expires_at: datetime | None = None,
) -> LiveSession:
    """Open a live session on the user's conversation (a new live one when none is given), all or nothing.

    Refused (another user's or an unknown conversation, the user already holding the maximum number of active
    sessions in any process, a daily quota used up: QUOTA_EXCEEDED), it leaves nothing behind: no session and no
    new, empty conversation. Created, it counts in the person's usage of the day (both transports come here).
    """
    limit = settings.LIVE_MAX_SESSIONS_PER_USER
    with transaction.atomic():
        # Lock the user's row so concurrent creates (in any process) count one after the other.
        User.objects.select_for_update().filter(pk=user.pk).first()
        _check_quota(user)
        conversation = live_conversation_get_or_create(user=user, conversation_id=conversation_id)
        _check_limit(user, limit)
        usage_services.usage_add(user_id=user.pk, model=model, sessions=1)
        return LiveSession.objects.create(
            last_seen_at=timezone.now(),
            user=user,
            conversation=conversation,
            model=model,
            config={**config, CREATED_CONVERSATION: True} if not conversation_id else config,
            # A direct session is open from the start: the browser connects to Gemini itself (live.direct).
            status=(
                LiveSession.Status.ACTIVE
                if transport == LiveSession.Transport.DIRECT
                else LiveSession.Status.CONNECTING
            ),
            channel_name=channel_name,
            worker=worker,
            transport=transport,
            token_expires_at=token_expires_at,
            token_issued_at=timezone.now() if token_expires_at is not None else None,
        )


@dataclass(frozen=True)
class DirectTokenState:
    """A direct session's token fields before a renewal, to put back when the new token cannot be minted."""

    status: str
    ended_at: datetime | None
    token_expires_at: datetime | None
    token_issued_at: datetime | None
    early_renewals: int


def live_session_direct_renew(
    *, user: User, session_id: str, token_expires_at: datetime
) -> tuple[LiveSession, DirectTokenState]:
    """Record a new token for a direct session of this user (live.direct); return it and what it was before.

    Another user's, an unknown, a proxied or an ended one is not found; its conversation deleted, it cannot go on.
    Refused at the person's daily quota. A token can open one Gemini session, so renewals are bounded: one near the
    end of the last token's life (``DIRECT_RENEW_MARGIN``) any time; before that ("early": a resume refused, a page
    reloaded) at most ``DIRECT_EARLY_RENEWALS`` per session, and not twice within a new-session window. A detached
    session (its token ran out) counts against the limit again.
    """
    with transaction.atomic():
        # The user's row first, as live_session_create does: renewals and new sessions count one after the other.
        User.objects.select_for_update().filter(pk=user.pk).first()
        session = (
            LiveSession.objects.for_user(user)
            .select_for_update()
            .filter(transport=LiveSession.Transport.DIRECT, public_id=session_id)
            .exclude(status__in=(LiveSession.Status.ENDED, LiveSession.Status.FAILED))
            .first()
            if is_public_id(session_id)
            else None
        )
        if session is None:
            raise ProtocolError(ErrorCode.SESSION_NOT_FOUND, f"No open direct session {session_id[:60]!r}.")
        if session.conversation_id is None:
            raise ProtocolError(ErrorCode.RESUME_FAILED, "That live session's conversation was deleted.")
        _check_quota(user)
        previous = DirectTokenState(
            status=session.status,
            ended_at=session.ended_at,
            token_expires_at=session.token_expires_at,
            token_issued_at=session.token_issued_at,
            early_renewals=session.early_renewals,
        )
        now = timezone.now()
        if session.token_expires_at is not None and now < session.token_expires_at - DIRECT_RENEW_MARGIN:
            _check_early_renewal(session, now)
            session.early_renewals += 1
        if session.status == LiveSession.Status.DETACHED:
            _check_limit(user, settings.LIVE_MAX_SESSIONS_PER_USER)
            session.status = LiveSession.Status.ACTIVE
            session.ended_at = None
        session.token_expires_at = token_expires_at
        session.token_issued_at = now
        session.save(update_fields=["status", "ended_at", "token_expires_at", "token_issued_at", "early_renewals"])
        return session, previous


def _check_early_renewal(session: LiveSession, now: datetime) -> None:
    window = timedelta(seconds=settings.LIVE_DIRECT_NEW_SESSION_SECONDS)
    if session.early_renewals >= DIRECT_EARLY_RENEWALS:
        raise ProtocolError(
            ErrorCode.SESSION_LIMIT_REACHED,
            "This call has asked for new tokens too often. End it and press Talk to start a new one.",
        )
    if session.token_issued_at is not None and now - session.token_issued_at < window:
        wait = window - (now - session.token_issued_at)
        raise ProtocolError(
            ErrorCode.SESSION_IN_USE,
            "The call's token is new: resume with it, or ask again in a moment.",
            retry_after_ms=max(1, int(wait.total_seconds() * 1000)),
        )


def live_session_direct_renewal_undone(*, live_session_pk: int, previous: DirectTokenState) -> None:
    """Put a direct session's token fields back as they were: its new token could not be minted."""
    LiveSession.objects.filter(pk=live_session_pk).update(
        status=previous.status,
        ended_at=previous.ended_at,
        token_expires_at=previous.token_expires_at,
        token_issued_at=previous.token_issued_at,
        early_renewals=previous.early_renewals,
    )


def live_session_direct_not_minted(*, live_session_pk: int) -> None:
    """A new direct session whose token could not be minted: failed, and the conversation it created given back."""
    _discard_unused_conversation(live_session_pk, LiveSession.Status.FAILED)
    LiveSession.objects.filter(pk=live_session_pk).update(
        status=LiveSession.Status.FAILED,
        ended_at=timezone.now(),
        token_expires_at=None,
        last_error_code=ErrorCode.UPSTREAM_ERROR,
        last_error="Gemini did not mint the session's ephemeral token.",
    )


def live_session_direct_get(*, user: User, session_id: str) -> LiveSession | None:
    """This user's direct session ``session_id`` (None: unknown, another user's, or proxied)."""
    if not is_public_id(session_id):
        return None
    return (
        LiveSession.objects.for_user(user)
        .select_related("conversation")
        .filter(transport=LiveSession.Transport.DIRECT, public_id=session_id)
        .first()
    )


def live_session_direct_end(*, user: User, session_id: str, discard_if_unused: bool = False) -> LiveSession:
    """End a direct session of this user (the page stopped the call): it no longer counts against the limit."""
    session = live_session_direct_get(user=user, session_id=session_id)
    if session is None:
        raise ProtocolError(ErrorCode.SESSION_NOT_FOUND, f"No direct session {session_id[:60]!r}.")
    if session.status not in (LiveSession.Status.ENDED, LiveSession.Status.FAILED):
        if discard_if_unused:
            # The page recorded nothing: the conversation the call created goes back, as a proxied call's does.
            # Only when the page says so: its turns may still be on their way (its outbox), and would find no
            # conversation.
            _discard_unused_conversation(session.pk, LiveSession.Status.ENDED)
            session.refresh_from_db()
        session.status = LiveSession.Status.ENDED
        session.ended_at = timezone.now()
        session.save(update_fields=["status", "ended_at"])
    return session


def live_session_claim(*, user: User, session_id: str, channel_name: str, worker: str) -> Claim:
    """Take over a resumable session of this user for a new socket held by ``worker`` (resume_session).

    Resumable: detached (its socket went, or its process let it go while shutting down), or still open in a process
    that died (its lease ran out). An open session whose process is alive is SESSION_IN_USE: the caller may try
    again once that process has let it go or its lease has run out (``retry_after_ms``).
    """
    limit = settings.LIVE_MAX_SESSIONS_PER_USER
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        session = (
            LiveSession.objects.for_user(user).select_related("conversation").filter(public_id=session_id).first()
            if is_public_id(session_id)  # a malformed id names no session: the same answer as an unknown one
            else None
        )
        if session is None:
            raise ProtocolError(ErrorCode.SESSION_NOT_FOUND, f"No live session {session_id[:60]!r}.")
        cause, lost_at = _resumable(session)
        if session.conversation is None:
            raise ProtocolError(ErrorCode.RESUME_FAILED, "That live session's conversation was deleted.")
        _check_limit(user, limit)
        session.status = LiveSession.Status.CONNECTING
        session.channel_name = channel_name
        session.worker = worker
        session.ended_at = None
        session.last_seen_at = timezone.now()
        # Resumed, it has been open (or kept what it recorded): its conversation is the user's, whatever follows.
        session.config = {k: v for k, v in (session.config or {}).items() if k != CREATED_CONVERSATION}
        session.save(update_fields=["status", "channel_name", "worker", "ended_at", "last_seen_at", "config"])
        return Claim(session, cause, lost_at)


def _resumable(session: LiveSession) -> tuple[ResumeCause, datetime | None]:
    """Why ``session`` may be resumed and since when it had no holder; or the ProtocolError saying why not."""
    if session.status in LiveSession.ACTIVE_STATUSES:
        holder = LiveWorker.objects.filter(name=session.worker).alive().values_list("expires_at", flat=True).first()
        if holder is not None:
            left = max(0.0, (holder - timezone.now()).total_seconds())
            raise ProtocolError(
                ErrorCode.SESSION_IN_USE,
                "That live session is still open on another connection; end it first.",
                retry_after_ms=int(1000 * min(left, settings.LIVE_LEASE_SECONDS)) + 100,
            )
        # Its process died holding it: it has been gone since its last renewal (a lease's length before it ran out).
        last = LiveWorker.objects.filter(name=session.worker).values_list("expires_at", flat=True).first()
        return ResumeCause.CRASH, (last - timedelta(seconds=settings.LIVE_LEASE_SECONDS)) if last else None
    if session.last_error_code == ENDED_BY_STAFF:
        raise ProtocolError(ErrorCode.RESUME_FAILED, "That live session was ended by staff; start a new one.")
    if session.status != LiveSession.Status.DETACHED:
        raise ProtocolError(
            ErrorCode.RESUME_FAILED, "That live session has ended; start a new one (the conversation is kept)."
        )
    causes = {SERVER_RESTART: ResumeCause.DRAIN, SERVER_GONE: ResumeCause.CRASH}
    return causes.get(session.last_error_code, ResumeCause.DROP), session.ended_at


class LiveSessionCounters(TypedDict, total=False):
    """Increments of a session's counters (what the bridge counted since it last recorded them)."""

    messages_in: int
    messages_out: int
    audio_seconds_in: float
    audio_seconds_out: float


# An ended session stays ended and unresumable: a handle or status the bridge writes late (staff may have ended it a
# moment before, from another process) must not revive it. Counters always land.
_FINAL_STATUSES = (LiveSession.Status.ENDED, LiveSession.Status.FAILED)


def _held(live_session_pk: int, holder: str | None) -> QuerySet[LiveSession]:
    """The session's row if ``holder`` (a consumer's channel name) still holds it: a process that lost it (its lease
    ran out while it was stalled, and another took it over) must not overwrite the new holder's state."""
    rows = LiveSession.objects.filter(pk=live_session_pk)
    return rows.filter(channel_name=holder) if holder is not None else rows


def _not_ended(live_session_pk: int, holder: str | None = None) -> QuerySet[LiveSession]:
    return _held(live_session_pk, holder).exclude(status__in=_FINAL_STATUSES)


def live_session_is_held(*, live_session_pk: int, holder: str) -> bool:
    """Whether the socket ``holder`` still holds the open session (its process's lease ran out meanwhile: another
    process may have taken it over, or it was detached as orphaned)."""
    return _not_ended(live_session_pk, holder).filter(status__in=LiveSession.ACTIVE_STATUSES).exists()


def live_session_activate(*, live_session_pk: int, holder: str | None = None) -> None:
    """Mark a session active: its Gemini connection is open (first time, or again after a resume)."""
    _not_ended(live_session_pk, holder).update(status=LiveSession.Status.ACTIVE, last_seen_at=timezone.now())


def live_session_store_handle(*, live_session_pk: int, handle: str, holder: str | None = None) -> None:
    """Keep Gemini's latest resumption handle for the session (resume_session uses it); never on an ended one."""
    _not_ended(live_session_pk, holder).update(resumption_handle=handle, resumption_handle_issued_at=timezone.now())


def live_session_store_vad(*, live_session_pk: int, vad: Mapping[str, Any], holder: str | None = None) -> None:
    """Keep the session's voice-activity settings (a ``configure_vad``): a browser that resumes the session, on
    this process or another, gets them back (Hold mode stays Hold mode)."""
    with transaction.atomic():
        session = _held(live_session_pk, holder).select_for_update().first()
        if session is None:
            return
        config = dict(session.config or {})
        config["request"] = {**(config.get("request") or {}), "vad": dict(vad)}
        session.config = config
        session.save(update_fields=["config"])


def live_session_finish(
    *,
    live_session_pk: int,
    status: LiveSession.Status,
    handle: str | None = None,
    error_code: str | None = None,
    error: str | None = None,
    counters: LiveSessionCounters | None = None,
    reconnects: int = 0,
    holder: str | None = None,
) -> None:
    """Record how a session ended: ``ended``, ``failed``, or ``detached`` (the browser went; resumable, with
    ``handle``), its last error, and the counters and reconnects not yet recorded. The ending is written only while
    ``holder`` (the consumer's channel name, when given) still holds the session; the counters always land.

    A session that ends before it ever opened, or ends with nothing said, takes back the conversation it created
    for itself, if unused.
    """
    if status not in LiveSession.FINISHED_STATUSES:
        raise ValueError(f"A live session finishes as one of {list(LiveSession.FINISHED_STATUSES)}, not {status!r}.")
    now = timezone.now()
    ending: dict[str, Any] = {"status": status, "ended_at": now, "channel_name": ""}
    if handle is not None:
        ending["resumption_handle"] = handle
        ending["resumption_handle_issued_at"] = now
    if error_code is not None:
        ending["last_error_code"] = error_code
        ending["last_error"] = (error or "")[:2000]
    increments = cast("Mapping[str, float]", counters or {})  # every key a counter field (LiveSessionCounters)
    counted: dict[str, Any] = {name: F(name) + value for name, value in increments.items() if value}
    if reconnects:
        counted["reconnects"] = F("reconnects") + reconnects
    with transaction.atomic():  # all or nothing: a retry after a failure never counts twice
        _discard_unused_conversation(live_session_pk, status)
        _not_ended(live_session_pk, holder).update(**ending)
        if counted:
            LiveSession.objects.filter(pk=live_session_pk).update(**counted)


def _discard_unused_conversation(session_id: int, status: LiveSession.Status) -> None:
    """A session that ends before it ever opened (Gemini refused the setup, the socket went first), or that ends
    (``ended``/``failed``) with nothing said or typed, takes back the conversation it created for itself, if nothing
    was stored in it: pressing Talk and saying nothing leaves no empty conversation. A ``detached`` session that had
    opened keeps it (it may be resumed), as does one that was resumed (``live_session_claim`` drops the mark). The
    session's row stays, with its ending, for staff.
    """
    # Whether it had opened matters only for a detached ending: an ended or failed session is over for good.
    from_statuses = (
        [LiveSession.Status.CONNECTING] if status == LiveSession.Status.DETACHED else LiveSession.ACTIVE_STATUSES
    )
    with transaction.atomic():
        session = (
            LiveSession.objects.select_for_update()
            .filter(pk=session_id, status__in=from_statuses, conversation__isnull=False)
            .first()
        )
        conversation_id = session.conversation_id if session is not None else None
        if session is None or conversation_id is None or not (session.config or {}).get(CREATED_CONVERSATION):
            return
        Conversation.objects.select_for_update().filter(pk=conversation_id).first()  # writers to it wait
        used = (
            Message.objects.filter(conversation_id=conversation_id).exists()
            or LiveSession.objects.filter(conversation_id=conversation_id).exclude(pk=session_id).exists()
        )
        if not used:
            Conversation.objects.filter(pk=conversation_id).delete()  # the session's link is set to NULL
