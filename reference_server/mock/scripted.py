"""Flask glue of the scripting engine: which rule answers this request, and the seams where it takes over.

* ``choose`` (a before step, after auth and the rate limiter): for a request on a scripted route, the
  ``[[mock:<nonce>]]`` attempt count and the answering rule (:mod:`reference_server.scripting`). A rule's stall
  happens here, before any header; a raw answer (status, headers, body) is returned here. Otherwise the rule is kept
  on the request context (``RequestContext.script``) for the surface to shape its normal answer with.
* ``chat_answer`` (the chat surface's one seam): the scripted n, logprobs, content, refusal, tool calls and
  finish_reason, and the stream schedule (first byte, interval, cut, error event) as the request's stream controls.
* ``usage_override``: the scripted usage numbers, where usage is built.
* ``own_headers`` (an after step): the rule's headers win over those the server makes itself (rate limits, id).
* ``journal_fields``: nonce, attempt, rule and the answer sent back, for the journal entry of the request.

The engine is the app's ``Server.scripts``; reading what is registered costs one store read per request on
a scripted route (a dict look-up in memory, one GET on Redis).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from reference_server.context import RequestContext, request_context
from reference_server.scripting import ENDPOINT_ROUTES, RequestFacts, ScriptEngine, Selection
from reference_server.scripting.nonce import MARKER_BYTES
from reference_server.scripting.rules import ScriptedResponse, ToolCallSpec
from reference_server.wire.errors import ApiError
from reference_server.wire.headers import ReferenceResponse

DEFAULT_MESSAGES = {
    400: "Bad request (scripted).", 401: "Incorrect API key provided (scripted).",
    403: "Forbidden (scripted).", 404: "Not found (scripted).",
    429: "Rate limit reached for requests (scripted).", 500: "The server had an error while processing your request.",
    502: "Bad gateway: the upstream provider is unavailable.", 503: "The server is overloaded or not ready yet.",
    504: "Upstream request timed out.",
}


def selection() -> Selection | None:
    """The rule answering the current request (None when none does)."""
    return request_context().script


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def choose(engine: ScriptEngine, ctx: RequestContext) -> ReferenceResponse | None:
    """Before step: count the nonce's attempt, pick the answering rule, stall, answer raw when the rule says so.
    ``engine`` (the app's ``Server.scripts``) is bound by ``create_app``."""
    req = ctx.request
    route = ENDPOINT_ROUTES.get(req.endpoint or "")
    if route is None:
        return None
    raw = req.get_data(cache=True)
    marked = MARKER_BYTES in raw
    rules = engine.rules()
    if not rules and not marked:
        return None
    facts = RequestFacts.from_body(route, _body(raw))
    if facts.nonce is not None:
        ctx.script_nonce, ctx.script_attempt = facts.nonce, engine.attempt(facts.nonce)
    chosen = engine.select(facts) if rules else None
    if chosen is None:
        return None
    ctx.script = chosen
    answer = chosen.response
    if answer.stall_ms:
        time.sleep(answer.stall_ms / 1000)
    if answer.raw_answer:
        return raw_response(answer)
    return None


def raw_response(answer: ScriptedResponse) -> ReferenceResponse:
    """The rule's own status, headers and body (an error status without a body gets the OpenAI envelope)."""
    status = answer.status or 200
    if answer.has("body"):
        body = answer.body
        resp = ReferenceResponse(body if isinstance(body, str) else json.dumps(body), status=status,
                        mimetype="text/plain" if isinstance(body, str) else "application/json")
    else:
        message = DEFAULT_MESSAGES.get(status, f"Scripted error ({status}).")
        code = "rate_limit_exceeded" if status == 429 else None
        resp = ReferenceResponse(json.dumps(ApiError(status, message, code=code).body()), status=status,
                        mimetype="application/json")
    for name, value in answer.headers:
        resp.headers[name] = value
    return resp


def own_headers(ctx: RequestContext, resp: ReferenceResponse) -> ReferenceResponse:
    """After step: drop the server's own wire headers that the answering rule sets itself (the rule wins)."""
    chosen = ctx.script
    if chosen is None or not chosen.response.headers:
        return resp
    names = {name.lower() for name, _ in chosen.response.headers}
    for group in (resp.sent_groups or {}).values():
        group[:] = [(name, value) for name, value in group if name.lower() not in names]
    for name, value in chosen.response.headers:
        resp.headers[name] = value
    return resp


# ---------------------------------------------------------------- the chat surface's seam


def chat_answer(req: Any, generate: Callable[[Any], list[Any]]) -> tuple[Any, list[Any]]:
    """The request and generations the chat surface answers with: ``generate(req)`` shaped by the answering rule."""
    chosen = selection()
    if chosen is None or not chosen.response.shapes_answer:
        return req, generate(req)
    answer = chosen.response
    changes: dict[str, Any] = {}
    if answer.n is not None:
        changes["n"] = answer.n
    if answer.logprobs is not None:
        changes["logprobs"] = answer.logprobs
    if changes:
        req = dataclasses.replace(req, **changes)
    if answer.stream is not None and req.stream:
        _schedule(answer)
    generations = [_shape(req, gen, index, answer) for index, gen in enumerate(generate(req))]
    return req, generations


def _words(count: int, seed: str) -> str:
    """Text of exactly ``count`` tokens (words and single spaces alternate), for a scripted chunk count."""
    from reference_server.mock.providers import VOCABULARY

    digest = hashlib.sha256(seed.encode()).digest()
    words = [VOCABULARY[digest[i % len(digest)] % len(VOCABULARY)] for i in range((count + 1) // 2)]
    text = " ".join(words)
    return text if count % 2 else text + " "


def _shape(req: Any, gen: Any, index: int, answer: ScriptedResponse) -> Any:
    from reference_server.mock.providers import ToolCall

    changes: dict[str, Any] = {}
    if answer.has("content"):
        changes["content"] = answer.content
    elif answer.stream is not None and answer.stream.chunks is not None and req.stream:
        changes["content"] = _words(answer.stream.chunks, f"{req.content_key}:{index}")
    if answer.has("refusal"):
        changes["refusal"] = answer.refusal
        if answer.refusal is not None and not answer.has("content"):
            changes["content"] = None
    if answer.tool_calls is not None:
        changes["tool_calls"] = tuple(_tool_call(ToolCall, req, call, index, number)
                                      for number, call in enumerate(answer.tool_calls))
        if not answer.has("content"):
            changes["content"] = None
        changes["finish_reason"] = "tool_calls"
    elif "content" in changes or "refusal" in changes:
        changes["tool_calls"] = ()
        changes["finish_reason"] = "stop"
    if "content" in changes or "refusal" in changes or "tool_calls" in changes:
        changes["reasoning"] = None
    if answer.finish_reason is not None:
        changes["finish_reason"] = answer.finish_reason
    return dataclasses.replace(gen, **changes) if changes else gen


def _tool_call(factory: Any, req: Any, call: ToolCallSpec, index: int, number: int) -> Any:
    digest = hashlib.sha256(f"{req.request_hash}:{index}:{number}:{call.name}".encode()).hexdigest()
    return factory(id=call.id or f"call_{digest[:24]}", name=call.name, arguments=call.arguments)


def _schedule(answer: ScriptedResponse) -> None:
    """The stream plan as this request's stream controls (``RequestContext.mock``, read by the streaming code)."""
    from reference_server.control.mock_controls import NO_CONTROLS

    plan = answer.stream
    ctx = request_context()
    mock = ctx.mock or NO_CONTROLS
    ctx.mock = dataclasses.replace(
        mock, ttft_ms=plan.first_byte_ms,
        tokens_per_second=1000 / plan.interval_ms if plan.interval_ms else None,
        cut_after=plan.cut_after, error_after=plan.error_after, error=plan.error,
    )


def usage_override(usage: dict[str, Any]) -> dict[str, Any]:
    """``usage`` with the answering rule's numbers (total recomputed unless the rule gives it)."""
    chosen = request_context().script
    scripted = chosen.response.usage if chosen is not None else None
    if not scripted:
        return usage
    merged = {**usage, **scripted}
    if "total_tokens" not in scripted:
        merged["total_tokens"] = merged["prompt_tokens"] + merged["completion_tokens"]
    return merged


# ---------------------------------------------------------------- journal


def journal_fields(ctx: RequestContext) -> dict[str, Any]:
    """Nonce, attempt and rule of the request, for its journal entry (empty when unscripted)."""
    nonce = ctx.script_nonce
    chosen = ctx.script
    if nonce is None and chosen is None:
        return {}
    return {"nonce": nonce, "attempt": ctx.script_attempt, "rule": chosen.rule.id if chosen else None}


def count_frames(frames: Iterator[bytes], stats: dict[str, Any], done: Callable[[], None] | None) -> Iterator[bytes]:
    """Pass a streamed body through, counting its chunks into ``stats`` (chunks_sent, done, error, cut, usage)."""
    stats.update(chunks_sent=0, done=False, error=False, cut=False)
    try:
        for frame in frames:
            if b"[DONE]" in frame:
                stats["done"] = True
            elif b'"error"' in frame:
                stats["error"] = True
            elif b"data:" in frame:
                stats["chunks_sent"] += 1
                if b'"usage":{' in frame:
                    _read_usage(frame, stats)
            yield frame
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
        stats["cut"] = not stats["done"] and not stats["error"]
        if done is not None:
            done()


def _read_usage(frame: bytes, stats: dict[str, Any]) -> None:
    for line in frame.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                usage = json.loads(line[5:]).get("usage")
            except (ValueError, AttributeError):
                return
            if isinstance(usage, dict):
                stats["usage"] = usage
