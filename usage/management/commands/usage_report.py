"""``manage.py usage_report``: usage per person, per UTC day and model, with totals (text or ``--json``)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.models import User
from usage.models import UsageDay
from usage.selectors import usage_list, usage_totals
from usage.services import utc_today

DEFAULT_DAYS = 7


class Command(BaseCommand):
    help = (
        "Show what people spent on Gemini per UTC day and model: tokens in and out, live audio in and out, live "
        f"sessions and typed requests, with totals. Default: everyone, the last {DEFAULT_DAYS} days (today included)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="only this person (username, email or numeric id)")
        parser.add_argument(
            "--since", metavar="DATE", help=f"from this UTC day on, YYYY-MM-DD (default: {DEFAULT_DAYS - 1} days ago)"
        )
        parser.add_argument("--json", action="store_true", help="print JSON (for machines): rows and totals")

    def handle(self, *args: Any, **options: Any) -> None:
        user = _user(options["user"]) if options["user"] is not None else None
        since = (
            _since(options["since"]) if options["since"] is not None else utc_today() - dt.timedelta(DEFAULT_DAYS - 1)
        )
        rows = usage_list(user=user, since=since)
        totals = usage_totals(rows)
        report: dict[str, Any] = {
            "since": since.isoformat(),
            "user": user.get_username() if user is not None else None,
            "rows": [_row(row) for row in rows],
            "totals": {
                "tokensIn": totals["tokens_in"],
                "tokensOut": totals["tokens_out"],
                "audioInSeconds": round(totals["audio_in_seconds"], 3),
                "audioOutSeconds": round(totals["audio_out_seconds"], 3),
                "liveMinutes": round((totals["audio_in_seconds"] + totals["audio_out_seconds"]) / 60, 3),
                "sessions": totals["sessions"],
                "requests": totals["requests"],
            },
        }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        who = f"for {report['user']}" if user is not None else "for everyone"
        self.stdout.write(f"Usage {who} since {report['since']} (UTC days)")
        if not report["rows"]:
            self.stdout.write("No usage recorded.")
            return
        header = (
            f"{'day':<10} {'user':<16} {'model':<32} {'tokens in':>12} {'tokens out':>12} "
            f"{'live min':>9} {'sessions':>8} {'requests':>8}"
        )
        self.stdout.write(header)
        for r in report["rows"]:
            self.stdout.write(
                f"{r['day']:<10} {r['user'][:16]:<16} {r['model'][:32]:<32} {r['tokensIn']:>12,} "
                f"{r['tokensOut']:>12,} {r['liveMinutes']:>9,.1f} {r['sessions']:>8,} {r['requests']:>8,}"
            )
        t = report["totals"]
        self.stdout.write(
            f"{'total':<10} {'':<16} {'':<32} {t['tokensIn']:>12,} {t['tokensOut']:>12,} "
            f"{t['liveMinutes']:>9,.1f} {t['sessions']:>8,} {t['requests']:>8,}"
        )


def _user(value: str) -> User:
    if not value.strip() or "\x00" in value:
        raise CommandError("--user needs a username, an email address or a numeric id.")
    users = get_user_model().objects
    found = users.filter(username=value).first() or users.filter(email__iexact=value).first()
    if found is None and value.isdigit() and int(value) < 2**63:
        found = users.filter(pk=int(value)).first()
    if found is None:
        raise CommandError(f"No user {value[:60]!r} (give a username, an email address or a numeric id).")
    return found


def _since(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip()) if len(value.strip()) == 10 else _bad_date(value)
    except ValueError:
        return _bad_date(value)


def _bad_date(value: str) -> dt.date:
    raise CommandError(f"--since must be a date as YYYY-MM-DD (a UTC day), not {value[:30]!r}.")


def _row(row: UsageDay) -> dict[str, Any]:
    return {
        "day": row.day.isoformat(),
        "user": row.user.get_username(),
        "model": row.model,
        "tokensIn": row.tokens_in,
        "tokensOut": row.tokens_out,
        "audioInSeconds": round(row.audio_in_seconds, 3),
        "audioOutSeconds": round(row.audio_out_seconds, 3),
        "liveMinutes": round(row.live_seconds / 60, 3),
        "sessions": row.sessions,
        "requests": row.requests,
    }
