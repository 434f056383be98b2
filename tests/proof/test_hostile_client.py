"""GatewayClient and the SSE/NDJSON readers against every hostile target: each call ends within its limits with
the right ``HarnessError`` kind and a readable message, the API key never shows, and memory stays bounded.

Timing is only ever bounded from above, generously (3x the configured limit): the bug these tests catch is a
hang, and a tight assertion would only catch a slow CI machine.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from conformance.client import (
    GatewayClient,
    HarnessError,
    RequestTimedOut,
    ResponseTooLarge,
    TargetUnreachable,
)
from conformance.ndjson import read_ndjson
from conformance.sse import read_stream
from tests.proof.hostile import HostileServer

KEY = "hostile-client-key-5f1e9c2a7b3d"  # not key-shaped: only exact-secret redaction can hide it
TIMEOUT = 0.5        # request timeout (connect/read/total) of every client here
STREAM_TIMEOUT = 0.75
LIMIT = 3 * max(TIMEOUT, STREAM_TIMEOUT)
TRICKLE_S = 0.1      # below the read timeout: only a total deadline can stop a trickle
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

TRANSPORT_FAILURES = [
    ("refuse", TargetUnreachable), ("hang", RequestTimedOut), ("stall", RequestTimedOut),
    ("endless", RequestTimedOut), ("gigabytes", ResponseTooLarge), ("garbage", TargetUnreachable),
    ("reset", TargetUnreachable), ("trickle", RequestTimedOut),
    ("trickle-body", RequestTimedOut),
]


def bounded(call: Callable[[], Any], limit: float = LIMIT) -> tuple[Any, BaseException | None, float]:
    """Run ``call`` in a thread; fail the test if it is still running after ``limit`` seconds (a hang).

    Returns (result, exception, elapsed). The abandoned thread ends when the hostile server stops.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test as data
            box["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    elapsed = time.monotonic() - started
    if thread.is_alive():
        pytest.fail(f"hung: the call was still running after {elapsed:.1f} s (limit {limit} s)")
    return box.get("result"), box.get("error"), elapsed


def make_client(server: HostileServer, **overrides) -> GatewayClient:
    settings = {"api_key": KEY, "request_timeout": TIMEOUT, "stream_timeout": STREAM_TIMEOUT,
                "max_body_bytes": 1 << 20, **overrides}
    return GatewayClient(server.url, **settings)


def assert_readable(error: BaseException | None, kind: type[HarnessError], client: GatewayClient) -> None:
    """The right kind, one short line naming what broke, recorded on the exchange, and no key anywhere."""
    assert isinstance(error, kind), f"expected {kind.__name__}, got {type(error).__name__}: {error}"
    message = str(error)
    assert message and "\n" not in message and len(message) < 400, message
    assert "Traceback" not in message and KEY not in message
    exchange = client.transcript[-1]
    assert exchange.error == message
    assert KEY not in exchange.render()


def stream_and_read(client: GatewayClient, path: str, body: dict, reader=read_stream, **limits):
    with client.stream(path, body) as response:
        return reader(response.chunks(), **limits)


@pytest.mark.parametrize("call", ["get-models", "post-chat"])
@pytest.mark.parametrize(("mode", "kind"), TRANSPORT_FAILURES)
def test_buffered_requests_end_with_the_right_harness_error(mode, kind, call):
    with HostileServer(mode, interval=TRICKLE_S) as server:
        client = make_client(server)
        request = (lambda: client.get("/models")) if call == "get-models" else (
            lambda: client.post_json("/chat/completions", CHAT))
        _, error, _ = bounded(request)
    assert_readable(error, kind, client)


@pytest.mark.parametrize(("mode", "kind"), TRANSPORT_FAILURES)
def test_streams_read_through_the_sse_reader_end_with_the_right_harness_error(mode, kind):
    with HostileServer(mode, interval=TRICKLE_S) as server:
        client = make_client(server)
        _, error, _ = bounded(lambda: stream_and_read(client, "/chat/completions", {**CHAT, "stream": True}))
    assert_readable(error, kind, client)


@pytest.mark.parametrize("wire", ["sse", "ndjson"])
@pytest.mark.parametrize(("mode", "limits", "code"), [
    ("endless", {"deadline_s": 0.3}, "time-cap"),
    ("gigabytes", {"max_bytes": 256 << 10}, "size-cap"),
    ("endless", {"max_bytes": 1 << 30, "deadline_s": 30.0, "idle_timeout_s": 5.0}, None),
])
def test_readers_stop_at_their_own_limits_before_the_clients(mode, limits, code, wire):
    """Reader limits tighter than the client's stop reading with a finding; looser ones leave it to the client."""
    path, reader, body = (("/chat/completions", read_stream, {**CHAT, "stream": True}) if wire == "sse" else
                          ("/api/chat", read_ndjson, CHAT))
    with HostileServer(mode) as server:
        client = make_client(server, max_body_bytes=64 << 20)
        transcript, error, _ = bounded(lambda: stream_and_read(client, client.url(path), body, reader, **limits))
    if code is None:
        assert_readable(error, RequestTimedOut, client)  # the client's stream deadline came first
        return
    assert error is None, error
    assert transcript.stopped == code and code in transcript.codes()
    items = transcript.events if wire == "sse" else transcript.objects
    assert items, "the well-formed part before the limit was parsed"


def test_the_client_read_timeout_ends_a_stall_the_reader_cannot_interrupt():
    """The reader checks its idle limit between chunks only; a stall inside one read is the transport's to end."""
    with HostileServer("stall") as server:
        client = make_client(server, request_timeout=TIMEOUT, stream_timeout=30.0)
        _, error, elapsed = bounded(lambda: stream_and_read(
            client, "/chat/completions", {**CHAT, "stream": True}, idle_timeout_s=0.1, deadline_s=30.0))
    assert_readable(error, RequestTimedOut, client)
    assert client.transcript[-1].response_body.startswith(b"data: "), "the chunks before the stall are kept"


@pytest.mark.parametrize(("mode", "status", "content_type"), [
    ("html-200", 200, "text/html"), ("html-502", 502, "text/html"), ("wrong-json", 200, "application/json")])
@pytest.mark.parametrize("stream", [False, True])
def test_well_formed_wrong_answers_come_back_for_the_checks_to_judge(mode, status, content_type, stream):
    """Not a harness error: an HTML page or a wrong JSON body is the gateway's answer, graded FAIL by checks."""
    with HostileServer(mode) as server:
        client = make_client(server)
        if stream:
            response, error, _ = bounded(lambda: stream_and_read(client, "/chat/completions",
                                                                 {**CHAT, "stream": True}))
        else:
            response, error, _ = bounded(lambda: client.post_json("/chat/completions", CHAT))
    assert error is None, error
    exchange = client.transcript[-1]
    assert exchange.status == status and content_type in dict(exchange.response_headers)["content-type"]
    if not stream:
        assert response.status_code == status
    assert KEY not in exchange.render(), "wrong-json echoes the Authorization header; the transcript must not"
    if mode == "wrong-json":
        assert b"[REDACTED]" in exchange.response_body


def peak_memory(call: Callable[[], Any]) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    try:
        _, error, _ = bounded(call, limit=30.0)  # tracemalloc slows allocation-heavy code a lot
        return tracemalloc.get_traced_memory()[1], error
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_while_the_target_sends_gigabytes():
    """Measured: the client peaks near 1.5x its cap (one body buffer, redacted only when rendered; it was 5.2x
    with a copy and an up-front redaction); readers near 8x their byte cap."""
    with HostileServer("gigabytes") as server:
        client = make_client(server, max_body_bytes=1 << 20, request_timeout=10.0)
        buffered, error = peak_memory(lambda: client.get("/models"))
        assert isinstance(error, ResponseTooLarge)
        streamer = make_client(server, max_body_bytes=64 << 20, stream_timeout=30.0)
        sse, error = peak_memory(lambda: stream_and_read(streamer, "/chat/completions", {**CHAT, "stream": True},
                                                         max_bytes=1 << 20))
        assert error is None
        ndjson, error = peak_memory(lambda: stream_and_read(streamer, streamer.url("/api/chat"), CHAT, read_ndjson,
                                                            max_bytes=1 << 20))
        assert error is None
    assert server.bytes_sent >= 2 << 20
    assert buffered < 3 << 20, f"buffered request peaked at {buffered / 1e6:.1f} MB for a 1 MiB cap"
    assert sse < 12 << 20, f"SSE reader peaked at {sse / 1e6:.1f} MB for a 1 MiB cap"
    assert ndjson < 24 << 20, f"NDJSON reader peaked at {ndjson / 1e6:.1f} MB for a 1 MiB cap"
