"""The baseline: a bare Flask app answering the benchmark requests with fixed bodies of the same shape and size.

It does the minimum any Flask endpoint does (route, parse the JSON body, build a ``Response``), so the ratio
reference/bare measures what the reference server adds: validation, auth, limits, journal, generation, encoding.
Served by gunicorn as ``benchmarks.bare_app:app``.
"""

from __future__ import annotations

import json
import math
import re
import time

from flask import Flask, Response, request

from benchmarks.workload import CHAT_MODEL, EMBEDDING_DIMENSIONS, EMBEDDING_MODEL, PROMPT

CREATED = 1_700_000_000
COMPLETION_ID = "chatcmpl-" + "0" * 24
# The same token rule as the reference tokenizer, so both apps stream the same number of chunks.
TOKENS = re.findall(r"[^\W_]+|\s+|[^\w\s]|_", PROMPT)
USAGE = {
    "prompt_tokens": 1 + len(TOKENS), "completion_tokens": len(TOKENS), "total_tokens": 1 + 2 * len(TOKENS),
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                  "rejected_prediction_tokens": 0},
}


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def completion_body() -> bytes:
    """A fixed ``chat.completion`` answering with the prompt's text."""
    message = {"role": "assistant", "content": PROMPT, "refusal": None, "annotations": []}
    return _dumps({
        "id": COMPLETION_ID, "object": "chat.completion", "created": CREATED, "model": CHAT_MODEL,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": USAGE,
    })


def stream_frames() -> list[bytes]:
    """The SSE frames of the same answer: a role chunk, one chunk per token (finish on the last), ``[DONE]``."""
    deltas = [{"role": "assistant", "content": ""}] + [{"content": token} for token in TOKENS]
    frames = []
    for number, delta in enumerate(deltas):
        finish = "stop" if number == len(deltas) - 1 else None
        chunk = {"id": COMPLETION_ID, "object": "chat.completion.chunk", "created": CREATED, "model": CHAT_MODEL,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        frames.append(b"data: " + _dumps(chunk) + b"\n\n")
    return frames + [b"data: [DONE]\n\n"]


def embeddings_body() -> bytes:
    """A fixed embeddings list with one float vector of the model's native size."""
    # Full-precision floats, so the body is as long as the reference server's (~32 kB for 1536 numbers).
    vector = [math.sin(n + 1) * 0.04 for n in range(EMBEDDING_DIMENSIONS)]
    item = {"object": "embedding", "index": 0, "embedding": vector}
    usage = {"prompt_tokens": len(TOKENS), "total_tokens": len(TOKENS)}
    return _dumps({"object": "list", "data": [item], "model": EMBEDDING_MODEL, "usage": usage})


COMPLETION = completion_body()
FRAMES = stream_frames()
EMBEDDINGS = embeddings_body()

app = Flask(__name__)


def _paced(frames: list[bytes], tokens_per_second: float | None):
    """Yield frames one by one; sleep between them like the reference server's X-Mock-Tokens-Per-Second."""
    for sent, frame in enumerate(frames):
        yield frame
        if tokens_per_second and sent:
            time.sleep(1 / tokens_per_second)


@app.post("/v1/chat/completions")
def chat_completions() -> Response:
    """The fixed completion, or its 100-chunk stream when the body asks ``"stream": true``."""
    body = request.get_json()
    if body.get("stream"):
        tps = request.headers.get("X-Mock-Tokens-Per-Second", type=float)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return Response(_paced(FRAMES, tps), headers=headers, content_type="text/event-stream; charset=utf-8")
    return Response(COMPLETION, content_type="application/json")


@app.post("/v1/embeddings")
def embeddings() -> Response:
    request.get_json()
    return Response(EMBEDDINGS, content_type="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok"}', content_type="application/json")
