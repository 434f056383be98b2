"""The schema sweep (conformance/schema_sweep.py): which exchanges it validates, where each error goes, how the
controller groups them, and that the run's results carry its records."""

from __future__ import annotations

import json

import pytest

from conformance.baseline import Baseline
from conformance.client import Exchange
from conformance.schema_sweep import case_findings, route_kind, sweep_records, validate_exchange
from gateway_spec import load_profile, load_requirements

BASE = "http://127.0.0.1:9/v1"
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def completion(**message) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": "hi", "refusal": None, **message}}]}


def exchange(path: str, body, status: int = 200, method: str = "POST", ctype: str = "application/json",
             request: str = "{}") -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Exchange(method, BASE + path, [], request, status, [("Content-Type", ctype)], raw,
                    streamed=ctype == "text/event-stream")


def found(ex: Exchange) -> list[tuple[str, str]]:
    return [(rid, path) for rid, path, _ in validate_exchange(ex)[1]]


def test_a_tool_call_answer_without_content_is_chat_009():
    body = completion(tool_calls=[TOOL_CALL])
    del body["choices"][0]["message"]["content"]
    # the field's own requirement, and CHAT-019, which states the whole schema (as the sample check reports it)
    assert found(exchange("/chat/completions", body)) == [("CHAT-009", "choices/*/message/content"),
                                                          ("CHAT-019", "choices/*/message/content")]


def test_a_200_without_model_is_chat_005():
    body = completion()
    del body["model"]
    assert found(exchange("/chat/completions", body, request='{"messages": []}')) == [("CHAT-005", "model"),
                                                                                      ("CHAT-019", "model")]


def test_other_chat_errors_go_to_chat_019_and_a_valid_answer_to_nothing():
    assert found(exchange("/chat/completions", {**completion(), "system_fingerprint": 3})) == \
        [("CHAT-019", "system_fingerprint")]
    assert validate_exchange(exchange("/chat/completions", completion())) == ({"CHAT-019"}, [])


def test_stream_chunks_are_chat_stream_017_and_error_events_and_done_are_not_chunks():
    good = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}
    bad = {**good, "created": "soon"}
    sse = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in (good, bad, {"error": {"message": "x"}}))
    ex = exchange("/chat/completions", sse + b"data: [DONE]\n\n", ctype="text/event-stream")
    assert validate_exchange(ex)[0] == {"CHAT-STREAM-017"}
    assert found(ex) == [("CHAT-STREAM-017", "chunk/created")]


@pytest.mark.parametrize(("body", "expected"), [
    ({"error": {"message": "m", "type": "t", "param": None}}, [("ERRORS-001", "error/code")]),
    ({"error": {"message": "m", "type": "t", "param": None, "code": 400}}, [("ERRORS-002", "error/code")]),
    ({"detail": "nope"}, [("ERRORS-001", "error")]),
])
def test_error_envelopes(body, expected):
    assert found(exchange("/chat/completions", body, status=400)) == expected


def test_models_embeddings_and_what_is_left_alone():
    listing = {"object": "list", "data": [{"id": "m", "object": "model", "created": 1.5, "owned_by": "o"}]}
    assert found(exchange("/models", listing, method="GET")) == [("MODELS-004", "data/*/created")]
    assert validate_exchange(exchange("/models/m", listing["data"][0], method="GET"))[0] == {"MODELS-012"}
    embedding = {"object": "list", "model": "e", "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
                 "usage": {"prompt_tokens": 1}}
    assert found(exchange("/embeddings", embedding)) == [("EMBEDDINGS-010", "usage/total_tokens")]
    assert route_kind("GET", "http://h/_mock/requests") is None
    assert route_kind("POST", "http://h/api/chat", "/api") is None
    assert validate_exchange(exchange("/chat/completions", b"not json", status=500)) == (set(), [])


def test_the_controller_groups_per_requirement_and_path_and_counts_exchanges():
    registry, profile = load_requirements(), load_profile("openai")
    body = completion(tool_calls=[TOOL_CALL])
    del body["choices"][0]["message"]["content"]
    one = exchange("/chat/completions", body, request='{"a": 1}')
    two = exchange("/chat/completions", body, request='{"a": 2}')
    fine = exchange("/chat/completions", completion())
    cases = [{"id": "a", "schema": case_findings([one, fine], str)},
             {"id": "b", "schema": case_findings([one, two], str)}]
    records = {r["id"]: r for r in sweep_records(cases, registry, profile, Baseline())}
    whole = records["schema-sweep::CHAT-019"]  # the whole-schema requirement fails with the field's
    assert whole["outcome"] == "FAIL" and whole["message"] == "3 exchanges validated"
    failed = records["schema-sweep::CHAT-009"]
    assert failed["outcome"] == "FAIL" and len(failed["violations"]) == 1
    assert failed["violations"][0]["note"].startswith("2 exchanges with this error, e.g. POST /v1/chat/completions")


def test_a_retrieved_model_without_id_is_models_012():
    """MODELS-012: one Model object whose id is the requested model; a body of another shape has no id."""
    ex = exchange("/models/gpt-4o-mini", {"headers": {"accept": "*/*"}}, method="GET")
    assert ("MODELS-012", "id") in found(ex)
