"""Real server processes for the teardown and churn tests: daphne and ``apsara.serve`` (uvicorn), on PostgreSQL when
``DATABASE_URL`` points at it (a throwaway database) or a SQLite file, with the in-memory or the Redis channel layer,
Gemini being the test's simulator. Each server's log is kept and scanned for anything an operator would be paged for.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.services import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]

SERVERS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "apsara.asgi:application"],
    "apsara.serve": ["-m", "apsara.serve", "--host", "127.0.0.1", "--port", "{port}"],
}

# What must never be in a server's log: an error record, a traceback, uvicorn's report of an application that
# raised, asyncio's reports of a task garbage-collected while pending or of a coroutine never awaited.
PROBLEM = re.compile(
    r"\bERROR\b|CRITICAL|Traceback|Exception in ASGI|Task was destroyed|never awaited|Exception ignored"
)

SETUP = """
import sys
import django
django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from conversations.models import User
call_command("migrate", verbosity=0)
user = User.objects.create_user(sys.argv[1], password="x")
store = SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.create()
print(f"{user.pk} sessionid={store.session_key}")
"""

# What the admin's "end live sessions" action does, then a message saved elsewhere (the REST chat, another tab).
STAFF_END = """
import sys
import django
django.setup()
from live.models import LiveSession
from live.services import live_session_end_request
print(live_session_end_request(live_session=LiveSession.objects.get(public_id=sys.argv[1])))
"""

ANNOUNCE = """
import sys
from asgiref.sync import async_to_sync
import django
django.setup()
from channels.layers import get_channel_layer
from conversations.events import user_group
event = {"type": "message.saved", "sessionId": None, "conversationId": sys.argv[2], "message": {"text": sys.argv[2]}}
async_to_sync(get_channel_layer().group_send)(user_group(int(sys.argv[1])), event)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_url() -> str:
    """The Redis the suite runs against (CI sets REDIS_URL; without it the test skips, or fails in CI)."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        skip_or_fail("REDIS_URL is not set")
    return url


@contextlib.contextmanager
def server_database(tmp_path: Path) -> Iterator[str]:
    """A database for server processes: a throwaway PostgreSQL database when DATABASE_URL is PostgreSQL, else SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'server.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    name = f"apsara_servers_{uuid.uuid4().hex[:12]}"
    base, _, _ = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def server_env(gemini_sim: Any, *, database_url: str, media: Path, redis: str = "") -> dict[str, str]:
    """The environment of a server process (and of the scripts acting on its database and channel layer)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apsara.settings.local",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis,
        # Its own keys in Redis: nothing left by another run (or test) is delivered to these processes.
        "CHANNEL_LAYER_PREFIX": f"apsara-test-{uuid.uuid4().hex[:8]}",
        "MEDIA_ROOT": str(media),
        "AUDIO_STORAGE": "local",
        "GEMINI_API_KEY": "teardown-test-key",
        "GEMINI_BASE_URL": gemini_sim.base_url,
        "GEMINI_CA_FILE": str(gemini_sim.ca_path),
        "PYTHONPATH": str(ROOT),
    }


def run_django(env: dict[str, str], code: str, *args: str) -> str:
    """Run a snippet in a fresh Django process with ``env``; return its last line of output."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def setup_user(env: dict[str, str], username: str = "teardown-user") -> tuple[int, str]:
    """Migrate the database, create ``username`` and log them in; return (user id, session cookie)."""
    user_id, cookie = run_django(env, SETUP, username).split(" ", 1)
    return int(user_id), cookie


@dataclass
class Server:
    """One server process and its log."""

    kind: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/live"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.origin}/live/health", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def problems(self) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if PROBLEM.search(line)]

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (what a process manager sends), then wait; kill only if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(f"{self.kind} did not stop within {timeout}s:\n{self.log.read_text()}") from None
        return self.process.returncode


@contextlib.contextmanager
def running_server(kind: str, env: dict[str, str], log: Path) -> Iterator[Server]:
    """Start a server, wait until it accepts connections, stop it at the end (if the test did not)."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *(arg.format(port=port) for arg in SERVERS[kind])],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(kind, port, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
