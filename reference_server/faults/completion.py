"""Faults of the chat surface outside the generated text: the parsed request (``CHAT_REQUEST`` seam), the
``chat.completion`` body (``COMPLETION``), and the headers of the JSON answer (``CHAT_RESPONSE``).

A ``COMPLETION`` transform is ``(body, req, generations) -> body``: ``body`` is the correct body built by
``surfaces/chat.py``, ``generations[i]`` the answer behind ``body["choices"][i]``. The id and model faults also act
on streamed chunks: faults/stream.py registers them at the ``CHUNKS`` seam.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from reference_server import faults
from reference_server.faults.seams import CHAT_REQUEST, CHAT_RESPONSE, COMPLETION
from reference_server.faults.usage import FAULT_INSIDE_CHOICES, FAULT_NO_USAGE
from reference_server.mock.logprobs import content_logprobs
from reference_server.mock.tokenizer import tokenize

if TYPE_CHECKING:
    from flask import Response

    from reference_server.mock.providers import Generation
    from reference_server.surfaces.chat_request import ChatRequest

F = faults.declare
FAULT_NOT_JSON_TYPE = F("CHAT-001", "Non-streamed completions are sent as text/plain.")
FAULT_EMPTY_ID = F("CHAT-002", 'Completions carry id "".')
FAULT_OBJECT = F("CHAT-003", 'Completions carry object "chat.completion.chunk".', collateral=("CHAT-019", "MODELS-008"))
FAULT_CREATED_FLOAT = F("CHAT-004", "created is a float with milliseconds.", collateral=("CHAT-019",))
FAULT_EMPTY_MODEL = F("CHAT-005", 'Completions carry model "".')
# The SDK reads choices[0] of the plain answer it parses, so SDK-001 shows this break necessarily.
FAULT_NO_CHOICES = F("CHAT-006", "Plain answers that end on their own (no tools, format, logprobs) carry choices [].",
                     collateral=("CHAT-012", "CHAT-014", "CHAT-STREAM-014", "PARAMS-006", "SDK-001"))
FAULT_NO_LOGPROBS_KEY = F("CHAT-007", "Choices leave out logprobs when it is null.", collateral=("CHAT-019",))
FAULT_ROLE = F("CHAT-008", 'message.role is "model".', collateral=("CHAT-019",))
# Tool-call answers only: the check of null content judges the refusal where a profile claims one, so only the schema
# sweep (conformance/schema_sweep.py), which validates every answer, sees this one (seen on a real gateway).
FAULT_NO_CONTENT_KEY = F("CHAT-009", "Answers with tool calls leave out message.content (null) instead of sending it.",
                         collateral=("CHAT-019",))
FAULT_NO_REFUSAL_KEY = F("CHAT-010", "message leaves out refusal when it is null.", collateral=("CHAT-019",))
FAULT_EMPTY_FINISH = F("CHAT-011", 'Plain non-streamed answers that end on their own carry finish_reason "".',
                       collateral=("CHAT-019",))
FAULT_INDEX_FROM_1 = F("CHAT-012", "The one choice of n = 1 answers has index 1 (n > 1 is PARAMS-006's).")
FAULT_SNAPSHOT_MODEL = F("CHAT-013", "model echoes a dated snapshot (<id>-2024-07-18) instead of the documented name.",
                         collateral=("MODELS-015",))
FAULT_EMPTY_CONTENT = F("CHAT-014", 'Plain text answers (non-streamed) have content "".',
                        collateral=("CHAT-STREAM-014",))
FAULT_SAME_ID = F("CHAT-018", 'Every completion has id "chatcmpl-mock".')
FAULT_SCHEMA = F("CHAT-019", "Completions carry system_fingerprint as an integer.")
# chat.completions.parse() always sends "stream": false (openai lib/_chat_completion_resources.py) and reads the
# answer as JSON, so SDK-016 shows this break necessarily.
FAULT_STREAM_ANYWAY = F("CHAT-020", 'An explicit "stream": false is answered with an event stream.',
                        collateral=("SDK-016",))
FAULT_REASONING_FIELD = F("CHAT-021", "Non-streamed reasoning goes to message.reasoning, not reasoning_content.")
FAULT_THINK_OPEN = F("CHAT-022", "Non-streamed <think> prefixes are never closed.")
FAULT_REFUSAL_AS_CONTENT = F("CHAT-023", "Refusals come as content text with refusal null.")
FAULT_TOOL_ID_EMPTY = F("TOOLS-002", 'Non-streamed tool calls carry id "".')
FAULT_TOOL_TYPE = F("TOOLS-003", 'Non-streamed tool calls carry type "tool".', collateral=("CHAT-019",))
# The SDK hands function.arguments through unchanged, so json.loads gets a dict (SDK-004).
FAULT_ARGS_OBJECT = F("TOOLS-005", "Non-streamed tool call arguments are a JSON object, not a string.",
                      collateral=("CHAT-019", "TOOLS-016", "SDK-004"))
FAULT_TOOL_FINISH = F("TOOLS-006", 'Non-streamed tool-calling choices end with finish_reason "stop".')
FAULT_N_IGNORED = F("PARAMS-006", "Non-streamed requests with n > 1 get one choice.")
FAULT_USAGE_OVER = F("PARAMS-002", "usage.completion_tokens reports max_tokens + 1 when max_tokens cut the answer.")
FAULT_LOGPROBS_NULL = F("PARAMS-012", "logprobs true returns choices[].logprobs null (non-streamed).",
                        collateral=("PARAMS-013",))
FAULT_TOP_LOGPROBS_EXTRA = F("PARAMS-013", "Each token carries top_logprobs + 1 alternatives.")
FAULT_MAX_COMPLETION_IGNORED = F("PARAMS-014", "max_completion_tokens is ignored.")
FAULT_EMPTY_LOGPROBS = F("PARAMS-020", 'Without logprobs, choices[].logprobs is {"content": [], "refusal": null}.')

SNAPSHOT_SUFFIX = "-2024-07-18"


# ---------------------------------------------------------------- request -> parsed request


@CHAT_REQUEST.transform(FAULT_MAX_COMPLETION_IGNORED, lambda req: req.max_tokens_param == "max_completion_tokens")
def _max_completion_ignored(req: ChatRequest) -> ChatRequest:
    req.max_tokens = req.body.get("max_tokens")
    return req


FAULT_DEFAULT_MAX_TOKENS_IGNORED = F(
    "PARAMS-027", "A request without max_tokens is answered in full, past the profile's documented default.")


@CHAT_REQUEST.transform(FAULT_DEFAULT_MAX_TOKENS_IGNORED,
                        lambda req: req.max_tokens_param is None and req.max_tokens is not None)
def _default_max_tokens_ignored(req: ChatRequest) -> ChatRequest:
    req.max_tokens = None
    return req


# req.body, not the raw body: under fault ERRORS-023 an array body is served as the messages of a built object.
@CHAT_REQUEST.transform(FAULT_STREAM_ANYWAY, lambda req: not req.stream and req.body.get("stream") is False)
def _stream_anyway(req: ChatRequest) -> ChatRequest:
    req.stream = True
    return req


# ---------------------------------------------------------------- the answer's headers


@CHAT_RESPONSE.transform(FAULT_NOT_JSON_TYPE)
def _not_json_type(resp: Response, req: ChatRequest) -> Response:
    resp.mimetype = "text/plain"
    return resp


# ---------------------------------------------------------------- the chat.completion body


def plain_answer(req: ChatRequest, gen: Generation) -> bool:
    """A natural "stop" with no tools, response_format or logprobs: where the CHAT-006/011 faults act, so the
    checks of tool calls, structured output, logprobs and length cuts keep judging their own requirements."""
    # The raw body: {"type": "text"} parses to no format, but STRUCTURED-OUTPUT-005 judges that answer.
    return gen.finish_reason == "stop" and not (req.tools or req.body.get("response_format") or req.logprobs)


def _pairs(body: dict[str, Any], generations: list[Generation]) -> Iterator[tuple[dict[str, Any], Generation]]:
    """Each choice of the body with the answer behind it."""
    return zip(body["choices"], generations, strict=False)  # fewer choices than answers under PARAMS-006


def _messages(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (choice["message"] for choice in body["choices"])


def _calls(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (call for message in _messages(body) for call in message.get("tool_calls") or ())


def _any_message(test: Any) -> Any:
    return lambda body, *_: any(test(message) for message in _messages(body))


def _any_call(test: Any = None) -> Any:
    return lambda body, *_: any(test is None or test(call) for call in _calls(body))


at = COMPLETION.transform


@at(FAULT_REFUSAL_AS_CONTENT, _any_message(lambda m: m["refusal"] is not None))
def _refusal_as_content(body: dict, *_: Any) -> dict:
    for message in _messages(body):
        if message["refusal"] is not None:
            message["content"], message["refusal"] = message["refusal"], None
    return body


def _plain_message(message: dict[str, Any], gen: Generation, req: ChatRequest) -> bool:
    """Text content of an answer without tools, reasoning or response_format (JSON content is STRUCTURED-*'s)."""
    return bool(message.get("content")) and not (gen.tool_calls or gen.reasoning or req.body.get("response_format"))


@at(FAULT_EMPTY_CONTENT,
    lambda body, req, gens: any(_plain_message(c["message"], g, req) for c, g in _pairs(body, gens)))
def _empty_content(body: dict, req: ChatRequest, generations: list[Generation]) -> dict:
    for choice, gen in _pairs(body, generations):
        if _plain_message(choice["message"], gen, req):
            choice["message"]["content"] = ""
    return body


@at(FAULT_THINK_OPEN, _any_message(lambda m: bool(m.get("content"))))
def _think_open(body: dict, *_: Any) -> dict:
    for message in _messages(body):
        if message.get("content"):
            message["content"] = message["content"].replace("</think>", "")
    return body


@at(FAULT_ROLE)
def _role(body: dict, *_: Any) -> dict:
    for message in _messages(body):
        message["role"] = "model"
    return body


@at(FAULT_NO_CONTENT_KEY, _any_message(lambda m: m.get("content", "") is None and bool(m.get("tool_calls"))))
def _no_content_key(body: dict, *_: Any) -> dict:
    for message in _messages(body):
        if "content" in message and message["content"] is None and message.get("tool_calls"):
            del message["content"]
    return body


@at(FAULT_NO_REFUSAL_KEY, _any_message(lambda m: m.get("refusal", "") is None))
def _no_refusal_key(body: dict, *_: Any) -> dict:
    for message in _messages(body):
        if "refusal" in message and message["refusal"] is None:
            del message["refusal"]
    return body


@at(FAULT_REASONING_FIELD, lambda body, req, gens: any(g.reasoning is not None for _, g in _pairs(body, gens)))
def _reasoning_field(body: dict, req: ChatRequest, generations: list[Generation]) -> dict:
    for choice, gen in _pairs(body, generations):
        message = choice["message"]
        if gen.reasoning is not None and gen.reasoning_field in message:
            message["reasoning"] = message.pop(gen.reasoning_field)
    return body


@at(FAULT_ARGS_OBJECT, _any_call(lambda call: bool(call["function"]["arguments"])))
def _args_object(body: dict, *_: Any) -> dict:
    for call in _calls(body):
        if call["function"]["arguments"]:
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    return body


@at(FAULT_TOOL_ID_EMPTY, _any_call())
def _tool_id_empty(body: dict, *_: Any) -> dict:
    for call in _calls(body):
        call["id"] = ""
    return body


@at(FAULT_TOOL_TYPE, _any_call())
def _tool_type(body: dict, *_: Any) -> dict:
    for call in _calls(body):
        call["type"] = "tool"
    return body


@at(FAULT_EMPTY_LOGPROBS, lambda body, req, _: not req.logprobs)
def _empty_logprobs(body: dict, *_: Any) -> dict:
    for choice in body["choices"]:
        choice["logprobs"] = {"content": [], "refusal": None}
    return body


@at(FAULT_LOGPROBS_NULL, lambda body, req, _: req.logprobs)
def _logprobs_null(body: dict, *_: Any) -> dict:
    for choice in body["choices"]:
        choice["logprobs"] = None
    return body


@at(FAULT_TOP_LOGPROBS_EXTRA, lambda body, req, _: req.logprobs)
def _top_logprobs_extra(body: dict, req: ChatRequest, generations: list[Generation]) -> dict:
    for index, (choice, gen) in enumerate(_pairs(body, generations)):
        if choice["logprobs"] is not None:
            choice["logprobs"]["content"] = content_logprobs(tokenize(gen.content or ""), f"{req.content_key}:{index}",
                                                             req.top_logprobs + 1)
    return body


@at(FAULT_EMPTY_FINISH, lambda body, req, gens: any(plain_answer(req, g) for g in gens))
def _empty_finish(body: dict, req: ChatRequest, generations: list[Generation]) -> dict:
    for choice, gen in _pairs(body, generations):
        if plain_answer(req, gen):
            choice["finish_reason"] = ""
    return body


@at(FAULT_TOOL_FINISH, lambda body, req, gens: any(g.finish_reason == "tool_calls" for g in gens))
def _tool_finish(body: dict, req: ChatRequest, generations: list[Generation]) -> dict:
    for choice, gen in _pairs(body, generations):
        if gen.finish_reason == "tool_calls":
            choice["finish_reason"] = "stop"
    return body


@at(FAULT_N_IGNORED)
def _n_ignored(body: dict, *_: Any) -> dict:
    body["choices"] = body["choices"][:1]
    return body


@at(FAULT_INDEX_FROM_1, lambda body, req, _: req.n == 1)
def _index_from_1(body: dict, *_: Any) -> dict:
    for choice in body["choices"]:
        choice["index"] += 1
    return body


@at(FAULT_NO_LOGPROBS_KEY, lambda body, *_: any(c["logprobs"] is None for c in body["choices"]))
def _no_logprobs_key(body: dict, *_: Any) -> dict:
    for choice in body["choices"]:
        if choice["logprobs"] is None:
            del choice["logprobs"]
    return body


@at(FAULT_USAGE_OVER, lambda body, req, _: req.max_tokens_param == "max_tokens")
def _usage_over(body: dict, req: ChatRequest, generations: list[Generation]) -> dict:
    if req.max_tokens and any(g.finish_reason == "length" for g in generations):
        usage = body["usage"]
        usage["completion_tokens"] = req.max_tokens + 1
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return body


@at(FAULT_SAME_ID)  # before CHAT-002's: an empty id wins
def _same_id(body: dict, *_: Any) -> dict:
    body["id"] = "chatcmpl-mock"
    return body


@at(FAULT_EMPTY_ID)
def _empty_id(body: dict, *_: Any) -> dict:
    body["id"] = ""
    return body


@at(FAULT_OBJECT)
def _object(body: dict, *_: Any) -> dict:
    body["object"] = "chat.completion.chunk"
    return body


@at(FAULT_CREATED_FLOAT)
def _created_float(body: dict, *_: Any) -> dict:
    body["created"] += 0.123
    return body


@at(FAULT_SNAPSHOT_MODEL)  # before CHAT-005's: an empty model wins
def _snapshot_model(body: dict, req: ChatRequest, _: Any) -> dict:
    body["model"] = req.model.id + SNAPSHOT_SUFFIX
    return body


@at(FAULT_EMPTY_MODEL)
def _empty_model(body: dict, *_: Any) -> dict:
    body["model"] = ""
    return body


@at(FAULT_NO_CHOICES, lambda body, req, gens: all(plain_answer(req, g) for g in gens))
def _no_choices(body: dict, *_: Any) -> dict:
    body["choices"] = []
    return body


@at(FAULT_INSIDE_CHOICES)
def _inside_choices(body: dict, *_: Any) -> dict:
    if body["choices"]:
        body["choices"][0]["usage"] = body["usage"]
    return body


@at(FAULT_NO_USAGE)
def _no_usage(body: dict, *_: Any) -> dict:
    del body["usage"]
    return body


@at(FAULT_SCHEMA)
def _schema(body: dict, *_: Any) -> dict:
    body["system_fingerprint"] = 42
    return body
