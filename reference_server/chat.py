"""``POST {base}/chat/completions``: validate, generate every choice, answer as JSON or as an event stream.

Deterministic: the id is ``chatcmpl-`` + a hash of the route and canonical body, ``created`` is ``config.clock``,
and the text comes from ``providers`` (seeded by the request), so the same request gives the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify

from reference_server import answer_cache, answer_faults, faults, limits, streaming
from reference_server.chat_request import ChatRequest, parse_chat_request, read_json_body
from reference_server.context import fault as _fault
from reference_server.context import server_config
from reference_server.errors import ApiError
from reference_server.logprobs import content_logprobs
from reference_server.providers import Generation, finalize, generate, text_provider
from reference_server.tokenizer import count_prompt_tokens, tokenize
from reference_server.usage import FAULT_INSIDE_CHOICES, FAULT_NO_USAGE, build_usage, is_cacheable

bp = Blueprint("chat", __name__)

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
FAULT_NO_CONTENT_KEY = F("CHAT-009", "message leaves out content when it is null (refusals, tool calls).",
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


@bp.post("/chat/completions")
def create_chat_completion():
    """Answer one chat completion request (JSON, or SSE when ``stream`` is true)."""
    key = answer_cache.request_key("chat")
    cached = answer_cache.lookup(key)
    if cached is not None:  # the same bytes were validated and answered before: only the per-request work is left
        limits.admit(cached.model_id, cached.prompt_tokens)
        if cached.frames:
            return streaming.replay_response(cached.frames)
        return Response(cached.body, mimetype="application/json")
    try:
        body = read_json_body()
    except ApiError as err:
        if err.message == "bare":  # fault ERRORS-001: a bare string where the envelope belongs
            return Response('"Invalid JSON body"', status=400, mimetype="application/json")
        raise
    try:
        req = parse_chat_request(body)
    except ApiError as err:
        if isinstance(body, dict) and body.get("stream") is True and _fault(streaming.FAULT_STREAM_200):
            return streaming.stream_error_response(err.body())
        raise
    if req.max_tokens_param == "max_completion_tokens" and _fault(FAULT_MAX_COMPLETION_IGNORED):
        req.max_tokens = req.body.get("max_tokens")
    provider = text_provider()
    prompt_tokens = count_prompt_tokens(req.messages, req.tools)
    limits.admit(req.model.id, prompt_tokens)
    generations = [answer_faults.distort(finalize(generate(req, i, provider), req), req, i, provider)
                   for i in range(req.n)]
    # req.body, not body: under fault ERRORS-023 an array body is served as the messages of a built object.
    if req.stream or (req.body.get("stream") is False and _fault(FAULT_STREAM_ANYWAY)):
        def remember(frames: tuple[bytes, ...]) -> None:
            answer_cache.store(key, answer_cache.CachedAnswer(req.model.id, prompt_tokens, frames=frames))

        # A cacheable request's usage depends on the requests before it (usage.py): never replayed.
        return streaming.stream_response(req, generations, remember if key and not is_cacheable(req) else None)
    resp = jsonify(build_completion(req, generations))
    if _fault(FAULT_NOT_JSON_TYPE):
        resp.mimetype = "text/plain"
    if not is_cacheable(req):  # its usage depends on the requests before it (usage.py): never replayed
        answer_cache.store(key, answer_cache.CachedAnswer(req.model.id, prompt_tokens, body=resp.get_data()))
    return resp


def completion_id(req: ChatRequest) -> str:
    """``chatcmpl-`` + 29 hex characters of the request hash (different bodies, different ids)."""
    return "chatcmpl-mock" if _fault(FAULT_SAME_ID) else f"chatcmpl-{req.request_hash[:29]}"


def response_model(req: ChatRequest) -> str:
    """The ``model`` field of responses and chunks, as the profile documents it."""
    if _fault(FAULT_SNAPSHOT_MODEL):
        return f"{req.model.id}-2024-07-18"
    return req.model.response_model


def message_for(req: ChatRequest, gen: Generation) -> dict[str, Any]:
    """``ChatCompletionResponseMessage`` of one choice (content and refusal always present, maybe null)."""
    content, refusal = gen.content, gen.refusal
    if refusal is not None and _fault(FAULT_REFUSAL_AS_CONTENT):
        content, refusal = refusal, None
    plain = not (gen.tool_calls or gen.reasoning or req.body.get("response_format"))  # JSON is STRUCTURED-*'s
    if content and plain and _fault(FAULT_EMPTY_CONTENT):
        content = ""
    if content and _fault(FAULT_THINK_OPEN):
        content = content.replace("</think>", "")
    message: dict[str, Any] = {"role": "model" if _fault(FAULT_ROLE) else "assistant",
                               "content": content, "refusal": refusal}
    if content is None and _fault(FAULT_NO_CONTENT_KEY):
        del message["content"]
    if refusal is None and _fault(FAULT_NO_REFUSAL_KEY):
        del message["refusal"]
    if gen.reasoning is not None:
        name = "reasoning" if _fault(FAULT_REASONING_FIELD) else gen.reasoning_field
        message[name] = gen.reasoning
    if gen.tool_calls or gen.finish_reason == "tool_calls":
        message["tool_calls"] = [tool_call_object(c.id, c.name, c.arguments) for c in gen.tool_calls]
    return message


def tool_call_object(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """A ``ChatCompletionMessageToolCall`` (arguments as a JSON string)."""
    args: Any = json.loads(arguments) if arguments and _fault(FAULT_ARGS_OBJECT) else arguments
    return {"id": "" if _fault(FAULT_TOOL_ID_EMPTY) else call_id,
            "type": "tool" if _fault(FAULT_TOOL_TYPE) else "function",
            "function": {"name": name, "arguments": args}}


def choice_logprobs(req: ChatRequest, gen: Generation, index: int) -> dict[str, Any] | None:
    """``{"content": [...], "refusal": null}`` when logprobs were asked for, else null."""
    if not req.logprobs:
        return {"content": [], "refusal": None} if _fault(FAULT_EMPTY_LOGPROBS) else None
    if _fault(FAULT_LOGPROBS_NULL):
        return None
    top_k = req.top_logprobs + (1 if _fault(FAULT_TOP_LOGPROBS_EXTRA) else 0)
    key = f"{req.content_key}:{index}"
    return {"content": content_logprobs(tokenize(gen.content or ""), key, top_k), "refusal": None}


def plain_answer(req: ChatRequest, gen: Generation) -> bool:
    """A natural "stop" with no tools, response_format or logprobs: where the CHAT-006/011 faults act, so the
    checks of tool calls, structured output, logprobs and length cuts keep judging their own requirements."""
    # The raw body: {"type": "text"} parses to no format, but STRUCTURED-OUTPUT-005 judges that answer.
    return gen.finish_reason == "stop" and not (req.tools or req.body.get("response_format") or req.logprobs)


def finish_reason(req: ChatRequest, gen: Generation) -> str:
    if plain_answer(req, gen) and _fault(FAULT_EMPTY_FINISH):
        return ""
    if gen.finish_reason == "tool_calls" and _fault(FAULT_TOOL_FINISH):
        return "stop"
    return gen.finish_reason


def build_completion(req: ChatRequest, generations: list[Generation]) -> dict[str, Any]:
    """The ``CreateChatCompletionResponse`` body."""
    config = server_config()
    shown = generations[:1] if _fault(FAULT_N_IGNORED) else generations
    choices = []
    for index, gen in enumerate(shown):
        choice: dict[str, Any] = {"index": index + (1 if req.n == 1 and _fault(FAULT_INDEX_FROM_1) else 0),
                                  "message": message_for(req, gen), "logprobs": choice_logprobs(req, gen, index),
                                  "finish_reason": finish_reason(req, gen)}
        if choice["logprobs"] is None and _fault(FAULT_NO_LOGPROBS_KEY):
            del choice["logprobs"]
        choices.append(choice)
    usage = build_usage(req, generations)
    over = req.max_tokens_param == "max_tokens" and _fault(FAULT_USAGE_OVER)
    if over and req.max_tokens and any(g.finish_reason == "length" for g in generations):
        usage["completion_tokens"] = req.max_tokens + 1
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    body: dict[str, Any] = {
        "id": "" if _fault(FAULT_EMPTY_ID) else completion_id(req),
        "object": "chat.completion.chunk" if _fault(FAULT_OBJECT) else "chat.completion",
        "created": config.clock + 0.123 if _fault(FAULT_CREATED_FLOAT) else config.clock,
        "model": "" if _fault(FAULT_EMPTY_MODEL) else response_model(req),
        "choices": [] if all(plain_answer(req, g) for g in generations) and _fault(FAULT_NO_CHOICES) else choices,
        "usage": usage,
    }
    if _fault(FAULT_NO_USAGE):
        del body["usage"]
    if _fault(FAULT_INSIDE_CHOICES) and choices:
        choices[0]["usage"] = usage
    if _fault(FAULT_SCHEMA):
        body["system_fingerprint"] = 42
    if config.variant("extra-fields"):
        body.update({"system_fingerprint": "fp_reference", "service_tier": "default", "provider": "mock"})
    return body
