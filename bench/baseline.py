"""The baseline: the minimal voice proxy a developer would write instead of the bridge.

A bare ``websockets`` server; each browser socket opens a Gemini Live session with the same google-genai SDK
(one client per process), then relays binary PCM16 16 kHz frames up (``send_realtime_input``) and model audio
down as binary frames. After the Gemini handshake it sends the text frame ``{"type":"ready"}``. No
authentication, no recording, no database, no limits: the floor of what a relay costs in Python.

Run: ``python -m bench.baseline --port 8766 --gemini-url https://127.0.0.1:PORT --ca CA.pem``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import ssl

import websockets
from google import genai
from google.genai import types
from websockets.asyncio.server import ServerConnection, serve

INPUT_MIME = "audio/pcm;rate=16000"


def make_client(gemini_url: str, ca_file: str, api_key: str) -> genai.Client:
    """Build the SDK client the way gemini.client does for a custom endpoint (trusting its CA per client)."""
    context = ssl.create_default_context(cafile=ca_file)
    return genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=gemini_url,
            api_version="v1beta",  # Gemini serves Live on v1beta only; the SDK's default (v1) is a 404
            client_args={"verify": context},
            async_client_args={"verify": context, "ssl": context},
        ),
    )


async def relay(socket: ServerConnection, client: genai.Client, model: str) -> None:
    """Relay one browser socket to one Gemini Live session until either side ends."""
    config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
    async with client.aio.live.connect(model=model, config=config) as session:
        await socket.send(json.dumps({"type": "ready"}))

        async def upstream() -> None:
            async for message in socket:
                if isinstance(message, bytes):
                    await session.send_realtime_input(audio=types.Blob(data=message, mime_type=INPUT_MIME))

        async def downstream() -> None:
            while True:
                async for response in session.receive():
                    content = response.server_content
                    if content and content.model_turn and content.model_turn.parts:
                        for part in content.model_turn.parts:
                            if part.inline_data and part.inline_data.data:
                                await socket.send(part.inline_data.data)

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


async def main(host: str, port: int, gemini_url: str, ca_file: str, api_key: str, model: str) -> None:
    """Serve until SIGTERM or SIGINT."""
    client = make_client(gemini_url, ca_file, api_key)

    async def handler(socket: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await relay(socket, client, model)

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # Fair against daphne, which does not negotiate permessage-deflate either.
    async with serve(handler, host, port, compression=None, max_size=1 << 20):
        print(json.dumps({"listening": port}), flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gemini-url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--api-key", default="bench")
    parser.add_argument("--model", default="gemini-3.1-flash-live-preview")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.gemini_url, args.ca, args.api_key, args.model))
