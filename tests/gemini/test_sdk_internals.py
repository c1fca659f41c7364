"""gemini.sdk_internals: the installed google-genai still has the private parts Apsara relies on.

An upgrade that renames or reshapes one fails here by name, instead of silently sending every audio chunk through
the SDK's slow path (gemini.wire) or misreporting URLs in gemini_check (gemini.report).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from google import genai
from google.genai import types
from google.genai.live import AsyncSession

from gemini import sdk_internals
from gemini.client import live_client
from gemini.wire import GeminiWire

SDK = f"google-genai {version('google-genai')}"


class _Socket:
    async def send(self, message: str) -> None:  # pragma: no cover - never called here
        pass


def test_a_client_exposes_its_options_and_live_base_url():
    client = genai.Client(api_key="k", http_options=types.HttpOptions(api_version="v1beta"))
    api = sdk_internals.client_api(client)
    options = sdk_internals.http_options(api)
    assert isinstance(options, types.HttpOptions), f"{SDK}: Client._api_client._http_options changed"
    assert options.api_version == "v1beta" and options.base_url
    assert sdk_internals.websocket_base_url(api).startswith("wss://"), f"{SDK}: _websocket_base_url() changed"


def test_a_live_session_exposes_its_socket_and_client():
    client = genai.Client(api_key="k")
    socket = _Socket()
    session = AsyncSession(api_client=sdk_internals.client_api(client), websocket=socket)  # type: ignore[arg-type]
    assert sdk_internals.session_socket(session) is socket, f"{SDK}: AsyncSession._ws changed"
    assert sdk_internals.session_api_client(session) is sdk_internals.client_api(client), f"{SDK}: _api_client"
    assert GeminiWire(session)._fast, "gemini.wire would fall back to the SDK's slow path"


def test_server_messages_convert_as_the_sdk_receives_them():
    response: dict[str, Any] = {
        "serverContent": {"turnComplete": True, "outputTranscription": {"text": "hi"}},
        "sessionResumptionUpdate": {"newHandle": "h-1", "resumable": True},
    }
    for vertex in (False, True):
        fields = sdk_internals.live_server_message_fields(response, vertex=vertex)
        message = sdk_internals.live_server_message(fields)
        assert isinstance(message, types.LiveServerMessage), f"{SDK}: LiveServerMessage._from_response changed"
        assert message.server_content is not None and message.server_content.turn_complete
        assert message.session_resumption_update is not None
        assert message.session_resumption_update.new_handle == "h-1"
    assert sdk_internals.live_server_message_fields({"unknownField": 1}, vertex=False) == {}


async def test_the_live_client_takes_the_fast_path_against_the_simulator(gemini_sim: Any):
    client = live_client()
    async with client.aio.live.connect(model="gemini-3.1-flash-live-preview", config={}) as session:
        wire = GeminiWire(session)
        assert wire._fast, f"{SDK}: a real live session no longer exposes what gemini.wire needs"
