"""Through real servers — daphne (``runserver``) and ``apsara.serve`` (uvicorn, production) — with a real
``websockets`` client (as a browser would connect), to gemini_sim over TLS."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.typing import Origin

from tests.live.conftest import frames, silence, speech

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
import django
django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from conversations.models import User
call_command("migrate", verbosity=0)
user = User.objects.create_user("daphne-user", password="x")
store = SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.create()
print("sessionid=" + store.session_key)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "apsara.asgi:application"],
    "apsara.serve": ["-m", "apsara.serve", "--host", "127.0.0.1", "--port", "{port}"],
}


@pytest.fixture(params=sorted(SERVERS))
def app_server(
    request: pytest.FixtureRequest, gemini_sim: Any, tmp_path: Path
) -> Iterator[tuple[int, str, Path, Path]]:
    """A server process serving apsara (SQLite file, in-memory layer) with Gemini = the test's simulator.

    Yields (port, session cookie, database file, media dir); the server's log is ``tmp_path / "server.log"``.
    """
    db = tmp_path / "daphne.sqlite3"
    media = tmp_path / "media"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apsara.settings.local",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": f"sqlite:///{db}",
        "REDIS_URL": "",
        "MEDIA_ROOT": str(media),
        "AUDIO_STORAGE": "local",
        "GEMINI_API_KEY": "daphne-test-key",
        "GEMINI_BASE_URL": gemini_sim.base_url,
        "GEMINI_CA_FILE": str(gemini_sim.ca_path),
        "PYTHONPATH": str(ROOT),
    }
    cookie = (
        subprocess.run(
            [sys.executable, "-c", SETUP], env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *(arg.format(port=port) for arg in SERVERS[request.param])],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{request.param} did not start:\n{log.read_text()}") from None
                time.sleep(0.2)
        yield port, cookie, db, media
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_pages_and_their_static_files_through_a_real_server(app_server):
    # DEBUG off, no reverse proxy: the page's stylesheet and scripts must still load (WhiteNoise).
    port, cookie, _, _ = app_server
    page = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Cookie": cookie})
    with urllib.request.urlopen(page, timeout=10) as response:
        html = response.read().decode()
    assert "/static/js/app.js" in html
    for path, kind in (("js/app.js", "javascript"), ("css/app.css", "text/css")):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/{path}", timeout=10) as response:
            assert response.status == 200
            assert kind in response.headers["Content-Type"]
            assert response.read() == (ROOT / "static" / path).read_bytes()


async def test_spoken_turn_through_a_real_server(app_server):
    port, cookie, db, media = app_server
    url = f"ws://127.0.0.1:{port}/live"
    origin = Origin(f"http://127.0.0.1:{port}")

    async with websockets.connect(url, origin=origin) as anonymous:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(anonymous.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            url, origin=Origin("https://evil.example"), additional_headers={"Cookie": cookie}
        ):
            pass
    assert refused.value.response.status_code == 403

    async with websockets.connect(url, origin=origin, additional_headers={"Cookie": cookie}) as ws:
        await ws.send(json.dumps({"type": "create_session", "data": {"config": {"binaryAudio": True}}}))
        created = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert created["type"] == "session_created", created
        for frame in frames(speech(1.0) + silence(1.0)):
            await ws.send(frame)
        audio = b""
        saved: list[dict[str, Any]] = []
        turn_complete = False
        while not (turn_complete and len(saved) == 2):
            item = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(item, bytes):
                audio += item
                continue
            message = json.loads(item)
            if message["type"] == "message_saved":
                saved.append(message)
            elif message["type"] == "session_message":
                turn_complete = turn_complete or message["data"].get("serverContent", {}).get("turnComplete", False)
            else:
                raise AssertionError(message)
        await ws.send(json.dumps({"type": "end_session"}))
        while (message := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != "session_ended":
            pass

    assert len(audio) > 48000
    assert [s["message"]["role"] for s in saved] == ["user", "model"]
    assert saved[1]["message"]["audioDuration"] == pytest.approx(len(audio) / 48000, abs=0.001)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT role, audio, audio_duration FROM conversations_message ORDER BY created_at, id"
        ).fetchall()
        status = conn.execute("SELECT status FROM conversations_livesession").fetchone()[0]
    assert [r[0] for r in rows] == ["user", "model"]
    assert all((media / r[1]).is_file() for r in rows)
    assert rows[0][2] == pytest.approx(1.3, abs=0.05)
    assert status == "ended"


@pytest.mark.parametrize("leave", ["abort", "end_and_close"])
async def test_a_browser_gone_mid_reply_is_not_an_error(app_server, tmp_path, leave):
    """The socket goes while the model is answering (killed tab; or end_session and close without waiting for
    session_ended): the turns are stored and the server logs no traceback."""
    port, cookie, db, _media = app_server
    url = f"ws://127.0.0.1:{port}/live"
    async with websockets.connect(
        url, origin=Origin(f"http://127.0.0.1:{port}"), additional_headers={"Cookie": cookie}
    ) as ws:
        await ws.send(json.dumps({"type": "create_session", "data": {"config": {"binaryAudio": True}}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "session_created"
        for frame in frames(speech(1.0) + silence(1.0)):
            await ws.send(frame)
        while not isinstance(await asyncio.wait_for(ws.recv(), 30), bytes):
            pass  # until the model's first audio
        if leave == "abort":
            ws.transport.abort()  # no close handshake: the browser tab was killed
        else:
            await ws.send(json.dumps({"type": "end_session"}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            roles = [r[0] for r in conn.execute("SELECT role FROM conversations_message ORDER BY created_at, id")]
        if roles == ["user", "model"]:
            break
        await asyncio.sleep(0.2)
    assert roles == ["user", "model"]
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log
