"""GatewayClient: URLs, headers, caps, deadlines, budget, accounting and redacted transcripts."""

import json
import socket
import ssl
import threading
import time

import httpx
import pytest

from conformance.client import (
    RESPONSE_EXCERPT,
    Accounting,
    BudgetExhausted,
    GatewayClient,
    HarnessRequestInvalid,
    RequestTimedOut,
    ResponseTooLarge,
    TargetUnreachable,
    shared_ssl_context,
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
    assert client.accounting.as_dict() == {"requests": 2, "prompt_tokens": 6, "completion_tokens": 8,
                                           "usage_counted": 2, "usage_flagged": 0, "usage_flags": []}


def _usage_answer(usage):
    return lambda request: httpx.Response(200, json={"usage": usage})


@pytest.mark.parametrize(("request_body", "usage", "why"), [
    ({"max_tokens": 16}, {"prompt_tokens": -5, "completion_tokens": 3}, "prompt_tokens=-5"),
    ({"max_tokens": 16}, {"prompt_tokens": 5, "completion_tokens": 3.5}, "completion_tokens=3.5"),
    ({"max_tokens": 16}, {"prompt_tokens": 5, "completion_tokens": 3_800_000_000}, "beyond the request's max_tokens (16)"),
    ({"max_completion_tokens": 8, "n": 2}, {"prompt_tokens": 5, "completion_tokens": 17}, "max_tokens (16)"),
    ({"options": {"num_predict": 4}}, {"prompt_tokens": 5, "completion_tokens": 5}, "max_tokens (4)"),
])
def test_implausible_usage_is_flagged_not_summed(request_body, usage, why):
    client = mock_client(_usage_answer(usage))
    client.post_json("/chat/completions", {"model": "m", **request_body})
    counts = client.accounting.as_dict()
    assert (counts["prompt_tokens"], counts["completion_tokens"], counts["usage_counted"]) == (0, 0, 0)
    assert counts["usage_flagged"] == 1 and why in counts["usage_flags"][0]
    assert counts["usage_flags"][0].startswith("POST http://gw.test/v1/chat/completions: ")


def test_usage_within_the_limit_counts_and_no_limit_means_no_ceiling():
    client = mock_client(_usage_answer({"prompt_tokens": 5, "completion_tokens": 16}))
    client.post_json("/chat/completions", {"model": "m", "max_tokens": 8, "n": 2})
    client.post_json("/chat/completions", {"model": "m"})
    assert client.accounting.as_dict()["completion_tokens"] == 32
    assert client.accounting.usage_flagged == 0


def test_accounting_of_several_processes_merges():
    total = Accounting(requests=1, usage_flagged=1, usage_flags=["a"])
    total.merge({"requests": 2, "prompt_tokens": 3, "usage_flagged": 2, "usage_flags": ["b", "c"]})
    assert (total.requests, total.prompt_tokens, total.usage_flagged, total.usage_flags) == (3, 3, 3, ["a", "b", "c"])


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


def test_streamed_usage_beyond_max_tokens_is_flagged():
    def handler(request):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=httpx.ByteStream(SSE))
    client = mock_client(handler)
    with client.stream("/chat/completions", {"stream": True, "max_tokens": 1}) as stream:
        b"".join(stream.chunks())
    assert client.accounting.completion_tokens == 0 and client.accounting.usage_flagged == 1


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


class KeepAliveServer:
    """Loopback HTTP/1.1 server on one kept-alive connection: answers the first request at once, then trickles
    the next response's status line one byte per ``interval`` (below the read timeout, so only a total
    deadline can stop it)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(5)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.connections += 1
        with conn:
            answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
            for index in range(2):
                if not self._read_request(conn):
                    return
                payload = answer if index == 0 else answer * 50
                for start in range(0, len(payload), 1 if index else len(payload)):
                    if self.stop.wait(self.interval if index else 0):
                        return
                    try:
                        conn.sendall(payload[start:start + (1 if index else len(payload))])
                    except OSError:
                        return

    @staticmethod
    def _read_request(conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        return True

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(2)


@pytest.mark.parametrize("mode", ["request", "stream"])
def test_headers_trickled_on_a_reused_connection_end_at_the_total_deadline(mode):
    """The reused pooled connection sends no connect event; the deadline still finds and shuts its socket."""
    server = KeepAliveServer()
    try:
        client = GatewayClient(server.url, api_key=KEY, request_timeout=0.4, stream_timeout=0.4)
        assert client.get("/models").json() == {}
        started = time.monotonic()
        with pytest.raises(RequestTimedOut, match="no response headers within the total deadline"):
            if mode == "request":
                client.get("/models")
            else:
                with client.stream("/chat/completions", {}) as stream:
                    stream.read()
        assert time.monotonic() - started < 2.0
        assert server.connections == 1, "the second request reused the pooled connection"
        assert "deadline" in client.transcript[-1].error
    finally:
        server.close()


def test_a_request_httpx_refuses_to_send_is_the_harness_own_fault():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = GatewayClient(f"http://127.0.0.1:{listener.getsockname()[1]}", api_key=KEY, request_timeout=1)
        with pytest.raises(HarnessRequestInvalid, match="harness built a request") as info:
            client.get("/models", headers={"X-Bad": "a\r\nInjected: 1"})
    assert not isinstance(info.value, TargetUnreachable)


def test_body_is_stored_once_and_redacted_only_when_read_or_rendered():
    body = b"x" * (RESPONSE_EXCERPT - 10) + KEY.encode() + b"y" * 100
    client = mock_client(lambda r: httpx.Response(200, content=body))
    response = client.get("/models")
    exchange = client.transcript[-1]
    assert exchange.raw_body is response.content, "one copy, shared by the response and the transcript"
    assert KEY.encode() not in exchange.response_body and b"[REDACTED]" in exchange.response_body
    rendered = exchange.render()
    assert KEY not in rendered and KEY[:10] not in rendered, "a key straddling the excerpt cut is masked whole"
    assert "[...truncated]" in rendered


def test_clients_share_one_tls_context(monkeypatch):
    shared_ssl_context()
    loads = []
    original = ssl.SSLContext.load_verify_locations
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations",
                        lambda self, *a, **k: loads.append(a) or original(self, *a, **k))
    for _ in range(3):
        GatewayClient("https://gw.test").close()
    assert loads == [], "no client loads the CA bundle again"
