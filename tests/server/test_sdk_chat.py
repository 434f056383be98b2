"""The official openai SDK against a live reference server: chat completions, streams, tools, JSON mode."""

from __future__ import annotations

import json
import threading

import openai
import pytest
from pydantic import BaseModel
from werkzeug.serving import make_server

from reference_server import ServerConfig, create_app

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Say something about get_weather and get_time"}]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
        "additionalProperties": False}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.fixture(scope="module", params=[(), ("sse-crlf", "sse-keepalive", "finish-separate")],
            ids=["default", "variants"])
def client(request):
    config = ServerConfig.for_profile("openai", variants=request.param)
    httpd = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield openai.OpenAI(base_url=f"http://127.0.0.1:{httpd.server_port}/v1", api_key=config.profile.test_key,
                        max_retries=0)
    httpd.shutdown()
    thread.join(5)


def test_non_streaming(client):
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, seed=1)
    assert completion.choices[0].message.content and completion.usage.total_tokens > 0
    assert completion._request_id


def test_streaming_matches_non_streaming(client):
    full = client.chat.completions.create(model=MODEL, messages=MESSAGES, seed=1)
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, seed=1, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert chunks[-1].usage.total_tokens == full.usage.total_tokens


def test_stream_helper(client):
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content and final.choices[0].finish_reason == "stop"


def test_stream_helper_with_parallel_tool_calls(client):
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)


def test_tool_calls(client):
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=TOOLS,
                                                tool_choice={"type": "function", "function": {"name": "get_time"}})
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "get_time" and completion.choices[0].finish_reason == "tool_calls"


def test_json_mode_and_structured_parse(client):
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                response_format={"type": "json_object"})
    assert isinstance(json.loads(completion.choices[0].message.content), dict)

    class Weather(BaseModel):
        city: str
        celsius: int

    parsed = client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Weather)
    assert isinstance(parsed.choices[0].message.parsed, Weather)


def test_errors_map_to_sdk_exceptions(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="conformance-unknown-model", messages=MESSAGES)
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=3)
    bad_key = client.with_options(api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError):
        bad_key.models.list()


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids and client.models.retrieve(MODEL).id == MODEL


def test_mid_stream_error_raises_in_the_sdk(client):
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True,
                                            extra_headers={"X-Mock-Error-After": "3"})
    with pytest.raises(openai.APIError, match="mid-stream"):
        for _ in stream:
            pass
