"""The requests every benchmark sends, identical for the bare app and the reference server.

The chat prompt is echoed back (``X-Mock-Provider: echo``) and is 99 tokens long, so a streamed answer is exactly
100 chunks (the role chunk, then one chunk per token, finish_reason on the last) plus ``[DONE]``, and the
non-streamed answer carries the same text. The bare app serves byte-for-byte the same shapes from constants.

Every workload but one repeats one request, which the reference server answers from its answer cache after the
first time (same bytes in, same bytes out). ``first-seen`` sends a body never sent before on every request: its
first word is a counter (one token, fixed width, unique for the whole benchmark process), so every answer is
validated, generated and encoded afresh.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass

BENCH_KEY = "sk-benchmark-unlimited"
CHAT_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_DIMENSIONS = 1536
STREAM_CHUNKS = 100
# 50 words and 49 spaces: 99 tokens under the reference tokenizer (a word run, a whitespace run, ...).
PROMPT = " ".join(f"word{n}" for n in range(50))
# Where a first-seen body carries its counter: the prompt's first word, replaced by ``v`` + 12 digits (one token).
SERIAL_MARK = "word0"
SERIAL_WIDTH = 12
_serials = itertools.count(1)  # process-wide: no two requests of any run, warm-up or round share a body
CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"


@dataclass(frozen=True)
class Workload:
    """One kind of request: what to POST where, and whether the answer is a stream."""

    name: str
    path: str
    body: dict
    stream: bool = False
    extra_headers: tuple[tuple[str, str], ...] = ()
    first_seen: bool = False  # a body never sent before on every request (see the module docstring)

    def headers(self) -> list[tuple[str, str]]:
        """Request headers (without Host and Content-Length, which the sender adds)."""
        return [
            ("Authorization", f"Bearer {BENCH_KEY}"),
            ("Content-Type", "application/json"),
            ("X-Mock-Provider", "echo"),
            *self.extra_headers,
        ]

    def body_bytes(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()

    def raw_request(self, host: str, port: int) -> bytes:
        """The whole HTTP/1.1 keep-alive request as bytes, ready to write to a socket (for ``first_seen``: with the
        placeholder serial of ``request_source``)."""
        body = self.body_bytes()
        if self.first_seen:
            body = body.replace(SERIAL_MARK.encode(), _serial_placeholder(), 1)
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def request_source(self, host: str, port: int) -> bytes | Callable[[], bytes]:
        """What the load generator sends: the one request, or for ``first_seen`` a function giving a new one on
        each call (a fixed-width serial written over the placeholder: the length, and so Content-Length, stay)."""
        raw = self.raw_request(host, port)
        if not self.first_seen:
            return raw
        head, _, tail = raw.partition(_serial_placeholder())
        return lambda: b"%sv%0*d%s" % (head, SERIAL_WIDTH, next(_serials), tail)


def _serial_placeholder() -> bytes:
    return b"v" + b"0" * SERIAL_WIDTH


def chat_body(stream: bool) -> dict:
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    return {**body, "stream": True} if stream else body


NONSTREAM = Workload("nonstream", CHAT_PATH, chat_body(stream=False))
STREAM = Workload("stream", CHAT_PATH, chat_body(stream=True), stream=True)
FIRST_SEEN = Workload("first-seen", CHAT_PATH, chat_body(stream=False), first_seen=True)
EMBEDDINGS = Workload("embeddings", EMBEDDINGS_PATH, {"model": EMBEDDING_MODEL, "input": PROMPT})
WORKLOADS = {w.name: w for w in (NONSTREAM, FIRST_SEEN, STREAM, EMBEDDINGS)}


def paced_stream(seconds: float) -> Workload:
    """A stream of ``STREAM_CHUNKS`` chunks the server paces to last about ``seconds`` (X-Mock-Tokens-Per-Second)."""
    tokens_per_second = STREAM_CHUNKS / seconds
    return Workload("paced-stream", CHAT_PATH, chat_body(stream=True), stream=True,
                    extra_headers=(("X-Mock-Tokens-Per-Second", f"{tokens_per_second:g}"),))
