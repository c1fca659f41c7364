"""Moving LiveSession from conversations to live (conversations 0003, live 0001 and 0002) keeps every row.

Migrated for real: back to before the move, rows written with the historical models, then forward again.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from conversations.models import Conversation, User
from live.models import LiveSession

pytestmark = pytest.mark.django_db(transaction=True)

LAST_BEFORE_THE_MOVE = ("conversations", "0002_livesession_last_seen_at")
BEFORE_THE_MOVE = [LAST_BEFORE_THE_MOVE, ("live", None)]


@pytest.fixture
def before_the_move() -> Iterator[MigrationExecutor]:
    """Unapply the move; migrate the database forward to the latest state again afterwards, however the test ends."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE_THE_MOVE)
    try:
        yield MigrationExecutor(connection)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)


def test_moving_live_sessions_to_the_live_app_keeps_rows_foreign_keys_and_permissions(before_the_move) -> None:
    """Rows written before the move are live.LiveSession's after it, with their user and conversation; the table is
    not renamed; staff permissions on live sessions follow the content type."""
    old = before_the_move.loader.project_state(LAST_BEFORE_THE_MOVE).apps
    OldUser = old.get_model("conversations", "User")
    OldConversation = old.get_model("conversations", "Conversation")
    OldLiveSession = old.get_model("conversations", "LiveSession")
    ContentType = old.get_model("contenttypes", "ContentType")
    Permission = old.get_model("auth", "Permission")

    ada = OldUser.objects.create(username="ada-before-the-move")
    talk = OldConversation.objects.create(owner=ada, title="Before the move", kind="live")
    kept = OldLiveSession.objects.create(
        public_id="live_000000000000000000000001",
        user=ada,
        conversation=talk,
        model="gemini-3.1-flash-live-preview",
        status="detached",
        resumption_handle="handle-1",
        messages_in=4,
        audio_seconds_out=2.5,
        config={"request": {"binaryAudio": True}},
    )
    orphan = OldLiveSession.objects.create(
        public_id="live_000000000000000000000002", user=ada, conversation=None, model="m", status="failed"
    )
    # A database from before the move: its live sessions' content type is conversations', with a staff permission.
    ContentType.objects.filter(app_label="live", model="livesession").delete()
    content_type, _ = ContentType.objects.get_or_create(app_label="conversations", model="livesession")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="change_livesession", defaults={"name": "Can change live session"}
    )
    staff = OldUser.objects.create(username="staff-before-the-move", is_staff=True)
    staff.user_permissions.add(permission)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    tables = connection.introspection.table_names()
    assert "conversations_livesession" in tables and "live_livesession" not in tables
    assert LiveSession._meta.db_table == "conversations_livesession"
    session = LiveSession.objects.select_related("user", "conversation").get(pk=kept.pk)
    assert (session.public_id, session.status, session.resumption_handle) == (kept.public_id, "detached", "handle-1")
    assert (session.messages_in, session.audio_seconds_out, session.config) == (
        4,
        2.5,
        {"request": {"binaryAudio": True}},
    )
    assert session.user.username == "ada-before-the-move"
    assert session.conversation is not None and session.conversation.public_id == talk.public_id
    assert list(Conversation.objects.get(pk=talk.pk).live_sessions.all()) == [session]
    assert list(User.objects.get(pk=ada.pk).live_sessions.order_by("pk")) == [
        session,
        LiveSession.objects.get(pk=orphan.pk),
    ]
    assert LiveSession.objects.get(pk=orphan.pk).conversation is None

    staff_user = User.objects.get(pk=staff.pk)
    assert staff_user.has_perm("live.change_livesession")
    assert not staff_user.has_perm("conversations.change_livesession")

    # The database's foreign keys still hold: no session of a user who does not exist ...
    with pytest.raises(IntegrityError), transaction.atomic():
        LiveSession.objects.create(user_id=10**9, model="m")
    # ... and the model's on_delete rules act through the new app's model.
    Conversation.objects.filter(pk=talk.pk).delete()
    assert LiveSession.objects.get(pk=kept.pk).conversation_id is None
    User.objects.filter(pk=ada.pk).delete()
    assert not LiveSession.objects.filter(pk__in=[kept.pk, orphan.pk]).exists()


def test_models_and_migrations_agree() -> None:
    """``makemigrations --check`` finds nothing to do."""
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
