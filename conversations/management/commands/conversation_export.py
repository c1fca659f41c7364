"""``manage.py conversation_export ID --out DIR [--force]``: a conversation, its messages and audio, as files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apsara.validation import is_public_id
from conversations.models import Conversation
from conversations.transfer import MANIFEST, ExportError, export_write


class Command(BaseCommand):
    help = (
        f"Write a conversation (anyone's, by its conv_… id) to DIR: {MANIFEST}, the conversation and its messages "
        "in the JSON API's shape (docs/api.md) with a format version, and audio/<message id>.wav for every "
        "recording, read from the audio storage (local or S3). For archiving, handing to its owner, or "
        "conversation_import on another instance. DIR must be new or empty unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", metavar="ID", help="the conversation's id (conv_…)")
        parser.add_argument("--out", required=True, metavar="DIR", type=Path, help="directory to write (created)")
        parser.add_argument(
            "--force", action="store_true", help="write into a non-empty DIR (overwrites the export's own files)"
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON (for machines)")

    def handle(self, *args: Any, **options: Any) -> None:
        public_id = options["id"]
        conversation = (
            Conversation.objects.select_related("owner").filter(public_id=public_id).first()
            if is_public_id(public_id)
            else None
        )
        if conversation is None:
            raise CommandError(f"No conversation {public_id[:60]!r}: give a conv_… id (the admin lists them).")
        directory: Path = options["out"]
        try:
            manifest = export_write(conversation=conversation, directory=directory, force=options["force"])
        except ExportError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"Cannot write to {directory}: {error.strerror or error}; check the path.") from None
        audio_files = sum(1 for m in manifest["messages"] if m["export"]["audioFile"])
        if options["json"]:
            payload = {
                "conversation": conversation.public_id,
                "messages": len(manifest["messages"]),
                "audioFiles": audio_files,
                "out": str(directory),
            }
            self.stdout.write(json.dumps(payload))
        elif options["verbosity"] >= 1:
            self.stdout.write(
                f"Exported {conversation.public_id} ({conversation.owner.get_username()}): "
                f"{len(manifest['messages'])} messages, {audio_files} audio files, to {directory}."
            )
