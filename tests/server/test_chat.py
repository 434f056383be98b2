"""Non-streamed chat completions: response shape, determinism, parameters, validation envelopes."""

from __future__ import annotations

import pytest

from reference_server.mock.tokenizer import count_prompt_tokens, count_tokens
from tests.server.conftest import assert_envelope, auth_headers, chat_body, make_client


def test_completion_shape_and_usage(post_chat):
    resp = post_chat(chat_body())
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.get_json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["created"] == 1_700_000_000 and body["model"] == "gpt-4o-mini"
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop" and choice["logprobs"] is None
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"] and message["refusal"] is None
    usage = body["usage"]
    assert usage["completion_tokens"] == count_tokens(message["content"])
    assert usage["prompt_tokens"] == count_prompt_tokens(chat_body()["messages"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_same_request_same_bytes_and_different_requests_different_ids(post_chat):
    first, second = post_chat(chat_body()).get_data(), post_chat(chat_body()).get_data()
    assert first == second
    other = post_chat(chat_body("Something else")).get_json()
    assert other["id"] != post_chat(chat_body()).get_json()["id"]


def test_seed_changes_text_but_not_at_temperature_zero(post_chat):
    def content(**extra):
        return post_chat(chat_body(**extra)).get_json()["choices"][0]["message"]["content"]

    assert content(seed=1) == content(seed=1)
    assert content(seed=1) != content(seed=2)
    assert content(seed=1, temperature=0) == content(seed=2, temperature=0)


def test_echo_provider_header(post_chat):
    resp = post_chat(chat_body("repeat me"), headers={"X-Mock-Provider": "echo"})
    assert resp.get_json()["choices"][0]["message"]["content"] == "repeat me"
    assert_envelope(post_chat(chat_body(), headers={"X-Mock-Provider": "nope"}), 400, param="X-Mock-Provider")


def test_n_choices_differ(post_chat):
    choices = post_chat(chat_body(n=3)).get_json()["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert len({c["message"]["content"] for c in choices}) == 3


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_cuts_with_length(post_chat, param):
    body = post_chat(chat_body(**{param: 3})).get_json()
    assert body["choices"][0]["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 3


def test_stop_cuts_before_the_sequence(post_chat):
    full = post_chat(chat_body()).get_json()["choices"][0]["message"]["content"]
    word = full.split()[2]
    for stop in (word, [word, "zzz"]):
        cut = post_chat(chat_body(stop=stop)).get_json()["choices"][0]
        assert cut["message"]["content"] == full[: full.index(word)] and cut["finish_reason"] == "stop"


def test_logprobs_shape(post_chat):
    choice = post_chat(chat_body(logprobs=True, top_logprobs=2)).get_json()["choices"][0]
    items = choice["logprobs"]["content"]
    assert "".join(i["token"] for i in items) == choice["message"]["content"]
    for item in items:
        assert item["bytes"] == list(item["token"].encode()) and item["logprob"] <= 0
        assert len(item["top_logprobs"]) == 2 and item["top_logprobs"][0]["token"] == item["token"]


def test_refusal_trigger(post_chat):
    message = post_chat(chat_body("Please REFUSE this")).get_json()["choices"][0]["message"]
    assert message["content"] is None and message["refusal"]


def test_reasoning_models():
    client = make_client("unit23")
    headers = {"Authorization": f"Bearer {client.application.config['SERVER'].profile.test_key}"}
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    think = client.post("/v1/chat/completions", json={**body, "model": "deepseek-r1"}, headers=headers).get_json()
    content = think["choices"][0]["message"]["content"]
    assert content.startswith("<think>") and "</think>" in content
    rc = client.post("/v1/chat/completions", json={**body, "model": "minimax-m2.5"}, headers=headers).get_json()
    message = rc["choices"][0]["message"]
    assert message["reasoning_content"] and message["content"]
    assert rc["usage"]["completion_tokens_details"]["reasoning_tokens"] == count_tokens(message["reasoning_content"])
    default = client.post("/v1/chat/completions", json={**body, "model": "deepseek-v3"}, headers=headers).get_json()
    assert default["model"] == "default"


def test_prompt_cache_usage(post_chat):
    messages = [{"role": "system", "content": [{"type": "text", "text": "Long stable prefix",
                                                "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": "Hi"}]
    prefix = 1 + count_tokens("Long stable prefix")
    # The first request of a prefix writes the cache (a miss), the second reads it.
    first = post_chat({"model": "gpt-4o-mini", "messages": messages}).get_json()["usage"]
    second = post_chat({"model": "gpt-4o-mini", "messages": messages}).get_json()["usage"]
    assert (first["prompt_tokens_details"]["cached_tokens"], second["prompt_tokens_details"]["cached_tokens"]) == \
        (0, prefix)


def test_unifiedai_caches_claude_and_gemini_only_with_cache_control_on_the_message():
    """UnifiedAI: "Add the cache_control field to messages"; Claude and Gemini cache, GLM and OpenAI GPT do not."""
    client = make_client("unifiedai")
    messages = [{"role": "system", "content": "Long stable prefix", "cache_control": {"type": "ephemeral"}},
                {"role": "user", "content": "Hi"}]
    prefix = 1 + count_tokens("Long stable prefix")

    def usage(model):
        resp = client.post("/v1/chat/completions", headers={"Authorization": "Bearer sk-test"},
                           json={"model": model, "messages": messages})
        body = resp.get_json()["usage"]
        return body["cache_creation_input_tokens"], body["cache_read_input_tokens"]

    assert usage("openrouter-anthropic/claude-3.5-sonnet") == (prefix, 0)
    assert usage("openrouter-anthropic/claude-3.5-sonnet") == (0, prefix)
    assert usage("zai-glm-4.6") == (0, 0)
    assert usage("openrouter-openai/gpt-4o") == (0, 0)


def test_unknown_fields_and_nulls_are_tolerated(post_chat):
    assert post_chat(chat_body(whatever={"x": 1}, temperature=None, stop=None, n=None)).status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "gpt-4o-mini"}, "messages"),
        ({"model": "gpt-4o-mini", "messages": []}, "messages"),
        ({"model": "gpt-4o-mini", "messages": "hi"}, "messages"),
        (chat_body(temperature=2.5), "temperature"),
        (chat_body(temperature="hot"), "temperature"),
        (chat_body(top_p=1.5), "top_p"),
        (chat_body(n=0), "n"),
        (chat_body(n=129), "n"),
        (chat_body(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat_body(top_logprobs=2), "top_logprobs"),
        (chat_body(logprobs=True, top_logprobs=21), "top_logprobs"),
        (chat_body(max_tokens=0), "max_tokens"),
        (chat_body(tools=[{"type": "function"}]), "tools[0]"),
        (chat_body(tools=[{"type": "function", "function": {"name": "f"}}],
                   tool_choice={"type": "function", "function": {"name": "g"}}), "tool_choice"),
        (chat_body(response_format={"type": "xml"}), "response_format.type"),
        (chat_body(response_format={"type": "json_schema", "json_schema": {"name": "bad name!"}}),
         "response_format.json_schema.name"),
        ({"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "gpt-4o-mini", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "gpt-4o-mini", "messages": ["hi"]}, "messages[0]"),
    ],
)
def test_invalid_requests_answer_400_with_param(post_chat, body, param):
    assert_envelope(post_chat(body), 400, param=param)


def test_unknown_model_uses_profile_status(post_chat):
    assert_envelope(post_chat(chat_body(model="conformance-unknown-model")), 404, param="model",
                    code="model_not_found")


def test_body_format_errors(client, headers):
    url = "/v1/chat/completions"
    assert_envelope(client.post(url, data="{oops", content_type="application/json", headers=headers), 400)
    assert_envelope(client.post(url, json=[1, 2], headers=headers), 400)
    assert_envelope(client.post(url, data="hello", content_type="text/plain", headers=headers), 415)
    assert_envelope(client.post(url, data=b"\xff\xfe", content_type="application/json", headers=headers), 400)
    assert_envelope(client.get(url, headers=headers), 405)


def test_conversation_roles_parts_and_tool_followup(post_chat):
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    body = post_chat({"model": "gpt-4o-mini", "messages": messages, "tools": tools}).get_json()
    assert body["choices"][0]["finish_reason"] == "stop" and body["choices"][0]["message"]["content"]


def test_documented_max_tokens_default_cuts_a_long_answer():
    """Unified LLM Gateway documents max_tokens "default: 1024": the long-answer mode writes past it."""
    essay = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Write at least 3000 words on tea."}]}
    cut = make_client("unified-llm-gateway")
    body = cut.post("/v1/chat/completions", json=essay, headers=auth_headers(cut)).get_json()
    assert body["usage"]["completion_tokens"] == 1024 and body["choices"][0]["finish_reason"] == "length"
    whole = make_client("openai")  # no documented default: the whole essay
    body = whole.post("/v1/chat/completions", json={**essay, "model": "gpt-4o-mini"},
                      headers=auth_headers(whole)).get_json()
    assert body["usage"]["completion_tokens"] > 3000 and body["choices"][0]["finish_reason"] == "stop"
    short = whole.post("/v1/chat/completions", json={**essay, "model": "gpt-4o-mini", "max_tokens": 5},
                       headers=auth_headers(whole)).get_json()
    assert short["usage"]["completion_tokens"] == 5
