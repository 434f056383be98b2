"""Every fault of the core surfaces acts: with it on, the answer to a scenario that exercises its requirement
differs from the healthy server's. Targeted tests elsewhere check what the difference is for key faults."""

from __future__ import annotations

import json

import pytest

import gateway_spec
from reference_server import faults
from tests.server.conftest import auth_headers, chat_body, make_client, sse_data

CHAT = "/v1/chat/completions"
U23 = "unit23-sk-482d0f3ffd1c7284273f58ff6373fa8663e9750fbee03cc7"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
           "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
BOTH = "Call get_weather and get_time"
ECHO = {"X-Mock-Provider": "echo"}
CACHED = [{"role": "system", "content": [{"type": "text", "text": "prefix", "cache_control": {"type": "ephemeral"}}]},
          {"role": "user", "content": "hi"}]


def _post(body, **kw):
    return ("openai", "POST", CHAT, {"json": body, **kw})


def _u23(model, **extra):
    return ("unit23", "POST", CHAT, {"json": {"model": model, "messages": [{"role": "user", "content": "Hi"}],
                                              **extra}})


def _schema_fmt(strict):
    return {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER, "strict": strict}}


SCENARIOS = {
    "chat": _post(chat_body()),
    "stream": _post(chat_body(stream=True, stream_options={"include_usage": True})),
    "stream_plain": _post(chat_body(stream=True)),
    "stream_n": _post(chat_body(stream=True, n=2)),
    "stream_error": _post(chat_body(stream=True), headers={"X-Mock-Error-After": "2"}),
    "stream_unknown": _post(chat_body(stream=True, model="nope")),
    "stream_json": _post(chat_body(stream=True, response_format={"type": "json_object"})),
    "stream_tools": _post(chat_body(BOTH, stream=True, tools=TOOLS)),
    "models": ("openai", "GET", "/v1/models", {}),
    "models_priced": ("unified-llm-gateway", "GET", "/v1/models", {}),
    "retrieve": ("openai", "GET", "/v1/models/gpt-4o", {}),
    "retrieve_unknown": ("openai", "GET", "/v1/models/nope", {}),
    "no_auth": ("openai", "GET", "/v1/models", {"auth": False}),
    "basic": ("openai", "GET", "/v1/models", {"auth": False, "headers": {"Authorization": "Basic sk-conformance-test"}}),
    "malformed": ("unit23", "GET", "/v1/models", {"auth": False, "headers": {"Authorization": "Bearer unit23-sk-xxx"}}),
    "unknown_key": ("openai", "GET", "/v1/models", {"auth": False, "headers": {"Authorization": "Bearer sk-unknown-1"}}),
    "empty_token": ("openai", "GET", "/v1/models", {"auth": False, "headers": {"Authorization": "Bearer "}}),
    "lower_scheme": ("openai", "GET", "/v1/models", {"auth": False,
                                                     "headers": {"Authorization": "bearer sk-conformance-test"}}),
    "bad_key_bad_body": ("openai", "POST", CHAT, {"auth": False, "data": "{x", "content_type": "application/json",
                                                  "headers": {"Authorization": "Bearer sk-unknown-1"}}),
    "invalid_json": ("openai", "POST", CHAT, {"data": "{x", "content_type": "application/json"}),
    "text_plain": ("openai", "POST", CHAT, {"data": '{"model": "gpt-4o-mini", "messages": [{"role": "user", '
                                                    '"content": "x"}]}', "content_type": "text/plain"}),
    "array_body": _post([{"role": "user", "content": "x"}]),
    "unknown_route": ("openai", "GET", "/v1/nothing-here", {}),
    "get_chat": ("openai", "GET", CHAT, {}),
    "too_large": ("openai", "POST", CHAT, {"json": chat_body("x" * 400), "config": {"max_body_bytes": 200}}),
    "injected_500": _post(chat_body(), headers={"X-Mock-Status": "500"}),
    "stainless": _post(chat_body(), headers={"X-Stainless-Lang": "python"}),
}
SCENARIOS.update({
    "no_model": _post({"messages": [{"role": "user", "content": "x"}]}),
    "no_messages": _post({"model": "gpt-4o-mini"}),
    "empty_messages": _post({"model": "gpt-4o-mini", "messages": []}),
    "number_content": _post({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 5}]}),
    "unknown_role": _post({"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}),
    "no_content": _post({"model": "gpt-4o-mini", "messages": [{"role": "user"}]}),
    "unknown_model": _post(chat_body(model="conformance-unknown-model")),
    "rejected_model": _post(chat_body(model="GPT-4O-MINI")),
    "penalty_out_of_range": _post(chat_body(presence_penalty=2.5)),
    "logit_bias": _post(chat_body(logit_bias={"50256": -100})),
    "expired_key": ("wallet-gateway", "POST", "/api/v1/chat/completions", {
        "json": chat_body(model="deepseek-chat"), "auth": False,
        "headers": {"Authorization": "Bearer wallet-conformance-expired"}}),
    "unifiedai_502": ("unifiedai", "POST", CHAT, {"json": chat_body(model="zai-glm-4.6"),
                                                  "headers": {"X-Mock-Status": "502"}}),
    "last_model": _post(chat_body(model="gpt-4o")),
    "long_essay": ("unified-llm-gateway", "POST", CHAT, {"json": {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Write an essay of at least 3000 words."}]}}),
    "alias": _u23("deepseek-r1-0528"),
    "case": _u23("DeepSeek-R1"),
    "routed": ("unifiedai", "POST", CHAT, {"json": chat_body(model="openrouter-anthropic/claude-3.5-sonnet"),
                                           "auth": False, "headers": {"Authorization": "Bearer sk-test"}}),
    "reasoning": _u23("minimax-m2.5"),
    "reasoning_stream": _u23("minimax-m2.5", stream=True),
    "think": _u23("deepseek-r1"),
    "think_stream": _u23("deepseek-r1", stream=True),
    "u23_stream": _u23("deepseek-v3", stream=True),
    "refusal": _post(chat_body("REFUSE please")),
    "conversation": _post({"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "s"},
                                                                {"role": "user", "content": "u"},
                                                                {"role": "assistant", "content": "a"},
                                                                {"role": "user", "content": "u2"}]}),
    "developer": _post({"model": "gpt-4o-mini", "messages": [{"role": "developer", "content": "d"},
                                                             {"role": "user", "content": "u"}]}),
    "parts": _post({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "text", "text": "u"}]}]}),
    "stream_false": _post(chat_body(stream=False)),
    "max_tokens": _post(chat_body(max_tokens=3)),
    "max_completion": _post(chat_body(max_completion_tokens=3)),
    "max_tokens_room": _post(chat_body(max_tokens=1000)),
    "stop_echo": _post(chat_body("alpha beta gamma", stop="beta"), headers=ECHO),
    "stop_array": _post(chat_body("alpha beta gamma", stop=["beta", "zeta"]), headers=ECHO),
    "stop_five": _post(chat_body(stop=["a", "b", "c", "d", "e"])),
    "n2": _post(chat_body(n=2)),
    "temp_high": _post(chat_body(temperature=3)),
    "temp_two": _post(chat_body(temperature=2)),
    "temp_hot": _post(chat_body(temperature="hot")),
    "temp_null": _post(chat_body(temperature=None)),
    "top_p_high": _post(chat_body(top_p=2)),
    "n_zero": _post(chat_body(n=0)),
    "penalty": _post(chat_body(presence_penalty=1)),
    "extra_field": _post(chat_body(some_new_field=1)),
    "logprobs": _post(chat_body(logprobs=True, top_logprobs=2)),
    "top_logprobs_high": _post(chat_body(logprobs=True, top_logprobs=25)),
    "json_object": _post(chat_body(response_format={"type": "json_object"})),
    "json_schema": _post(chat_body(response_format=_schema_fmt(False))),
    "json_strict": _post(chat_body(response_format=_schema_fmt(True))),
    "text_format": _post(chat_body(response_format={"type": "text"})),
    "xml_format": _post(chat_body(response_format={"type": "xml"})),
    "bad_schema_name": _post(chat_body(response_format={"type": "json_schema", "json_schema": {"name": "a b"}})),
    "tools": _post(chat_body(BOTH, tools=TOOLS)),
    "tools_none": _post(chat_body(tools=TOOLS, tool_choice="none")),
    "tools_required": _post(chat_body(tools=TOOLS, tool_choice="required")),
    "tools_named": _post(chat_body(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_time"}})),
    "tools_serial": _post(chat_body(BOTH, tools=TOOLS, parallel_tool_calls=False)),
    "tool_followup": _post({"model": "gpt-4o-mini", "tools": TOOLS, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}),
    # "warm": the same request once before, since the first request of a prefix writes the cache (a miss)
    "cached": _post({"model": "gpt-4o-mini", "messages": CACHED}, warm=True),
    "seeded": _post(chat_body(seed=7, temperature=1)),
    "greedy": _post(chat_body(seed=7, temperature=0)),
})

SPECIFIC = {
    "AUTH-001": "no_auth", "AUTH-002": "basic", "AUTH-003": "malformed", "AUTH-004": "unknown_key",
    "AUTH-005": "models", "AUTH-006": "unknown_key", "AUTH-007": "empty_token", "AUTH-008": "lower_scheme",
    "AUTH-009": "bad_key_bad_body", "AUTH-010": "no_auth", "AUTH-012": "expired_key", "ERRORS-025": "unifiedai_502",
    "PARAMS-025": "penalty_out_of_range", "PARAMS-026": "logit_bias", "PARAMS-027": "long_essay",
    "MODELS-008": "last_model", "MODELS-009": "unknown_model", "MODELS-010": "unknown_model",
    "MODELS-011": "rejected_model", "MODELS-012": "retrieve", "MODELS-013": "retrieve_unknown",
    "MODELS-014": "alias", "MODELS-015": "alias", "MODELS-016": "case", "MODELS-017": "routed",
    "MODELS-018": "models_priced", "MODELS-019": "models_priced",
    "CHAT-009": "tools", "CHAT-015": "conversation", "CHAT-016": "developer", "CHAT-017": "parts",
    "CHAT-020": "stream_false", "CHAT-021": "reasoning", "CHAT-022": "think", "CHAT-023": "refusal",
    "CHAT-STREAM-012": "stream_plain", "CHAT-STREAM-016": "stream_plain", "CHAT-STREAM-018": "stream_n",
    "CHAT-STREAM-019": "reasoning_stream", "CHAT-STREAM-020": "think_stream",
    "ERRORS-001": "invalid_json", "ERRORS-002": "temp_high", "ERRORS-003": "no_auth", "ERRORS-004": "invalid_json",
    "ERRORS-005": "text_plain", "ERRORS-006": "no_model", "ERRORS-007": "no_model", "ERRORS-008": "no_messages",
    "ERRORS-009": "empty_messages", "ERRORS-010": "empty_messages", "ERRORS-011": "unknown_route",
    "ERRORS-012": "get_chat", "ERRORS-013": "get_chat", "ERRORS-014": "too_large", "ERRORS-015": "number_content",
    "ERRORS-019": "injected_500", "ERRORS-020": "unknown_role", "ERRORS-021": "no_content",
    "ERRORS-022": "unknown_model", "ERRORS-023": "array_body", "ERRORS-024": "invalid_json",
    "HEADERS-002": "no_auth", "HEADERS-007": "stainless",
    "PARAMS-001": "max_tokens", "PARAMS-002": "max_tokens", "PARAMS-003": "stop_echo", "PARAMS-004": "stop_array",
    "PARAMS-005": "stop_five", "PARAMS-006": "n2", "PARAMS-008": "temp_high", "PARAMS-009": "top_p_high",
    "PARAMS-010": "n_zero", "PARAMS-011": "temp_high", "PARAMS-012": "logprobs", "PARAMS-013": "logprobs",
    "PARAMS-014": "max_completion", "PARAMS-015": "extra_field", "PARAMS-016": "temp_hot",
    "PARAMS-017": "temp_two", "PARAMS-018": "penalty", "PARAMS-019": "temp_null", "PARAMS-021": "top_logprobs_high",
    "PARAMS-022": "stop_echo", "PARAMS-023": "max_tokens_room", "PARAMS-007": "seeded", "PARAMS-024": "seeded",
    "STRUCTURED-OUTPUT-001": "json_object", "STRUCTURED-OUTPUT-002": "stream_json",
    "STRUCTURED-OUTPUT-003": "json_schema", "STRUCTURED-OUTPUT-004": "json_strict",
    "STRUCTURED-OUTPUT-005": "text_format", "STRUCTURED-OUTPUT-006": "json_object",
    "STRUCTURED-OUTPUT-007": "xml_format", "STRUCTURED-OUTPUT-008": "bad_schema_name",
    "TOOLS-012": "tools_none", "TOOLS-013": "tools_required", "TOOLS-014": "tools_named",
    "TOOLS-015": "tool_followup", "TOOLS-017": "tools_serial",
    "USAGE-008": "stream_plain", "USAGE-010": "cached", "USAGE-016": "cached", "USAGE-018": "cached", "USAGE-011": "reasoning", "USAGE-013": "u23_stream",
    "SSE-008": "stream_error", "SSE-013": "stream_unknown",
}
STREAM_TOOLS = {"TOOLS-007", "TOOLS-008", "TOOLS-009", "TOOLS-010", "TOOLS-018"}
BY_AREA = {"MODELS": "models", "CHAT": "chat", "CHAT-STREAM": "stream", "SSE": "stream", "HEADERS": "stream",
           "USAGE": "chat", "TOOLS": "tools", "PARAMS": "chat"}
STREAM_USAGE = {"USAGE-005", "USAGE-006", "USAGE-007", "USAGE-009"}
HEADERS_ON_CHAT = {"HEADERS-001", "HEADERS-003"}


def scenario_for(fault_id: str) -> str:
    if fault_id in SPECIFIC:
        return SPECIFIC[fault_id]
    if fault_id in STREAM_TOOLS:
        return "stream_tools"
    if fault_id in STREAM_USAGE:
        return "stream"
    if fault_id in HEADERS_ON_CHAT:
        return "chat"
    return BY_AREA[fault_id.rsplit("-", 1)[0]]


def observe(fault_ids: list[str], name: str):
    profile, method, path, kwargs = SCENARIOS[name]
    kwargs = dict(kwargs)
    client = make_client(profile, faults=fault_ids, **kwargs.pop("config", {}))
    headers = {**(auth_headers(client) if kwargs.pop("auth", True) else {}), **kwargs.pop("headers", {})}
    if kwargs.pop("warm", False):
        client.open(path, method=method, headers=headers, **kwargs)
    resp = client.open(path, method=method, headers=headers, buffered=False, **kwargs)
    frames = list(resp.response)
    resp.close()
    kept = sorted((k.lower(), v) for k, v in resp.headers.items()
                  if not k.lower().startswith("x-ratelimit") and k.lower() != "x-request-id")
    request_id = resp.headers.get("x-request-id")
    return resp.status_code, kept, b"".join(frames), len(frames), request_id is not None, request_id == (
        "req_" + "0" * 32)


OWNERS = ("faults.headers", "wire.errors", "faults.auth", "faults.models", "faults.completion", "faults.problems",
          "faults.validation", "faults.answer", "faults.usage", "faults.stream", "faults.sse")
MINE = sorted(
    fault.requirement
    for module in OWNERS
    for fault in vars(__import__(f"reference_server.{module}", fromlist=["_"])).values()
    if isinstance(fault, faults.Fault)
)


@pytest.mark.parametrize("fault_id", sorted(set(MINE)))
def test_fault_changes_the_answer(fault_id):
    name = scenario_for(fault_id)
    assert observe([fault_id], name) != observe([], name), f"{fault_id} did nothing in scenario {name}"


def test_every_fault_names_a_registered_requirement():
    registry = gateway_spec.load_requirements()
    for fault in faults.catalogue().values():
        assert fault.requirement in registry
        assert fault.requirement not in fault.collateral
        assert all(c in registry for c in fault.collateral), fault


def test_unknown_fault_is_a_startup_error():
    with pytest.raises(ValueError, match="NOPE-001"):
        make_client("openai", faults=["NOPE-001"])


def _raw(fault_id: str, name: str):
    profile, method, path, kwargs = SCENARIOS[name]
    kwargs = dict(kwargs)
    client = make_client(profile, faults=[fault_id], **kwargs.pop("config", {}))
    headers = {**(auth_headers(client) if kwargs.pop("auth", True) else {}), **kwargs.pop("headers", {})}
    if kwargs.pop("warm", False):
        client.open(path, method=method, headers=headers, **kwargs)
    return client.open(path, method=method, headers=headers, **kwargs)


def _chunks(resp):
    return [json.loads(e) for e in _events(resp) if e != "[DONE]"]


def _events(resp):
    return sse_data(resp.get_data().decode("utf-8", "replace"))


def _tool_parts(resp):
    return [p for c in _chunks(resp) for p in (c["choices"][0]["delta"].get("tool_calls") or [])]


BREAKS = {
    "SSE-002": lambda r: "[DONE]" not in _events(r),
    "SSE-005": lambda r: r.get_data().startswith(b"\xef\xbb\xbf"),
    "SSE-010": lambda r: r.get_data().endswith(b"data: [DONE]\n") and not r.get_data().endswith(b"\n\n"),
    "SSE-014": lambda r: _events(r)[-1] == "[DONE] OK",
    "CHAT-STREAM-001": lambda r: "role" not in _chunks(r)[0]["choices"][0]["delta"],
    "CHAT-STREAM-003": lambda r: r.mimetype == "application/json",
    "CHAT-STREAM-017": lambda r: all(c["system_fingerprint"] == 42 for c in _chunks(r) if c["choices"]),
    "SSE-006": lambda r: r.get_data().count(b"\xff") == 1,  # the first content delta only
    "CHAT-STREAM-004": lambda r: len({c["id"] for c in _chunks(r)}) > 1,
    "CHAT-STREAM-007": lambda r: all(c["choices"][0]["delta"].get("role") for c in _chunks(r) if c["choices"]),
    "CHAT-STREAM-011": lambda r: all(c["choices"][0]["finish_reason"] is None for c in _chunks(r) if c["choices"]),
    "TOOLS-007": lambda r: all("index" not in p for p in _tool_parts(r)),
    "TOOLS-008": lambda r: not any("id" in p for p in _tool_parts(r)),
    "USAGE-005": lambda r: sum(1 for c in _chunks(r) if not c["choices"]) == 2,
    "USAGE-008": lambda r: _chunks(r)[-1]["choices"] == [],
    "HEADERS-004": lambda r: "Cache-Control" not in r.headers,
    "HEADERS-008": lambda r: r.headers.get("Content-Encoding") == "gzip",
    "AUTH-004": lambda r: r.status_code == 200,
    "AUTH-007": lambda r: r.status_code == 200,
    "PARAMS-024": lambda r: r.status_code == 400 and r.get_json()["error"]["param"] == "seed",
    "USAGE-016": lambda r: r.get_json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0,
    "CHAT-STREAM-016": lambda r: not any(c["choices"][0]["delta"].get("content") for c in _chunks(r) if c["choices"])
    and _chunks(r)[-1]["choices"][0]["finish_reason"] == "stop",
    "AUTH-006": lambda r: "sk-unknown-1" in r.get_json()["error"]["message"],
    "MODELS-009": lambda r: r.status_code == 200,
    "ERRORS-015": lambda r: r.status_code == 500 and r.get_json()["error"]["message"],
    "ERRORS-024": lambda r: "Traceback" in r.get_json()["error"]["message"],
    # served, not crashed: a fault may break only its own requirement (ERRORS-015 forbids the 500)
    "ERRORS-023": lambda r: r.status_code == 200 and r.get_json()["choices"],
    "PARAMS-003": lambda r: r.get_json()["choices"][0]["message"]["content"] == "alpha beta",
    "TOOLS-005": lambda r: isinstance(r.get_json()["choices"][0]["message"]["tool_calls"][0]["function"][
        "arguments"], dict),
    "USAGE-003": lambda r: r.get_json()["usage"]["total_tokens"] == r.get_json()["usage"]["prompt_tokens"]
    + r.get_json()["usage"]["completion_tokens"] + 1,
}


@pytest.mark.parametrize("fault_id", sorted(BREAKS))
def test_fault_breaks_what_it_names(fault_id):
    resp = _raw(fault_id, scenario_for(fault_id))
    assert BREAKS[fault_id](resp)


# Faults scoped so that neighbouring requirements keep being judged (the negative-control matrix needs exactly one
# requirement to move): each leaves the named request shape untouched.
SPARED = [
    ("CHAT-006", "tools"),  # choices [] only for plain answers: the TOOLS-* checks still see their calls,
    ("CHAT-006", "max_tokens"),  # PARAMS-001 its cut answer,
    ("CHAT-006", "json_object"),  # STRUCTURED-OUTPUT-* their JSON,
    ("CHAT-006", "logprobs"),  # PARAMS-012/013 their logprobs
    ("CHAT-011", "tools"),  # finish_reason "" only for plain answers: "tool_calls" is TOOLS-006's,
    ("CHAT-011", "max_tokens"),  # "length" PARAMS-001's,
    ("CHAT-011", "json_object"),  # and STRUCTURED-OUTPUT-006's
    ("CHAT-STREAM-010", "stream_tools"),  # likewise TOOLS-010's in streams
    ("PARAMS-002", "max_completion"),  # max_completion_tokens is PARAMS-014's
    ("PARAMS-007", "chat"),  # unseeded requests keep their exact token counts
    ("PARAMS-011", "bad_schema_name"),  # response_format errors name their param (STRUCTURED-OUTPUT-007/008)
    ("PARAMS-023", "stream_plain"),  # the SDK stream helper raises on "length" (SDK-003)
    ("CHAT-STREAM-014", "stream_json"),  # " (streamed)" only in plain streams: JSON mode stays JSON
    ("CHAT-STREAM-014", "stream_tools"),
    ("SSE-006", "stream_json"),  # the 0xFF byte likewise (STRUCTURED-OUTPUT-002 reads that stream)
    ("SSE-006", "stream_tools"),
]


@pytest.mark.parametrize(("fault_id", "scenario"), SPARED)
def test_scoped_fault_spares_neighbours(fault_id, scenario):
    assert observe([fault_id], scenario) == observe([], scenario)


@pytest.mark.parametrize("fault_id", ["PARAMS-007", "PARAMS-024"])
def test_seed_fault_spares_greedy_requests(fault_id):
    # CHAT-STREAM-014 compares a streamed and a JSON answer to one seeded temperature-0 request.
    assert observe([fault_id], "greedy") == observe([], "greedy")
