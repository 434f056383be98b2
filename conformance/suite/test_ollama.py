"""Ollama's native surface at the profile's ``ollama.base_path``: liveness, version, tags, NDJSON chat and generate,
``stream: false``, object tool arguments, ``{"error": "<string>"}`` errors, ``name`` == ``name:latest`` and
/api/embed (spec/requirements/ollama.yaml). Requests carry a key only when ``ollama.auth_required`` says so."""

from __future__ import annotations

import re

import pytest

from conformance.ndjson import validate_ollama_stream
from conformance.sse import check_content_type
from conformance.suite.fixtures_rest import CHAT_PROMPT, ollama_error_problems
from gateway_spec.openapi import extension_validator, schema_errors

# Deterministic sampling, so that "x" and "x:latest" can be compared by their answers (OLLAMA-014).
OPTIONS = {"num_predict": 8, "seed": 7, "temperature": 0}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
METRICS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration", "prompt_eval_count",
           "eval_count")
OWN_CHECKS = frozenset(METRICS) | {"created_at", "modified_at"}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
FINDING_REQUIREMENT = {"content-type": "OLLAMA-005", "non-json-line": "OLLAMA-006", "invalid-utf8": "OLLAMA-006",
                       "line-too-large": "OLLAMA-006", "no-done": "OLLAMA-008", "data-after-done": "OLLAMA-008"}


def _neutral(body):
    """``body`` with the fields judged on their own (metrics: OLLAMA-009, times: -019) set to valid values, so a
    schema check reports only the rest, even through the schemas' oneOf branches."""
    if not isinstance(body, dict):
        return body
    return {k: (0 if k in METRICS else "2024-01-01T00:00:00Z") if k in OWN_CHECKS else v for k, v in body.items()}


def _errors(schema: str, body) -> list[str]:
    """Schema errors, except those about the fields judged on their own."""
    return schema_errors(schema, _neutral(body))


def _line_ok(validator, obj) -> bool:
    """A stream line valid against its schema, up to the fields judged on their own."""
    return not list(validator.iter_errors(_neutral(obj)))


def _model(profile) -> str:
    return profile.get("ollama.default_model") or profile.get("models.default_chat")


def _full(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def _needs_endpoint(profile, endpoint: str) -> None:
    documented = profile.get("ollama.endpoints")
    if documented is not None and endpoint not in documented:
        pytest.skip(f"the profile documents no /{endpoint} on its Ollama surface")


def _chat(rest, profile, *, model=None, **fields):
    body = {"model": model or _model(profile), "messages": CHAT_PROMPT, "options": OPTIONS, **fields}
    if fields.get("stream") is False:
        return rest.ollama("POST", "/chat", body)
    return rest.ollama_stream("/chat", body)


def _status(exchange) -> str:
    return f"HTTP {exchange.status}: {exchange.response.text[:300]}"


@pytest.mark.requirement("OLLAMA-001")
def test_root_says_ollama_is_running(rest, expect):
    exchange = rest.ollama("GET", "/")
    expect("OLLAMA-001", exchange.status == 200 and exchange.response.text.strip() == "Ollama is running",
           expected='HTTP 200 "Ollama is running"', received=_status(exchange))


@pytest.mark.requirement("OLLAMA-023")
def test_head_root_is_200(rest, expect):
    exchange = rest.ollama("HEAD", "/")
    expect("OLLAMA-023", exchange.status == 200, expected="HTTP 200", received=f"HTTP {exchange.status}")


@pytest.mark.requirement("OLLAMA-002")
def test_version_is_a_string(rest, expect, profile):
    _needs_endpoint(profile, "version")
    exchange = rest.ollama("GET", "/version")
    body = exchange.json()
    expect("OLLAMA-002", exchange.status == 200 and isinstance(body, dict) and isinstance(body.get("version"), str)
           and not schema_errors("OllamaVersionResponse", body), expected='HTTP 200 {"version": "<string>"}',
           received=_status(exchange))


@pytest.mark.requirement("OLLAMA-018")
def test_native_routes_need_no_key(rest, expect, profile):
    if profile.get("ollama.auth_required"):
        pytest.skip("the profile documents authentication on its Ollama surface")
    exchange = rest.ollama("GET", "/tags")  # sent without Authorization (rest.ollama_auth is False)
    expect("OLLAMA-018", exchange.status == 200, expected="HTTP 200 without an Authorization header",
           received=_status(exchange))


def _tags(rest, expect, req_id: str) -> list[dict]:
    exchange = rest.ollama("GET", "/tags")
    body = exchange.json()
    if exchange.status != 200 or not isinstance(body, dict) or not isinstance(body.get("models"), list):
        if req_id == "OLLAMA-003":
            expect(req_id, False, expected='HTTP 200 {"models": [...]}', received=_status(exchange))
        else:
            expect.untestable(req_id, f"no /tags list ({_status(exchange)})")
        return []
    return [m for m in body["models"] if isinstance(m, dict)]


@pytest.mark.requirement("OLLAMA-003", "OLLAMA-004", "OLLAMA-019")
def test_tags_list_models_with_details(rest, expect):
    for item in _tags(rest, expect, "OLLAMA-003"):
        missing = [k for k in ("name", "model", "modified_at", "size", "digest", "details") if k not in item]
        errors = _errors("OllamaModel", item) if not missing else []
        expect("OLLAMA-003", not missing and not errors, expected="name, model, modified_at, size, digest, details",
               received=f"missing {missing} {errors}", note=f"name={item.get('name')!r}")
        details = item.get("details") if isinstance(item.get("details"), dict) else {}
        lacking = [k for k in ("format", "family", "families", "parameter_size", "quantization_level")
                   if k not in details]
        expect("OLLAMA-004", not lacking, expected="details with format, family, families, parameter_size, "
               "quantization_level", received=f"missing {lacking}", note=f"name={item.get('name')!r}")
        if "modified_at" in item:
            expect("OLLAMA-019", isinstance(item["modified_at"], str) and RFC3339.match(item["modified_at"]),
                   expected="RFC 3339 date-time", received=item["modified_at"], note=f"name={item.get('name')!r}")


def _stream_checks(expect, exchange) -> list[dict]:
    """Framing checks of an /api/chat stream (findings go to the requirement they break); the parsed objects."""
    transcript = exchange.ndjson
    expect.fatal("OLLAMA-005", exchange.status == 200, expected="HTTP 200 stream", received=_status(exchange))
    for finding in validate_ollama_stream(transcript, exchange.headers.get("content-type")):
        req_id = FINDING_REQUIREMENT.get(finding.code)
        if req_id and req_id in expect.marker_ids:
            expect(req_id, False, expected="a well-formed NDJSON stream", received=f"{finding.code}: "
                   f"{finding.message} at byte {finding.offset}: {finding.excerpt}")
    if "OLLAMA-006" in expect.marker_ids and not transcript.raw_truncated and transcript.raw:
        expect("OLLAMA-006", transcript.raw.endswith(b"\n"), expected="every line ends with a newline",
               received=f"body ends with {transcript.raw[-40:]!r}")
    return transcript.values()


@pytest.mark.requirement("OLLAMA-005", "OLLAMA-006", "OLLAMA-007", "OLLAMA-008", "OLLAMA-009", "OLLAMA-010",
                         "OLLAMA-019")
def test_chat_streams_ndjson_by_default(rest, expect, profile):
    objects = _stream_checks(expect, _chat(rest, profile))
    expect.fatal("OLLAMA-008", objects and objects[-1].get("done") is True, expected="a last object with done "
                 "true", received=objects[-1:] or "no objects")
    line = extension_validator("POST /api/chat", "application/x-ndjson", "x-ndjson-line-schema")
    for i, obj in enumerate(objects[:-1]):
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        ok = isinstance(obj.get("model"), str) and "created_at" in obj and obj.get("done") is False \
            and message.get("role") == "assistant" and isinstance(message.get("content"), str)
        expect("OLLAMA-007", ok and _line_ok(line, obj), expected='model, created_at, message '
               '{role "assistant", content}, done false', received=obj, note=f"line {i}")
        if "created_at" in obj:
            expect("OLLAMA-019", isinstance(obj.get("created_at"), str) and RFC3339.match(obj["created_at"]),
                   expected="RFC 3339 date-time", received=obj.get("created_at"), note=f"line {i}")
    _check_final(expect, objects[-1])
    final_message = objects[-1].get("message") if isinstance(objects[-1].get("message"), dict) else {}
    expect("OLLAMA-010", final_message.get("content", "") == "", expected='message.content ""',
           received=final_message.get("content"))


def _check_final(expect, final: dict) -> None:
    expect("OLLAMA-008", isinstance(final.get("done_reason"), str), expected="done_reason string",
           received={k: v for k, v in final.items() if k not in ("message", "context")})
    for key in (k for k in METRICS if k in final):
        value = final[key]
        expect("OLLAMA-009", isinstance(value, int) and not isinstance(value, bool) and value >= 0,
               expected="a non-negative integer (nanoseconds for durations)", received=value, note=key)


@pytest.mark.requirement("OLLAMA-011")
def test_stream_false_gives_one_json_object(rest, expect, profile):
    exchange = _chat(rest, profile, stream=False)
    body = exchange.json()
    message = body.get("message") if isinstance(body, dict) and isinstance(body.get("message"), dict) else {}
    expect("OLLAMA-011", exchange.status == 200 and check_content_type(
        exchange.headers.get("content-type"), "application/json") is None and body.get("done") is True
        and isinstance(message.get("content"), str) and message["content"] != "",
        expected="HTTP 200 application/json, one object, done true, the answer in message.content",
        received=f"{exchange.headers.get('content-type')} {_status(exchange)}")
    if isinstance(body, dict):
        errors = _errors("OllamaChatResponse", body)
        expect("OLLAMA-011", not errors, expected="OllamaChatResponse (spec/openapi.yaml)", received=errors)


@pytest.mark.requirement("OLLAMA-012")
def test_tool_call_arguments_are_objects(rest, expect, profile):
    exchange = _chat(rest, profile, stream=False, tools=[WEATHER_TOOL],
                     messages=[{"role": "user", "content": "What is the weather in Paris? Use the tool."}])
    body = exchange.json()
    message = body.get("message") if isinstance(body, dict) and isinstance(body.get("message"), dict) else {}
    calls = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else []
    if not calls:
        expect.untestable("OLLAMA-012", f"no tool call came back ({_status(exchange)})")
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        expect("OLLAMA-012", isinstance(arguments, dict), expected="function.arguments as a JSON object",
               received=repr(arguments)[:200], note=f"tool_calls[{i}]")


@pytest.mark.requirement("OLLAMA-013", "OLLAMA-015")
def test_unknown_model_is_404_with_string_error(rest, expect, profile):
    exchange = _chat(rest, profile, model="conformance-no-such-model:latest", stream=False)
    expect("OLLAMA-015", exchange.status == 404, expected="HTTP 404", received=_status(exchange))
    problems = ollama_error_problems(exchange.response)
    expect("OLLAMA-013", not problems, expected='{"error": "<string>"}', received=problems)


@pytest.mark.requirement("OLLAMA-013", "OLLAMA-021")
def test_missing_model_is_400_with_string_error(rest, expect):
    exchange = rest.ollama("POST", "/chat", {"messages": CHAT_PROMPT, "stream": False})
    expect("OLLAMA-021", exchange.status == 400, expected="HTTP 400", received=_status(exchange))
    if exchange.status < 400:
        return  # served: OLLAMA-021's failure, and no error body to judge
    problems = ollama_error_problems(exchange.response)
    expect("OLLAMA-013", not problems, expected='{"error": "<string>"}', received=problems)


@pytest.mark.requirement("OLLAMA-014")
def test_name_and_name_latest_are_one_model(rest, expect, profile):
    bare = _model(profile).removesuffix(":latest")
    answers = []
    for name in (bare, _full(bare)):
        exchange = _chat(rest, profile, model=name, stream=False)
        body = exchange.json()
        expect.fatal("OLLAMA-014", exchange.status == 200 and isinstance(body, dict),
                     expected=f"HTTP 200 for {name!r}", received=_status(exchange))
        answers.append((body.get("message") or {}).get("content"))
    expect("OLLAMA-014", answers[0] == answers[1], expected=f"the same answer from {bare!r} and {_full(bare)!r} "
           f"(same prompt, seed {OPTIONS['seed']}, temperature 0)", received=answers)


@pytest.mark.requirement("OLLAMA-024")
def test_generate_stream_false_gives_one_json_object(rest, expect, profile):
    _needs_endpoint(profile, "generate")
    exchange = rest.ollama("POST", "/generate", {"model": _model(profile), "prompt": "Say OK.", "options": OPTIONS,
                                                 "stream": False})
    body = exchange.json()
    body = body if isinstance(body, dict) else {}
    expect("OLLAMA-024", exchange.status == 200 and check_content_type(
        exchange.headers.get("content-type"), "application/json") is None and body.get("done") is True
        and isinstance(body.get("response"), str) and body["response"] != "",
        expected="HTTP 200 application/json, one object, done true, the answer in response",
        received=f"{exchange.headers.get('content-type')} {_status(exchange)}")


@pytest.mark.requirement("OLLAMA-016")
def test_generate_streams_fragments_then_done(rest, expect, profile):
    _needs_endpoint(profile, "generate")
    exchange = rest.ollama_stream("/generate", {"model": _model(profile), "prompt": "Say OK.", "options": OPTIONS})
    expect.fatal("OLLAMA-016", exchange.status == 200, expected="HTTP 200 stream", received=_status(exchange))
    objects = exchange.ndjson.values()
    line = extension_validator("POST /api/generate", "application/x-ndjson", "x-ndjson-line-schema")
    for i, obj in enumerate(objects):
        expect("OLLAMA-016", isinstance(obj.get("response"), str) and _line_ok(line, obj),
               expected="a response fragment (OllamaGenerateStreamLine)", received=obj, note=f"line {i}")
    expect("OLLAMA-016", objects and objects[-1].get("done") is True, expected="the last object done true",
           received=objects[-1:] or "no objects")


def _embedding_names(profile) -> set[str]:
    names = {m["name"] for m in profile.get("ollama.models") or [] if m.get("embedding_dimensions")}
    for entry in profile.get("models.embedding") or []:
        names |= {_full(n) for n in (entry["id"], *(entry.get("aliases") or []))}
    return names


@pytest.mark.requirement("OLLAMA-017")
def test_embed_gives_one_vector_per_input(rest, expect, profile):
    _needs_endpoint(profile, "embed")
    model = sorted(_embedding_names(profile)) or [_model(profile)]
    exchange = rest.ollama("POST", "/embed", {"model": model[0], "input": ["first text", "second text"]})
    body = exchange.json()
    vectors = body.get("embeddings") if isinstance(body, dict) else None
    ok = exchange.status == 200 and isinstance(vectors, list) and len(vectors) == 2 and all(
        isinstance(v, list) and v for v in vectors) and not _errors("OllamaEmbedResponse", body)
    expect("OLLAMA-017", ok, expected='HTTP 200 {"model", "embeddings": [[...], [...]]}',
           received=_status(exchange))


@pytest.mark.requirement("OLLAMA-020")
def test_mid_stream_error_is_a_string_line(rest, expect, profile, conformance):
    if not conformance.capabilities.mock_controls:
        pytest.skip("provoking an error after the stream started needs the embedded server's X-Mock-Error-After")
    exchange = rest.ollama_stream("/chat", {"model": _model(profile), "messages": CHAT_PROMPT, "options": OPTIONS},
                                  headers={"X-Mock-Error-After": "2"})
    errors = [o for o in exchange.ndjson.values() if "error" in o]
    expect("OLLAMA-020", exchange.status == 200 and errors and all(isinstance(o["error"], str) for o in errors),
           expected='HTTP 200 and a {"error": "<string>"} line', received=f"HTTP {exchange.status}, {errors}")


@pytest.mark.requirement("OLLAMA-022")
def test_every_tag_is_served_by_chat(rest, expect, profile):
    embedding = _embedding_names(profile)  # embedding models cannot chat, in Ollama too
    for item in _tags(rest, expect, "OLLAMA-022"):
        name = item.get("name")
        if not isinstance(name, str) or _full(name) in embedding:
            continue
        exchange = _chat(rest, profile, model=name, stream=False, options={"num_predict": 1})
        expect("OLLAMA-022", exchange.status == 200, expected="HTTP 200", received=_status(exchange),
               note=f"model={name!r}")
