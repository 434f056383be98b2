"""Fault tracing (``ServerConfig(trace_faults=True)``): which faults each request consulted, found by x-request-id."""

from reference_server import ServerConfig, create_app
from tests.server.conftest import auth_headers, make_client

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8}


def traced(profile: str = "openai", **kwargs):
    client = make_client(profile, trace_faults=True, **kwargs)
    return client, client.application.config["SERVER"].fault_trace


def consulted(trace, resp) -> set[str]:
    return trace.consulted_by(resp.headers["x-request-id"])


def test_a_streamed_answer_keeps_recording_while_its_body_is_sent():
    client, trace = traced()
    resp = client.post("/v1/chat/completions", json={**CHAT, "stream": True},
                       headers={**auth_headers(client), "X-Mock-Error-After": "2"})
    before = consulted(trace, resp)
    resp.get_data()  # the test client generates the streamed body only now, after the view returned
    after = consulted(trace, resp)
    assert "SSE-008" in after - before  # the mid-stream error event: asked when the stream reaches it
    assert {"CHAT-STREAM-002", "SSE-001", "SSE-011"} <= before <= after  # the frames' faults: asked at their seam
    assert "SSE-002" not in after  # the error ends the stream before its [DONE] frame is made


def test_other_surfaces_do_not_consult_chat_faults():
    client, trace = traced()
    models = consulted(trace, client.get("/v1/models", headers=auth_headers(client)))
    embeddings = consulted(trace, client.post("/v1/embeddings", headers=auth_headers(client),
                                              json={"model": "text-embedding-3-small", "input": "hi"}))
    chat = consulted(trace, client.post("/v1/chat/completions", json=CHAT, headers=auth_headers(client)))
    assert "MODELS-001" in models and "EMBEDDINGS-001" in embeddings and "CHAT-008" in chat
    for other in (models, embeddings):
        assert not {f for f in other if f.startswith(("CHAT-", "TOOLS-", "USAGE-", "SSE-"))}
    assert "MODELS-001" not in chat and "EMBEDDINGS-001" not in chat
    assert trace.global_consults == set()  # app creation asks nothing


def test_a_fault_is_recorded_whether_or_not_it_is_on():
    on, on_trace = traced(faults=["CHAT-008"])
    off, off_trace = traced()
    for client, trace in ((on, on_trace), (off, off_trace)):
        resp = client.post("/v1/chat/completions", json=CHAT, headers=auth_headers(client))
        assert "CHAT-008" in consulted(trace, resp)
    assert on.post("/v1/chat/completions", json=CHAT, headers=auth_headers(on)).get_json()["choices"][0][
        "message"]["role"] != "assistant"


def test_tracing_changes_no_byte_of_the_answers():
    plain, (tracing, _) = make_client("openai"), traced()
    for body in (CHAT, {**CHAT, "stream": True}, {"model": "nope", "messages": []}):
        answers = []
        for client in (plain, tracing):
            resp = client.post("/v1/chat/completions", json=body, headers=auth_headers(client))
            names = sorted(k for k in resp.headers.keys() if k.lower() != "x-request-id")
            answers.append((resp.status_code, names, resp.get_data()))  # read each stream before the next request
        assert answers[0] == answers[1]


def test_without_tracing_nothing_is_recorded():
    config = ServerConfig.for_profile("openai")
    client = create_app(config).test_client()
    client.post("/v1/chat/completions", json=CHAT, headers=auth_headers(client))
    assert config.fault_trace is None
    assert "fault" not in vars(config)  # the method itself, not the tracing wrapper
    (entry,) = client.get("/_mock/requests").get_json()["data"]
    assert "faults_consulted" not in entry and "trace" not in entry


def test_the_journal_shows_each_requests_faults():
    client, trace = traced()
    resp = client.get("/v1/models", headers=auth_headers(client))
    (entry,) = client.get("/_mock/requests").get_json()["data"]
    assert entry["request_id"] == resp.headers["x-request-id"]
    assert entry["faults_consulted"] == sorted(consulted(trace, resp))


def test_a_refusal_decided_by_earlier_requests_inherits_their_faults():
    """Shared state: the rate limiter's 429 depends on what the key's earlier requests did."""
    key = "sk-" + "a" * 48
    client, trace = traced(keys={key: {"requests_per_minute": 1}})
    headers = {"Authorization": f"Bearer {key}"}
    first = client.post("/v1/chat/completions", json=CHAT, headers=headers)
    refused = client.get("/v1/models", headers=headers)
    assert (first.status_code, refused.status_code) == (200, 429)
    assert "CHAT-008" in consulted(trace, refused)  # a chat fault could have changed whether the first counted
    admitted = consulted(trace, client.get("/v1/models", headers=auth_headers(client)))
    assert "CHAT-008" not in admitted  # another key, far from its limit: nothing inherited


def test_requests_are_found_by_start_order():
    client, trace = traced()
    mark = trace.mark()
    assert trace.consulted_since(mark) == set()
    client.get("/v1/models", headers=auth_headers(client))
    assert "MODELS-001" in trace.consulted_since(mark)
    assert trace.consulted_by("req_unknown") is None
