"""Stream relay (sandwich mode): pacing, cut streams, error events, unrequested usage
(spec/requirements/relay-stream.yaml). The upstream's chunk schedule, cut and error event are scripted per nonce."""

from __future__ import annotations

import pytest

from conformance.exchanges import exchange
from conformance.suite.fixtures_transit import Transit, transit_chat
from conformance.transit import buffering_problems, clean_finish_problems, usage_chunks

INTERVAL_MS, CHUNKS = 200, 8  # the upstream's schedule: 8 content chunks, 200 ms apart (1.4 s in all)


@exchange(view=Transit.of)
def stream_paced(plan):
    return transit_chat(plan, "streampaced", respond={"stream": {"interval_ms": INTERVAL_MS, "chunks": CHUNKS}},
                        stream=True)


@pytest.mark.requirement("RELAY-STREAM-001")
def test_stream_not_buffered(stream_paced, expect):
    """RELAY-STREAM-001: "A stream MUST NOT be buffered: the client MUST receive the first chunk before the upstream
    sends its last, and chunks MUST arrive on the upstream's schedule within the check's stated tolerance."
    Tolerance: the client's arrivals spread over at least half the upstream's own spread ((CHUNKS-1) x INTERVAL)."""
    stream_paced.needs_attempt()
    if not stream_paced.streamed:
        pytest.skip(f"unobservable: the gateway did not answer with a stream ({stream_paced.summary()})")
    arrivals = [e.received_s for e in stream_paced.events if e.received_s is not None and not e.is_done]
    problems = buffering_problems(arrivals, (CHUNKS - 1) * INTERVAL_MS / 1000)
    expect("RELAY-STREAM-001", not problems, expected=f"chunks spread like the upstream's ({INTERVAL_MS} ms apart)",
           received="; ".join(problems))


@exchange(view=Transit.of)
def stream_cut(plan):
    return transit_chat(plan, "streamcut", respond={"stream": {"cut_after": 3}}, stream=True)


@pytest.mark.requirement("RELAY-STREAM-002")
def test_cut_stream_not_finished(stream_cut, expect):
    """RELAY-STREAM-002: "A stream the upstream cut before [DONE] MUST NOT reach the client as a clean finish: no
    data [DONE] and no finish_reason the upstream did not send." """
    stream_cut.needs_attempt()
    problems = clean_finish_problems(stream_cut.done, stream_cut.chunks or []) if stream_cut.streamed else []
    expect("RELAY-STREAM-002", not problems, expected="no [DONE] and no finish_reason after the upstream's cut",
           received="; ".join(problems))


@exchange(view=Transit.of)
def stream_error(plan):
    return transit_chat(plan, "streamerror", respond={"stream": {
        "error_after": 3, "error": {"message": "The upstream failed mid-stream.", "type": "server_error"}}},
        stream=True)


@pytest.mark.requirement("RELAY-STREAM-003")
def test_error_event_relayed(stream_error, expect):
    """RELAY-STREAM-003: "An error event the upstream sent mid-stream MUST reach the client as an error event before
    its stream ends." """
    stream_error.needs_attempt()
    if not stream_error.streamed:
        pytest.skip(f"unobservable: the gateway did not answer with a stream ({stream_error.summary()})")
    expect("RELAY-STREAM-003", bool(stream_error.errors), expected="an error event after the third chunk",
           received=f"{len(stream_error.events)} events, none an error (done={stream_error.done})")


@exchange(view=Transit.of)
def stream_no_usage(plan):
    return transit_chat(plan, "streamnousage", stream=True)


@pytest.mark.requirement("RELAY-STREAM-004")
def test_no_unrequested_usage_chunk(stream_no_usage, profile, expect):
    """RELAY-STREAM-004: "A stream whose client did not ask for include_usage MUST NOT carry a usage chunk (unless
    the profile documents that the gateway always adds one), even when the gateway injected include_usage
    upstream." """
    if profile.get("stream.auto_include_usage"):
        pytest.skip(f"profile {profile.name} documents that the gateway always adds a usage chunk")
    stream_no_usage.needs_attempt()
    if not stream_no_usage.streamed:
        pytest.skip(f"unobservable: the gateway did not answer with a stream ({stream_no_usage.summary()})")
    found = usage_chunks(stream_no_usage.chunks or [])
    expect("RELAY-STREAM-004", not found, expected="no usage chunk", received=f"usage {found[:2]}")
