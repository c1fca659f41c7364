"""Live API through the real google-genai SDK (API-key, ephemeral-token and Vertex-Bearer modes)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from google import genai
from google.genai import errors, types

from .conftest import client_for, http_options, vertex_client_for
from .livekit import collect, next_handle, say, send_audio, silence, tone, until

NATIVE = "gemini-2.5-flash-native-audio-latest"
AUDIO_CFG = types.LiveConnectConfig(
    response_modalities=[types.Modality.AUDIO],
    output_audio_transcription=types.AudioTranscriptionConfig(),
    input_audio_transcription=types.AudioTranscriptionConfig(),
)


def _user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def test_api_key_session_replies_with_24khz_audio_and_transcript(sim):
    client = client_for(sim)
    async with client.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        assert session.session_id
        await session.send_client_content(turns=_user("Hello there"), turn_complete=True)
        short = await collect(session)
        await session.send_client_content(turns=_user("tell me a story in 3 sentences"), turn_complete=True)
        long = await collect(session)
    assert short.mime_types == {"audio/pcm;rate=24000"}
    assert short.text.startswith("Hello")
    assert len(short.audio) % 2 == 0 and len(short.audio) > 24000  # > 0.5 s of 16-bit audio
    assert len(long.audio) > 3 * len(short.audio)  # audio length follows the text
    assert short.generation_complete and short.turn_complete and not short.interrupted
    ends = [m.server_content for m in short.messages if m.server_content]
    kinds = [("gen" if sc.generation_complete else "tc") for sc in ends if sc.generation_complete or sc.turn_complete]
    assert kinds == ["gen", "tc"]
    usage = short.usage
    assert usage is not None and usage.prompt_token_count is not None and usage.response_token_count is not None
    assert usage.response_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.response_token_count


async def test_chat_recall_from_client_content_history_and_realtime_text(sim):
    client = client_for(sim)
    async with client.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        await session.send_client_content(
            turns=[_user("My name is Alice."), types.Content(role="model", parts=[types.Part(text="Hi Alice.")])],
            turn_complete=True,  # the model spoke last: history only, no reply
        )
        await session.send_realtime_input(text="Please remember the number 42.")
        ack = await collect(session)
        assert "42" in ack.text
        name = await say(session, "What is my name?")
        number = await say(session, "What number did I ask you to remember?")
    assert "Alice" in name.text
    assert "42" in number.text


async def test_recall_fails_without_the_fact(sim):
    client = client_for(sim)
    async with client.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        reply = await say(session, "What is my name?")
    assert "Alice" not in reply.text


async def test_sdk_wire_format_is_recorded(sim):
    client = client_for(sim, api_key="recorded-key")
    async with client.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        sid = session.session_id
        await session.send_client_content(turns=_user("Hi"), turn_complete=True)
        await collect(session)
    [connect] = sim.records(type="connect", session=sid)
    assert connect["path"] == "gemini:v1beta"
    assert connect["headers"]["x-goog-api-key"] == "recorded-key"
    setup, content = sim.client_messages(sid)[:2]
    assert setup["setup"]["model"] == f"models/{NATIVE}"
    assert content["client_content"]["turns"][0]["parts"][0]["text"] == "Hi"  # SDK 3.x sends snake_case here


async def test_text_modality_on_half_cascade_vertex_model(sim):
    client = vertex_client_for(sim)
    cfg = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    async with client.aio.live.connect(model="gemini-live-2.5-flash", config=cfg) as session:
        reply = await say(session, "what is 2 plus 3")
    assert "5" in reply.text
    assert not reply.audio


async def test_vertex_bearer_reaches_llm_bidi_service(sim):
    token = sim.access_token()
    client = vertex_client_for(sim, token=token)
    async with client.aio.live.connect(model="gemini-live-2.5-flash-native-audio", config=AUDIO_CFG) as session:
        sid = session.session_id
        reply = await say(session, "Hello")
    assert reply.audio
    [connect] = sim.records(type="connect", session=sid)
    assert connect["path"] == "vertex:v1beta1"
    assert connect["headers"]["authorization"] == f"Bearer {token}"
    setup = sim.client_messages(sid)[0]["setup"]
    assert setup["model"] == (
        "projects/sim-project/locations/us-central1/publishers/google/models/gemini-live-2.5-flash-native-audio"
    )


async def _close_of(client: genai.Client, model: str, config: types.LiveConnectConfig | None = None, send=None):
    with pytest.raises(errors.APIError) as exc:
        async with client.aio.live.connect(model=model, config=config) as session:
            if send is not None:
                await send(session)
            await collect(session)
    return exc.value


@pytest.mark.parametrize(
    ("model", "config", "code", "reason"),
    [
        ("gemini-2.0-flash-live-001", None, 1008,
         "models/gemini-2.0-flash-live-001 is not found for API version v1beta, or is not supported for "
         "bidiGenerateContent."),
        ("gemini-2.5-flash", None, 1008, "models/gemini-2.5-flash is not found for API version v1beta"),
        ("gemini-live-2.5-flash-native-audio", None, 1008, "is not found"),  # Vertex-only model on the Gemini API
        (NATIVE, types.LiveConnectConfig(response_modalities=[types.Modality.TEXT]), 1007,
         "The requested combination of response modalities (TEXT) is not supported by the model"),
        ("gemini-3.1-flash-live-preview", types.LiveConnectConfig(response_modalities=[types.Modality.TEXT]), 1007,
         "The requested combination of response modalities (TEXT) is not supported by the model"),
        ("gemini-3.5-transcribe-live", types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO]), 1007,
         "The requested combination of response modalities (AUDIO) is not supported by the model"),
        ("gemini-3.5-transcribe-live", types.LiveConnectConfig(tools=[{"google_search": {}}]), 1007,
         "Request contains an invalid argument."),
        ("gemini-3.5-live-translate-preview", types.LiveConnectConfig(tools=[{"google_search": {}}]), 1007,
         "Request contains an invalid argument."),
        (NATIVE, types.LiveConnectConfig(speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="auto")))), 1007,
         "Request contains an invalid argument."),
        (NATIVE, types.LiveConnectConfig(speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="alloy")))), 1007,
         "Request contains an invalid argument."),
    ],
)  # fmt: skip
async def test_setup_errors_close_like_the_service(sim, model, config, code, reason):
    client = client_for(sim)
    err = await _close_of(client, model, config)
    assert err.code == code
    assert reason in str(err)


async def test_known_voice_is_accepted(sim):
    client = client_for(sim)
    cfg = types.LiveConnectConfig(
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore"))
        )
    )
    async with client.aio.live.connect(model=NATIVE, config=cfg) as session:
        assert (await say(session, "Hi")).audio


async def test_bad_key_closes_1007(make_sim):
    sim = make_sim(api_keys=["right"])
    err = await _close_of(client_for(sim, api_key="wrong"), NATIVE)
    assert err.code == 1007
    assert "API key not valid. Please pass a valid API key." in str(err)
    async with client_for(sim, api_key="right").aio.live.connect(model=NATIVE) as session:
        assert session.session_id


WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Get the current weather for a city.",
            parameters=types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}),
        )
    ]
)


async def test_tool_call_waits_for_the_response_and_uses_it(sim):
    client = client_for(sim)
    cfg = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        output_audio_transcription=types.AudioTranscriptionConfig(),
        tools=[WEATHER],
    )
    async with client.aio.live.connect(model=NATIVE, config=cfg) as session:
        first = await say(session, "What's the weather in Paris?")
        assert first.tool_call is not None
        [call] = first.function_calls
        assert call.id and call.name == "get_weather" and call.args == {"city": "Paris"}
        assert not first.audio  # nothing is said before the result arrives
        await asyncio.sleep(0.05)
        await session.send_tool_response(
            function_responses=[types.FunctionResponse(id=call.id, name=call.name, response={"result": "sunny, 21 C"})]
        )
        answer = await collect(session)
        unrelated = await say(session, "Hello")
    assert "sunny, 21 C" in answer.text
    assert answer.turn_complete
    assert unrelated.tool_call is None


async def test_vad_ends_a_spoken_turn_after_the_configured_silence(sim):
    client = client_for(sim)
    cfg = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=500)
        ),
    )
    async with client.aio.live.connect(model=NATIVE, config=cfg) as session:
        await send_audio(session, tone(1.0) + silence(0.3))  # not enough silence yet: no turn
        with pytest.raises(TimeoutError):
            await collect(session, wait=0.3)
        await send_audio(session, silence(0.3))
        turn = await collect(session)
    # The first piece ("(", streamed as the speech began) went to the collect that timed out.
    assert turn.input_text == "1.0 seconds of speech)"
    assert "1.0 seconds" in turn.text
    assert turn.audio


async def test_audio_stream_end_ends_the_turn(sim):
    client = client_for(sim)
    async with client.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        await send_audio(session, tone(0.6))
        await session.send_realtime_input(audio_stream_end=True)
        turn = await collect(session)
    assert turn.input_text == "(0.6 seconds of speech)"


async def test_barge_in_interrupts_the_reply(make_sim):
    sim = make_sim(realtime_factor=10)
    client = client_for(sim)
    async with client.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        await session.send_realtime_input(text="count to 60")
        await until(session, lambda m: m.server_content and m.server_content.model_turn)
        await send_audio(session, tone(0.3))
        cut = await collect(session)
        await send_audio(session, silence(1.0))
        after = await collect(session)
    assert cut.interrupted and cut.turn_complete and not cut.generation_complete
    assert "60" not in cut.text
    # The speech's transcript starts streaming as it is heard, during the reply it cuts short.
    assert cut.input_text == "(" and after.input_text.startswith("0.3 seconds") and after.generation_complete


async def test_no_interruption_lets_the_reply_finish(make_sim):
    sim = make_sim(realtime_factor=10)
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(
        update={
            "realtime_input_config": types.RealtimeInputConfig(activity_handling=types.ActivityHandling.NO_INTERRUPTION)
        }
    )
    async with client.aio.live.connect(model=NATIVE, config=cfg) as session:
        await session.send_realtime_input(text="count to 30")
        await until(session, lambda m: m.server_content and m.server_content.model_turn)
        await send_audio(session, tone(0.3) + silence(1.0))
        finished = await collect(session)
        queued = await collect(session)
    assert not finished.interrupted and finished.generation_complete and "30" in finished.text
    # the input transcription arrives when the speech ends, i.e. during the first reply (not ordered with it)
    assert (finished.input_text + queued.input_text).startswith("(0.3 seconds") and queued.generation_complete
    assert "0.3 seconds" in queued.text


async def test_manual_activity_bounds_the_turn(sim):
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(
        update={
            "realtime_input_config": types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
            )
        }
    )
    async with client.aio.live.connect(model=NATIVE, config=cfg) as session:
        await session.send_realtime_input(activity_start=types.ActivityStart())
        await send_audio(session, tone(0.5) + silence(2.0))  # silence does not end a manual turn
        with pytest.raises(TimeoutError):
            await collect(session, wait=0.3)
        await session.send_realtime_input(activity_end=types.ActivityEnd())
        turn = await collect(session)
    assert turn.input_text == "(2.5 seconds of speech)"


async def test_activity_start_with_automatic_detection_is_invalid(sim):
    err = await _close_of(
        client_for(sim), NATIVE, AUDIO_CFG, send=lambda s: s.send_realtime_input(activity_start=types.ActivityStart())
    )
    assert err.code == 1007


async def test_barge_in_cancels_a_pending_tool_call(sim):
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(update={"tools": [WEATHER]})
    async with client.aio.live.connect(model=NATIVE, config=cfg) as session:
        first = await say(session, "Is the weather in Rome nice?")
        [call] = first.function_calls
        await send_audio(session, tone(0.3))
        cancelled = await collect(session)
    assert cancelled.cancelled_ids == [call.id]
    assert cancelled.interrupted


async def test_video_frames_are_counted_and_acknowledged(sim):
    client = client_for(sim)
    async with client.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        for _ in range(3):
            await session.send_realtime_input(
                video=types.Blob(data=b"\xff\xd8fakejpeg\xff\xd9", mime_type="image/jpeg")
            )
        reply = await say(session, "What do you see?")
    assert "3 video frames" in reply.text
    assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
    assert any(d.modality == types.MediaModality.VIDEO for d in reply.usage.prompt_tokens_details)


async def test_resumption_across_go_away_restores_the_conversation(make_sim):
    sim = make_sim(connection_lifetime=3.0, go_away_before=1.0)
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(update={"session_resumption": types.SessionResumptionConfig()})
    async with client.aio.live.connect(model=NATIVE, config=cfg) as session:
        await next_handle(session)  # one right after setup
        await say(session, "My name is Alice.")
        handle = await next_handle(session)
        go_away = await until(session, lambda m: m.go_away)
        assert go_away.go_away is not None and go_away.go_away.time_left == "1s"
        with pytest.raises(errors.APIError) as exc:  # the server ends the connection at its lifetime
            await collect(session, wait=5)
        assert exc.value.code == 1011
    cfg2 = cfg.model_copy(update={"session_resumption": types.SessionResumptionConfig(handle=handle)})
    async with client.aio.live.connect(model=NATIVE, config=cfg2) as session:
        reply = await say(session, "What is my name?")
    assert "Alice" in reply.text


async def test_unknown_or_expired_handle_is_rejected(make_sim):
    sim = make_sim(resumption_ttl=1.0)
    client = client_for(sim)
    cfg = types.LiveConnectConfig(session_resumption=types.SessionResumptionConfig(handle="no-such-handle"))
    assert (await _close_of(client, NATIVE, cfg)).code == 1007
    resumable = types.LiveConnectConfig(session_resumption=types.SessionResumptionConfig())
    async with client.aio.live.connect(model=NATIVE, config=resumable) as session:
        handle = await next_handle(session)
    again = types.LiveConnectConfig(session_resumption=types.SessionResumptionConfig(handle=handle))
    async with client.aio.live.connect(model=NATIVE, config=again) as session:  # valid right after the end
        assert session.session_id
    await asyncio.sleep(1.2)
    assert (await _close_of(client, NATIVE, again)).code == 1007
    # and a handle is bound to its model
    async with client.aio.live.connect(model=NATIVE, config=resumable) as session:
        handle = await next_handle(session)
    other = types.LiveConnectConfig(session_resumption=types.SessionResumptionConfig(handle=handle))
    assert (await _close_of(client, "gemini-3.8-live", other)).code == 1007


# -- ephemeral tokens ------------------------------------------------------------------------------------------------
def _token_client(sim, version: str = "v1alpha") -> genai.Client:
    return client_for(sim, api_key="server-key", api_version=version)


def _in(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


async def test_ephemeral_token_session_and_uses(sim):
    maker = _token_client(sim)
    token = await maker.aio.auth_tokens.create(config=types.CreateAuthTokenConfig(uses=1))
    assert token.name.startswith("auth_tokens/")
    eph = client_for(sim, api_key=token.name, api_version="v1alpha")
    async with eph.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        sid = session.session_id
        assert (await say(session, "Hello")).audio
    [connect] = sim.records(type="connect", session=sid)
    assert connect["path"] == "gemini:v1alpha:constrained"
    assert connect["headers"]["authorization"] == f"Token {token.name}"
    err = await _close_of(eph, NATIVE, AUDIO_CFG)  # second new session: uses exhausted
    assert err.code == 1011
    assert "Token has been used too many times" in str(err)


async def test_ephemeral_token_expiry(sim):
    maker = _token_client(sim)
    token = maker.auth_tokens.create(
        config=types.CreateAuthTokenConfig(uses=0, expire_time=_in(1.5), new_session_expire_time=_in(1.5))
    )
    eph = client_for(sim, api_key=token.name, api_version="v1alpha")
    async with eph.aio.live.connect(model=NATIVE) as session:
        assert session.session_id
    await asyncio.sleep(1.7)
    err = await _close_of(eph, NATIVE)
    assert err.code == 1007
    assert "expired" in str(err)


async def test_open_session_ends_when_its_token_expires(sim):
    maker = _token_client(sim)
    token = maker.auth_tokens.create(config=types.CreateAuthTokenConfig(expire_time=_in(1.5)))
    eph = client_for(sim, api_key=token.name, api_version="v1alpha")
    async with eph.aio.live.connect(model=NATIVE) as session:
        with pytest.raises(errors.APIError) as exc:
            await collect(session, wait=5)
    assert exc.value.code == 1007
    assert "The ephemeral token has expired." in str(exc.value)


async def test_resuming_with_a_token_needs_no_new_use_or_new_session_window(sim):
    maker = _token_client(sim)
    token = maker.auth_tokens.create(
        config=types.CreateAuthTokenConfig(uses=1, new_session_expire_time=_in(1.5), expire_time=_in(60))
    )
    eph = client_for(sim, api_key=token.name, api_version="v1alpha")
    cfg = AUDIO_CFG.model_copy(update={"session_resumption": types.SessionResumptionConfig()})
    async with eph.aio.live.connect(model=NATIVE, config=cfg) as session:
        await say(session, "remember the number 7")
        handle = await next_handle(session)
    await asyncio.sleep(1.6)
    resumed = AUDIO_CFG.model_copy(update={"session_resumption": types.SessionResumptionConfig(handle=handle)})
    async with eph.aio.live.connect(model=NATIVE, config=resumed) as session:
        assert "7" in (await say(session, "what number did I ask you to remember?")).text
    assert (await _close_of(eph, NATIVE)).code == 1007  # but no new session after newSessionExpireTime


async def test_token_locks_constrained_fields(sim):
    maker = _token_client(sim)
    token = maker.auth_tokens.create(
        config=types.CreateAuthTokenConfig(
            uses=2,
            live_connect_constraints=types.LiveConnectConstraints(
                model="gemini-3.8-live", config=types.LiveConnectConfig(temperature=0.3)
            ),
            lock_additional_fields=[],
        )
    )
    eph = client_for(sim, api_key=token.name, api_version="v1alpha")
    async with eph.aio.live.connect(model=NATIVE, config=AUDIO_CFG.model_copy(update={"temperature": 1.5})) as session:
        sid = session.session_id
        reply = await say(session, "Which model are you?")
    assert "gemini-3.8-live" in reply.text
    [effective] = sim.records(type="effective_setup", session=sid)
    assert effective["setup"]["generationConfig"]["temperature"] == 0.3


async def test_token_creation_needs_v1alpha(sim):
    for version in ("v1beta", "v1"):
        with pytest.raises(errors.ClientError) as exc:
            maker = _token_client(sim, version)
            maker.auth_tokens.create(config=types.CreateAuthTokenConfig(uses=1))
        assert exc.value.code == 404


async def test_token_on_the_plain_endpoint_is_not_a_key(sim):
    maker = _token_client(sim)
    token = maker.auth_tokens.create(config=types.CreateAuthTokenConfig(uses=1))
    plain = genai.Client(
        api_key="unused", http_options=http_options(sim, api_version="v1beta", headers={"x-goog-api-key": token.name})
    )
    err = await _close_of(plain, NATIVE)
    assert err.code == 1007
    assert "API key not valid" in str(err)


# -- faults ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "code", "reason"),
    [("setup", 1011, "Internal error occurred."), ("turn", 1008, "Requested entity was not found.")],
)
async def test_injected_close(make_sim, when, code, reason):
    sim = make_sim()
    sim.inject_fault("close", when=when, code=code, reason=reason)
    err = await _close_of(client_for(sim), NATIVE, AUDIO_CFG, send=lambda s: s.send_realtime_input(text="hi"))
    assert err.code == code
    assert reason in str(err)


async def test_injected_drop_mid_reply_is_1006(make_sim):
    sim = make_sim()
    sim.inject_fault("drop", when="audio")
    err = await _close_of(client_for(sim), NATIVE, AUDIO_CFG, send=lambda s: s.send_realtime_input(text="count to 20"))
    assert err.code == 1006


async def test_injected_stall_delays_the_reply(make_sim):
    sim = make_sim()
    sim.inject_fault("stall", when="turn", seconds=0.5)
    client = client_for(sim)
    async with client.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await session.send_realtime_input(text="Hello")
        with pytest.raises(TimeoutError):
            await collect(session, wait=0.3)
        turn = await collect(session)
        assert loop.time() - start >= 0.45
    assert turn.generation_complete


async def test_fault_now_closes_open_sessions(make_sim):
    sim = make_sim()
    client = client_for(sim)
    async with client.aio.live.connect(model=NATIVE, config=AUDIO_CFG) as session:
        sim.inject_fault("close", when="now", code=1011, reason="RESOURCE_EXHAUSTED: quota exceeded")
        with pytest.raises(errors.APIError) as exc:
            await collect(session)
    assert exc.value.code == 1011
    assert "quota" in str(exc.value)


async def test_vertex_tool_call_round_trip(sim):
    client = vertex_client_for(sim)
    cfg = AUDIO_CFG.model_copy(update={"tools": [WEATHER]})
    async with client.aio.live.connect(model="gemini-live-2.5-flash-native-audio", config=cfg) as session:
        first = await say(session, "Tell me the weather for Oslo")
        [call] = first.function_calls
        assert call.args == {"city": "Oslo"}
        await session.send_tool_response(
            function_responses=[types.FunctionResponse(id=call.id, name=call.name, response={"output": "snow"})]
        )
        assert "snow" in (await collect(session)).text


async def test_history_in_batches_then_recall_on_3_8(sim):
    """Context loading as the bridge does it: batches, turnComplete on the last only; the model spoke last."""
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(update={"history_config": types.HistoryConfig(initial_history_in_client_content=True)})
    history = [_user("My favourite colour is green.") if i == 0 else _user(f"note {i}") for i in range(12)]
    turns: list[types.ContentOrDict] = []
    for i, h in enumerate(history):
        turns += [h, types.Content(role="model", parts=[types.Part(text=f"ok {i}")])]
    async with client.aio.live.connect(model="gemini-3.8-live", config=cfg) as session:
        for start in range(0, len(turns), 10):
            batch = turns[start : start + 10]
            await session.send_client_content(turns=batch, turn_complete=start + 10 >= len(turns))
        with pytest.raises(TimeoutError):  # history only: nothing to answer
            await collect(session, wait=0.3)
        reply = await say(session, "What is my favourite colour?")
    assert "green" in reply.text


@pytest.mark.parametrize(("model", "combined"), [(NATIVE, False), ("gemini-3.8-live", True)])
async def test_transcript_rides_with_audio_on_3_x_only(sim, model, combined):
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(update={"history_config": types.HistoryConfig(initial_history_in_client_content=True)})
    async with client.aio.live.connect(model=model, config=cfg) as session:
        turn = await say(session, "tell me a story")
    both = [
        m
        for m in turn.messages
        if m.server_content and m.server_content.model_turn and m.server_content.output_transcription
    ]
    assert bool(both) is combined
    assert turn.text.startswith("Once upon a time")


async def test_extended_thinking_reports_interaction_status(sim):
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(update={"history_config": types.HistoryConfig(initial_history_in_client_content=True)})
    async with client.aio.live.connect(model="gemini-3.8-live-extended-thinking", config=cfg) as session:
        turn = await say(session, "Hello")  # the SDK's receive() ends at IDLE
    statuses = [m.server_content.interaction_status for m in turn.messages if m.server_content]
    assert statuses[0] == types.InteractionStatus.IN_PROGRESS
    assert statuses[-1] == types.InteractionStatus.IDLE
    assert turn.turn_complete and turn.text.startswith("Hello")


def _weather(behavior: types.Behavior | None = None) -> types.Tool:
    assert WEATHER.function_declarations is not None
    return types.Tool(
        function_declarations=[
            WEATHER.function_declarations[0].model_copy(update={"behavior": behavior} if behavior else {})
        ]
    )


async def test_3_8_tools_are_non_blocking_by_default(sim):
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(
        update={"tools": [_weather()], "history_config": types.HistoryConfig(initial_history_in_client_content=True)}
    )
    async with client.aio.live.connect(model="gemini-3.8-live", config=cfg) as session:
        await session.send_realtime_input(text="What's the weather in Paris?")
        first = await collect(session, stop_on_tool_call=False)  # the model keeps talking while the tool runs
        [call] = first.function_calls
        assert first.text == "Let me check that for you." and first.turn_complete
        await session.send_tool_response(
            function_responses=[types.FunctionResponse(id=call.id, name=call.name, response={"result": "sunny"})]
        )
        result = await collect(session)  # WHEN_IDLE (default): a new turn with the result
    assert "sunny" in result.text


async def test_declared_blocking_wins_on_3_8(sim):
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(
        update={
            "tools": [_weather(types.Behavior.BLOCKING)],
            "history_config": types.HistoryConfig(initial_history_in_client_content=True),
        }
    )
    async with client.aio.live.connect(model="gemini-3.8-live", config=cfg) as session:
        first = await say(session, "What's the weather in Paris?")
    assert first.tool_call is not None and not first.audio


async def test_non_blocking_result_scheduling(make_sim):
    sim = make_sim(realtime_factor=10)
    client = client_for(sim)
    cfg = AUDIO_CFG.model_copy(update={"tools": [_weather(types.Behavior.NON_BLOCKING)]})
    async with client.aio.live.connect(model=NATIVE, config=cfg) as session:
        await session.send_realtime_input(text="What's the weather in Rome?")
        [call] = (await collect(session, stop_on_tool_call=False)).function_calls
        silent = types.FunctionResponse(
            id=call.id,
            name=call.name,
            response={"result": "rain"},
            scheduling=types.FunctionResponseScheduling.SILENT,
            will_continue=None,
        )
        await session.send_tool_response(function_responses=[silent])
        with pytest.raises(TimeoutError):  # SILENT: into the context, no reply
            await collect(session, wait=0.3)
        await session.send_realtime_input(text="What's the weather in Oslo?")
        [call] = (await collect(session, stop_on_tool_call=False)).function_calls
        await session.send_realtime_input(text="count to 60")
        await until(session, lambda m: m.server_content and m.server_content.model_turn)
        urgent = types.FunctionResponse(
            id=call.id,
            name=call.name,
            response={"result": "snow"},
            scheduling=types.FunctionResponseScheduling.INTERRUPT,
        )
        await session.send_tool_response(function_responses=[urgent])
        cut = await collect(session)
        result = await collect(session)
    assert cut.interrupted
    assert "snow" in result.text
