"""``manage.py live_sessions``: list live sessions, or end one (``--end``) the way the admin's action does."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.models import User
from conversations.selectors import user_find
from live.models import LiveSession
from live.selectors import live_session_get, live_session_list
from live.services import EndRequest, live_session_end_request

MAX_LIMIT = 1000


class Command(BaseCommand):
    help = (
        "List live sessions (newest first; filter with --user, --status, --active), or end one with "
        "--end SESSION_ID (its socket is closed in whichever process holds it; --dry-run shows what would happen)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="only this user's sessions (username, email or numeric id)")
        parser.add_argument(
            "--status",
            action="append",
            help=f"only sessions in this status (repeatable): {', '.join(LiveSession.Status.values)}",
        )
        parser.add_argument(
            "--active",
            action="store_true",
            help="only sessions open in a live server process (a dead process's sessions are left out)",
        )
        parser.add_argument("--limit", default="50", help=f"at most this many sessions (1-{MAX_LIMIT}, default 50)")
        parser.add_argument("--end", metavar="SESSION_ID", help="end this live session (live_…) instead of listing")
        parser.add_argument("--reason", default="ended by an operator", help="recorded as the session's last error")
        parser.add_argument("--dry-run", action="store_true", help="with --end: show what would happen, change nothing")
        parser.add_argument("--json", action="store_true", help="print JSON (for machines)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["end"]:
            if options["user"] or options["status"] or options["active"]:
                raise CommandError("--end takes a session id only; drop --user, --status and --active.")
            self._end(options)
            return
        if options["dry_run"]:
            raise CommandError("--dry-run only applies to --end.")
        statuses = _statuses(options["status"] or [])
        if options["active"] and statuses:
            raise CommandError("Use --active or --status, not both.")
        user = _user(options["user"]) if options["user"] else None
        sessions = live_session_list(
            user=user, statuses=statuses, held=options["active"], limit=_limit(options["limit"])
        )
        rows = [_row(s) for s in sessions]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if options["verbosity"] < 1:
            return
        if not rows:
            self.stdout.write("No live sessions match.")
            return
        self.stdout.write(
            f"{'session':<24} {'user':<16} {'status':<12} {'model':<34} {'started (UTC)':<19} "
            f"{'secs':>7} {'in/out':>9} {'reconn':>6}  last error"
        )
        for r in rows:
            self.stdout.write(
                f"{r['id']:<24} {r['user'][:16]:<16} {r['status']:<12} {r['model'][:34]:<34} "
                f"{r['startedAt'][:19].replace('T', ' '):<19} {r['durationSeconds']:>7.0f} "
                f"{r['messagesIn']:>4}/{r['messagesOut']:<4} {r['reconnects']:>6}  {r['lastErrorCode']}"
            )
            if options["verbosity"] >= 2 and r["lastError"]:
                self.stdout.write(f"{'':<24} {r['lastError'][:200]}")

    def _end(self, options: dict[str, Any]) -> None:
        session_id = options["end"].strip()
        session = live_session_get(public_id=session_id)
        if session is None:
            raise CommandError(f"No live session {session_id[:60]!r}; list them with `manage.py live_sessions`.")
        reason = options["reason"].strip()
        if not reason or len(reason) > 500:
            raise CommandError("--reason must be 1-500 characters.")
        ended = session.status in (LiveSession.Status.ENDED, LiveSession.Status.FAILED)
        if options["dry_run"]:
            outcome = "already ended" if ended else "would end"
        else:
            result = live_session_end_request(live_session=session, reason=reason)
            outcome = "already ended" if result is EndRequest.ALREADY_ENDED else "ended"
        if options["json"]:
            self.stdout.write(json.dumps({"outcome": outcome, "dryRun": options["dry_run"], "session": _row(session)}))
        elif options["verbosity"] >= 1:
            self.stdout.write(f"{session.public_id} ({session.user.get_username()}, {session.status}): {outcome}.")


def _statuses(values: list[str]) -> list[str]:
    valid = LiveSession.Status.values
    for value in values:
        if value not in valid:
            raise CommandError(f"--status must be one of {', '.join(valid)}, not {value[:30]!r}.")
    return list(dict.fromkeys(values))


def _user(value: str) -> User:
    found = user_find(reference=value)
    if found is None:
        raise CommandError(f"No user {value[:60]!r} (give a username, an email address or a numeric id).")
    return found


def _limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise CommandError(f"--limit must be a whole number from 1 to {MAX_LIMIT}, not {value[:20]!r}.")
    return int(value)


def _row(session: LiveSession) -> dict[str, Any]:
    return {
        "id": session.public_id,
        "user": session.user.get_username(),
        "conversationId": session.conversation.public_id if session.conversation else None,
        "status": session.status,
        "model": session.model,
        "startedAt": session.started_at.isoformat(),
        "endedAt": session.ended_at.isoformat() if session.ended_at else None,
        "durationSeconds": round(session.duration_seconds or 0, 1),
        "messagesIn": session.messages_in,
        "messagesOut": session.messages_out,
        "audioSecondsIn": round(session.audio_seconds_in, 1),
        "audioSecondsOut": round(session.audio_seconds_out, 1),
        "reconnects": session.reconnects,
        "worker": session.worker,
        "lastErrorCode": session.last_error_code,
        "lastError": session.last_error,
    }
