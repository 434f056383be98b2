"""Tool calls: tool_choice rules, parallel calls, schema-valid arguments, streamed tool-call deltas."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.server.conftest import chat_body, stream_chunks

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "minLength": 2},
                                            "unit": {"enum": ["c", "f"]}, "days": {"type": "integer",
                                                                                  "minimum": 1, "maximum": 7}},
           "required": ["city"], "additionalProperties": False}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


def _message(post_chat, prompt="What is the weather?", **extra):
    body = post_chat(chat_body(prompt, tools=TOOLS, **extra)).get_json()
    return body["choices"][0]


def test_auto_calls_first_tool_with_schema_valid_arguments(post_chat):
    choice = _message(post_chat)
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_") and call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER)


def test_parallel_calls_when_prompt_names_several_tools(post_chat):
    calls = _message(post_chat, "Use get_weather and get_time")["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert len({c["id"] for c in calls}) == 2
    single = _message(post_chat, "Use get_weather and get_time", parallel_tool_calls=False)
    assert len(single["message"]["tool_calls"]) == 1


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("none", None), ("required", ["get_weather"]),
     ({"type": "function", "function": {"name": "get_time"}}, ["get_time"])],
)
def test_tool_choice_is_honoured(post_chat, choice, expected):
    message = _message(post_chat, tool_choice=choice)["message"]
    if expected is None:
        assert "tool_calls" not in message and message["content"]
    else:
        assert [c["function"]["name"] for c in message["tool_calls"]] == expected


def test_tool_call_ids_are_deterministic(post_chat):
    assert _message(post_chat)["message"]["tool_calls"] == _message(post_chat)["message"]["tool_calls"]


def test_streamed_tool_call_deltas(post_chat):
    chunks = stream_chunks(post_chat(chat_body("get_weather and get_time", tools=TOOLS, stream=True)))
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for part in chunk["choices"][0]["delta"].get("tool_calls") or []:
            assert isinstance(part["index"], int)
            if part["index"] not in calls:
                assert part["id"] and part["type"] == "function" and part["function"]["name"]
                calls[part["index"]] = {"id": part["id"], "name": part["function"]["name"], "arguments": ""}
            else:
                assert "id" not in part and "name" not in part["function"]
            calls[part["index"]]["arguments"] += part["function"].get("arguments", "")
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_time"]
    jsonschema.validate(json.loads(calls[0]["arguments"]), WEATHER)
    assert json.loads(calls[1]["arguments"]) == {}


def test_max_tokens_truncates_tool_arguments_with_length(post_chat):
    choice = _message(post_chat, max_tokens=4)
    assert choice["finish_reason"] == "length"
