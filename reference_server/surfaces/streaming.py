"""Chat completion streams: the chunk sequence of every choice, interleaved, then SSE frames as they are produced.

Per choice: a role chunk (``{"role": "assistant", "content": ""}``), reasoning deltas, one content (or refusal)
delta per token, tool-call deltas (id, type and name on the first fragment, then argument fragments), and the
finish_reason on the last delta (on a separate empty-delta chunk under the ``finish-separate`` variant). Choices
are interleaved round-robin so clients must merge by ``index``. With ``include_usage`` one usage chunk with
``choices: []`` comes right before ``[DONE]``. The response body is a generator: each frame leaves when built, paced
by the request's X-Mock-* controls (``ttft_ms``, ``tokens_per_second``, ``cut_after``, ``stall_after``, ``error_after``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, stream_with_context

from reference_server.config import ServerConfig
from reference_server.context import request_context, server_config
from reference_server.faults import seams
from reference_server.faults.seams import StreamBody
from reference_server.faults.stream import ChunkStream
from reference_server.mock.answer_cache import recording
from reference_server.mock.logprobs import content_logprobs
from reference_server.mock.providers import Generation
from reference_server.mock.tokenizer import tokenize
from reference_server.mock.usage import build_usage
from reference_server.surfaces.chat_request import ChatRequest
from reference_server.wire import sse

ARGUMENT_FRAGMENT_TOKENS = 3
MAX_STALL_SECONDS = 300.0


def _delta_steps(req: ChatRequest, gen: Generation, index: int) -> list[dict[str, Any]]:
    """The deltas of one choice, each ``{"delta": ..., "logprobs": ...}``; finish_reason is set by the caller."""
    first: dict[str, Any] = {"role": "assistant", "content": "" if gen.content is not None else None}
    steps: list[dict[str, Any]] = [{"delta": first, "logprobs": None}]
    for token in tokenize(gen.reasoning or ""):
        steps.append({"delta": {gen.reasoning_field: token}, "logprobs": None})
    key = f"{req.content_key}:{index}"
    for position, token in enumerate(tokenize(gen.content or "")):
        logprobs = None
        if req.logprobs:
            logprobs = {"content": content_logprobs([token], key, req.top_logprobs, position), "refusal": None}
        steps.append({"delta": {"content": token}, "logprobs": logprobs})
    for token in tokenize(gen.refusal or ""):
        steps.append({"delta": {"refusal": token}, "logprobs": None})
    for number, call in enumerate(gen.tool_calls):
        head = {"index": number, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        steps.append({"delta": {"tool_calls": [head]}, "logprobs": None})
        tokens = tokenize(call.arguments)
        for start in range(0, len(tokens), ARGUMENT_FRAGMENT_TOKENS):
            fragment = "".join(tokens[start:start + ARGUMENT_FRAGMENT_TOKENS])
            steps.append({"delta": {"tool_calls": [{"index": number, "function": {"arguments": fragment}}]},
                          "logprobs": None})
    return steps


def choice_steps(req: ChatRequest, gen: Generation, index: int, config: ServerConfig) -> list[dict[str, Any]]:
    """Every ``choices[]`` item one choice streams, finish_reason null until the last."""
    steps = _delta_steps(req, gen, index)
    if config.variant("finish-separate"):
        steps.append({"delta": {}, "logprobs": None})
    items = [{"index": index, "delta": s["delta"], "logprobs": s["logprobs"], "finish_reason": None} for s in steps]
    items[-1]["finish_reason"] = gen.finish_reason
    if config.variant("extra-fields"):
        for item in items:
            item["delta"].setdefault("reasoning_content", None)
    return items


def build_chunks(req: ChatRequest, generations: list[Generation], model: str, chunk_id: str) -> list[dict]:
    """The whole chunk sequence (choices interleaved, usage chunk last when asked), through the ``CHUNKS`` seam."""
    config: ServerConfig = server_config()
    per_choice = [choice_steps(req, gen, i, config) for i, gen in enumerate(generations)]
    interleaved = [item for group in itertools.zip_longest(*per_choice) for item in group if item is not None]
    base = {"id": chunk_id, "object": "chat.completion.chunk", "created": config.clock, "model": model}
    if config.variant("extra-fields"):
        base.update({"system_fingerprint": "fp_reference", "obfuscation": "x9"})
    with_usage_key = req.include_usage and not config.variant("usage-omitted")
    chunks = [{**base, "choices": [item], **({"usage": None} if with_usage_key else {})} for item in interleaved]
    usage_chunk = {**base, "choices": [], "usage": build_usage(req, generations, streamed=True)}
    stream = seams.CHUNKS(config, ChunkStream(chunks, usage_chunk if req.include_usage else None, usage_chunk), req)
    return stream.chunks + ([stream.usage] if stream.usage is not None else [])


def _paced(frames: Iterator[bytes], encoder: sse.SseEncoder, config: ServerConfig) -> Iterator[bytes]:
    """Apply the request's X-Mock-* timing and interruption controls to the chunk frames (the last frame is
    [DONE])."""
    mock = request_context().mock
    ttft = getattr(mock, "ttft_ms", 0) or 0
    tps = getattr(mock, "tokens_per_second", None)
    cut, stall, error_after = (getattr(mock, name, None) for name in ("cut_after", "stall_after", "error_after"))
    if ttft:
        time.sleep(ttft / 1000)
    keepalive = config.variant("sse-keepalive")
    for sent, frame in enumerate(frames):
        if cut is not None and sent >= cut:
            return
        if stall is not None and sent >= stall:
            time.sleep(min(float(getattr(mock, "stall_seconds", 30.0)), MAX_STALL_SECONDS))
            return
        if error_after is not None and sent >= error_after:
            # a scripted rule's error event, else the default; a fault may transform it at the seam
            yield seams.MID_STREAM_ERROR(config, encoder.error(getattr(mock, "error", None) or MID_STREAM_ERROR))
            return
        if keepalive:
            yield encoder.keepalive()
        yield frame
        if tps and sent:
            time.sleep(1 / tps)


MID_STREAM_ERROR = {"message": "The upstream provider failed mid-stream (X-Mock-Error-After).",
                    "type": "server_error", "param": None, "code": "upstream_error"}


def _frames(chunks: list[dict], encoder: sse.SseEncoder) -> Iterator[bytes]:
    for chunk in chunks:
        yield encoder.chunk(chunk)
    yield encoder.done()


def stream_response(req: ChatRequest, generations: list[Generation], model: str, chunk_id: str,
                    remember: Callable[[tuple[bytes, ...]], None] | None = None) -> Response:
    """The event-stream ``Response`` for a request; the body is generated lazily, frame by frame.

    ``model`` and ``chunk_id`` are the ``model`` and ``id`` every chunk carries (the chat surface works them out,
    as for its JSON answers). ``remember`` receives every frame once the whole stream was produced (for the answer
    cache).
    """
    config: ServerConfig = server_config()
    chunks = build_chunks(req, generations, model, chunk_id)
    encoder = sse.SseEncoder(config)
    frames = seams.SSE_FRAMES(config, _frames(chunks, encoder), req, encoder, chunks)
    return _event_stream(recording(frames, remember) if remember else frames, encoder, config)


def replay_response(frames: tuple[bytes, ...]) -> Response:
    """The event-stream ``Response`` for frames produced earlier for the same request, paced for this one."""
    config: ServerConfig = server_config()
    return _event_stream(iter(frames), sse.SseEncoder(config), config)


def _event_stream(frames: Iterator[bytes], encoder: sse.SseEncoder, config: ServerConfig) -> Response:
    body = StreamBody(_paced(frames, encoder, config),
                      {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Content-Type": sse.content_type(config)})
    body = seams.STREAM_BODY(config, body)
    return Response(stream_with_context(body.frames), headers=body.headers)
