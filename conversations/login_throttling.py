"""Login throttling: the project's side of django-axes.

django-axes counts failed logins in the database, by account and by address, and refuses logins for a cool-off once
either reaches the limit (settings: ``AXES_*`` in apsara/settings/base.py; docs/operations.md, "Login throttling").
Around it, this module decides:

- who the client is (`client_ip_address`): REMOTE_ADDR, or what a known number of proxies wrote;
- that attempts for one account, or from one address, run one at a time (`login_attempt_lock`), so attempts sent
  together cannot all pass the lockout check before the first failure is counted;
- what a successful login forgets (`LoginAttemptHandler`): that account's failures from that address, nothing else;
- what a refused login answers (`LoginLockoutMiddleware`): 429 with Retry-After; the login form itself says why
  (`conversations.forms.LoginForm`, also the admin's).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponseBase

from apsara.middleware import ResponseMiddleware

logger = logging.getLogger(__name__)

# Set on a request whose login was refused: how long until the lockout ends at the latest (a timedelta).
RETRY_AFTER_ATTRIBUTE = "login_retry_after"


def client_ip_address(request: HttpRequest) -> str | None:
    """Return the client's address as axes counts it (``AXES_CLIENT_IP_CALLABLE``).

    By default the connecting address (REMOTE_ADDR): X-Forwarded-For is anyone's to write. With
    ``LOGIN_TRUSTED_PROXY_COUNT`` = N, N proxies each append the address they were connected from to X-Forwarded-For,
    so the N-th entry from the right is the client as the outermost proxy saw it and anything left of it is the
    client's own say. A header too short to have come through them, or an entry that is not an address, falls back to
    REMOTE_ADDR. The result is normalised (it is stored in an inet column and compared as text on SQLite).
    """
    remote = _normalised_ip(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.LOGIN_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    client = _normalised_ip(forwarded[-proxies]) if len(forwarded) >= proxies else None
    if client is None:
        logger.warning(
            "Login throttling: X-Forwarded-For has no client address %d proxies from the right; counting the "
            "connecting address (check LOGIN_TRUSTED_PROXY_COUNT).",
            proxies,
        )
        return remote
    return client


def _normalised_ip(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # a dual-stack socket's ::ffff:a.b.c.d is the IPv4 client a.b.c.d
    return str(address)


_process_lock = threading.Lock()


@contextmanager
def login_attempt_lock(request: HttpRequest, username: str | None) -> Iterator[None]:
    """Run the block as the only login attempt for this account and the only one from this address.

    axes checks for a lockout before the password is checked and counts the failure after: attempts sent together all
    passed the check before the first was counted (40 parallel wrong passwords on PostgreSQL: 13 checked against a
    limit of 5). On PostgreSQL the locks are transaction-scoped advisory locks, so every server process takes turns,
    and an attempt's failure is committed before the next attempt looks; an exception leaving the block rolls the
    attempt back, so raise only after it. Elsewhere (SQLite, in development) attempts take turns within this process.
    """
    AxesProxyHandler.update_request(request)  # the address exactly as axes will count it
    using = router.db_for_write(AccessAttempt)
    connection = connections[using]
    if connection.vendor != "postgresql":
        with _process_lock:
            yield
        return
    keys = sorted({f"axes-ip:{request.axes_ip_address}", f"axes-username:{username}"})  # type: ignore[attr-defined]
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            for key in keys:  # in one order, so two attempts never each hold the lock the other waits for
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
        yield


class LoginAttemptHandler(AxesDatabaseHandler):  # type: ignore[misc]
    """axes' database handler, except that a successful login forgets only that account's failures from that address.

    axes' own reset forgets every failure of the account and every failure from the address: anyone could wipe their
    address's count by logging in to an account of their own (or by signing up, which logs in) and go on guessing
    other people's passwords from it.
    """

    def reset_user_attempts(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        """Delete the failures of the account that just logged in, made from the address it logged in from."""
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(
            username=username,
            ip_address=request.axes_ip_address,  # type: ignore[attr-defined]
        ).delete()
        return count

    def lockout_remaining(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> timedelta:
        """Return how long the lockout on this request lasts at most: the cool-off after the newest failure counted.

        Only the counts at the limit (the account's, the address's) hold the lockout; an older failure of theirs may
        expire first and end it sooner.
        """
        cool_off = get_cool_off(request)
        if cool_off is None:
            return timedelta(0)
        limit = get_failure_limit(request, credentials)
        newest = []
        for attempts in self.get_user_attempts(request, credentials):  # one queryset per lockout parameter
            totals = attempts.aggregate(failures=Sum("failures_since_start"), newest=Max("attempt_time"))
            if (totals["failures"] or 0) >= limit:
                newest.append(totals["newest"])
        if not newest:
            return cool_off
        # A row created by this very attempt is stamped a moment after the attempt's time: never more than a cool-off.
        remaining = max(newest) + cool_off - request.axes_attempt_time  # type: ignore[attr-defined]
        return min(max(remaining, timedelta(0)), cool_off)


def lockout_remaining(request: HttpRequest, credentials: dict[str, Any]) -> timedelta:
    """Return how long the lockout on this request lasts at most (the configured cool-off for another handler)."""
    handler = AxesProxyHandler.get_implementation()
    if isinstance(handler, LoginAttemptHandler):
        return handler.lockout_remaining(request, credentials)
    return get_cool_off(request) or timedelta(0)


def lockout_message(remaining: timedelta) -> str:
    """Say why a login was refused and when to try again, in whole minutes rounded up."""
    minutes = max(1, math.ceil(remaining.total_seconds() / 60))
    return (
        "Too many failed login attempts: logging in is paused for this account or from this address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask an administrator to unlock it."
    )


class LoginLockoutMiddleware(ResponseMiddleware):
    """Answer 429 Too Many Requests, with Retry-After, when axes refused a login; the page itself says why.

    Used instead of axes.middleware.AxesMiddleware, which replaces the page with a response of its own (a template
    with no form, or bare text) and, under ASGI, builds it from shifted arguments in django-axes 8.3.1
    (jazzband/django-axes#1494). No database access here: the login form leaves the wait on the request.
    """

    def process(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if getattr(request, "axes_locked_out", False):
            remaining = getattr(request, RETRY_AFTER_ATTRIBUTE, None) or get_cool_off(request) or timedelta(0)
            response.status_code = 429
            response.headers["Retry-After"] = str(max(1, math.ceil(remaining.total_seconds())))
        return response
