"""``manage.py conversations_purge_audio --older-than DAYS``: delete old recordings, keep messages and transcripts."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.services import message_audio_purge

MAX_DAYS = 36_500


class Command(BaseCommand):
    help = (
        "Delete the stored audio files of messages older than --older-than DAYS. The messages, their text and "
        "transcriptions stay; only the recording goes. --dry-run counts what would be deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", required=True, metavar="DAYS", help="age in days (0 = everything until now)"
        )
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
        parser.add_argument("--json", action="store_true", help="print the result as JSON (for machines)")

    def handle(self, *args: Any, **options: Any) -> None:
        value = options["older_than"].strip()
        if not value.isdigit() or int(value) > MAX_DAYS:
            raise CommandError(f"--older-than must be a whole number of days from 0 to {MAX_DAYS}, not {value[:20]!r}.")
        result = message_audio_purge(older_than=dt.timedelta(days=int(value)), dry_run=options["dry_run"])
        if options["json"]:
            payload = {
                "dryRun": options["dry_run"],
                "messages": result.messages,
                "audioSeconds": result.audio_seconds,
                "cutoff": result.cutoff.isoformat(),
            }
            self.stdout.write(json.dumps(payload))
        elif options["verbosity"] >= 1:
            verb = "Would delete" if options["dry_run"] else "Deleted"
            self.stdout.write(
                f"{verb} the audio of {result.messages} messages ({result.audio_seconds:.1f} s) created before "
                f"{result.cutoff:%Y-%m-%d %H:%M} UTC; the messages and transcripts are kept."
            )
