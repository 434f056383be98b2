"""Response headers: x-request-id, the streaming headers and buffering, the SDK's request headers
(spec/requirements/headers.yaml)."""

from __future__ import annotations

import pytest

from conformance.exchanges import Spec, exchange
from conformance.suite.fixtures_stream import JsonExchange, chat_body

# SDK request headers as openai-python 1.x sends them (values are illustrative, names are what matters).
SDK_HEADERS = {
    "Accept": "application/json", "User-Agent": "OpenAI/Python 1.99.0",
    "X-Stainless-Lang": "python", "X-Stainless-Package-Version": "1.99.0", "X-Stainless-OS": "Linux",
    "X-Stainless-Arch": "x64", "X-Stainless-Runtime": "CPython", "X-Stainless-Runtime-Version": "3.11.7",
    "X-Stainless-Async": "false", "X-Stainless-Retry-Count": "0", "X-Stainless-Read-Timeout": "30",
    "OpenAI-Organization": "org-conformance", "OpenAI-Project": "proj_conformance",
}
# Buffering is only judged when it could be seen: the stream took this long from request to end, with this many
# events; then a buffered stream arrives in one read at the end. A quarter second: shorter, a backend that
# generates the whole answer in a few milliseconds (a cache, a mock, the unpaced reference server) behind a
# queue that delays its headers looks the same as a buffering proxy; a model's stream of this many events
# takes longer.
MIN_OBSERVABLE_S = 0.25
MIN_EVENTS = 4
# Reads of one buffered burst land within microseconds; paced or generated events are milliseconds apart.
MIN_SPREAD_S = 0.005


def request_id(headers) -> str:
    return (headers.get("x-request-id") or "").strip()


@pytest.mark.requirement("HEADERS-001")
def test_success_has_request_id(stream_tool_call, expect):
    ex = stream_tool_call
    if ex.status != 200:
        expect.untestable("HEADERS-001", f"no successful response to judge: HTTP {ex.status}")
        return
    expect("HEADERS-001", request_id(ex.headers), expected="a non-empty x-request-id",
           received=dict(ex.headers))


@pytest.mark.requirement("HEADERS-002")
def test_errors_and_streams_have_request_id(stream_exchange_plain, stream_exchange_unknown_model, expect):
    for label, ex in (("stream", stream_exchange_plain), ("error response", stream_exchange_unknown_model)):
        expect("HEADERS-002", request_id(ex.headers), expected="a non-empty x-request-id",
               received=dict(ex.headers), note=f"{label}, HTTP {ex.status}")


@pytest.mark.requirement("HEADERS-003")
def test_request_ids_differ(stream_exchange_plain, stream_exchange_with_usage, expect):
    ids = [request_id(stream_exchange_plain.headers), request_id(stream_exchange_with_usage.headers)]
    if all(ids):  # a missing one is HEADERS-002's
        expect("HEADERS-003", ids[0] != ids[1], expected="different x-request-id values", received=ids)


@pytest.mark.requirement("HEADERS-004")
def test_stream_not_cached(stream_exchange_plain, expect):
    if stream_exchange_plain.status != 200:
        expect.untestable("HEADERS-004", f"HTTP {stream_exchange_plain.status}: no event stream")
        return
    value = stream_exchange_plain.headers.get("cache-control", "")
    expect("HEADERS-004", "no-cache" in value.lower(), expected="Cache-Control: no-cache",
           received=value or "(absent)")


@pytest.mark.requirement("HEADERS-005")
def test_stream_not_proxy_buffered(stream_exchange_plain, expect):
    if stream_exchange_plain.status != 200:
        expect.untestable("HEADERS-005", f"HTTP {stream_exchange_plain.status}: no event stream")
        return
    value = stream_exchange_plain.headers.get("x-accel-buffering", "")
    expect("HEADERS-005", value.strip().lower() == "no", expected="X-Accel-Buffering: no",
           received=value or "(absent)")


@pytest.mark.requirement("HEADERS-008")
def test_stream_not_compressed(stream_exchange_plain, expect):
    if stream_exchange_plain.status != 200:
        expect.untestable("HEADERS-008", f"HTTP {stream_exchange_plain.status}: no event stream")
        return
    value = stream_exchange_plain.headers.get("content-encoding", "")
    expect("HEADERS-008", value.strip().lower() in ("", "identity"), expected="no Content-Encoding",
           received=value)


@pytest.mark.requirement("HEADERS-006")
def test_first_bytes_arrive_before_the_end(stream_exchange_plain, expect):
    """Arrival times are stamped per read, so a buffered body shows every event in the read that ends it. Judged
    only when the stream lasted long enough to tell (the embedded server paces this stream); a fast target whose
    whole stream fits one read in a few milliseconds is not suspect."""
    ex = stream_exchange_plain
    if ex.status != 200 or ex.transcript is None:
        expect.untestable("HEADERS-006", f"HTTP {ex.status}: no stream to time")
        return
    events = [e for e in ex.transcript.events if e.received_s is not None]
    total = ex.headers_s + ex.transcript.elapsed_s
    if len(events) < MIN_EVENTS or total < MIN_OBSERVABLE_S:
        return
    first, last = events[0].received_s, events[-1].received_s
    expect("HEADERS-006", last - first >= MIN_SPREAD_S, expected="events spread over the stream's duration",
           received=f"all {len(events)} events arrived together at {ex.headers_s + last:.3f} s "
                    f"(headers at {ex.headers_s:.3f} s)")


@exchange(view=JsonExchange.of)
def headers_sdk_request(plan):
    return Spec.post("/chat/completions", chat_body(plan.chat_model, stream=False, max_tokens=5), headers=SDK_HEADERS)


@pytest.mark.requirement("HEADERS-007")
def test_sdk_headers_are_accepted(headers_sdk_request, expect):
    ex = headers_sdk_request
    expect("HEADERS-007", ex.status == 200, expected="HTTP 200", received=f"HTTP {ex.status}: {ex.text[:200]}")
