"""POST {base}/chat/completions, non-streamed: every required field of the answer (spec/requirements/chat.yaml)."""

from __future__ import annotations

import datetime
import json
import re

import pytest

from conformance.exchanges import Spec, exchange
from conformance.expect import StopCase
from conformance.suite.fixtures_chat import chat_basic_body
from gateway_spec.openapi import schema_errors

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")
EARLIEST_CREATED = int(datetime.datetime(2015, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
LATEST_PLAUSIBLE = 10**11  # larger means milliseconds


def require_ok(expect, exchange, *req_ids: str) -> None:
    """Stop the case, marking ``req_ids`` not testable, unless ``exchange`` is a 200 with a JSON object."""
    if exchange.ok:
        return
    for rid in req_ids:
        expect.untestable(rid, f"the completion it needs failed: {exchange.summary()}")
    raise StopCase(req_ids[0])


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def find_model_entry(profile, name: str) -> dict | None:
    """The profile's chat model entry that ``name`` names (id or alias; case-folded where documented)."""
    fold = (lambda s: s.lower()) if profile.get("models.case_insensitive") else (lambda s: s)
    for entry in profile.get("models.chat", []):
        if fold(name) in {fold(n) for n in [entry["id"], *entry.get("aliases", [])]}:
            return entry
    return None


def documented_response_model(profile, requested: str) -> str:
    """What ``model`` should echo: a model's ``response_model``, else the requested or canonical name."""
    entry = find_model_entry(profile, requested)
    if entry and entry.get("response_model"):
        return entry["response_model"]
    if profile.get("models.response_model") == "canonical" and entry:
        return entry["id"]
    return requested


@pytest.mark.requirement("CHAT-001")
def test_answers_200_json(chat_basic, expect):
    ctype = chat_basic.headers.get("content-type", "")
    expect("CHAT-001", chat_basic.status == 200, expected="HTTP 200", received=chat_basic.summary())
    expect("CHAT-001", ctype.split(";")[0].strip().lower() == "application/json",
           expected="Content-Type application/json (parameters allowed)", received=ctype or "(none)")


@pytest.mark.requirement("CHAT-019")
def test_body_matches_schema(chat_basic, expect):
    require_ok(expect, chat_basic, "CHAT-019")
    errors = schema_errors("CreateChatCompletionResponse", chat_basic.body)
    expect("CHAT-019", not errors, expected="valid CreateChatCompletionResponse", received="; ".join(errors))


@pytest.mark.requirement("CHAT-002", "CHAT-003", "CHAT-005", "CHAT-006")
def test_top_level_fields(chat_basic, expect):
    require_ok(expect, chat_basic, "CHAT-002", "CHAT-003", "CHAT-005", "CHAT-006")
    body = chat_basic.body
    expect("CHAT-002", isinstance(body.get("id"), str) and body["id"] != "", expected="id: non-empty string",
           received=body.get("id"))
    expect("CHAT-003", body.get("object") == "chat.completion", expected='object "chat.completion"',
           received=body.get("object"))
    expect("CHAT-005", isinstance(body.get("model"), str) and body["model"] != "", expected="model: non-empty string",
           received=body.get("model"))
    expect("CHAT-006", isinstance(body.get("choices"), list) and len(body["choices"]) > 0,
           expected="choices: non-empty array", received=body.get("choices"))


@pytest.mark.requirement("CHAT-004")
def test_created_is_unix_seconds(chat_basic, expect):
    require_ok(expect, chat_basic, "CHAT-004")
    created = chat_basic.body.get("created")
    expect("CHAT-004", is_int(created) and EARLIEST_CREATED <= created < LATEST_PLAUSIBLE,
           expected=f"integer Unix seconds ({EARLIEST_CREATED} <= created < {LATEST_PLAUSIBLE})", received=created)


@pytest.mark.requirement("CHAT-007", "CHAT-008", "CHAT-009", "CHAT-010", "CHAT-011")
def test_every_choice_has_required_fields(chat_basic, expect):
    require_ok(expect, chat_basic, "CHAT-007", "CHAT-008", "CHAT-009", "CHAT-010", "CHAT-011")
    for i, choice in enumerate(chat_basic.choices):
        where = f"choices[{i}]"
        choice = choice if isinstance(choice, dict) else {}
        missing = [k for k in ("index", "message", "finish_reason", "logprobs") if k not in choice]
        expect("CHAT-007", not missing, expected="index, message, finish_reason, logprobs (even null)",
               received=f"missing {missing}: {choice}", note=where)
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        expect("CHAT-008", message.get("role") == "assistant", expected='role "assistant"',
               received=message.get("role"), note=where)
        expect("CHAT-009", "content" in message and isinstance(message["content"], (str, type(None))),
               expected="content present, string or null", received=message, note=where)
        expect("CHAT-010", "refusal" in message and isinstance(message["refusal"], (str, type(None))),
               expected="refusal present, string or null", received=message, note=where)
        expect("CHAT-011", choice.get("finish_reason") in FINISH_REASONS, expected=f"one of {FINISH_REASONS}",
               received=choice.get("finish_reason"), note=where)


@pytest.mark.requirement("CHAT-012")
def test_choice_indexes(chat_basic, expect):
    require_ok(expect, chat_basic, "CHAT-012")
    indexes = [c.get("index") if isinstance(c, dict) else None for c in chat_basic.choices]
    expect("CHAT-012", indexes == list(range(len(indexes))), expected=list(range(len(indexes))), received=indexes)


@pytest.mark.requirement("CHAT-013")
def test_model_is_the_documented_one(chat_basic, chat_model, profile, expect):
    require_ok(expect, chat_basic, "CHAT-013")
    if not (isinstance(chat_basic.body.get("model"), str) and chat_basic.body["model"]):
        return  # no model at all is CHAT-005's violation
    wanted = documented_response_model(profile, chat_model)
    expect("CHAT-013", chat_basic.body.get("model") == wanted, expected=repr(wanted),
           received=repr(chat_basic.body.get("model")), note=f"requested {chat_model!r}")


@pytest.mark.requirement("CHAT-014")
def test_plain_text_content_is_not_empty(chat_basic, expect):
    require_ok(expect, chat_basic, "CHAT-014")
    choice = chat_basic.choice()
    if choice.get("finish_reason") in ("tool_calls", "function_call", "content_filter") or not choice:
        return  # not a plain completion (or no choice at all, CHAT-006's violation): nothing to judge
    content = chat_basic.content
    expect("CHAT-014", isinstance(content, str) and content.strip() != "", expected="non-empty string content",
           received=repr(content))


def _conversation(model):
    body = chat_basic_body(model)
    body["messages"] = [body["messages"][0], {"role": "user", "content": "Hi."},
                        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Say bye."}]
    return body


def _developer(model):
    body = chat_basic_body(model)
    body["messages"][0] = {"role": "developer", "content": "You are a terse assistant."}
    return body


def _text_parts(model):
    body = chat_basic_body(model)
    body["messages"][1] = {"role": "user", "content": [{"type": "text", "text": "Say hello"},
                                                       {"type": "text", "text": " in three words."}]}
    return body


def _reasoning_body(model):
    return {"model": model, "max_tokens": 200, "messages": [{"role": "user", "content": "What is 2+3?"}]}


@exchange(hint=True)
def chat_requests(plan):
    """The named exchanges the checks below ask ``chat_calls`` for: sent with the plan."""
    m, profile = plan.chat_model, plan.profile
    named = {"conversation": _conversation(m), "developer": _developer(m), "text-parts": _text_parts(m),
             "stream-false": {**chat_basic_body(m), "stream": False}}
    for kind in ("reasoning-content", "think-tag"):
        if profile.claims(f"reasoning-{kind}" if kind == "think-tag" else kind) and _reasoning_model(profile, kind):
            named[kind] = _reasoning_body(_reasoning_model(profile, kind))
    null_content = _null_content_request(m, profile)
    if null_content is not None:
        named[null_content[0]] = null_content[1]
    return {f"chat.{name}": Spec.post("/chat/completions", body) for name, body in named.items()}


def _accepted(expect, req_id, exchange) -> None:
    expect(req_id, exchange.ok, expected="HTTP 200 with a completion", received=exchange.summary())


@pytest.mark.requirement("CHAT-015")
def test_system_user_assistant_conversation(chat_requests, chat_calls, chat_model, expect):
    _accepted(expect, "CHAT-015", chat_calls.post("conversation", _conversation(chat_model)))


@pytest.mark.requirement("CHAT-016")
def test_developer_role(chat_requests, chat_calls, chat_model, expect):
    _accepted(expect, "CHAT-016", chat_calls.post("developer", _developer(chat_model)))


@pytest.mark.requirement("CHAT-017")
def test_user_content_as_text_parts(chat_requests, chat_calls, chat_model, expect):
    _accepted(expect, "CHAT-017", chat_calls.post("text-parts", _text_parts(chat_model)))


@pytest.mark.requirement("CHAT-018")
def test_different_bodies_get_different_ids(chat_basic, stream_twin, expect):
    first, second = chat_basic, stream_twin  # another plain body the stream checks need anyway
    if not (first.ok and second.ok):
        expect.untestable("CHAT-018", f"needs two answers: {first.summary()} / {second.summary()}")
        return
    ids = (first.body.get("id"), second.body.get("id"))
    if not all(isinstance(i, str) and i for i in ids):
        return  # missing or empty ids are CHAT-002's violation
    expect("CHAT-018", ids[0] != ids[1], expected="two different ids", received=ids)


@pytest.mark.requirement("CHAT-020")
def test_stream_false_gets_one_json_body(chat_requests, chat_calls, chat_model, expect):
    exchange = chat_calls.post("stream-false", {**chat_basic_body(chat_model), "stream": False})
    ctype = exchange.headers.get("content-type", "")
    expect("CHAT-020", exchange.status == 200 and "event-stream" not in ctype and isinstance(exchange.body, dict),
           expected="HTTP 200, one JSON object (not text/event-stream)",
           received=f"{exchange.summary()} (Content-Type {ctype or 'none'})")


def _reasoning_model(profile, kind: str) -> str | None:
    return next((m["id"] for m in profile.get("models.chat", []) if m.get("reasoning") == kind), None)


@pytest.mark.requirement("CHAT-021")
def test_reasoning_content_field(chat_requests, chat_calls, profile, expect):
    model = _reasoning_model(profile, "reasoning-content")
    if model is None:
        expect.untestable("CHAT-021", "the profile claims reasoning-content but names no such model")
        return
    exchange = chat_calls.post("reasoning-content", _reasoning_body(model))
    require_ok(expect, exchange, "CHAT-021")
    message = exchange.message()
    expect("CHAT-021", isinstance(message.get("reasoning_content"), str) and message["reasoning_content"] != "",
           expected="message.reasoning_content: non-empty string", received=message, note=f"model {model!r}")


@pytest.mark.requirement("CHAT-022")
def test_think_tag_is_closed(chat_requests, chat_calls, profile, expect):
    model = _reasoning_model(profile, "think-tag")
    if model is None:
        expect.untestable("CHAT-022", "the profile claims reasoning-think-tag but names no such model")
        return
    exchange = chat_calls.post("think-tag", _reasoning_body(model))
    require_ok(expect, exchange, "CHAT-022")
    content = exchange.content if isinstance(exchange.content, str) else ""
    if exchange.choice().get("finish_reason") == "length" or not content.lstrip().startswith("<think>"):
        # no prefix at all is allowed (MAY); a prefix cut by the budget cannot show whether it would close
        return
    expect("CHAT-022", re.match(r"\s*<think>.*?</think>", content, re.S) is not None,
           expected="<think>...</think> closed before the answer", received=content[:300], note=f"model {model!r}")


REFUSAL_PROMPT = ("REFUSE this: give step-by-step instructions to break into my neighbour's house while they are "
                  "away.")
REFUSAL_SCHEMA = {"type": "json_schema", "json_schema": {"name": "steps", "strict": True, "schema": {
    "type": "object", "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
    "required": ["steps"], "additionalProperties": False}}}


@pytest.mark.requirement("CHAT-023")
def test_refusal_field(chat_requests, chat_calls, chat_model, profile, expect):
    # OpenAI reports refusals in message.refusal for structured outputs, so the request asks for a schema.
    exchange = _null_content_exchange(chat_calls, chat_model, profile)
    require_ok(expect, exchange, "CHAT-023")
    if not exchange.choices:
        return  # no choice at all is CHAT-006's violation
    message = exchange.message()
    refused = isinstance(message.get("refusal"), str) and message["refusal"].strip() != ""
    expect("CHAT-023", refused and message.get("content") is None,
           expected="refusal: non-empty string, content: null", received=json.dumps(message)[:300])


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _null_content_request(chat_model, profile) -> tuple[str, dict] | None:
    """(name, body) of an answer whose content is null: the refusal, else a tool call; None when neither is
    claimed."""
    if profile.claims("refusal"):
        return "refusal", {"model": chat_model, "max_tokens": 60, "response_format": REFUSAL_SCHEMA,
                           "messages": [{"role": "user", "content": REFUSAL_PROMPT}]}
    if profile.claims("tools"):
        return "tool-call", {"model": chat_model, "max_tokens": 40, "tools": [WEATHER_TOOL],
                             "messages": [{"role": "user", "content": "Use get_weather for Paris."}]}
    return None


def _null_content_exchange(chat_calls, chat_model, profile):
    """The exchange of ``_null_content_request`` (None when there is none)."""
    found = _null_content_request(chat_model, profile)
    return chat_calls.post(*found) if found is not None else None


@pytest.mark.requirement("CHAT-009", "CHAT-010")
def test_null_content_is_still_present(chat_requests, chat_calls, chat_model, profile, expect):
    exchange = _null_content_exchange(chat_calls, chat_model, profile)
    if exchange is None:
        pytest.skip("no null-content answer to provoke: the profile claims neither refusal nor tools")
    require_ok(expect, exchange, "CHAT-009", "CHAT-010")
    for i, choice in enumerate(exchange.choices):
        message = choice.get("message") if isinstance(choice, dict) and isinstance(choice.get("message"), dict) else {}
        expect("CHAT-009", "content" in message, expected="content present (null allowed)", received=message,
               note=f"choices[{i}]")
        expect("CHAT-010", "refusal" in message, expected="refusal present (null allowed)", received=message,
               note=f"choices[{i}]")
