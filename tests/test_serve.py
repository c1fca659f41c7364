"""`python -m apsara.serve` with a required variable missing: one line naming it and how to set it, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def serve(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run the production server with the environment minus the required variables, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"}}
    env.update(
        DJANGO_SETTINGS_MODULE="apsara.settings.production",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL="",
        **variables,
    )
    return subprocess.run(
        [sys.executable, "-m", "apsara.serve", "--port", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("variables", "missing"),
    [
        ({}, ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"]),
        ({"DJANGO_SECRET_KEY": "s3cret"}, ["DJANGO_ALLOWED_HOSTS"]),
        ({"DJANGO_ALLOWED_HOSTS": "example.org", "DJANGO_SECRET_KEY": "  "}, ["DJANGO_SECRET_KEY"]),
    ],
)
def test_a_missing_variable_is_one_line_and_exit_code_2(
    tmp_path: Path, variables: dict[str, str], missing: list[str]
) -> None:
    if (ROOT / ".env").exists():
        pytest.skip(".env in the checkout sets variables for every run")
    done = serve(tmp_path, **variables)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    line = lines[0]
    assert line.startswith("apsara.serve: cannot start: missing environment variable(s) ")
    for name in missing:
        assert f"{name}=" in line  # named, with how to set it
    for name in {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"} - set(missing):
        assert name not in line
    assert "export " in line and "docs/deploy.md" in line
