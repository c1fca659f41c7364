"""REST against the simulator with the real google-genai SDK (sync and async, httpx), and with raw HTTP."""

from __future__ import annotations

import json
import ssl
import urllib.request

import pytest
from google.genai import errors, types

from .conftest import client_for, text_of, vertex_client_for


def _user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def _model(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(text=text)])


def test_generate_content_remembers_a_name_from_history(sim):
    client = client_for(sim)
    history = [_user("Hello, my name is Alice."), _model("Nice to meet you, Alice."), _user("What is my name?")]
    response = client.models.generate_content(model="gemini-2.5-flash", contents=history)
    assert "Alice" in text_of(response)
    assert response.candidates
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count is not None and usage.total_token_count is not None
    assert usage.prompt_token_count > 0
    assert usage.total_token_count > usage.prompt_token_count


def test_generate_content_without_the_fact_does_not_invent_it(sim):
    client = client_for(sim)
    response = client.models.generate_content(model="gemini-2.5-pro", contents="What is my name?")
    assert "Alice" not in text_of(response)
    assert "haven't told me" in text_of(response)


def test_generate_content_sends_the_key_and_json_the_service_expects(sim):
    sim.clear_records()
    client = client_for(sim, api_key="k-123", api_version=None)
    client.models.generate_content(
        model="gemini-3-flash",
        contents="Hi there",
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.2),
    )
    [req] = sim.records(type="http")
    assert req["path"] == "/v1/models/gemini-3-flash:generateContent"  # the SDK's default (v1) is fine for REST
    assert req["headers"]["x-goog-api-key"] == "k-123"
    assert req["body"]["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert req["body"]["generationConfig"]["temperature"] == 0.2


async def test_stream_generate_content_arrives_in_several_chunks(sim):
    client = client_for(sim)
    history = [
        _user("Please remember the number 42."),
        _model("Got it."),
        _user("What number did I ask you to remember?"),
    ]
    chunks = [
        c async for c in await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents=history)
    ]
    assert len(chunks) >= 3
    text = "".join(text_of(c) for c in chunks)
    assert "42" in text
    last = chunks[-1]
    assert last.candidates
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count is not None
    assert last.usage_metadata.candidates_token_count > 0
    [req] = [r for r in sim.records(type="http") if "stream" in r["path"]][-1:]
    assert req["query"] == {"alt": "sse"}


def test_sync_stream_and_async_generate(sim):
    client = client_for(sim)
    text = "".join(
        text_of(c) for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents="count to 5")
    )
    assert "1, 2, 3, 4, 5" in text


async def test_async_generate(sim):
    client = client_for(sim)
    response = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="what is 6 times 7")
    assert "42" in text_of(response)


def test_list_models_reports_live_models_with_bidi(sim):
    client = client_for(sim)
    models = {m.name: m for m in client.models.list()}
    live_actions = models["models/gemini-3.1-flash-live-preview"].supported_actions
    rest_actions = models["models/gemini-2.5-flash"].supported_actions
    assert live_actions is not None and "bidiGenerateContent" in live_actions
    assert rest_actions is not None and "generateContent" in rest_actions
    assert "models/gemini-live-2.5-flash-native-audio" not in models  # Vertex only


def test_live_model_is_not_found_for_generate_content(sim):
    with pytest.raises(errors.ClientError) as exc:
        client = client_for(sim)
        client.models.generate_content(model="gemini-3.1-flash-live-preview", contents="hi")
    assert exc.value.code == 404
    assert exc.value.message is not None and "not supported for generateContent" in exc.value.message


def test_unknown_model_is_404(sim):
    with pytest.raises(errors.ClientError) as exc:
        client = client_for(sim)
        client.models.generate_content(model="gemini-0-nonsense", contents="hi")
    assert exc.value.code == 404


def test_empty_text_is_invalid_argument(sim):
    with pytest.raises(errors.ClientError) as exc:
        client = client_for(sim)
        client.models.generate_content(model="gemini-2.5-flash", contents=[_user(" ")])
    assert exc.value.code == 400
    assert exc.value.status == "INVALID_ARGUMENT"
    assert exc.value.message is not None and "empty text" in exc.value.message


def test_restricted_keys_reject_others(make_sim):
    sim = make_sim(api_keys=["good"])
    client = client_for(sim, api_key="good")
    assert client.models.generate_content(model="gemini-2.5-flash", contents="hi").text
    with pytest.raises(errors.ClientError) as exc:
        client = client_for(sim, api_key="bad")
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert exc.value.code == 400
    assert exc.value.message == "API key not valid. Please pass a valid API key."


def test_vertex_rest_uses_bearer_and_publisher_path(sim):
    sim.clear_records()
    token = sim.access_token()
    client = vertex_client_for(sim, token=token)
    response = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert response.text
    [req] = sim.records(type="http")
    publisher = "/v1beta1/projects/sim-project/locations/us-central1/publishers/google"
    assert req["path"] == f"{publisher}/models/gemini-2.5-flash:generateContent"
    assert req["headers"]["authorization"] == f"Bearer {token}"


def test_function_call_on_rest_when_a_declared_tool_matches(sim):
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                description="Get the current weather for a city",
                parameters=types.Schema(
                    type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
                ),
            )
        ]
    )
    client = client_for(sim)
    response = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="What's the weather in Paris?",
        config=types.GenerateContentConfig(
            tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
        ),
    )
    calls = response.function_calls
    assert calls is not None
    [call] = calls
    assert call.name == "get_weather"
    assert call.args == {"city": "Paris"}


def test_rest_fault_injection_returns_the_status(sim):
    sim.inject_fault("http", when="rest", status=429)
    with pytest.raises(errors.ClientError) as exc:
        client = client_for(sim)
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert exc.value.code == 429
    client = client_for(sim)
    assert client.models.generate_content(model="gemini-2.5-flash", contents="hi").text  # used up


def test_raw_https_with_key_query_and_missing_key(sim):
    ctx = ssl.create_default_context(cafile=str(sim.ca_path))
    url = f"{sim.base_url}/v1beta/models/gemini-2.5-flash:generateContent?key=raw"
    body = json.dumps({"contents": [{"parts": [{"text": "hello"}]}]}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx) as resp:
        data = json.load(resp)
    assert data["candidates"][0]["content"]["parts"][0]["text"].startswith("Hello")
    req = urllib.request.Request(url.split("?")[0], data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, context=ctx)
    assert exc.value.code == 403
    assert "unregistered callers" in json.load(exc.value)["error"]["message"]


def test_ca_is_reused_from_the_state_dir(sim_state, sim, make_sim):
    from gemini_sim import start_background

    again = start_background(sim_state, realtime_factor=0)
    try:
        assert again.ca_path == sim.ca_path
        assert again.ca_path.read_bytes() == sim.ca_path.read_bytes()
        assert again.port != sim.port
        client = client_for(again)
        assert client.models.generate_content(model="gemini-2.5-flash", contents="hi").text
    finally:
        again.stop()


def test_count_tokens_and_get_model(sim):
    client = client_for(sim)
    counted = client.models.count_tokens(model="gemini-2.5-flash", contents="hello there world")
    assert counted.total_tokens is not None and counted.total_tokens > 0
    model = client.models.get(model="gemini-2.5-pro")
    assert model.name == "models/gemini-2.5-pro"
    assert model.input_token_limit == 1048576
