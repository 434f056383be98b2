"""Byte-level SSE framing of chat streams (spec/requirements/sse.yaml), judged by ``conformance.sse``.

The framing findings of ``validate_chat_stream`` map onto requirements here; the two shared streams (with and
without include_usage) are both judged, since a gateway may frame its usage chunk differently.
"""

from __future__ import annotations

import json
import re

import pytest

from conformance.exchanges import exchange
from conformance.expect import StopCase
from conformance.sse import DONE
from conformance.suite.fixtures_stream import StreamExchange, chat_body, stream_spec
from conformance.suite.fixtures_transit import transit_chat

KNOWN_FIELDS = {"data", "event", "id", "retry"}
_LINES = re.compile(rb"\r\n|\r|\n")


@pytest.fixture
def framed_streams(stream_exchange_plain, stream_exchange_with_usage):
    """Both shared streams, labelled for notes."""
    return [("stream without include_usage", stream_exchange_plain),
            ("stream with include_usage", stream_exchange_with_usage)]


def readable(expect, ids, label, ex) -> bool:
    """True when the exchange is a 200 event stream; otherwise every id is 'not testable' (CHAT-STREAM-003 has
    its own check) and the caller skips that exchange."""
    if ex.status == 200 and ex.transcript is not None:
        return True
    for rid in ids:
        expect.untestable(rid, f"{label}: HTTP {ex.status}, no event stream to judge: {ex.body[:200]!r}")
    return False


def has_done_like(ex) -> bool:
    """A data event that starts with the sentinel, terminated or not (SSE-010/-014 name those cases)."""
    return any(e.data.startswith(DONE) for e in ex.transcript.events) or unterminated_done(ex) is not None


def unterminated_done(ex):
    return next((f for f in ex.transcript.findings
                 if f.code == "unterminated-event" and DONE in f.excerpt), None)


def before_done(ex):
    events = ex.transcript.events
    done = next((i for i, e in enumerate(events) if e.is_done), len(events))
    return events[:done]


def _parses(event) -> bool:
    try:
        event.json()
    except ValueError:
        return False
    return True


def note(label, finding) -> str:
    return f"{label}: {finding.message} at byte {finding.offset}: {finding.excerpt!r}"


@pytest.mark.requirement("SSE-001")
def test_every_event_is_json_data(framed_streams, expect):
    for label, ex in framed_streams:
        if not readable(expect, ["SSE-001"], label, ex):
            continue
        # a comment re-emitted as data is SSE-009's, a malformed sentinel SSE-014's
        bad = [e for e in before_done(ex) if not e.data.startswith((":", DONE)) and not _parses(e)]
        expect("SSE-001", not bad, expected="data that parses as JSON", received=bad[0].raw[:160] if bad else "",
               note=f"{label}: event at byte {bad[0].offset}" if bad else label)


@pytest.mark.requirement("SSE-002")
def test_stream_ends_with_done(framed_streams, expect):
    for label, ex in framed_streams:
        if not readable(expect, ["SSE-002"], label, ex):
            continue
        missing = "no-done" in ex.codes() and not has_done_like(ex)  # a malformed sentinel is SSE-010/-014
        expect("SSE-002", not missing, expected="a final 'data: [DONE]' event",
               received=f"stream ends with {ex.transcript.raw[-120:]!r}", note=label)


@pytest.mark.requirement("SSE-003")
def test_nothing_after_done(framed_streams, expect):
    for label, ex in framed_streams:
        if readable(expect, ["SSE-003"], label, ex):
            f = ex.finding("data-after-done")
            expect("SSE-003", f is None, expected="only comments and blank lines after [DONE]",
                   received=f.excerpt if f else "", note=note(label, f) if f else label)


@pytest.mark.requirement("SSE-004")
def test_no_empty_data_events(framed_streams, expect):
    for label, ex in framed_streams:
        if readable(expect, ["SSE-004"], label, ex):
            f = ex.finding("empty-data-event")
            expect("SSE-004", f is None, expected="every dispatched event has data", received=f.excerpt if f else "",
                   note=note(label, f) if f else label)


@pytest.mark.requirement("SSE-005")
def test_no_byte_order_mark(framed_streams, expect):
    for label, ex in framed_streams:
        if readable(expect, ["SSE-005"], label, ex):
            f = ex.finding("bom")
            expect("SSE-005", f is None, expected="no leading BOM", received=f.excerpt if f else "", note=label)


@pytest.mark.requirement("SSE-006")
def test_stream_is_utf8(framed_streams, expect):
    for label, ex in framed_streams:
        if readable(expect, ["SSE-006"], label, ex):
            f = ex.finding("invalid-utf8")
            expect("SSE-006", f is None, expected="valid UTF-8", received=f.excerpt if f else "",
                   note=note(label, f) if f else label)


@pytest.mark.requirement("SSE-007")
def test_keepalives_are_comments(framed_streams, expect):
    """The reader ignores unknown field lines (as the spec says), so look for them in the raw bytes: a bare
    'keep-alive' line is a field named 'keep-alive', which clients that do not ignore unknown fields choke on."""
    for label, ex in framed_streams:
        if not readable(expect, ["SSE-007"], label, ex):
            continue
        for line in _LINES.split(ex.transcript.raw.removeprefix(b"\xef\xbb\xbf")):
            if not line or line.startswith(b":"):
                continue
            name = line.split(b":", 1)[0].decode("utf-8", "replace")
            expect("SSE-007", name in KNOWN_FIELDS, expected="keep-alives as ':' comment lines",
                   received=line[:120], note=f"{label}: a line with field name {name!r}")


@pytest.mark.requirement("SSE-009")
def test_no_comment_as_data(framed_streams, expect):
    for label, ex in framed_streams:
        if readable(expect, ["SSE-009"], label, ex):
            f = ex.finding("comment-as-data")
            expect("SSE-009", f is None, expected="comments stay comments, never 'data: :...'",
                   received=f.excerpt if f else "", note=note(label, f) if f else label)


@pytest.mark.requirement("SSE-010")
def test_done_event_is_terminated(framed_streams, expect):
    for label, ex in framed_streams:
        if readable(expect, ["SSE-010"], label, ex):
            f = unterminated_done(ex)
            expect("SSE-010", f is None, expected="'data: [DONE]' followed by a blank line",
                   received=f"stream ends with {ex.transcript.raw[-60:]!r}", note=label)


@pytest.mark.requirement("SSE-011")
def test_one_data_line_per_chunk(framed_streams, expect):
    for label, ex in framed_streams:
        if not readable(expect, ["SSE-011"], label, ex):
            continue
        split = [e for e in ex.transcript.events if "\n" in e.data]
        expect("SSE-011", not split, expected="each chunk on a single data: line",
               received=split[0].raw[:160] if split else "", note=f"{label}: {len(split)} multi-line event(s)")


@pytest.mark.requirement("SSE-012")
def test_chunk_events_have_no_event_field(framed_streams, expect):
    for label, ex in framed_streams:
        if not readable(expect, ["SSE-012"], label, ex):
            continue
        typed = [e for e in ex.transcript.events if e.event != "message" or re.search(rb"(^|[\r\n])event:", e.raw)]
        expect("SSE-012", not typed, expected="no 'event:' field on chunk events",
               received=typed[0].raw[:160] if typed else "", note=f"{label}: {len(typed)} event(s) with a type")


@pytest.mark.requirement("SSE-014")
def test_sentinel_is_exactly_done(framed_streams, expect):
    for label, ex in framed_streams:
        if not readable(expect, ["SSE-014"], label, ex):
            continue
        bad = [e for e in ex.transcript.events if e.data.startswith(DONE) and e.data != DONE]
        expect("SSE-014", not bad, expected="data exactly '[DONE]'", received=bad[0].raw if bad else "",
               note=label)


@pytest.mark.requirement("SSE-013")
def test_rejected_stream_gets_http_error(stream_exchange_unknown_model, expect, profile):
    ex = stream_exchange_unknown_model
    expect("SSE-013", ex.status >= 400, expected=f"HTTP {' or '.join(map(str, profile.unknown_model_statuses()))} before any stream",
           received=f"HTTP {ex.status} {ex.content_type}: {ex.body[:200]!r}")
    try:
        body = json.loads(ex.body)
    except ValueError:
        body = None
    envelope = isinstance(body, dict) and isinstance(body.get("error"), dict)
    expect("SSE-013", envelope and "event-stream" not in (ex.content_type or ""),
           expected='a JSON body {"error": {...}}, not an event stream',
           received=f"{ex.content_type}: {ex.body[:200]!r}")


@exchange(view=StreamExchange.of)
def stream_mid_stream_error(plan):
    """Needs a way to make the upstream fail mid-stream: the embedded server's X-Mock-Error-After control, or in
    sandwich mode an upstream scripted to send an error event after two chunks."""
    if plan.capabilities.mock_controls:
        return stream_spec(chat_body(plan.chat_model, stream=True), {"X-Mock-Error-After": "2"})
    if plan.sandwich is not None:
        return transit_chat(plan, "sseerror", respond={"stream": {"error_after": 2}}, stream=True)
    pytest.skip("a mid-stream upstream failure can only be provoked on the embedded reference server or in sandwich "
                "mode (--upstream)")


@pytest.mark.requirement("SSE-008")
def test_mid_stream_error_is_an_error_event(stream_mid_stream_error, expect):
    ex = stream_mid_stream_error
    if ex.status != 200 or ex.transcript is None:
        expect.untestable("SSE-008", f"HTTP {ex.status}: no stream to judge")
        raise StopCase("SSE-008")
    errors = [e.json()["error"] for e in ex.transcript.events if not e.is_done and _is_error(e)]
    message_ok = bool(errors) and isinstance(errors[0], dict) and isinstance(errors[0].get("message"), str)
    expect("SSE-008", message_ok, expected='an event data: {"error": {"message": ...}} before the stream closes',
           received=f"stream ends with {ex.transcript.raw[-160:]!r}")


def _is_error(event) -> bool:
    try:
        value = event.json()
    except ValueError:
        return False
    return isinstance(value, dict) and "error" in value
