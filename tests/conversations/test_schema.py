"""The OpenAPI document is generated without warnings, is valid, and is served."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.core.management import call_command

EXPECTED_OPERATIONS = {
    ("/api/conversations", "get"),
    ("/api/conversations", "post"),
    ("/api/conversations/{conv_id}", "get"),
    ("/api/conversations/{conv_id}", "patch"),
    ("/api/conversations/{conv_id}", "delete"),
    ("/api/conversations/{conv_id}/messages", "get"),
    ("/api/ai/generate", "post"),
    ("/api/files/{file_id}/download", "get"),
}


def test_schema_generates_and_validates_without_warnings() -> None:
    """`spectacular --validate --fail-on-warn` passes (OpenAPI 3 validation of the generated document)."""
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations >= EXPECTED_OPERATIONS


@pytest.mark.django_db
def test_schema_is_served(anonymous_client) -> None:
    """GET /api/schema/ serves the document (JSON on request) without a login."""
    response = anonymous_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    generate = schema["paths"]["/api/ai/generate"]["post"]
    assert "text/event-stream" in generate["responses"]["200"]["content"]
    assert "event: meta" in generate["responses"]["200"]["description"]
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"] == "#/components/schemas/ErrorDetail"
    message = schema["components"]["schemas"]["Message"]["properties"]
    assert {"messageType", "role", "content", "liveContent", "config", "interrupted", "usage", "createdAt"} <= set(
        message
    )


@pytest.mark.django_db
def test_docs_page_uses_no_cdn(anonymous_client) -> None:
    """The Swagger UI page loads its scripts from the app's own static files, never from another host."""
    import re

    response = anonymous_client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any("swagger-ui" in source for source in sources)
    assert not [source for source in sources if source.startswith(("http:", "https:", "//"))]
    assert "/api/schema/" in page
