"""Scripted answers on the reference server (docs/scripts.md): /_mock/scripts, what a matched rule answers, the
journal per attempt, and reset."""

from __future__ import annotations

import json
import time

import pytest

from tests.server.conftest import (
    assert_envelope,
    auth_headers,
    chat_body,
    make_client,
    sse_data,
    stream_chunks,
)


@pytest.fixture
def script(client):
    def _script(*rules):
        resp = client.post("/_mock/scripts", json={"rules": list(rules)})
        assert resp.status_code == 201, resp.get_json()
        return [r["id"] for r in resp.get_json()["rules"]]

    return _script


def marked(nonce: str, text: str = "Hello", **extra) -> dict:
    return chat_body(f"{text} [[mock:{nonce}]]", **extra)


def test_register_list_delete_clear(client, script):
    (first,) = script({"id": "one", "respond": {"content": "a"}})
    second = script({"respond": {"content": "b"}})[0]
    assert first == "one" and second.startswith("rule-")
    assert [r["id"] for r in client.get("/_mock/scripts").get_json()["rules"]] == ["one", second]
    assert client.delete("/_mock/scripts/one").status_code == 204
    assert_envelope(client.delete("/_mock/scripts/one"), 404, param="id")
    assert client.delete("/_mock/scripts").status_code == 204
    assert client.get("/_mock/scripts").get_json() == {"rules": []}


def test_bad_rules_are_400_naming_index_and_field(client, script):
    script({"id": "taken", "respond": {}})
    error = assert_envelope(client.post("/_mock/scripts", json={"rules": [{"respond": {}}, {"respond": {"n": 0}}]}),
                            400, param="rules[1].respond.n")
    assert "rules[1].respond.n" in error["message"]
    assert_envelope(client.post("/_mock/scripts", json={"rules": [{"id": "taken", "respond": {}}]}), 400,
                    param="rules[0].id")
    assert_envelope(client.post("/_mock/scripts", data="nope", content_type="application/json"), 400)
    assert len(client.get("/_mock/scripts").get_json()["rules"]) == 1  # nothing of a refused batch was kept


def test_raw_status_headers_and_body_then_the_next_answer(client, headers, script):
    script({"match": {"nonce": "retry-1"}, "respond": [
        {"status": 429, "headers": {"Retry-After": "1", "x-ratelimit-remaining-requests": "0"}},
        {"status": 502, "body": {"error": {"message": "upstream down", "type": "upstream_error"}}},
        {"content": "finally"},
    ]})
    first = client.post("/v1/chat/completions", json=marked("retry-1"), headers=headers)
    assert_envelope(first, 429, code="rate_limit_exceeded")
    assert first.headers["Retry-After"] == "1"
    assert first.headers.getlist("x-ratelimit-remaining-requests") == ["0"]  # the rule's header wins, once
    second = client.post("/v1/chat/completions", json=marked("retry-1"), headers=headers)
    assert second.status_code == 502 and second.get_json() == {"error": {"message": "upstream down",
                                                                          "type": "upstream_error"}}
    third = client.post("/v1/chat/completions", json=marked("retry-1"), headers=headers)
    assert third.get_json()["choices"][0]["message"]["content"] == "finally"
    # an unmarked request is answered normally
    plain = client.post("/v1/chat/completions", json=chat_body("Hello"), headers=headers)
    assert plain.get_json()["choices"][0]["message"]["content"] != "finally"


def test_content_tool_calls_refusal_usage_n_logprobs(client, headers, script):
    script({"match": {"prompt_contains": "weather", "tools": True},
            "respond": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 3}}},
           {"match": {"prompt_regex": "^Refuse"}, "respond": {"refusal": "No."}},
           {"match": {"model": "gpt-4o-mini", "prompt_contains": "many"},
            "respond": {"content": "two words", "n": 2, "logprobs": True, "finish_reason": "length"}})
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    body = client.post("/v1/chat/completions", json=chat_body("weather?", tools=tools), headers=headers).get_json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert {k: body["usage"][k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")} == \
        {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    refusal = client.post("/v1/chat/completions", json=chat_body("Refuse this"), headers=headers).get_json()
    assert refusal["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": "No."}
    many = client.post("/v1/chat/completions", json=chat_body("many"), headers=headers).get_json()
    assert [c["message"]["content"] for c in many["choices"]] == ["two words", "two words"]
    assert all(c["finish_reason"] == "length" for c in many["choices"])
    assert [t["token"] for t in many["choices"][1]["logprobs"]["content"]] == ["two", " ", "words"]


def test_stream_content_usage_and_chunk_count(client, headers, script):
    script({"match": {"nonce": "stream-1"}, "respond": {"content": "a b", "usage": {"prompt_tokens": 1,
                                                                                   "completion_tokens": 2}}},
           {"match": {"nonce": "stream-2"}, "respond": {"stream": {"chunks": 5}}})
    resp = client.post("/v1/chat/completions", headers=headers,
                       json=marked("stream-1", stream=True, stream_options={"include_usage": True}))
    chunks = stream_chunks(resp)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "a b" and chunks[-1]["usage"]["total_tokens"] == 3
    chunks = stream_chunks(client.post("/v1/chat/completions", json=marked("stream-2", stream=True), headers=headers))
    content = [c["choices"][0]["delta"]["content"] for c in chunks if c["choices"][0]["delta"].get("content")]
    assert len(content) == 5


def test_stream_cut_and_error_event(client, headers, script):
    script({"match": {"nonce": "cut-cut"}, "respond": {"stream": {"chunks": 6, "cut_after": 3}}},
           {"match": {"nonce": "err-err"}, "respond": {"stream": {"error_after": 2, "error": {
               "message": "upstream exploded", "type": "server_error", "code": "boom"}}}})
    events = sse_data(client.post("/v1/chat/completions", json=marked("cut-cut", stream=True), headers=headers)
                      .get_data())
    assert len(events) == 3 and "[DONE]" not in events
    events = sse_data(client.post("/v1/chat/completions", json=marked("err-err", stream=True), headers=headers)
                      .get_data())
    assert len(events) == 3 and json.loads(events[-1]) == {"error": {"message": "upstream exploded",
                                                                    "type": "server_error", "param": None,
                                                                    "code": "boom"}}
    entries = client.get("/_mock/requests?nonce=cut-cut").get_json()["data"]
    assert entries[0]["response"]["stream"] == {"chunks_sent": 3, "done": False, "error": False, "cut": True}
    entries = client.get("/_mock/requests?nonce=err-err").get_json()["data"]
    assert entries[0]["response"]["stream"]["error"] is True and entries[0]["response"]["stream"]["cut"] is False


def test_stall_and_first_byte_delay_happen(client, headers, script):
    script({"match": {"nonce": "stall-1"}, "respond": {"stall_ms": 200, "status": 504}},
           {"match": {"nonce": "slow-1"}, "respond": {"stream": {"first_byte_ms": 150, "chunks": 2}}})
    start = time.monotonic()
    assert client.post("/v1/chat/completions", json=marked("stall-1"), headers=headers).status_code == 504
    assert time.monotonic() - start >= 0.2
    start = time.monotonic()
    stream_chunks(client.post("/v1/chat/completions", json=marked("slow-1", stream=True), headers=headers))
    assert time.monotonic() - start >= 0.15


def test_nth_and_times(client, headers, script):
    script({"match": {"prompt_contains": "count", "nth": 3}, "respond": {"status": 503}},
           {"match": {"prompt_contains": "count"}, "times": 1, "respond": {"status": 500}})
    statuses = [client.post("/v1/chat/completions", json=chat_body("count"), headers=headers).status_code
                for _ in range(4)]
    assert statuses == [500, 200, 503, 200]


def test_journal_per_attempt_and_credential_fingerprint(client, headers, script):
    import hashlib

    script({"match": {"nonce": "journal-1"}, "respond": [{"status": 503}, {"content": "ok"}]})
    for _ in range(2):
        client.post("/v1/chat/completions", json=marked("journal-1", "Hi"), headers={**headers, "X-Extra": "1"})
    client.post("/v1/chat/completions", json=chat_body("other"), headers=headers)
    entries = client.get("/_mock/requests?nonce=journal-1").get_json()["data"]
    assert [(e["attempt"], e["response"]["status"], e["rule"] is not None) for e in entries] == \
        [(1, 503, True), (2, 200, True)]
    entry = entries[1]
    assert entry["route"] == "chat" and entry["body"] == marked("journal-1", "Hi")
    assert entry["headers"]["X-Extra"] == "1"
    key_value = headers["Authorization"]
    assert entry["authorization"] == {"present": True, "scheme": "Bearer", "well_formed": True,
                                      "fingerprint": "sha256:" + hashlib.sha256(key_value.encode()).hexdigest()}
    assert key_value.split()[1] not in json.dumps(entries)  # the key itself is never shown
    assert entry["response"]["usage"]["total_tokens"] > 0
    assert entry["response"]["headers"]["x-request-id"] == entry["id"]
    assert len(client.get("/_mock/requests").get_json()["data"]) == 3


def test_reset_clears_scripts_counters_and_journal(client, headers, script):
    script({"match": {"prompt_contains": "x"}, "times": 1, "respond": {"status": 500}})
    fail = {**headers, "X-Mock-Fail-Times": "1", "X-Mock-Fail-Key": "k"}
    assert client.post("/v1/chat/completions", json=chat_body("y"), headers=fail).status_code == 503
    assert client.post("/v1/chat/completions", json=chat_body("y"), headers=fail).status_code == 200
    assert client.post("/_mock/reset").status_code == 200
    assert client.get("/_mock/scripts").get_json() == {"rules": []}
    assert client.get("/_mock/requests").get_json()["data"] == []
    assert client.post("/v1/chat/completions", json=chat_body("y"), headers=fail).status_code == 503  # counted anew
    assert client.post("/v1/chat/completions", json=chat_body("x"), headers=headers).status_code == 200


def test_scripted_answers_bypass_the_answer_cache(client, headers, script):
    plain = client.post("/v1/chat/completions", json=chat_body("same"), headers=headers).get_json()
    script({"match": {"prompt_contains": "same"}, "times": 1, "respond": {"content": "scripted"}})
    assert client.post("/v1/chat/completions", json=chat_body("same"), headers=headers) \
        .get_json()["choices"][0]["message"]["content"] == "scripted"
    assert client.post("/v1/chat/completions", json=chat_body("same"), headers=headers).get_json() == plain


def test_other_surfaces_answer_raw_rules():
    client = make_client("openai")
    headers = auth_headers(client)
    client.post("/_mock/scripts", json={"rules": [{"match": {"route": "embeddings"}, "respond": {"status": 503}},
                                                  {"match": {"route": "models"}, "respond": {"status": 500}}]})
    resp = client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"}, headers=headers)
    assert_envelope(resp, 503)
    assert_envelope(client.get("/v1/models", headers=headers), 500)


def test_ollama_surface_answers_raw_rules():
    from gateway_spec import load_profile, profile_names

    name = next(n for n in profile_names() if load_profile(n).get("ollama"))
    client = make_client(name)
    profile = client.application.config["SERVER"].profile
    client.post("/_mock/scripts", json={"rules": [{"match": {"route": "ollama-chat", "prompt_contains": "hi"},
                                                   "respond": {"status": 500, "body": {"error": "boom"}}}]})
    model = profile.get("models.chat")[0]["id"]
    resp = client.post(f"{profile.ollama_base_path}/chat", headers=auth_headers(client),
                       json={"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False})
    assert resp.status_code == 500 and resp.get_json() == {"error": "boom"}
