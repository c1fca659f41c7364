"""A rolling restart through real ``apsara.serve`` processes: SIGTERM to the one holding a call hands the call over.

Two processes share PostgreSQL (or SQLite) and Redis; the browser is a websockets client. The stopping process tells
the browser SERVER_RESTART and closes with 1012; the session is resumable at once; the other process resumes it with
Gemini's memory, and every turn is stored once. (tests/deploy runs the same through nginx with Chromium.)
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import websockets

from tests.live.real_servers import redis_url, running_server, server_database, server_env, setup_user
from tests.live.test_teardown import _connect, _create, _state, _until

pytestmark = pytest.mark.timeout(180)


async def test_sigterm_hands_the_call_to_another_process_with_nothing_lost(gemini_sim, tmp_path: Path) -> None:
    redis = redis_url()
    with server_database(tmp_path) as database:
        env = server_env(gemini_sim, database_url=database, media=tmp_path / "media", redis=redis)
        env["LIVE_DRAIN_SECONDS"] = "8"
        _, cookie = await asyncio.to_thread(setup_user, env)
        with (
            running_server("apsara.serve", env, tmp_path / "a.log") as first,
            running_server("apsara.serve", env, tmp_path / "b.log") as second,
        ):
            ws = await _connect(first, cookie)
            created = await _create(ws)
            session_id = created["sessionId"]
            await ws.send(json.dumps({"type": "send_message", "data": {"text": "My name is Ada"}}))
            while (await _until(ws, "message_saved", within=30))["message"]["role"] != "model":
                pass

            first.process.terminate()  # SIGTERM, as a process manager's rolling restart sends
            stopping = time.monotonic()
            reconnecting = await _until(ws, "session_reconnecting", within=15)
            assert reconnecting["reason"] == "SERVER_RESTART"
            told = time.monotonic() - stopping
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
            state = await _state(env)
            assert state["sessions"][session_id] == "detached"  # resumable at once, not after a lease

            resumed_ws = await _connect(second, cookie)
            asked = time.monotonic()
            await resumed_ws.send(json.dumps({"type": "resume_session", "data": {"sessionId": session_id}}))
            resumed = await _until(resumed_ws, "session_resumed", within=15)
            print(f"\nbrowser told {told:.2f} s after SIGTERM; resumed elsewhere in {time.monotonic() - asked:.2f} s")
            assert resumed["contextReloaded"] is False  # Gemini's own state came along (the handle)
            await resumed_ws.send(json.dumps({"type": "send_message", "data": {"text": "What is my name?"}}))
            reply = await _until(resumed_ws, "message_saved", within=30, sessionId=session_id)
            while reply["message"]["role"] != "model":
                reply = await _until(resumed_ws, "message_saved", within=30, sessionId=session_id)
            assert "Ada" in json.dumps(reply["message"])
            await resumed_ws.close()

            assert first.process.wait(15) in (0, 1, -15)
            assert first.problems() == [], first.log.read_text()
            log = first.log.read_text()
            assert "draining 1 session" in log, log
            roles = (await _state(env))["roles"][session_id]
            assert roles == ["user", "model", "user", "model"], roles  # each turn stored once
            status, health = await asyncio.to_thread(second.health)
            assert status == 200, health
            assert second.problems() == [], second.log.read_text()
