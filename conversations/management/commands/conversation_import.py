"""``manage.py conversation_import DIR --user U``: store a conversation_export as U's conversation, idempotently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from conversations.management.users import user_by_username
from conversations.services import ImportConflictError, conversation_import
from conversations.transfer import ExportError, export_read


class Command(BaseCommand):
    help = (
        "Import a directory written by conversation_export as USER's conversation (on this or another instance). "
        "The whole export is checked first; then everything is stored in one transaction, or nothing. Importing the "
        "same export again adds only what is missing (nothing, the second time). Ids that belong to someone else "
        "here (e.g. the original, when importing for another user) are replaced by ids derived from them and USER."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", metavar="DIR", type=Path, help="the export's directory")
        parser.add_argument("--user", required=True, metavar="USERNAME", help="the username that will own it")
        parser.add_argument("--json", action="store_true", help="print the result as JSON (for machines)")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = user_by_username(options["user"])
        directory: Path = options["directory"]
        try:
            export = export_read(directory)
        except ExportError as error:
            raise CommandError(f"Not imported: {error}") from None
        except OSError as error:
            raise CommandError(f"Not imported: cannot read {directory}: {error.strerror or error}.") from None
        try:
            result = conversation_import(owner=owner, export=export)
        except ImportConflictError as error:
            raise CommandError(f"Not imported: {error} Nothing was written.") from None
        except IntegrityError:
            raise CommandError(
                "Not imported: another import stored the same ids at the same time. Nothing was written; run the "
                "import again."
            ) from None
        except ValidationError as error:
            raise CommandError(f"Not imported: {'; '.join(error.messages)}. Nothing was written.") from None
        conversation = result.conversation
        if options["json"]:
            payload = {
                "conversation": conversation.public_id,
                "created": result.created,
                "messagesCreated": result.messages_created,
                "messagesKept": result.messages_kept,
                "idsDerived": result.ids_derived,
            }
            self.stdout.write(json.dumps(payload))
        elif options["verbosity"] >= 1:
            verb = "Imported" if result.created else "Already imported"
            derived = " under new ids (the export's belong to someone else here)" if result.ids_derived else ""
            self.stdout.write(
                f"{verb} {conversation.public_id} for {owner.get_username()}{derived}: "
                f"{result.messages_created} messages added, {result.messages_kept} already there."
            )
