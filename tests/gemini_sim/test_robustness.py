"""Malformed input of every shape gets the service's invalid-argument answer, never an internal error."""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from websockets.asyncio.client import connect

WEIRD = [5, "x", [], {}, None]
TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "parameters": {
                    "type": "OBJECT",
                    "properties": {"city": {"type": "STRING", "enum": ["Paris"]}, "n": {"type": "INTEGER"}},
                },
            }
        ]
    }
]
SETUP = {
    "model": "models/gemini-2.5-flash-native-audio-latest",
    "tools": TOOLS,
    "systemInstruction": {"parts": [{"text": "hi"}]},
    "generationConfig": {"speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}},
    "realtimeInputConfig": {"automaticActivityDetection": {"silenceDurationMs": 100}},
    "sessionResumption": {"transparent": True},
}
MESSAGES = [
    {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "hi"}]}], "turnComplete": True}},
    {"realtimeInput": {"audio": {"data": "AAAA", "mimeType": "audio/pcm;rate=16000"}}},
    {"realtimeInput": {"mediaChunks": [{"data": "AAAA", "mimeType": "image/jpeg"}]}},
    {"toolResponse": {"functionResponses": [{"id": "x", "name": "f", "response": {"a": 1}}]}},
    {"contextUpdate": {"systemInstruction": {"parts": [{"text": "x"}]}, "tools": TOOLS}},
]
REST_BODY = {
    "contents": [{"role": "user", "parts": [{"text": "weather in Paris"}]}],
    "systemInstruction": {"parts": [{"text": "x"}]},
    "generationConfig": {"maxOutputTokens": 5},
    "tools": TOOLS,
}


def _variants(obj: Any) -> Iterator[Any]:
    """Copies of obj with one value (at any depth) replaced by a value of the wrong shape."""

    def paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
        if prefix:
            yield prefix
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            yield from paths(value, (*prefix, key))

    for path in paths(obj):
        for weird in WEIRD:
            out = copy.deepcopy(obj)
            cur = out
            for key in path[:-1]:
                cur = cur[key]
            cur[path[-1]] = weird
            yield out


async def test_malformed_live_messages_never_crash_a_session(sim):
    url = sim.base_url.replace("https", "wss") + "/ws/google.ai.generativelanguage.v1beta.GenerativeService."
    url += "BidiGenerateContent?key=k"
    cases = [[{"setup": s}, {"realtimeInput": {"text": "weather in Paris?"}}] for s in _variants(SETUP)]
    cases += [[{"setup": SETUP}, m] for msg in MESSAGES for m in _variants(msg)]
    codes: list[int | None] = []
    gate = asyncio.Semaphore(40)

    async def run(frames: list[dict[str, Any]]) -> None:
        async with gate, connect(url, ssl=sim.ssl_context) as ws:
            for frame in frames:
                await ws.send(json.dumps(frame))
            try:
                async with asyncio.timeout(0.25):
                    async for _ in ws:
                        pass
            except TimeoutError:
                pass
            except Exception:
                pass
            codes.append(ws.close_code)

    await asyncio.gather(*(run(c) for c in cases))
    assert len(codes) == len(cases) > 200
    assert 1011 not in codes
    assert 1007 in codes


def test_malformed_rest_bodies_are_client_errors(sim):
    ctx = ssl.create_default_context(cafile=str(sim.ca_path))
    statuses = []
    for body in _variants(REST_BODY):
        req = urllib.request.Request(
            sim.base_url + "/v1beta/models/gemini-2.5-flash:generateContent?key=k",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, context=ctx) as resp:
                statuses.append(resp.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    assert statuses and all(s < 500 for s in statuses)
    assert 400 in statuses
