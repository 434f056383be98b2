"""spec/openapi.yaml: a valid OpenAPI 3.1 document whose schemas accept the official examples and reject known breakages.

``schema_validator(name)`` below is the way to validate an instance against ``components.schemas.<name>``:
Draft 2020-12 with every ``$ref`` resolved through ``referencing`` against the whole document.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import referencing
import yaml
from jsonschema.validators import Draft202012Validator
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[2] / "spec" / "openapi.yaml"
EXAMPLES = Path(__file__).resolve().parent / "examples"
SPEC_URI = "urn:llm-gateway-conformance:openapi"

OPERATIONS = {
    ("POST", "/v1/chat/completions"): "createChatCompletion",
    ("GET", "/v1/models"): "listModels",
    ("GET", "/v1/models/{model}"): "retrieveModel",
    ("POST", "/v1/embeddings"): "createEmbedding",
    ("GET", "/api/tags"): "ollamaTags",
    ("POST", "/api/chat"): "ollamaChat",
    ("POST", "/api/generate"): "ollamaGenerate",
    ("GET", "/api/version"): "ollamaVersion",
    ("POST", "/api/embed"): "ollamaEmbed",
}


@functools.lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    """The parsed spec/openapi.yaml."""
    with open(SPEC_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@functools.lru_cache(maxsize=1)
def _registry() -> referencing.Registry:
    resource = DRAFT202012.create_resource(spec())
    return referencing.Registry().with_resource(SPEC_URI, resource)


@functools.cache
def schema_validator(name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator for components.schemas.<name> of spec/openapi.yaml, refs resolved in place."""
    if name not in spec()["components"]["schemas"]:
        raise KeyError(f"components.schemas has no {name}")
    root = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
    return Draft202012Validator(root, registry=_registry())


def extension_validator(path: str, media_type: str, extension: str) -> Draft202012Validator:
    """The validator named by a per-item vendor extension of a 200 response, e.g. x-sse-event-schema.

    ``path`` is ``"METHOD /route"``; the extension holds a ``$ref`` to components.schemas.
    """
    method, route = path.split(" ", 1)
    content = spec()["paths"][route][method.lower()]["responses"]["200"]["content"][media_type]
    ref = content[extension]["$ref"]
    prefix = "#/components/schemas/"
    assert ref.startswith(prefix), ref
    return schema_validator(ref[len(prefix):])


def errors(name: str, instance: Any) -> list[str]:
    """Messages of every violation of components.schemas.<name> by instance (empty when valid)."""
    return [f"{list(e.absolute_path)}: {e.message}" for e in schema_validator(name).iter_errors(instance)]


def example(filename: str) -> Any:
    """One JSON example file, or the list of objects of a JSON-lines file."""
    text = (EXAMPLES / filename).read_text(encoding="utf-8")
    if filename.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


# --- the document itself ---------------------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1():
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate

    assert spec()["openapi"].startswith("3.1.")
    validate(spec(), cls=OpenAPIV31SpecValidator)


def _walk_refs(node: Any, path: str = "#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from _walk_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_refs(value, f"{path}/{i}")


def test_every_ref_resolves():
    resolver = _registry().resolver(base_uri=SPEC_URI)
    refs = list(_walk_refs(spec()))
    assert refs, "the spec uses no $ref at all?"
    for where, ref in refs:
        assert ref.startswith("#/"), f"{where}: only local refs are expected, got {ref}"
        resolver.lookup(ref)  # raises Unresolvable


def test_operations_and_ids():
    found = {
        (method.upper(), path): op.get("operationId")
        for path, item in spec()["paths"].items()
        for method, op in item.items()
    }
    assert found == OPERATIONS


def test_schemas_validate_as_draft_2020_12():
    for schema in spec()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_no_additional_properties_false_on_responses():
    """Gateways add fields (reasoning_content, usage.cost); only the request schemas may forbid extras."""
    response_schemas = ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "CompletionUsage",
                        "ChatCompletionResponseMessage", "ChatCompletionStreamResponseDelta", "Model",
                        "ListModelsResponse", "CreateEmbeddingResponse", "Embedding", "ErrorResponse", "Error"]
    for name in response_schemas:
        assert "additionalProperties: false" not in yaml.safe_dump(spec()["components"]["schemas"][name]), name


# --- error responses, auth and headers -------------------------------------------------------------------------

OPENAI_ERROR_STATUSES = ["400", "401", "402", "403", "404", "413", "429", "500", "502", "503", "504"]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _registry().resolver(base_uri=SPEC_URI).lookup(node["$ref"]).contents
    return node


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings"])
def test_post_routes_document_every_error_status_with_the_envelope(path):
    responses = spec()["paths"][path]["post"]["responses"]
    for status in OPENAI_ERROR_STATUSES:
        body = _resolve(responses[status])["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ErrorResponse"}, (path, status)


def test_error_schema_is_the_official_one():
    error = spec()["components"]["schemas"]["Error"]
    assert sorted(error["required"]) == ["code", "message", "param", "type"]
    assert error["properties"]["param"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert error["properties"]["code"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_bearer_auth_and_optional_auth_on_ollama_routes():
    scheme = spec()["components"]["securitySchemes"]["ApiKeyAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert spec()["security"] == [{"ApiKeyAuth": []}]
    for path, item in spec()["paths"].items():
        for op in item.values():
            if path.startswith("/api/"):
                assert op["security"] == [{}, {"ApiKeyAuth": []}], path
            else:
                assert "security" not in op, path


def test_429_carries_retry_after_and_rate_limit_headers():
    headers = _resolve(spec()["paths"]["/v1/chat/completions"]["post"]["responses"]["429"])["headers"]
    assert _resolve(headers["Retry-After"])["schema"] == {"type": "integer", "minimum": 1}
    for name in ["x-request-id", "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens",
                 "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests",
                 "x-ratelimit-reset-tokens", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]:
        assert name in headers, name


@pytest.mark.parametrize("value", ["1s", "6m0s", "12ms", "9ms", "23h47m36.648s", "0", "0s", "1.5h", "250us"])
def test_go_duration_accepts_observed_reset_values(value):
    assert not errors("GoDuration", value)


@pytest.mark.parametrize("value", ["", "1", "-1s", "1 s", "60", "1d", "s", "PT1S"])
def test_go_duration_rejects_non_durations(value):
    assert errors("GoDuration", value)


def test_x_ratelimit_reset_accepts_iso_8601_and_seconds():
    schema = _resolve(spec()["components"]["headers"]["XRateLimitReset"])["schema"]
    check = Draft202012Validator(schema)
    assert check.is_valid("2026-11-23T12:00:00Z") and check.is_valid(1795435200) and check.is_valid(30)
    assert not check.is_valid("tomorrow")


# --- official and contract.md examples -------------------------------------------------------------------------

POSITIVE_EXAMPLES = [
    ("chat_completion_oaimeta.json", "CreateChatCompletionResponse"),
    ("chat_completion_default.json", "CreateChatCompletionResponse"),
    ("chat_completion_functions.json", "CreateChatCompletionResponse"),
    ("chat_chunks_oaimeta.jsonl", "CreateChatCompletionStreamResponse"),
    ("chat_chunks_usage.jsonl", "CreateChatCompletionStreamResponse"),
    ("chat_chunks_tool_call.jsonl", "CreateChatCompletionStreamResponse"),
    ("models_list.json", "ListModelsResponse"),
    ("model_oaimeta.json", "Model"),
    ("embeddings_response.json", "CreateEmbeddingResponse"),
    ("embedding_oaimeta.json", "Embedding"),
    ("errors.jsonl", "ErrorResponse"),
    ("usage_gateway_variants.jsonl", "CompletionUsage"),
    ("ollama_chat_final.json", "OllamaChatResponse"),
    ("ollama_chat_stream.jsonl", "OllamaChatStreamLine"),
    ("ollama_generate_final.json", "OllamaGenerateResponse"),
    ("ollama_generate_stream_error.jsonl", "OllamaGenerateStreamLine"),
    ("ollama_tags.json", "OllamaTagsResponse"),
    ("ollama_version.json", "OllamaVersionResponse"),
    ("ollama_embed.json", "OllamaEmbedResponse"),
    ("ollama_errors.json", "OllamaErrorResponse"),
]


def test_every_example_file_is_checked():
    assert sorted(p.name for p in EXAMPLES.glob("*.json*")) == sorted(f for f, _ in POSITIVE_EXAMPLES)


@pytest.mark.parametrize(("filename", "schema"), POSITIVE_EXAMPLES, ids=[f for f, _ in POSITIVE_EXAMPLES])
def test_example_validates(filename, schema):
    data = example(filename)
    instances = data if filename.endswith(".jsonl") else [data]
    for i, instance in enumerate(instances):
        assert not errors(schema, instance), (filename, i, errors(schema, instance))


def test_models_example_in_the_official_spec_is_not_json():
    """contract.md §1.6: the official models list example has a trailing comma; we ship the corrected form."""
    broken = '{"object":"list","data":[{"id":"model-id-0","object":"model","created":1686935002,"owned_by":"o",},]}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken)


def test_gateway_extras_are_accepted():
    completion = example("chat_completion_default.json")
    completion["choices"][0]["message"]["reasoning_content"] = "Thinking..."
    completion["usage"]["cost"] = 0.95
    completion["usage"]["cache_creation_input_tokens"] = 0
    completion["provider"] = "unit23"
    assert not errors("CreateChatCompletionResponse", completion)
    chunk = example("chat_chunks_usage.jsonl")[1]
    chunk["choices"][0]["delta"]["reasoning_content"] = "Hmm"
    assert not errors("CreateChatCompletionStreamResponse", chunk)


def test_base64_embedding_is_accepted():
    body = example("embeddings_response.json")
    body["data"][0]["embedding"] = "AACAPwAAAEA="  # float32 LE [1.0, 2.0]
    assert not errors("CreateEmbeddingResponse", body)


# --- negative examples: known gateway breakages must fail ------------------------------------------------------


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


@pytest.mark.parametrize("missing", ["param", "code", "message", "type"])
def test_error_without_a_key_fails(missing):
    body = example("errors.jsonl")[0]
    body["error"] = _without(body["error"], missing)
    assert errors("ErrorResponse", body)


@pytest.mark.parametrize("body", [{"error": "bad key"}, {"error": True, "message": "x"}, {"message": "x"}],
                         ids=["bare-string", "error-true", "no-envelope"])
def test_non_envelope_errors_fail(body):
    assert errors("ErrorResponse", body)


def test_chunk_with_empty_finish_reason_fails():
    chunk = example("chat_chunks_usage.jsonl")[1]
    chunk["choices"][0]["finish_reason"] = ""
    assert errors("CreateChatCompletionStreamResponse", chunk)


def test_chunk_without_finish_reason_key_fails():
    chunk = example("chat_chunks_usage.jsonl")[1]
    chunk["choices"][0] = _without(chunk["choices"][0], "finish_reason")
    assert errors("CreateChatCompletionStreamResponse", chunk)


def test_chunk_with_empty_role_fails():
    chunk = example("chat_chunks_usage.jsonl")[0]
    chunk["choices"][0]["delta"]["role"] = ""
    assert errors("CreateChatCompletionStreamResponse", chunk)


def test_tool_call_chunk_without_index_fails():
    chunk = example("chat_chunks_tool_call.jsonl")[1]
    del chunk["choices"][0]["delta"]["tool_calls"][0]["index"]
    assert errors("CreateChatCompletionStreamResponse", chunk)


@pytest.mark.parametrize("missing", ["content", "refusal", "role"])
def test_message_without_required_key_fails(missing):
    body = example("chat_completion_default.json")
    body["choices"][0]["message"] = _without(body["choices"][0]["message"], missing)
    assert errors("CreateChatCompletionResponse", body)


def test_choice_without_logprobs_fails():
    body = example("chat_completion_default.json")
    body["choices"][0] = _without(body["choices"][0], "logprobs")
    assert errors("CreateChatCompletionResponse", body)


def test_tool_call_arguments_must_be_a_string():
    body = example("chat_completion_functions.json")
    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = {"location": "Boston, MA"}
    assert errors("CreateChatCompletionResponse", body)


def test_usage_under_choices_is_not_usage():
    body = example("chat_completion_default.json")
    del body["usage"]
    body["choices"][0]["usage"] = {"prompt_tokens": "19"}
    assert not errors("CreateChatCompletionResponse", body)  # extra keys are tolerated ...
    body["usage"] = {"prompt_tokens": 19}
    assert errors("CreateChatCompletionResponse", body)  # ... but a partial usage object is not


def test_wrong_object_values_fail():
    body = example("chat_completion_default.json")
    body["object"] = "chat.completion.chunk"
    assert errors("CreateChatCompletionResponse", body)
    assert errors("ListModelsResponse", {"object": "models", "data": []})


def test_ollama_final_object_needs_done_reason_and_integer_metrics():
    final = example("ollama_chat_final.json")
    assert errors("OllamaChatResponse", _without(final, "done_reason"))
    assert errors("OllamaChatResponse", {**final, "total_duration": 4.88})
    assert errors("OllamaChatResponse", {**final, "done_reason": ""})


def test_ollama_tool_call_arguments_are_objects():
    line = example("ollama_chat_stream.jsonl")[0]
    line["message"]["tool_calls"] = [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}]
    assert not errors("OllamaChatResponse", line)
    line["message"]["tool_calls"][0]["function"]["arguments"] = '{"city": "Tokyo"}'
    assert errors("OllamaChatResponse", line)


def test_ollama_error_value_is_a_string():
    assert errors("OllamaErrorResponse", {"error": {"message": "x"}})


# --- request bounds used for fuzzing ---------------------------------------------------------------------------

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("field", "bad"), [
    ("temperature", 2.5), ("temperature", -0.1), ("top_p", 1.5), ("n", 0), ("n", 129),
    ("stop", ["a", "b", "c", "d", "e"]), ("top_logprobs", 21), ("presence_penalty", 3),
])
def test_chat_request_bounds(field, bad):
    assert not errors("CreateChatCompletionRequest", CHAT)
    assert errors("CreateChatCompletionRequest", {**CHAT, field: bad})


@pytest.mark.parametrize("field", ["temperature", "top_p", "n", "stop", "max_tokens", "seed", "stream_options"])
def test_chat_request_accepts_documented_nulls(field):
    assert not errors("CreateChatCompletionRequest", {**CHAT, field: None})


def test_chat_request_needs_a_message():
    assert errors("CreateChatCompletionRequest", {**CHAT, "messages": []})
    assert errors("CreateChatCompletionRequest", {"model": "m"})


@pytest.mark.parametrize("value", ["hello", ["a", "b"], [1, 2, 3], [[1, 2], [3]]])
def test_embedding_request_input_shapes(value):
    assert not errors("CreateEmbeddingRequest", {"model": "e", "input": value})


@pytest.mark.parametrize("body", [
    {"model": "e", "input": []}, {"model": "e", "input": ["x"] * 2049}, {"model": "e", "input": [[]]},
    {"model": "e", "input": "x", "dimensions": 0}, {"model": "e", "input": "x", "encoding_format": "int8"},
    {"model": "e", "input": "x", "unknown": 1},
], ids=["empty", "too-many", "empty-tokens", "dimensions-0", "bad-encoding", "extra-field"])
def test_embedding_request_rejects(body):
    assert errors("CreateEmbeddingRequest", body)


# --- streams: per-event schemas in vendor extensions -----------------------------------------------------------


def test_sse_event_schema_extension_validates_chunks():
    check = extension_validator("POST /v1/chat/completions", "text/event-stream", "x-sse-event-schema")
    for chunk in example("chat_chunks_usage.jsonl"):
        assert check.is_valid(chunk)
    bad = example("chat_chunks_usage.jsonl")[2]
    bad["choices"][0]["finish_reason"] = ""
    assert not check.is_valid(bad)


@pytest.mark.parametrize(("route", "line_file"), [("POST /api/chat", "ollama_chat_stream.jsonl"),
                                                  ("POST /api/generate", "ollama_generate_stream_error.jsonl")])
def test_ndjson_line_schema_extension_validates_lines(route, line_file):
    check = extension_validator(route, "application/x-ndjson", "x-ndjson-line-schema")
    for line in example(line_file):
        assert check.is_valid(line)
    assert not check.is_valid({"model": "m", "done": True})


def test_sse_media_type_schema_accepts_the_raw_body_and_parsed_events():
    """The text/event-stream `schema` accepts the body as a string and an event {data} as schemathesis parses it."""
    check = schema_validator("ChatCompletionServerSentEvent")
    assert check.is_valid('data: {"id": "x"}\n\ndata: [DONE]\n\n')
    assert check.is_valid({"data": "[DONE]"})
    assert not check.is_valid({"event": "ping"})


# --- schemathesis ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _schemathesis_schema():
    import schemathesis

    return schemathesis.openapi.from_path(str(SPEC_PATH))


def test_schemathesis_loads_the_spec_and_lists_every_operation():
    labels = {(r.ok().method.upper(), r.ok().path) for r in _schemathesis_schema().get_all_operations()}
    assert labels == set(OPERATIONS)


def _conformance_failures(route: str, content_type: str, body: str, request_body: dict[str, Any]) -> str:
    """Run schemathesis' response_schema_conformance on one canned 200 answer; '' when it passes."""
    from flask import Flask, Response
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import response_schema_conformance

    method, path = route.split(" ", 1)
    app = Flask(__name__)
    app.add_url_rule(path, view_func=lambda: Response(body, content_type=content_type), methods=[method])
    case = _schemathesis_schema()[path][method].Case(body=request_body, media_type="application/json")
    try:
        case.validate_response(case.call(app=app), checks=[response_schema_conformance])
    except FailureGroup as exc:  # one sub-exception per distinct failure
        return "\n".join([str(exc), *(str(sub) for sub in getattr(exc, "exceptions", ()))])
    return ""


def _sse(chunks: list[Any], done: str = "[DONE]") -> str:
    return ": keep-alive\n\n" + "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + f"data: {done}\n\n"


def test_schemathesis_checks_each_sse_event_against_the_chunk_schema():
    """OpenAPI 3.1 + schemathesis 4 read the event-stream `schema` per parsed event; [DONE] and comments pass."""
    chunks = example("chat_chunks_usage.jsonl")
    sse_type = "text/event-stream; charset=utf-8"
    assert _conformance_failures("POST /v1/chat/completions", sse_type, _sse(chunks), {**CHAT, "stream": True}) == ""
    chunks[1]["choices"][0]["finish_reason"] = ""
    failure = _conformance_failures("POST /v1/chat/completions", sse_type, _sse(chunks), {**CHAT, "stream": True})
    assert "SSE event violates schema" in failure and "Event #1" in failure
    failure = _conformance_failures("POST /v1/chat/completions", sse_type, _sse([], done="oops"), CHAT)
    assert "SSE event violates schema" in failure


def test_schemathesis_accepts_json_and_ndjson_answers():
    body = json.dumps(example("chat_completion_default.json"))
    assert _conformance_failures("POST /v1/chat/completions", "application/json", body, CHAT) == ""
    ndjson = "".join(json.dumps(line) + "\n" for line in example("ollama_chat_stream.jsonl"))
    assert _conformance_failures("POST /api/chat", "application/x-ndjson", ndjson, {"model": "m"}) == ""
