"""The workload's promises hold on both apps: 100-chunk streams, same text, matching bodies, unlimited key."""

import json

import pytest

from benchmarks import bare_app
from benchmarks.servers import reference_env
from benchmarks.workload import (
    EMBEDDINGS,
    FIRST_SEEN,
    NONSTREAM,
    PROMPT,
    STREAM,
    STREAM_CHUNKS,
    WORKLOADS,
    paced_stream,
)
from reference_server import create_app
from reference_server.settings import config_from_env


def reference_app():
    """The app ``reference_server.wsgi`` builds, under the environment the benchmark gives it."""
    return create_app(config_from_env(reference_env("openai")))


@pytest.fixture(scope="module", params=["bare", "reference"])
def client(request):
    app = bare_app.app if request.param == "bare" else reference_app()
    return app.test_client()


def post(client, workload):
    return client.post(workload.path, data=workload.body_bytes(), headers=workload.headers())


def data_events(body: bytes) -> list[str]:
    return [line[6:] for line in body.decode().split("\n\n") if line.startswith("data: ")]


def test_stream_is_100_chunks_then_done(client):
    events = data_events(post(client, STREAM).get_data())
    assert len(events) == STREAM_CHUNKS + 1 and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == PROMPT
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_nonstream_answers_the_prompt(client):
    resp = post(client, NONSTREAM)
    assert resp.status_code == 200 and resp.get_json()["choices"][0]["message"]["content"] == PROMPT


def test_embeddings_have_native_dimensions(client):
    resp = post(client, EMBEDDINGS)
    assert resp.status_code == 200 and len(resp.get_json()["data"][0]["embedding"]) == 1536


def test_reference_key_is_never_rate_limited():
    client = reference_app().test_client()
    assert all(post(client, NONSTREAM).status_code == 200 for _ in range(70))  # the profile allows 60/minute


def test_bodies_are_of_comparable_size():
    reference = reference_app().test_client()
    for name, workload in WORKLOADS.items():
        sizes = [len(post(c, workload).get_data()) for c in (bare_app.app.test_client(), reference)]
        assert 0.8 < sizes[0] / sizes[1] < 1.25, (name, sizes)


def test_paced_stream_asks_for_the_rate_that_lasts_the_given_time():
    assert dict(paced_stream(0.5).extra_headers)["X-Mock-Tokens-Per-Second"] == "200"


def test_first_seen_bodies_differ_every_time_and_miss_the_answer_cache():
    source = FIRST_SEEN.request_source("127.0.0.1", 8080)
    requests = [source() for _ in range(3)]
    assert len(set(requests)) == 3 and len({len(r) for r in requests}) == 1  # Content-Length stays right
    head, _, body = requests[0].partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    app = reference_app()
    client = app.test_client()
    for raw in requests:
        resp = client.post(FIRST_SEEN.path, data=raw.partition(b"\r\n\r\n")[2], headers=FIRST_SEEN.headers())
        assert resp.status_code == 200
        assert resp.get_json()["usage"]["prompt_tokens"] == post(client, NONSTREAM).get_json()["usage"]["prompt_tokens"]
    cached = {key[-1] for key in app.server.answers._entries}  # the raw body ends the key
    assert all(raw.partition(b"\r\n\r\n")[2] in cached for raw in requests)  # each stored once, never hit


def test_repeated_workloads_send_one_request():
    assert NONSTREAM.request_source("127.0.0.1", 8080) == NONSTREAM.raw_request("127.0.0.1", 8080)
