"""Every use of google-genai's private internals, in one place.

google-genai is pinned (requirements.txt) and ``tests/gemini/test_sdk_internals.py`` fails, naming what is
missing, if an installed version no longer has what these functions rely on. Callers get ``None`` (and take the
SDK's public path) rather than an error when something is absent.
"""

from __future__ import annotations

import json
from typing import Any

from google.genai import _live_converters, types


def session_socket(session: Any) -> Any | None:
    """The websockets connection under a live ``AsyncSession`` (``AsyncSession._ws``)."""
    return getattr(session, "_ws", None)


def session_api_client(session: Any) -> Any | None:
    """The ``BaseApiClient`` a live ``AsyncSession`` was opened with (``AsyncSession._api_client``)."""
    return getattr(session, "_api_client", None)


def client_api(client: Any) -> Any:
    """A ``genai.Client``'s ``BaseApiClient`` (``Client._api_client``): its options, version and URLs."""
    return client._api_client


def http_options(api: Any) -> types.HttpOptions:
    """The options a ``BaseApiClient`` really uses, defaults filled in (``_http_options``)."""
    options: types.HttpOptions = api._http_options
    return options


def websocket_base_url(api: Any) -> str:
    """The ``wss://`` base the SDK builds Live URLs on (``_websocket_base_url()``)."""
    url: str = api._websocket_base_url()
    return url


def live_server_message_fields(response: dict[str, Any], *, vertex: bool) -> dict[str, Any]:
    """A Live server message's fields as ``AsyncSession.receive`` converts them (empty: nothing it knows)."""
    if vertex:
        return _live_converters._LiveServerMessage_from_vertex(response)
    return _live_converters._LiveServerMessage_from_mldev(response)


def live_server_message(fields: dict[str, Any]) -> types.LiveServerMessage:
    """The ``LiveServerMessage`` those fields make, built as ``AsyncSession.receive`` builds it."""
    return types.LiveServerMessage._from_response(response=fields, kwargs={})


def live_setup_message(client: Any, *, model: str, config: types.LiveConnectConfig) -> dict[str, Any]:
    """The first frame ``client.aio.live.connect(model=, config=)`` sends on the Gemini API: ``{"setup": {…}}``.

    The same conversion the SDK's ``AsyncLive.connect`` applies (``_LiveConnectParameters_to_mldev``, then its
    encoding of bytes), so a browser in direct mode sends exactly what the bridge would.
    """
    from google.genai import _common, _transformers

    api = client_api(client)
    transformed = _transformers.t_model(api, model)
    message = _common.convert_to_dict(
        _live_converters._LiveConnectParameters_to_mldev(
            api_client=api,
            from_object=types.LiveConnectParameters(model=transformed, config=config).model_dump(exclude_none=True),
        )
    )
    message.pop("config", None)
    message = _common.encode_unserializable_types(message)
    loaded: dict[str, Any] = json.loads(json.dumps(message))  # as sent: enums as their names
    loaded.setdefault("setup", {})["model"] = transformed
    return loaded
