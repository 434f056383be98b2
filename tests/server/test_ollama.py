"""Ollama's native API on the reference server (reference_server/surfaces/ollama.py)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from reference_server import ServerConfig, create_app

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client():
    return create_app(ServerConfig.for_profile("ollama")).test_client()


def lines(resp) -> list[dict]:
    text = resp.get_data(as_text=True)
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def rfc3339(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_root_and_head_say_ollama_is_running(client):
    resp = client.get("/")
    assert resp.status_code == 200 and resp.get_data(as_text=True) == "Ollama is running"
    assert client.head("/").status_code == 200


def test_version_and_tags(client):
    assert client.get("/api/version").get_json() == {"version": "0.5.1"}
    models = client.get("/api/tags").get_json()["models"]
    assert [m["name"] for m in models] == ["llama3.2:latest", "qwen3:latest", "nomic-embed-text:latest"]
    for m in models:
        assert {"name", "model", "modified_at", "size", "digest", "details"} <= set(m)
        assert {"format", "family", "families", "parameter_size", "quantization_level"} <= set(m["details"])
        rfc3339(m["modified_at"])
        assert isinstance(m["size"], int) and len(m["digest"]) == 64


def test_native_routes_need_no_authorization(client):
    assert client.get("/api/tags").status_code == 200
    assert client.post("/api/chat", json={"model": "llama3.2", "messages": HI}).status_code == 200


def test_chat_streams_ndjson_by_default_with_final_done_object(client):
    resp = client.post("/api/chat", json={"model": "llama3.2", "messages": HI})
    assert resp.mimetype == "application/x-ndjson"
    objs = lines(resp)
    *chunks, final = objs
    assert chunks and all(c["done"] is False for c in chunks)
    for c in chunks:
        assert c["model"] == "llama3.2" and c["message"]["role"] == "assistant"
        rfc3339(c["created_at"])
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["message"]["content"] == ""
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int) and final[key] >= 0
    assert final["eval_count"] == len(chunks)
    assert final["eval_duration"] == final["eval_count"] * 1_000_000  # 1 ms per token, in ns
    assert final["total_duration"] == final["load_duration"] + final["prompt_eval_duration"] + final["eval_duration"]


def test_stream_false_gives_one_json_object_with_the_same_text(client):
    streamed = lines(client.post("/api/chat", json={"model": "llama3.2", "messages": HI}))
    single = client.post("/api/chat", json={"model": "llama3.2", "messages": HI, "stream": False})
    assert single.mimetype == "application/json"
    body = single.get_json()
    assert body["done"] is True
    assert body["message"]["content"] == "".join(c["message"]["content"] for c in streamed[:-1])


def test_name_and_name_latest_are_the_same_model(client):
    a = client.post("/api/chat", json={"model": "llama3.2", "messages": HI, "stream": False}).get_json()
    b = client.post("/api/chat", json={"model": "llama3.2:latest", "messages": HI, "stream": False}).get_json()
    assert a["message"] == b["message"]
    assert b["model"] == "llama3.2:latest"


def test_tool_calls_carry_object_arguments(client):
    body = client.post("/api/chat", json={"model": "llama3.2", "messages": HI, "tools": TOOLS,
                                          "stream": False}).get_json()
    [call] = body["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], dict) and "city" in call["function"]["arguments"]
    streamed = lines(client.post("/api/chat", json={"model": "llama3.2", "messages": HI, "tools": TOOLS}))
    assert isinstance(streamed[0]["message"]["tool_calls"][0]["function"]["arguments"], dict)
    after_tool = HI + [{"role": "assistant", "content": "", "tool_calls": [call]},
                       {"role": "tool", "content": "sunny"}]
    answer = client.post("/api/chat", json={"model": "llama3.2", "messages": after_tool, "tools": TOOLS,
                                            "stream": False}).get_json()
    assert answer["message"]["content"] and "tool_calls" not in answer["message"]


def test_format_json_and_schema(client):
    text = client.post("/api/chat", json={"model": "llama3.2", "messages": HI, "format": "json",
                                          "stream": False}).get_json()["message"]["content"]
    assert isinstance(json.loads(text), dict)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    text = client.post("/api/chat", json={"model": "llama3.2", "messages": HI, "format": schema,
                                          "stream": False}).get_json()["message"]["content"]
    assert isinstance(json.loads(text)["n"], int)


def test_num_predict_ends_with_done_reason_length(client):
    body = client.post("/api/generate", json={"model": "llama3.2", "prompt": "hi", "stream": False,
                                              "options": {"num_predict": 3}}).get_json()
    assert body["done_reason"] == "length" and body["eval_count"] == 3


def test_generate_streams_response_fragments(client):
    objs = lines(client.post("/api/generate", json={"model": "qwen3", "prompt": "Tell me a joke"}))
    assert all("response" in o for o in objs)
    assert objs[-1]["done"] is True and objs[-1]["response"] == ""
    assert isinstance(objs[-1]["context"], list)
    single = client.post("/api/generate", json={"model": "qwen3", "prompt": "Tell me a joke", "stream": False})
    assert single.get_json()["response"] == "".join(o["response"] for o in objs)


def test_empty_messages_loads_the_model(client):
    body = client.post("/api/chat", json={"model": "llama3.2", "messages": [], "stream": False}).get_json()
    assert body["done_reason"] == "load" and body["done"] is True


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/chat", {"model": "nope", "messages": HI}, 404, "model 'nope' not found"),
        ("/api/chat", {"messages": HI}, 400, "model is required"),
        ("/api/generate", {"model": "llama3.2:1b", "prompt": "x"}, 404, "model 'llama3.2:1b' not found"),
        ("/api/chat", {"model": "llama3.2", "messages": [{"role": "wizard", "content": "x"}]}, 400, None),
        ("/api/chat", {"model": "nomic-embed-text", "messages": HI}, 400, None),
        ("/api/chat", {"model": "llama3.2", "messages": HI, "stream": "yes"}, 400, None),
        ("/api/embed", {"model": "nomic-embed-text", "input": []}, 400, None),
    ],
)
def test_errors_are_plain_string_objects(client, path, body, status, message):
    resp = client.post(path, json=body)
    assert resp.status_code == status
    payload = resp.get_json()
    assert set(payload) == {"error"} and isinstance(payload["error"], str)
    if message:
        assert payload["error"] == message


def test_invalid_json_and_missing_body(client):
    resp = client.post("/api/chat", data="{nope", content_type="application/json")
    assert resp.status_code == 400 and isinstance(resp.get_json()["error"], str)
    assert client.post("/api/chat").get_json() == {"error": "missing request body"}


def test_mid_stream_error_line_keeps_status_200(client):
    resp = client.post("/api/chat", json={"model": "llama3.2", "messages": HI},
                       headers={"X-Mock-Error-After": "2"})
    assert resp.status_code == 200
    objs = lines(resp)
    assert len(objs) == 3 and objs[-1] == {"error": "an error was encountered while running the model"}


def test_stream_cut_and_pacing_controls(client):
    objs = lines(client.post("/api/chat", json={"model": "llama3.2", "messages": HI},
                             headers={"X-Mock-Stream-Cut-After": "2"}))
    assert len(objs) == 2 and not any(o["done"] for o in objs)
    start = time.perf_counter()
    client.post("/api/generate", json={"model": "llama3.2", "prompt": "x"},
                headers={"X-Mock-TTFT-Ms": "60"}).get_data()
    assert time.perf_counter() - start >= 0.05


def test_mock_status_answers_in_the_native_error_shape(client):
    resp = client.get("/api/tags", headers={"X-Mock-Status": "503"})
    assert resp.status_code == 503 and isinstance(resp.get_json()["error"], str)
    assert resp.headers["Retry-After"] == "1"


def test_embed_and_legacy_embeddings(client):
    body = client.post("/api/embed", json={"model": "nomic-embed-text", "input": ["a", "b"]}).get_json()
    assert body["model"] == "nomic-embed-text"
    assert len(body["embeddings"]) == 2 and all(len(v) == 768 for v in body["embeddings"])
    assert isinstance(body["total_duration"], int) and body["prompt_eval_count"] == 2
    single = client.post("/api/embed", json={"model": "nomic-embed-text", "input": "b"}).get_json()
    assert single["embeddings"][0] == body["embeddings"][1]
    legacy = client.post("/api/embeddings", json={"model": "nomic-embed-text", "prompt": "b"}).get_json()
    assert legacy["embedding"] == body["embeddings"][1]


def test_show_and_ps(client):
    shown = client.post("/api/show", json={"model": "qwen3"}).get_json()
    assert shown["details"]["family"] == "qwen3" and "completion" in shown["capabilities"]
    assert [m["name"] for m in client.get("/api/ps").get_json()["models"]][0] == "llama3.2:latest"


def test_undocumented_endpoints_are_404_and_routed_names_resolve():
    client = create_app(ServerConfig.for_profile("unifiedai")).test_client()
    assert client.post("/api/embed", json={"model": "deepseek-chat", "input": "a"}).status_code == 404
    body = client.post("/api/chat", json={"model": "deepseek-chat", "messages": HI, "stream": False}).get_json()
    assert body["done"] is True and body["model"] == "deepseek-chat"


def test_no_ollama_surface_without_base_path():
    config = ServerConfig.for_profile("openai")
    client = create_app(config).test_client()
    assert client.get("/api/tags", headers={"Authorization": f"Bearer {config.profile.test_key}"}).status_code == 404
