"""Frame size limits through both real servers, as a browser meets them: ``runserver`` (daphne, development and
the other tests) and ``python -m apsara.serve`` (uvicorn, production).

Up to the server's limit (WEBSOCKET_MAX_MESSAGE_BYTES, 16 MiB, set for both) a frame reaches the bridge, which
answers FRAME_TOO_LARGE past LIVE_MAX_FRAME_BYTES (512 KiB) and the socket stays usable; beyond it the server closes
the socket with 1009. Before these limits were set, daphne closed at 1 MiB and uvicorn at 2 MiB.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.typing import Origin

from tests.live.test_servers import ROOT, SETUP, free_port

pytestmark = pytest.mark.timeout(180)

SOFT = 512 * 1024  # LIVE_MAX_FRAME_BYTES's default
HARD = 16 * 1024 * 1024  # WEBSOCKET_MAX_MESSAGE_BYTES's default

SERVERS = {
    "runserver": ["manage.py", "runserver", "--noreload", "127.0.0.1:{port}"],
    "apsara.serve": ["-m", "apsara.serve", "--host", "127.0.0.1", "--port", "{port}"],
}


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, gemini_sim: Any, tmp_path: Path) -> Iterator[tuple[int, str, Path]]:
    """A server process with its default limits (nothing about them in its environment); yields (port, cookie, log)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("LIVE_MAX_FRAME_BYTES", "WEBSOCKET_MAX_MESSAGE_BYTES")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "apsara.settings.local",
            "DJANGO_DEBUG": "0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": "",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "GEMINI_API_KEY": "frame-test-key",
            "GEMINI_BASE_URL": gemini_sim.base_url,
            "GEMINI_CA_FILE": str(gemini_sim.ca_path),
            "PYTHONPATH": str(ROOT),
        }
    )
    setup = subprocess.run(
        [sys.executable, "-c", SETUP], env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    cookie = setup.stdout.strip().splitlines()[-1]
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
        yield port, cookie, log
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


async def answer(ws: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 30))


async def ping(port: int, cookie: str) -> dict[str, Any]:
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/live", origin=Origin(f"http://127.0.0.1:{port}"), additional_headers={"Cookie": cookie}
    ) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        return await answer(ws)


async def test_frames_past_the_limit_are_refused_then_closed_past_the_servers_limit(server, request):
    port, cookie, log = server
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/live",
        origin=Origin(f"http://127.0.0.1:{port}"),
        additional_headers={"Cookie": cookie},
        compression=None,  # the sizes below are the sizes on the wire
        max_size=None,
    ) as ws:
        # Past the bridge's limit, up to the server's own (both servers' old limits included): refused, usable.
        for frame in (
            "x" * (SOFT + 1),
            bytes(SOFT + 2),
            bytes(3 * 1024 * 1024),
            json.dumps({"type": "send_message", "data": {"text": "é" * (2 * 1024 * 1024)}}),
            bytes(HARD),
        ):
            await ws.send(frame)
            error = await answer(ws)
            assert (error["type"], error["error"]["code"]) == ("session_error", "FRAME_TOO_LARGE"), error
            await ws.send(json.dumps({"type": "ping"}))
            assert (await answer(ws))["type"] == "pong"
        # Past the server's limit: closed as soon as the frame's header says so, the rest unread.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.send(bytes(HARD + 1))
            await answer(ws)
    received = closed.value.rcvd
    if "apsara.serve" in request.node.callspec.id:
        assert received is not None and received.code == 1009 and str(HARD) in received.reason
    else:
        # daphne (autobahn) drops the connection without a close frame (a browser reports 1006).
        assert received is None or received.code == 1009
    assert (await ping(port, cookie))["type"] == "pong"  # the server goes on
    assert "Traceback" not in log.read_text()
