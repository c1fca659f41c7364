"""The LiveSession admin's "End selected live sessions" action."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client
from django.urls import reverse

from live.admin import end_live_sessions
from live.models import LiveSession
from live.services import live_session_group
from tests.factories import LiveSessionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    return client


def test_live_session_admin_offers_the_end_action(staff_client: Client) -> None:
    """The changelist offers the action."""
    from django.contrib import admin

    actions = admin.site.get_model_admin(LiveSession).actions
    assert actions is not None and end_live_sessions in actions
    LiveSessionFactory.create()  # the action menu only shows with rows to act on
    response = staff_client.get(reverse("admin:live_livesession_changelist"))
    assert response.status_code == 200
    assert b"end_live_sessions" in response.content


def test_end_action_ends_selected_sessions_and_notifies_their_consumers(staff_client: Client) -> None:
    """Ending two sessions (one held, one already ended) ends the held one, tells its consumer, reports both."""
    held = LiveSessionFactory.create(status=LiveSession.Status.ACTIVE, channel_name="specific.x!y")
    finished = LiveSessionFactory.create(status=LiveSession.Status.ENDED)
    untouched = LiveSessionFactory.create(status=LiveSession.Status.ACTIVE)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live_session_group(held.public_id), channel)

    response = staff_client.post(
        reverse("admin:live_livesession_changelist"),
        {"action": "end_live_sessions", "_selected_action": [held.pk, finished.pk]},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert shown == ["Ended 1 live session(s).", "1 session(s) had already ended."]
    assert async_to_sync(layer.receive)(channel)["type"] == "live.end"
    held.refresh_from_db()
    untouched.refresh_from_db()
    assert held.status == LiveSession.Status.ENDED
    assert untouched.status == LiveSession.Status.ACTIVE


def test_end_action_is_refused_to_non_staff() -> None:
    """A logged-in non-staff user cannot reach the admin, so cannot end anyone's session."""
    session = LiveSessionFactory.create(status=LiveSession.Status.ACTIVE)
    client = Client()
    client.force_login(UserFactory.create())
    response = client.post(
        reverse("admin:live_livesession_changelist"),
        {"action": "end_live_sessions", "_selected_action": [session.pk]},
    )
    assert response.status_code == 302  # to the admin login
    session.refresh_from_db()
    assert session.status == LiveSession.Status.ACTIVE
