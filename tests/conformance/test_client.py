"""GatewayClient: URLs, headers, caps, deadlines, budget, accounting and redacted transcripts."""

import json
import socket
import time

import httpx
import pytest

from conformance.client import (
    Accounting,
    BudgetExhausted,
    GatewayClient,
    RequestTimedOut,
    ResponseTooLarge,
    TargetUnreachable,
)

KEY = "sk-client-test-0123456789"


def mock_client(handler, **kwargs) -> GatewayClient:
    kwargs.setdefault("api_key", KEY)
    return GatewayClient("http://gw.test", transport=httpx.MockTransport(handler), **kwargs)


def echo(request: httpx.Request) -> httpx.Response:
    body = {"url": str(request.url), "headers": dict(request.headers), "usage": {"prompt_tokens": 3,
                                                                              "completion_tokens": 4}}
    return httpx.Response(200, json=body)


@pytest.mark.parametrize(("base_path", "path", "url"), [
    ("/v1", "/chat/completions", "http://gw.test/v1/chat/completions"),
    ("/v1", "/v1/models", "http://gw.test/v1/models"),
    ("/api/v2/", "/v1/models", "http://gw.test/api/v2/models"),
    ("", "models", "http://gw.test/models"),
    ("/v1", "http://other.test/x", "http://other.test/x"),
])
def test_api_joins_profile_base_path(base_path, path, url):
    assert GatewayClient("http://gw.test/", base_path=base_path).api(path) == url


def test_url_skips_the_base_path_for_other_surfaces():
    assert GatewayClient("http://gw.test", base_path="/v1").url("/api/tags") == "http://gw.test/api/tags"


def test_default_headers_auth_and_extras_can_be_overridden_or_removed():
    client = mock_client(echo, headers=[("X-Extra", "1")])
    sent = client.get("/models").json()["headers"]
    assert sent["authorization"] == f"Bearer {KEY}" and sent["x-extra"] == "1"
    sent = client.get("/models", headers={"authorization": "Bearer other", "X-Extra": None}).json()["headers"]
    assert sent["authorization"] == "Bearer other" and "x-extra" not in sent
    assert "authorization" not in client.get("/models", auth=False).json()["headers"]


def test_post_json_counts_requests_and_tokens():
    client = mock_client(echo)
    response = client.post_json("/chat/completions", {"model": "m"})
    assert response.status_code == 200 and response.json()["url"].endswith("/v1/chat/completions")
    client.get("/models")
    assert client.accounting.as_dict() == {"requests": 2, "prompt_tokens": 6, "completion_tokens": 8}


def test_transcript_is_recorded_and_redacted():
    client = mock_client(echo)
    client.post_json("/chat/completions", {"note": f"my key is {KEY}"})
    (exchange,) = client.take_transcript()
    text = exchange.render()
    assert KEY not in text and "[REDACTED]" in text
    assert "> POST http://gw.test/v1/chat/completions" in text and "< HTTP 200" in text
    assert exchange.headers_ms is not None and exchange.elapsed_ms is not None
    assert client.take_transcript() == []


def test_response_over_the_cap_is_a_harness_error():
    client = mock_client(lambda r: httpx.Response(200, content=b"x" * 5000), max_body_bytes=1000)
    with pytest.raises(ResponseTooLarge):
        client.get("/models")
    assert "max-body-bytes" in client.transcript[-1].error


def test_budget_exhausted_before_the_request_is_sent():
    seen = []
    client = mock_client(lambda r: seen.append(r) or httpx.Response(200, json={}), accounting=Accounting(budget=1))
    client.get("/models")
    with pytest.raises(BudgetExhausted, match="budget exhausted"):
        client.get("/models")
    assert len(seen) == 1


SSE = (b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
       b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\ndata: [DONE]\n\n')


def test_stream_yields_raw_chunks_and_accounts_usage():
    def handler(request):
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=httpx.ByteStream(SSE))
    client = mock_client(handler)
    with client.stream("/chat/completions", {"stream": True}) as stream:
        raw = b"".join(stream.chunks())
    assert raw == SSE and not stream.truncated
    assert stream.exchange.streamed and stream.exchange.response_body == SSE
    assert stream.exchange.first_byte_ms is not None
    assert (client.accounting.prompt_tokens, client.accounting.completion_tokens) == (5, 2)


class SlowStream(httpx.SyncByteStream):
    def __iter__(self):
        for _ in range(50):
            time.sleep(0.02)
            yield b"data: {}\n\n"


def test_stream_total_deadline_is_a_harness_error():
    client = mock_client(lambda r: httpx.Response(200, stream=SlowStream()), stream_timeout=0.1)
    with pytest.raises(RequestTimedOut, match="deadline"):
        with client.stream("/chat/completions", {}) as stream:
            list(stream.chunks())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_target_unreachable():
    client = GatewayClient(f"http://127.0.0.1:{_closed_port()}", api_key=KEY)
    with pytest.raises(TargetUnreachable) as info:
        client.get("/models")
    assert KEY not in str(info.value)


def test_silent_server_times_out():
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = GatewayClient(f"http://127.0.0.1:{port}", request_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(RequestTimedOut):
            client.get("/models")
        assert time.monotonic() - started < 3


def test_json_body_helper_and_non_json_usage_ignored():
    client = mock_client(lambda r: httpx.Response(200, content=b"not json", headers={"content-type": "text/plain"}))
    response = client.get("/models")
    assert response.text == "not json" and client.accounting.prompt_tokens == 0
    with pytest.raises(json.JSONDecodeError):
        response.json()


class CutStream(httpx.SyncByteStream):
    def __iter__(self):
        yield b'data: {"a": 1}\n\n'
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_stream_cut_by_the_peer_is_reported_as_truncated_not_raised():
    client = mock_client(lambda r: httpx.Response(200, stream=CutStream()))
    with client.stream("/chat/completions", {}) as stream:
        raw = b"".join(stream.chunks())
    assert raw == b'data: {"a": 1}\n\n' and stream.truncated
    assert "abnormally" in stream.exchange.error
