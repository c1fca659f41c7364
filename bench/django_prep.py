"""Prepare the bridge's database for a run: migrate, create bench users, print one session cookie per user."""

from __future__ import annotations

import json
import sys


def main() -> None:
    """Print ``{"cookies": [...]}`` for ``argv[1]`` users named bench-0…"""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from conversations.models import User
    from live.models import LiveSession

    users = int(sys.argv[1])
    call_command("migrate", verbosity=0, interactive=False)
    # Leftovers of an earlier run must not count against the per-user session limit.
    LiveSession.objects.filter(user__username__startswith="bench-").delete()
    cookies = []
    for i in range(users):
        user, _ = User.objects.get_or_create(username=f"bench-{i}")
        client = Client()
        client.force_login(user)
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}")
    print(json.dumps({"cookies": cookies}), flush=True)


if __name__ == "__main__":
    main()
