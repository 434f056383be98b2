"""Streamed chat completions: headers, framing, chunk sequencing, usage chunk, pacing controls."""

from __future__ import annotations

import json
import time

from reference_server.mock.tokenizer import count_tokens
from tests.server.conftest import auth_headers, chat_body, make_client, sse_data, stream_chunks


def _content(chunks, index=0):
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"] and c["choices"][0]["index"] == index)


def test_stream_headers_and_framing(post_chat):
    resp = post_chat(chat_body(stream=True))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["X-Accel-Buffering"] == "no"
    assert resp.headers["x-request-id"]
    raw = resp.get_data()
    assert raw.startswith(b"data: {") and raw.endswith(b"data: [DONE]\n\n")
    assert b"\r" not in raw


def test_chunk_sequence_rules(post_chat):
    chunks = stream_chunks(post_chat(chat_body(stream=True)))
    assert len({(c["id"], c["created"], c["model"], c["object"]) for c in chunks}) == 1
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[:-1] == [None] * (len(chunks) - 1) and finishes[-1] == "stop"
    assert all("usage" not in c for c in chunks)


def test_streamed_content_and_usage_equal_non_streamed(post_chat):
    plain = post_chat(chat_body(seed=3)).get_json()
    chunks = stream_chunks(post_chat(chat_body(seed=3, stream=True, stream_options={"include_usage": True})))
    assert _content(chunks) == plain["choices"][0]["message"]["content"]
    *body, last = chunks
    assert last["choices"] == [] and last["usage"] == plain["usage"]
    assert all(c["usage"] is None for c in body)


def test_n_choices_interleaved_each_with_role_and_finish(post_chat):
    chunks = stream_chunks(post_chat(chat_body(n=2, stream=True)))
    assert {c["choices"][0]["index"] for c in chunks} == {0, 1}
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert mine[0]["delta"]["role"] == "assistant" and mine[-1]["finish_reason"] == "stop"
    assert _content(chunks, 0) != _content(chunks, 1)


def test_length_finish_and_logprobs_in_stream(post_chat):
    chunks = stream_chunks(post_chat(chat_body(stream=True, max_tokens=4, logprobs=True, top_logprobs=1)))
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert count_tokens(_content(chunks)) == 4
    content_chunks = [c for c in chunks if c["choices"][0]["delta"].get("content")]
    for chunk in content_chunks:
        (item,) = chunk["choices"][0]["logprobs"]["content"]
        assert item["token"] == chunk["choices"][0]["delta"]["content"]


def test_reasoning_content_streams_before_content():
    client = make_client("unit23")
    body = {"model": "minimax-m2.5", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    chunks = stream_chunks(client.post("/v1/chat/completions", json=body, headers=auth_headers(client)))
    kinds = [("r" if "reasoning_content" in c["choices"][0]["delta"] else "c") for c in chunks
             if c["choices"] and ("reasoning_content" in c["choices"][0]["delta"]
                                  or c["choices"][0]["delta"].get("content"))]
    assert kinds[0] == "r" and "".join(kinds) == "r" * kinds.count("r") + "c" * kinds.count("c")
    # unit23 documents injecting include_usage: the usage chunk comes unasked
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_refusal_streams_as_refusal_deltas(post_chat):
    chunks = stream_chunks(post_chat(chat_body("REFUSE now", stream=True)))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert "".join(c["choices"][0]["delta"].get("refusal") or "" for c in chunks).startswith("I'm sorry")


def test_mock_error_after_sends_error_event(post_chat):
    events = sse_data(post_chat(chat_body(stream=True), headers={"X-Mock-Error-After": "2"}).get_data())
    assert len(events) == 3 and json.loads(events[-1])["error"]["message"]


def test_mock_cut_after_ends_without_done(post_chat):
    events = sse_data(post_chat(chat_body(stream=True), headers={"X-Mock-Stream-Cut-After": "2"}).get_data())
    assert len(events) == 2 and "[DONE]" not in events


def test_stream_body_is_a_generator(post_chat):
    resp = post_chat(chat_body(stream=True), buffered=False)
    assert resp.is_streamed
    first = next(iter(resp.response))
    assert first.startswith(b"data: ") and first.endswith(b"\n\n")
    resp.close()


def test_rejected_stream_gets_json_error(post_chat):
    resp = post_chat(chat_body(stream=True, model="conformance-unknown-model"))
    assert resp.status_code == 404 and resp.mimetype == "application/json"


def _first_frame_and_total(client_faults):
    client = make_client("openai", faults=client_faults)
    start = time.monotonic()
    resp = client.post("/v1/chat/completions", headers={**auth_headers(client), "X-Mock-Tokens-Per-Second": "100"},
                       json=chat_body(stream=True, max_tokens=10), buffered=False)
    frames = iter(resp.response)
    next(frames)
    first = time.monotonic() - start
    for _ in frames:
        pass
    resp.close()
    return first, time.monotonic() - start


def test_paced_stream_sends_first_frame_before_the_last_is_made():
    first, total = _first_frame_and_total([])
    assert total >= 0.08 and first < total / 2
    buffered_first, buffered_total = _first_frame_and_total(["HEADERS-006"])
    assert buffered_first >= buffered_total * 0.9
