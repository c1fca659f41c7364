"""What staff and operators see: the admin's usage page and quotas, ``manage.py usage_report``; direct mode's token."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from live.models import LiveSession
from tests.conversations.test_api import assert_error
from usage.models import UsageDay, UsageQuota
from usage.quotas import next_reset
from usage.services import usage_add, utc_today

pytestmark = pytest.mark.django_db


@pytest.fixture
def spent(user: Any, other_user: Any) -> None:
    today = utc_today()
    usage_add(user_id=user.pk, model="gemini-2.5-flash", tokens_in=1200, tokens_out=300, requests=4)
    usage_add(user_id=user.pk, model="gemini-live", audio_in_seconds=90, audio_out_seconds=30, sessions=2)
    usage_add(user_id=other_user.pk, model="gemini-2.5-flash", day=today - dt.timedelta(days=3), tokens_in=7)
    usage_add(user_id=other_user.pk, model="gemini-2.5-flash", day=today - dt.timedelta(days=30), tokens_in=99)


def test_the_admin_shows_usage_with_totals_a_chart_and_people(staff_user, user, spent):
    client = Client()
    client.force_login(staff_user)
    page = client.get("/admin/usage/usageday/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Totals" in html and "1,606" in html  # 1,200 + 300 + 7 + 99 tokens
    assert html.count('<svg role="img"') == 2 and "<rect" in html and "Tokens per day" in html
    assert user.username in html and "<script" not in html.split("usage-summary")[1].split("</section>")[0]
    one = client.get("/admin/usage/usageday/", {"q": user.username})
    assert "1,500" in one.content.decode()
    assert client.get("/admin/usage/usagequota/add/").status_code == 200
    someone = Client()
    someone.force_login(user)
    assert someone.get("/admin/usage/usageday/").status_code == 302, "staff only"


def test_usage_report_text_and_json(user, spent):
    out = StringIO()
    call_command("usage_report", stdout=out)
    text = out.getvalue()
    assert "gemini-2.5-flash" in text and "gemini-live" in text and "total" in text and "1,200" in text
    out = StringIO()
    call_command("usage_report", "--user", user.username, "--since", str(utc_today()), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["user"] == user.username and {r["model"] for r in report["rows"]} == {
        "gemini-2.5-flash",
        "gemini-live",
    }
    assert report["totals"] == {
        "tokensIn": 1200,
        "tokensOut": 300,
        "audioInSeconds": 90.0,
        "audioOutSeconds": 30.0,
        "liveMinutes": 2.0,
        "sessions": 2,
        "requests": 4,
    }
    out = StringIO()
    call_command("usage_report", "--since", str(utc_today() - dt.timedelta(days=3)), "--json", stdout=out)
    assert json.loads(out.getvalue())["totals"]["tokensIn"] == 1207


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--user", "nobody"], "No user 'nobody'"),
        (["--user", "a\x00b"], "--user needs"),
        (["--since", "yesterday"], "--since must be a date as YYYY-MM-DD"),
        (["--since", "2026-02-30"], "--since must be a date"),
    ],
)
def test_usage_report_refuses_bad_flags_clearly(args, said):
    with pytest.raises(CommandError, match=said):
        call_command("usage_report", *args)


@pytest.mark.django_db(transaction=True)
def test_the_direct_token_is_refused_at_the_quota(api_client, user, settings, gemini_sim):
    settings.LIVE_DIRECT_MODE = "allowed"
    settings.LIVE_DIRECT_TOKEN_RATE = "1000/hour"
    cache.clear()
    UsageQuota.objects.create(user=user, daily_tokens=10)
    usage_add(user_id=user.pk, model="m", tokens_out=10)
    answer = api_client.post("/api/live/token", data="{}", content_type="application/json")
    error = assert_error(answer, 429, None, "quota_exceeded")
    assert error["resetsAt"] == next_reset().isoformat().replace("+00:00", "Z")
    assert 0 < int(answer["Retry-After"]) <= 86_400
    assert not LiveSession.objects.exists()
    UsageDay.objects.filter(user=user).update(day=utc_today() - dt.timedelta(days=1))
    assert api_client.post("/api/live/token", data="{}", content_type="application/json").status_code == 201
    assert UsageDay.objects.get(user=user, day=utc_today()).sessions == 1
