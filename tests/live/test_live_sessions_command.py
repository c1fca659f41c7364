"""``manage.py live_sessions``: listing with filters, and ``--end`` through live_session_end_request."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from live.models import LiveSession
from tests.factories import LiveSessionFactory, LiveWorkerFactory, UserFactory
from tests.live.test_services import listen, receive

pytestmark = pytest.mark.django_db(transaction=True)  # the end message goes out on commit


def run(*args: str) -> str:
    out = StringIO()
    call_command("live_sessions", *args, stdout=out)
    return out.getvalue()


def ids(*args: str) -> list[str]:
    return [row["id"] for row in json.loads(run("--json", *args))]


@pytest.fixture
def sessions() -> dict[str, LiveSession]:
    ada, bob = UserFactory.create(username="ada", email="ada@example.test"), UserFactory.create(username="bob")
    return {
        "ada_active": LiveSessionFactory.create(
            user=ada, status=LiveSession.Status.ACTIVE, messages_in=3, messages_out=2
        ),
        "ada_ended": LiveSessionFactory.create(
            user=ada, status=LiveSession.Status.ENDED, last_error_code="UPSTREAM_UNAVAILABLE", last_error="1011"
        ),
        "bob_reconnecting": LiveSessionFactory.create(user=bob, status=LiveSession.Status.RECONNECTING),
        "bob_detached": LiveSessionFactory.create(user=bob, status=LiveSession.Status.DETACHED),
        # Still marked open, but its process died (its lease ran out): not active.
        "bob_orphaned": LiveSessionFactory.create(
            user=bob,
            status=LiveSession.Status.ACTIVE,
            worker=LiveWorkerFactory.create(expires_at=timezone.now() - timedelta(seconds=1)).name,
        ),
    }


def test_lists_every_session_newest_first_with_its_numbers(sessions):
    rows = json.loads(run("--json"))
    assert [r["id"] for r in rows] == [s.public_id for s in reversed(sessions.values())]
    ada = next(r for r in rows if r["id"] == sessions["ada_active"].public_id)
    assert (ada["user"], ada["status"], ada["messagesIn"], ada["messagesOut"]) == ("ada", "active", 3, 2)
    assert ada["conversationId"] == sessions["ada_active"].conversation.public_id
    table = run("-v", "2")
    assert "session" in table.splitlines()[0] and "last error" in table.splitlines()[0]
    assert sessions["ada_ended"].public_id in table and "UPSTREAM_UNAVAILABLE" in table


def test_filters_by_user_status_and_active(sessions):
    ada = sessions["ada_active"].user
    assert set(ids("--user", "ada")) == {sessions["ada_active"].public_id, sessions["ada_ended"].public_id}
    assert ids("--user", "ADA@example.test") == ids("--user", str(ada.pk)) == ids("--user", "ada")
    assert set(ids("--active")) == {sessions["ada_active"].public_id, sessions["bob_reconnecting"].public_id}
    assert ids("--status", "detached") == [sessions["bob_detached"].public_id]
    assert len(ids("--status", "detached", "--status", "ended")) == 2
    assert ids("--user", "bob", "--active") == [sessions["bob_reconnecting"].public_id]
    assert len(ids("--limit", "1")) == 1
    assert sessions["bob_orphaned"].public_id in ids("--status", "active")  # what its row says, held or not
    assert run("--status", "failed") == "No live sessions match.\n"
    assert run("-v", "0") == ""


def test_end_ends_the_session_and_tells_its_consumer(sessions):
    session = sessions["ada_active"]
    channel = listen(session)
    out = run("--end", session.public_id, "--reason", "maintenance")
    assert out == f"{session.public_id} (ada, ended): ended.\n"
    assert receive(channel) == {"type": "live.end", "session_id": session.public_id, "reason": "maintenance"}
    session.refresh_from_db()
    assert (session.status, session.last_error_code, session.last_error) == ("ended", "ENDED_BY_STAFF", "maintenance")
    assert run("--end", session.public_id) == f"{session.public_id} (ada, ended): already ended.\n"


def test_end_dry_run_changes_nothing(sessions):
    session = sessions["bob_reconnecting"]
    channel = listen(session)
    result = json.loads(run("--end", session.public_id, "--dry-run", "--json"))
    assert (result["outcome"], result["dryRun"], result["session"]["status"]) == ("would end", True, "reconnecting")
    session.refresh_from_db()
    assert session.status == LiveSession.Status.RECONNECTING
    with pytest.raises(TimeoutError):
        receive(channel, timeout=0.3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--end", "live_nope"], "No live session 'live_nope'"),
        (["--end", "x", "--user", "ada"], "--end takes a session id only"),
        (["--dry-run"], "--dry-run only applies to --end"),
        (["--status", "running"], "--status must be one of connecting, active"),
        (["--active", "--status", "ended"], "Use --active or --status, not both"),
        (["--user", "nobody"], "No user 'nobody'"),
        (["--limit", "0"], "--limit must be a whole number from 1 to 1000"),
        (["--limit", "many"], "--limit must be a whole number"),
    ],
)
def test_bad_flags_are_refused_clearly(sessions, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


@pytest.mark.timeout(60)
async def test_end_closes_a_real_session_on_its_socket(gemini_sim, connect):
    """Through a real consumer and gemini_sim: the command's --end reaches the browser as session_ended."""
    from channels.db import database_sync_to_async

    ws = await connect()
    created = await ws.create(model="gemini-3.1-flash-live-preview")
    out = await database_sync_to_async(run)("--end", created["sessionId"])
    assert out.endswith(": ended.\n")
    ended = await ws.expect("session_ended")
    assert ended["sessionId"] == created["sessionId"]
