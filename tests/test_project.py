"""The project is wired: settings load, migrations are complete, the ASGI app imports."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_migrations_are_complete() -> None:
    """No model change is missing a migration."""
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_asgi_application_imports() -> None:
    """The ASGI entry point builds the protocol router."""
    from apsara.asgi import application

    assert application is not None
