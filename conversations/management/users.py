"""What the conversation commands share: the user named by --user."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from apsara.validation import check_storable_text
from conversations.models import User


def user_by_username(username: str) -> User:
    """Return the user with exactly this username, or a CommandError naming it."""
    try:
        check_storable_text(username)
    except ValidationError:
        raise CommandError(f"No user {username[:60]!r}: give an existing username to --user.") from None
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(
            f"No user {username[:60]!r}: give an existing username to --user (create one with createsuperuser or "
            "the sign-up page)."
        )
    return user
