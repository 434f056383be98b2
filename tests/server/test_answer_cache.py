"""The answer cache (mock/answer_cache.py): a repeated request reuses its body or frames, and everything that belongs to
one request (request id, rate-limit counters and token charge, journal, stream controls, validation errors) still
happens for each one."""

from __future__ import annotations

import json

from reference_server.mock.answer_cache import AnswerCache, CachedAnswer
from tests.server.conftest import auth_headers, make_client

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something."}]}
EMBED = {"model": "text-embedding-3-small", "input": "hello"}


def answers(client) -> AnswerCache:
    return client.application.extensions["answers"]


def post(client, path: str, body, **headers):
    return client.post(f"/v1/{path}", json=body, headers={**auth_headers(client), **headers})


def test_repeated_chat_gets_the_same_body_but_its_own_request_id_and_counters():
    client = make_client("openai")
    first, second = post(client, "chat/completions", CHAT), post(client, "chat/completions", CHAT)
    assert first.status_code == second.status_code == 200
    assert len(answers(client)) == 1
    assert first.get_data() == second.get_data()
    assert first.mimetype == second.mimetype == "application/json"
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    remaining = [int(r.headers["x-ratelimit-remaining-requests"]) for r in (first, second)]
    assert remaining[1] == remaining[0] - 1
    tokens = [int(r.headers["x-ratelimit-remaining-tokens"]) for r in (first, second)]
    assert tokens[1] < tokens[0], "the cached answer still charges the prompt tokens"
    journal = client.get("/_mock/requests").get_json()["data"]
    assert [e["path"] for e in journal] == ["/v1/chat/completions"] * 2
    assert journal[1]["headers"]["Authorization"].endswith("***")


def test_the_text_provider_header_is_part_of_the_key():
    client = make_client("openai")
    seeded = post(client, "chat/completions", CHAT)
    echoed = post(client, "chat/completions", CHAT, **{"X-Mock-Provider": "echo"})
    assert echoed.get_json()["choices"][0]["message"]["content"] == "Say something."
    assert seeded.get_data() != echoed.get_data()


def test_invalid_bodies_are_judged_every_time():
    client = make_client("openai")
    body = {**CHAT, "temperature": 9}
    assert [post(client, "chat/completions", body).status_code for _ in range(2)] == [400, 400]
    assert len(answers(client)) == 0


def test_a_cached_answer_still_charges_this_key_quota():
    tiny = "sk-conformance-tiny-quota"
    client = make_client("openai", keys={tiny: {"tokens_per_minute": 3}})
    assert post(client, "chat/completions", CHAT).status_code == 200
    resp = client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {tiny}"})
    assert resp.status_code == 429, "the prompt's 4 tokens exceed this key's 3 per minute, cached answer or not"
    assert resp.get_json()["error"]["type"] == "tokens"


def test_repeated_stream_replays_the_same_frames_under_this_request_controls():
    client = make_client("openai")
    body = {**CHAT, "stream": True}
    # A streamed body must be read before the next request: each one holds its request context until then.
    first = post(client, "chat/completions", body).get_data()
    second = post(client, "chat/completions", body)
    assert second.get_data() == first
    assert len(answers(client)) == 1
    assert second.mimetype == "text/event-stream"
    assert second.headers["Cache-Control"] == "no-cache"
    cut = post(client, "chat/completions", body, **{"X-Mock-Stream-Cut-After": "2"}).get_data()
    assert cut == b"".join(frame + b"\n\n" for frame in first.split(b"\n\n")[:2])


def test_a_cut_stream_is_not_stored():
    client = make_client("openai")
    body = {**CHAT, "stream": True}
    post(client, "chat/completions", body, **{"X-Mock-Stream-Cut-After": "2"}).get_data()
    assert len(answers(client)) == 0
    full = post(client, "chat/completions", body)
    assert full.get_data().endswith(b"data: [DONE]\n\n")


def test_embeddings_are_cached_and_charged():
    client = make_client("openai")
    first, second = post(client, "embeddings", EMBED), post(client, "embeddings", EMBED)
    assert first.get_data() == second.get_data()
    assert len(answers(client)) == 1
    tokens = [int(r.headers["x-ratelimit-remaining-tokens"]) for r in (first, second)]
    assert tokens[1] < tokens[0]


def test_apps_serving_faults_do_not_cache():
    client = make_client("openai", faults=["PARAMS-007"])
    post(client, "chat/completions", CHAT)
    assert len(answers(client)) == 0


def test_non_json_bodies_are_never_looked_up():
    client = make_client("openai")
    post(client, "chat/completions", CHAT)
    resp = client.post("/v1/chat/completions", data=json.dumps(CHAT),
                       headers={**auth_headers(client), "Content-Type": "text/plain"})
    assert resp.status_code == 415


def test_the_cache_is_bounded_by_entries_and_bytes():
    cache = AnswerCache(max_entries=2, max_bytes=10)
    for name in "abc":
        cache.put(("chat", "/p", None, name.encode()), CachedAnswer("m", 1, body=b"1234"))
    assert len(cache) == 2
    assert cache.get(("chat", "/p", None, b"a")) is None
    cache.put(("chat", "/p", None, b"d"), CachedAnswer("m", 1, body=b"123456789"))
    assert len(cache) == 1, "ten bytes at most: the newest answer pushes both older ones out"
