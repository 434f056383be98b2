"""``POST {base}/chat/completions``: validate, generate every choice, answer as JSON or as an event stream.

Deterministic: the id is ``chatcmpl-`` + a hash of the route and canonical body, ``created`` is ``config.clock``,
and the text comes from ``providers`` (seeded by the request), so the same request gives the same bytes.

This module builds the correct answer only. Faults act at the seams it passes its values through
(faults/seams.py): the answer to a refused request, the parsed request, each generated choice, the completion body
and the answer's headers; the faults themselves live in faults/problems.py, faults/completion.py and
faults/answer.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response

from reference_server.context import request_context
from reference_server.faults import seams
from reference_server.mock import answer_cache, scripted
from reference_server.mock.logprobs import content_logprobs
from reference_server.mock.providers import Generation, finalize, generate, text_provider
from reference_server.mock.tokenizer import tokenize
from reference_server.mock.usage import build_usage, is_cacheable
from reference_server.surfaces import streaming
from reference_server.surfaces.chat_request import ChatRequest, parse_chat_request, read_json_body
from reference_server.wire.errors import ApiError, error_response
from reference_server.wire.headers import json_response

if TYPE_CHECKING:
    from reference_server.config import ServerConfig

bp = Blueprint("chat", __name__)


@bp.post("/chat/completions")
def create_chat_completion():
    """Answer one chat completion request (JSON, or SSE when ``stream`` is true)."""
    ctx = request_context()
    config = ctx.server.config
    key = answer_cache.request_key(ctx, "chat")
    cached = answer_cache.lookup(ctx, key)
    if cached is not None:  # the same bytes were validated and answered before: only the per-request work is left
        ctx.server.limits.admit(ctx, cached.model_id, cached.prompt_tokens)
        if cached.frames:
            return streaming.replay_response(cached.frames)
        return Response(cached.body, mimetype="application/json")
    body = None
    request = ctx.request
    try:
        body = read_json_body(request, config)
        req = parse_chat_request(body, request.path, config)
    except ApiError as err:  # unreadable or invalid: its envelope, through the seam of refused chat requests
        return seams.CHAT_REJECTION(config, error_response(err), err, body)
    req = seams.CHAT_REQUEST(config, req)
    provider = text_provider(request.environ)
    prompt_tokens = req.prompt_tokens
    ctx.server.limits.admit(ctx, req.model.id, prompt_tokens)
    # The one seam of scripted answers (docs/scripts.md): a matched rule shapes the request and its generations.
    req, generations = scripted.chat_answer(
        req, lambda r: [seams.GENERATION(config, finalize(generate(r, i, provider), r), r, i, provider)
                        for i in range(r.n)])
    if req.stream:
        def remember(frames: tuple[bytes, ...]) -> None:
            answer_cache.store(ctx, key, answer_cache.CachedAnswer(req.model.id, prompt_tokens, frames=frames))

        # A cacheable request's usage depends on the requests before it (mock/usage.py): never replayed.
        return streaming.stream_response(req, generations, req.model.response_model, completion_id(req),
                                         remember if key and not is_cacheable(req, config) else None)
    completion = seams.COMPLETION(config, build_completion(req, generations, config), req, generations)
    resp = seams.CHAT_RESPONSE(config, json_response(completion), req)
    # A cacheable request's usage depends on the requests before it (mock/usage.py): never replayed.
    if key is not None and not is_cacheable(req, config):
        answer_cache.store(ctx, key, answer_cache.CachedAnswer(req.model.id, prompt_tokens, body=resp.get_data()))
    return resp


def completion_id(req: ChatRequest) -> str:
    """``chatcmpl-`` + 29 hex characters of the request hash (different bodies, different ids)."""
    return f"chatcmpl-{req.request_hash[:29]}"


def message_for(gen: Generation) -> dict[str, Any]:
    """``ChatCompletionResponseMessage`` of one choice (content and refusal always present, maybe null)."""
    message: dict[str, Any] = {"role": "assistant", "content": gen.content, "refusal": gen.refusal}
    if gen.reasoning is not None:
        message[gen.reasoning_field] = gen.reasoning
    if gen.tool_calls or gen.finish_reason == "tool_calls":
        message["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                                 for c in gen.tool_calls]
    return message


def choice_logprobs(req: ChatRequest, gen: Generation, index: int) -> dict[str, Any] | None:
    """``{"content": [...], "refusal": null}`` when logprobs were asked for, else null."""
    if not req.logprobs:
        return None
    key = f"{req.content_key}:{index}"
    return {"content": content_logprobs(tokenize(gen.content or ""), key, req.top_logprobs), "refusal": None}


def build_completion(req: ChatRequest, generations: list[Generation], config: ServerConfig | None = None
                     ) -> dict[str, Any]:
    """The ``CreateChatCompletionResponse`` body."""
    config = config or request_context().server.config
    logprobs = req.logprobs
    body: dict[str, Any] = {
        "id": completion_id(req),
        "object": "chat.completion",
        "created": config.clock,
        "model": req.model.response_model,
        "choices": [{"index": index, "message": message_for(gen),
                     "logprobs": choice_logprobs(req, gen, index) if logprobs else None,
                     "finish_reason": gen.finish_reason} for index, gen in enumerate(generations)],
        "usage": build_usage(req, generations, config=config),
    }
    if config.variant("extra-fields"):
        body.update({"system_fingerprint": "fp_reference", "service_tier": "default", "provider": "mock"})
    return body
