"""response_format: text, json_object and json_schema (spec/requirements/structured-output.yaml)."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from conformance.exchanges import Spec, exchange
from conformance.suite.fixtures_chat import (
    ENVELOPE,
    chat_basic_body,
    check_error_envelope,
    skip_unless_claimed,
)

# OpenAI refuses json_object unless a message says "JSON", so every prompt does.
JSON_PROMPT = [{"role": "user", "content": 'Reply with a JSON object {"greeting": "<one word>"} and nothing else.'}]
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
               "required": ["city", "population"]}
STRICT_SCHEMA = {**CITY_SCHEMA, "additionalProperties": False}
# A cap, not a spend: the prompts ask for a few tokens, and a JSON answer cut by the cap is not JSON at all.
ROOM = 200
CITY_PROMPT = [{"role": "user", "content": "Give the largest city of France and its population as JSON."}]


def json_schema_format(schema: dict, *, strict: bool, name: str = "city_facts") -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": strict, "schema": schema}}


def parsed(content):
    """(value, error): the JSON in ``content``, or why it is not JSON."""
    if not isinstance(content, str):
        return None, f"content is {content!r}, not a string"
    try:
        return json.loads(content), None
    except ValueError as exc:
        return None, f"{exc}: {content[:200]!r}"


def _require_ok(expect, req_id, exchange) -> bool:
    return expect(req_id, exchange.ok and exchange.choices, expected="HTTP 200 with a choice",
                  received=exchange.summary())


def _bodies(model: str) -> dict[str, tuple[dict, bool]]:
    """Every named exchange of the checks below: (body, streamed)."""
    return {
        "json-object": ({"model": model, "max_tokens": ROOM, "messages": JSON_PROMPT,
                         "response_format": {"type": "json_object"}}, False),
        "json-object-stream": ({"model": model, "max_tokens": ROOM, "stream": True, "messages": JSON_PROMPT,
                                "response_format": {"type": "json_object"}}, True),
        "json-schema": ({"model": model, "max_tokens": ROOM, "messages": CITY_PROMPT,
                         "response_format": json_schema_format(CITY_SCHEMA, strict=False)}, False),
        "json-schema-strict": ({"model": model, "max_tokens": ROOM, "messages": CITY_PROMPT,
                                "response_format": json_schema_format(STRICT_SCHEMA, strict=True)}, False),
        "format-text": ({**chat_basic_body(model), "response_format": {"type": "text"}}, False),
        "unknown-format": ({**chat_basic_body(model), "max_tokens": 1,
                            "response_format": {"type": "conformance_yaml"}}, False),
        "bad-schema-name": ({"model": model, "max_tokens": 1, "messages": CITY_PROMPT,
                             "response_format": json_schema_format(CITY_SCHEMA, strict=False, name="city facts!")},
                            False),
    }


@exchange(hint=True)
def structured_requests(plan):
    """The named exchanges the checks below ask ``chat_calls`` for: sent with the plan."""
    return {f"chat.{name}": Spec.post("/chat/completions", body, read="sse-or-json" if streamed else "buffered")
            for name, (body, streamed) in _bodies(plan.chat_model).items()}


def _post(chat_calls, chat_model, name: str):
    body, streamed = _bodies(chat_model)[name]
    return chat_calls.post(name, body, stream=streamed)


def _json_object_exchange(chat_calls, chat_model):
    return _post(chat_calls, chat_model, "json-object")


@pytest.mark.requirement("STRUCTURED-OUTPUT-001")
def test_json_object_content_is_an_object(structured_requests, chat_calls, chat_model, expect):
    exchange = _json_object_exchange(chat_calls, chat_model)
    if not _require_ok(expect, "STRUCTURED-OUTPUT-001", exchange):
        return
    value, error = parsed(exchange.content)
    expect("STRUCTURED-OUTPUT-001", isinstance(value, dict), expected="content parses as a JSON object",
           received=error or f"a JSON {type(value).__name__}: {exchange.content[:200]!r}")


@pytest.mark.requirement("STRUCTURED-OUTPUT-006")
def test_json_object_finishes_with_stop(structured_requests, chat_calls, chat_model, expect):
    exchange = _json_object_exchange(chat_calls, chat_model)
    if not _require_ok(expect, "STRUCTURED-OUTPUT-006", exchange):
        return
    choice = exchange.choice()
    expect("STRUCTURED-OUTPUT-006", choice.get("finish_reason") == "stop" and exchange.content is not None,
           expected=f'finish_reason "stop" and content not null ({ROOM} tokens of room)',
           received=f"finish_reason {choice.get('finish_reason')!r}, content {exchange.content!r}")


@pytest.mark.requirement("STRUCTURED-OUTPUT-002")
def test_streamed_json_object(structured_requests, chat_calls, chat_model, expect):
    exchange = _post(chat_calls, chat_model, "json-object-stream")
    if not expect("STRUCTURED-OUTPUT-002", exchange.status == 200 and exchange.chunks is not None,
                  expected="HTTP 200 event stream", received=exchange.summary()):
        return
    text = "".join(choice.get("delta", {}).get("content") or "" for chunk in exchange.chunks
                   if isinstance(chunk, dict) for choice in chunk.get("choices") or []
                   if isinstance(choice, dict) and choice.get("index", 0) == 0 and isinstance(choice.get("delta"), dict))
    value, error = parsed(text)
    expect("STRUCTURED-OUTPUT-002", isinstance(value, dict), expected="concatenated deltas parse as a JSON object",
           received=error or repr(text[:200]))


def _schema_check(expect, req_id, exchange, schema) -> None:
    if not _require_ok(expect, req_id, exchange):
        return
    value, error = parsed(exchange.content)
    if error:
        expect(req_id, False, expected="content that parses as JSON", received=error)
        return
    problems = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in Draft202012Validator(schema).iter_errors(value)]
    expect(req_id, not problems, expected=f"valid against {json.dumps(schema)}", received="; ".join(problems[:5]))


@pytest.mark.requirement("STRUCTURED-OUTPUT-003")
def test_json_schema_is_followed(structured_requests, chat_calls, chat_model, expect):
    exchange = _post(chat_calls, chat_model, "json-schema")
    _schema_check(expect, "STRUCTURED-OUTPUT-003", exchange, CITY_SCHEMA)


@pytest.mark.requirement("STRUCTURED-OUTPUT-004")
def test_strict_json_schema(structured_requests, chat_calls, chat_model, expect):
    exchange = _post(chat_calls, chat_model, "json-schema-strict")
    _schema_check(expect, "STRUCTURED-OUTPUT-004", exchange, STRICT_SCHEMA)


@pytest.mark.requirement("STRUCTURED-OUTPUT-005")
def test_text_format_is_plain(structured_requests, chat_calls, chat_model, expect):
    exchange = _post(chat_calls, chat_model, "format-text")
    if not _require_ok(expect, "STRUCTURED-OUTPUT-005", exchange):
        return
    content = exchange.content
    expect("STRUCTURED-OUTPUT-005", isinstance(content, str) and content.strip() != "",
           expected="a plain text answer, as without response_format", received=repr(content))


def _rejected(expect, req_id, response, profile):
    expect(req_id, response.status_code == 400, expected="HTTP 400",
           received=f"HTTP {response.status_code}: {response.text[:300]}")
    return check_error_envelope(expect, response, profile) if response.status_code >= 400 else None


@pytest.mark.requirement("STRUCTURED-OUTPUT-007", *ENVELOPE)
def test_unknown_format_type(structured_requests, chat_calls, chat_model, profile, expect):
    err = _rejected(expect, "STRUCTURED-OUTPUT-007", _post(chat_calls, chat_model, "unknown-format"), profile)
    if err is not None:
        expect("STRUCTURED-OUTPUT-007", str(err.get("param") or "").startswith("response_format"),
               expected="param naming response_format", received=err.get("param"))


@pytest.mark.requirement("STRUCTURED-OUTPUT-008", *ENVELOPE)
def test_bad_schema_name(structured_requests, chat_calls, chat_model, profile, expect):
    skip_unless_claimed(profile, "json-schema")
    _rejected(expect, "STRUCTURED-OUTPUT-008", _post(chat_calls, chat_model, "bad-schema-name"), profile)
