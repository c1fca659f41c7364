"""A send to a socket that is already closing is quiet: a debug line, never an ERROR traceback in the server's log.

A browser that closes mid-reply (its close frame arrives while model audio is still being relayed) leaves the server
sending on a socket the WebSocket library already considers closed: daphne's autobahn raises ``Disconnected``
("Attempt to send on a closed protocol"), uvicorn ``ClientDisconnected``. Both mean "nobody is listening any more",
which the disconnect that follows handles; neither is worth paging an operator for.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import websockets
from autobahn.exception import Disconnected

from live.transport import ChannelsSocket
from tests.live.real_servers import run_django, running_server, server_database, server_env, setup_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

STORY = "Tell me a story in 6 sentences"
# A client's close frame (1000), masked with a zero key as RFC 6455 allows: written straight onto the connection so
# that the client keeps the TCP connection open (and reading) while the server still has audio to send.
CLOSE_FRAME = b"\x88\x82\x00\x00\x00\x00\x03\xe8"
STATUSES = """
import django
django.setup()
from live.models import LiveSession
print(",".join(sorted(LiveSession.objects.values_list("status", flat=True))))
"""


class _Socket(ChannelsSocket):
    """The transport on its own, with a ``base_send`` the test chooses."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    async def base_send(self, message: dict[str, Any]) -> None:  # type: ignore[override]
        raise self.error


@pytest.mark.parametrize(
    "error", [Disconnected("Attempt to send on a closed protocol"), ConnectionResetError("gone")], ids=type
)
async def test_a_send_to_a_closed_socket_is_dropped_at_debug(error: BaseException, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG, logger="live")
    socket = _Socket(error)
    await socket._send_while_open({"type": "websocket.send", "text": "{}"})
    await socket._send_while_open({"type": "websocket.send", "bytes": b"\x00\x00"})  # and after: not even tried
    records = [r for r in caplog.records if r.name.startswith("live")]
    assert [r.levelno for r in records] == [logging.DEBUG, logging.DEBUG], records
    assert "closed socket" in records[0].getMessage()


async def test_another_runtime_error_is_not_hidden() -> None:
    """Only a closed socket is quiet: a bug (a message the server refuses) still raises."""
    socket = _Socket(RuntimeError("Unexpected ASGI message 'websocket.send'"))
    with pytest.raises(RuntimeError):
        await socket._send_while_open({"type": "websocket.send", "text": "{}"})


async def _until(ws: Any, kind: str, within: float = 30) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        message = await asyncio.wait_for(ws.recv(), max(0.01, deadline - loop.time()))
        if isinstance(message, str) and (data := json.loads(message))["type"] == kind:
            return dict(data)
        if isinstance(message, str) and data["type"] == "session_error" and kind == "session_created":
            raise AssertionError(data)


@pytest.mark.parametrize("kind", ["daphne", "apsara.serve"])
async def test_a_browser_closing_mid_reply_leaves_a_quiet_log(gemini_sim: Any, tmp_path: Path, kind: str) -> None:
    """Several times: a reply streams, a protocol error is answered (``session_error``), and the browser closes
    while the audio still comes; the server's log has no ERROR and no traceback."""
    with server_database(tmp_path) as database:
        env = server_env(gemini_sim, database_url=database, media=tmp_path / "media")
        with running_server(kind, env, tmp_path / "server.log") as server:
            for i in range(4):
                # One person each: sessions left detached count against a person's limit of open calls.
                _, cookie = await asyncio.to_thread(setup_user, env, f"closer-{i}")
                ws = await websockets.connect(
                    server.url,
                    origin=server.origin,  # type: ignore[arg-type]
                    additional_headers={"Cookie": cookie},
                )
                await ws.send(json.dumps({"type": "create_session", "data": {"config": {"binaryAudio": True}}}))
                await _until(ws, "session_created")
                await ws.send(json.dumps({"type": "send_message", "data": {"text": STORY}}))
                while not isinstance(await asyncio.wait_for(ws.recv(), 30), bytes):
                    pass
                await ws.send(json.dumps({"type": "no_such_message"}))  # answered with an error, the call goes on
                await _until(ws, "session_error")
                ws.transport.write(CLOSE_FRAME)
                await asyncio.sleep(1.0)  # the server sends on, to a socket that is closing
                ws.transport.abort()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            statuses = ""
            while loop.time() < deadline:  # the server notices each socket gone and detaches its session
                statuses = await asyncio.to_thread(run_django, env, STATUSES)
                if statuses == ",".join(["detached"] * 4):
                    break
                await asyncio.sleep(0.5)
            assert statuses == ",".join(["detached"] * 4)
            assert server.problems() == [], server.log.read_text()
            assert server.stop() in (0, 1, -15), server.log.read_text()
            assert server.problems() == [], server.log.read_text()
