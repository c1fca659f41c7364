"""The project is wired: settings load, migrations are complete, the ASGI app imports, static files are served."""

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client


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


@pytest.mark.parametrize(
    "path", ["js/talk.js", "admin/css/base.css", "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"]
)
def test_static_files_are_served_without_debug(client: Client, settings: Any, path: str) -> None:
    # What production (DEBUG off) needs with no reverse proxy and no collectstatic: WhiteNoise, from the finders.
    assert settings.DEBUG is False
    response = client.get(f"/static/{path}")
    assert response.status_code == 200
    served = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert served == Path(str(finders.find(path))).read_bytes()
    assert client.get("/static/js/no-such-file.js").status_code == 404
