"""Login throttling (django-axes): lockout by account and by address, the page, cool-off, unlocking, parallel logins."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from asgiref.sync import sync_to_async
from axes.models import AccessAttempt
from django.contrib.auth.backends import ModelBackend
from django.core.management import call_command
from django.db import connection, connections
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from conversations.login_throttling import client_ip_address
from conversations.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # UserFactory's
LIMIT = 5
COOL_OFF = timedelta(minutes=15)
PAUSED = "Too many failed login attempts: logging in is paused for this account or from this address."
WRONG = "Please enter a correct username and password"


@pytest.fixture(autouse=True)
def _throttling(settings: Any) -> None:
    """Pin the limit and the cool-off to the documented defaults, whatever the environment says."""
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = COOL_OFF
    settings.AXES_RESET_ON_SUCCESS = True
    settings.LOGIN_TRUSTED_PROXY_COUNT = 0


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Refusing logins is routine: nothing is logged as an error (warnings for failures and lockouts are expected)."""
    yield
    errors = [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]
    assert errors == []


def log_in(client: Client, username: str, password: str = PASSWORD, *, address: str = "127.0.0.1", **meta: Any) -> Any:
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address, **meta)


def fail(client: Client, username: str, times: int, **kwargs: Any) -> list[HttpResponse]:
    return [log_in(client, username, "wrong password", **kwargs) for _ in range(times)]


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_refused_after_the_limit_with_the_wait_on_the_login_page(client: Client, user: User) -> None:
    """Failures below the limit are plain wrong passwords; the failure reaching it is answered 429 with the wait."""
    *before, reaching = fail(client, user.username, LIMIT)
    for response in before:
        assert response.status_code == 200
        assert WRONG in response.content.decode()
    page = reaching.content.decode()
    assert reaching.status_code == 429
    assert reaching["Retry-After"] == "900"
    assert f'<div class="form-error" role="alert"><p>{PAUSED} Try again in 15 minutes' in page
    assert WRONG not in page
    assert f'value="{user.username}"' in page  # the form is still there, username kept


@pytest.mark.django_db(transaction=True)
async def test_refused_the_same_way_under_asgi(async_client: AsyncClient) -> None:
    """Through the async middleware chain the server runs (ASGI), the failure reaching the limit gets the same 429."""
    user = await sync_to_async(UserFactory.create)()
    form = {"username": user.username, "password": "wrong password"}
    try:
        statuses = [(await async_client.post(reverse("login"), form)).status_code for _ in range(LIMIT - 1)]
        reaching = await async_client.post(reverse("login"), form)
    finally:
        await sync_to_async(connections.close_all)()
    assert statuses == [200] * (LIMIT - 1)
    assert reaching.status_code == 429
    assert reaching["Retry-After"] == "900"
    assert PAUSED in reaching.content.decode()


def test_correct_password_during_lockout_is_refused(client: Client, user: User) -> None:
    """Once locked, even the right password is refused (it is not checked at all) and nobody is logged in."""
    fail(client, user.username, LIMIT)
    response = log_in(client, user.username)
    assert response.status_code == 429
    assert PAUSED in response.content.decode()
    assert not logged_in(client)


def test_lockout_by_account_holds_from_any_address(client: Client, user: User) -> None:
    """Failures for one account from many addresses lock that account, even from an address that never failed."""
    for number in range(LIMIT):
        fail(client, user.username, 1, address=f"203.0.113.{number + 1}")
    response = log_in(client, user.username, address="198.51.100.7")
    assert response.status_code == 429
    other: User = UserFactory.create()
    assert log_in(Client(), other.username, address="198.51.100.7").status_code == 302  # the address is not locked


def test_lockout_by_address_holds_for_any_account(client: Client, user: User) -> None:
    """Failures from one address for many names lock the address, even for an account that never failed."""
    *_, reaching = [fail(client, f"guess{number}", 1, address="203.0.113.9")[0] for number in range(LIMIT)]
    assert reaching.status_code == 429
    assert reaching["Retry-After"] == "900"  # the failure reaching the limit was a new name's first
    assert "Try again in 15 minutes" in reaching.content.decode()
    assert log_in(client, user.username, address="203.0.113.9").status_code == 429
    assert log_in(Client(), user.username, address="198.51.100.7").status_code == 302  # the account is not locked


def test_forwarded_for_header_is_not_trusted_by_default(client: Client, user: User) -> None:
    """A client that makes up X-Forwarded-For is still counted by the address it connects from."""
    for number in range(LIMIT):
        fail(client, f"guess{number}", 1, address="203.0.113.9", HTTP_X_FORWARDED_FOR=f"192.0.2.{number + 1}")
    response = log_in(client, user.username, address="203.0.113.9", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert response.status_code == 429


def test_behind_a_trusted_proxy_each_client_is_counted_apart(settings: Any, client: Client, user: User) -> None:
    """With LOGIN_TRUSTED_PROXY_COUNT=1 the proxy's X-Forwarded-For entry is the client: one locked, the other not."""
    settings.LOGIN_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for number in range(LIMIT):
        fail(client, f"guess{number}", 1, address=proxy, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9")
    assert log_in(client, user.username, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    assert log_in(Client(), user.username, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302


@pytest.mark.parametrize(
    ("proxies", "meta", "expected"),
    [
        (0, {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "192.0.2.1"}, "203.0.113.9"),
        (1, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "192.0.2.1, 203.0.113.9"}, "203.0.113.9"),
        (2, {"REMOTE_ADDR": "10.0.0.3", "HTTP_X_FORWARDED_FOR": "192.0.2.1,203.0.113.9, 10.0.0.2"}, "203.0.113.9"),
        (2, {"REMOTE_ADDR": "10.0.0.3", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, "10.0.0.3"),  # bypassed a proxy
        (1, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "not-an-address"}, "10.0.0.2"),
        (1, {"REMOTE_ADDR": "10.0.0.2"}, "10.0.0.2"),
        (0, {"REMOTE_ADDR": "::ffff:203.0.113.9"}, "203.0.113.9"),
        (0, {"REMOTE_ADDR": "2001:DB8:0:0::1"}, "2001:db8::1"),
    ],
)
def test_client_ip_address(settings: Any, proxies: int, meta: dict[str, str], expected: str) -> None:
    """REMOTE_ADDR unless proxies are trusted; then the entry the outermost proxy wrote, if there is a valid one."""
    settings.LOGIN_TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/login/")
    request.META.pop("REMOTE_ADDR")
    request.META.update(meta)
    assert client_ip_address(request) == expected


def test_lockout_ends_after_the_cool_off(client: Client, user: User) -> None:
    """A minute before the cool-off ends logging in is still refused (saying so); after it, the password works."""
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail(client, user.username, LIMIT)
    with time_machine.travel(start + COOL_OFF - timedelta(minutes=1), tick=False):
        response = log_in(client, user.username)
        assert response.status_code == 429
        assert response["Retry-After"] == "60"
        assert "Try again in 1 minute," in response.content.decode()
    with time_machine.travel(start + COOL_OFF + timedelta(seconds=1), tick=False):
        assert log_in(client, user.username).status_code == 302
        assert logged_in(client)


def test_refused_attempts_do_not_extend_the_cool_off(client: Client, user: User) -> None:
    """Attempts made while locked are not counted: the lockout still ends one cool-off after the last failure."""
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail(client, user.username, LIMIT)
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        assert log_in(client, user.username, "wrong again").status_code == 429
    with time_machine.travel(start + COOL_OFF + timedelta(seconds=1), tick=False):
        assert log_in(client, user.username).status_code == 302


@pytest.mark.parametrize(
    ("command", "arguments"),
    [("axes_reset_username", ["{username}"]), ("axes_reset_ip", ["127.0.0.1"]), ("axes_reset", [])],
)
def test_staff_unlock_with_a_command(client: Client, user: User, command: str, arguments: list[str]) -> None:
    """axes' reset commands (by username, by address, everything) end a lockout at once."""
    fail(client, user.username, LIMIT)
    out = StringIO()
    call_command(command, *[argument.format(username=user.username) for argument in arguments], stdout=out)
    assert out.getvalue() == "1 attempts removed.\n"
    assert log_in(client, user.username).status_code == 302


def test_staff_unlock_in_the_admin(client: Client, user: User, staff_user: User) -> None:
    """The admin lists the attempts that lock an account; deleting them unlocks it."""
    fail(Client(), user.username, LIMIT)
    client.force_login(staff_user)
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = client.get(changelist, {"locked_out": "yes"}).content.decode()
    assert user.username in page and "Locked Out" in page
    attempt = AccessAttempt.objects.get(username=user.username)
    response = client.post(changelist, {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"})
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert log_in(Client(), user.username).status_code == 302


def test_admin_login_is_throttled_too(client: Client, staff_user: User) -> None:
    """/admin/login/ counts failures with the site's login page, refuses with the same message, and answers 429."""
    admin_login = reverse("admin:login")
    fail(client, staff_user.username, LIMIT - 1)  # on the site's page
    form = {"username": staff_user.username, "password": "wrong password", "next": "/admin/"}
    response = client.post(admin_login, form)
    assert response.status_code == 429
    assert f'<p class="errornote">\n    {PAUSED}' in response.content.decode()
    response = client.post(admin_login, {**form, "password": PASSWORD})
    assert response.status_code == 429
    assert not logged_in(client)


def test_successful_login_forgets_that_accounts_failures(client: Client, user: User) -> None:
    """LOGIN_RESET_ON_SUCCESS (the default): after logging in, the account starts again from no failures."""
    fail(client, user.username, LIMIT - 1)
    assert log_in(client, user.username).status_code == 302
    client.logout()
    assert [response.status_code for response in fail(client, user.username, LIMIT - 1)] == [200] * (LIMIT - 1)


def test_without_reset_on_success_failures_keep_counting(settings: Any, client: Client, user: User) -> None:
    """LOGIN_RESET_ON_SUCCESS=false: failures before a successful login still count towards the limit."""
    settings.AXES_RESET_ON_SUCCESS = False
    fail(client, user.username, LIMIT - 1)
    assert log_in(client, user.username).status_code == 302
    client.logout()
    assert fail(client, user.username, 1)[0].status_code == 429


def sign_up(client: Client) -> Any:
    return client.post(
        reverse("signup"),
        {"username": "mallory", "password1": "correct-horse-battery", "password2": "correct-horse-battery"},
        REMOTE_ADDR="127.0.0.1",
    )


def own_login(client: Client) -> Any:
    mallory: User = UserFactory.create(username="mallory")
    return log_in(client, mallory.username)


@pytest.mark.parametrize("succeed", [sign_up, own_login], ids=["signing-up", "own-account"])
def test_logging_in_elsewhere_does_not_reset_the_address(client: Client, succeed: Callable[[Client], Any]) -> None:
    """Signing up (which logs in) or logging in to one's own account leaves the address's failures counted."""
    for number in range(LIMIT - 1):
        fail(client, f"guess{number}", 1)
    assert succeed(client).status_code == 302
    client.logout()
    assert fail(client, "one-more-guess", 1)[0].status_code == 429


def test_api_takes_no_password(anonymous_client: Any, user: User) -> None:
    """The JSON API authenticates by session only: a username and password sent with it (Basic) are ignored."""
    token = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    response = anonymous_client.get(reverse("api-conversation-list"), HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 401


PARALLEL = 160


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "spread",
    ["one account, one address", "one account, many addresses", "many names, one address"],
)
def test_parallel_wrong_passwords_are_checked_no_more_than_the_limit(
    settings: Any, monkeypatch: pytest.MonkeyPatch, spread: str
) -> None:
    """160 wrong passwords at once (real threads, the test database): LIMIT are checked, the rest refused with 429.

    A real (slow) password hasher keeps the attempts overlapping, as they would on a server.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    victim: User = UserFactory.create()
    checked: list[str] = []
    check_password = ModelBackend.authenticate

    def counting(self: ModelBackend, request: Any, username: str | None = None, **kwargs: Any) -> Any:
        checked.append(str(username))
        return check_password(self, request, username, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", counting)
    start = threading.Barrier(PARALLEL)

    def attempt(number: int) -> int:
        username = f"guess{number}" if spread == "many names, one address" else victim.username
        address = f"10.1.{number // 250}.{number % 250 + 1}" if spread == "one account, many addresses" else "10.0.0.1"
        try:
            start.wait(timeout=60)
            return log_in(Client(), username, "wrong password", address=address).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        statuses = sorted(pool.map(attempt, range(PARALLEL)))

    assert len(checked) == LIMIT
    assert statuses == [200] * (LIMIT - 1) + [429] * (PARALLEL - LIMIT + 1)
    assert log_in(Client(), victim.username, address="10.0.0.1").status_code == 429
