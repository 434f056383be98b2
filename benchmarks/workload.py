"""The requests every benchmark sends, identical for the bare app and the reference server.

The chat prompt is echoed back (``X-Mock-Provider: echo``) and is 99 tokens long, so a streamed answer is exactly
100 chunks (the role chunk, then one chunk per token, finish_reason on the last) plus ``[DONE]``, and the
non-streamed answer carries the same text. The bare app serves byte-for-byte the same shapes from constants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

BENCH_KEY = "sk-benchmark-unlimited"
CHAT_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_DIMENSIONS = 1536
STREAM_CHUNKS = 100
# 50 words and 49 spaces: 99 tokens under the reference tokenizer (a word run, a whitespace run, ...).
PROMPT = " ".join(f"word{n}" for n in range(50))
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
        """The whole HTTP/1.1 keep-alive request as bytes, ready to write to a socket."""
        body = self.body_bytes()
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chat_body(stream: bool) -> dict:
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    return {**body, "stream": True} if stream else body


NONSTREAM = Workload("nonstream", CHAT_PATH, chat_body(stream=False))
STREAM = Workload("stream", CHAT_PATH, chat_body(stream=True), stream=True)
EMBEDDINGS = Workload("embeddings", EMBEDDINGS_PATH, {"model": EMBEDDING_MODEL, "input": PROMPT})
WORKLOADS = {w.name: w for w in (NONSTREAM, STREAM, EMBEDDINGS)}


def paced_stream(seconds: float) -> Workload:
    """A stream of ``STREAM_CHUNKS`` chunks the server paces to last about ``seconds`` (X-Mock-Tokens-Per-Second)."""
    tokens_per_second = STREAM_CHUNKS / seconds
    return Workload("paced-stream", CHAT_PATH, chat_body(stream=True), stream=True,
                    extra_headers=(("X-Mock-Tokens-Per-Second", f"{tokens_per_second:g}"),))
