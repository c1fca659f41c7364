"""``manage.py conversation_create --user U [--kind rest|live] [--title T]``: a new conversation; prints its id."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.management.users import user_by_username
from conversations.models import Conversation
from conversations.services import TITLE_MAX_CHARS, conversation_create

KINDS = [Conversation.Kind.REST.value, Conversation.Kind.LIVE.value]


class Command(BaseCommand):
    help = (
        "Create an empty conversation for a user and print its id (conv_…), alone on standard output, for scripts. "
        "--kind is where it starts: rest (typed chat, the default) or live (as the Talk page's new call makes); "
        "once it has messages its kind follows them (rest, live, or hybrid for both)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, metavar="USERNAME", help="the owner's username")
        parser.add_argument("--kind", choices=KINDS, default=Conversation.Kind.REST.value, help="default: rest")
        parser.add_argument("--title", default="", help=f"at most {TITLE_MAX_CHARS} characters (default: untitled)")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = user_by_username(options["user"])
        title = options["title"]
        if len(title.strip()) > TITLE_MAX_CHARS:
            raise CommandError(f"--title is {len(title.strip())} characters long; shorten it to {TITLE_MAX_CHARS}.")
        try:
            conversation = conversation_create(owner=owner, title=title, kind=options["kind"])
        except ValidationError as error:
            raise CommandError(f"Cannot create the conversation: {'; '.join(error.messages)}") from None
        self.stdout.write(conversation.public_id)
