"""apsara.middleware: query strings no database can store are refused before any view; the shared base class."""

from __future__ import annotations

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Client, staff_user: User) -> Client:
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/conversations/conversation/?kind__exact=%00",
        "/admin/conversations/message/?q=%00",
        "/admin/live/livesession/?status__exact=%00",
        "/admin/conversations/conversation/?%00=1",
    ],
)
def test_an_admin_filter_with_a_nul_is_a_400_not_a_500(staff_client: Client, path: str) -> None:
    response = staff_client.get(path)
    assert response.status_code == 400
    assert b"cannot be used: Null characters are not allowed." in response.content


def test_a_page_with_too_many_query_parameters_is_a_400_without_an_error_log(staff_client: Client, caplog) -> None:
    response = staff_client.get("/admin/conversations/conversation/?" + "&".join(f"p{i}=1" for i in range(1200)))
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_an_ordinary_query_goes_through(staff_client: Client) -> None:
    assert staff_client.get("/admin/conversations/conversation/?kind__exact=live&q=caf%C3%A9").status_code == 200


@settings(max_examples=50, deadline=None)
@given(value=st.text(alphabet=st.characters(codec="utf-8"), max_size=20))
def test_no_admin_query_value_is_a_server_error(staff_client: Client, value: str) -> None:
    response = staff_client.get("/admin/conversations/conversation/", {"kind__exact": value, "q": value})
    assert response.status_code in (200, 302, 400)
