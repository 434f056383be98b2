"""conformance.sse: spec parsing of every accepted variant, every flagged defect, chunk-boundary invariance,
limits that stop endless streams, and equivalence with openai-python's own decoder."""

import itertools
import json
import tracemalloc

import pytest

from conformance.sse import (
    Finding,
    SseDataError,
    SseEvent,
    SseParser,
    check_content_type,
    parse_sse,
    read_stream,
    validate_chat_stream,
)

CHUNK = b'{"choices":[]}'


def parse_in_parts(stream: bytes, parts: list[bytes]) -> tuple[list[SseEvent], list[Finding]]:
    parser = SseParser()
    events = [e for part in parts for e in parser.feed(part)] + parser.close()
    assert b"".join(parts) == stream
    return events, parser.findings


def parse_every_way(stream: bytes) -> tuple[list[SseEvent], list[Finding]]:
    """Parse whole, split at every byte boundary, and byte by byte; all must agree exactly."""
    whole = parse_sse(stream)
    for k in range(len(stream) + 1):
        assert parse_in_parts(stream, [stream[:k], b"", stream[k:]]) == whole, f"split at byte {k}"
    byte_by_byte = [stream[i : i + 1] for i in range(len(stream))]
    assert parse_in_parts(stream, byte_by_byte) == whole, "byte by byte"
    return whole


def datas(events):
    return [e.data for e in events]


def codes(findings):
    return [f.code for f in findings]


# --- valid variants: parsed as the spec says, no findings -------------------------------------------------------

ACCEPTED = {
    "lf": (b"data: 1\n\ndata: 2\n\n", ["1", "2"]),
    "no space after colon": (b"data:1\n\ndata:2\n\n", ["1", "2"]),
    "only one space stripped": (b"data:  1\n\n", [" 1"]),
    "crlf": (b"data: 1\r\n\r\ndata: 2\r\n\r\n", ["1", "2"]),
    "cr only": (b"data: 1\r\rdata: 2\r\r", ["1", "2"]),
    "mixed line ends": (b"data: 1\r\n\ndata: 2\r\r\n", ["1", "2"]),
    "comments and keep-alives": (b": OPENROUTER PROCESSING\n\n:\n\ndata: 1\n: inside\n\n", ["1"]),
    "multi-line data": (b"data: a\ndata: b\ndata:\n\n", ["a\nb\n"]),
    "field without colon": (b"data\ndata: x\n\n", ["\nx"]),
    "unknown fields ignored": (b"foo: bar\nDATA: no\ndata: 1\n\n", ["1"]),
    "extra blank lines without ids": (b"\n\ndata: 1\n\n\n\ndata: 2\n\n", ["1", "2"]),
    "utf-8 multi-byte": ("data: héllo €𝄞\n\n".encode(), ["héllo €𝄞"]),
    "empty stream": (b"", []),
    "trailing comment without blank line": (b"data: 1\n\n: bye", ["1"]),
}


@pytest.mark.parametrize("stream,expected", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_variant_parses_without_findings(stream, expected):
    events, findings = parse_every_way(stream)
    assert datas(events) == expected
    assert findings == []


def test_event_type_id_and_retry():
    stream = b"event: delta\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\nretry: 1.5\nid: a\0b\ndata: z\n\n"
    events, findings = parse_every_way(stream)
    assert [(e.event, e.id, e.retry) for e in events] == [("delta", "7", 1500), ("message", "7", None),
                                                         ("message", "7", None)]
    assert findings == []


def test_event_raw_and_offset_point_into_the_stream():
    stream = b": hi\n\ndata: 1\r\n\r\nevent: e\ndata: 2\n\n"
    events, _ = parse_every_way(stream)
    assert [(e.offset, e.raw) for e in events] == [(6, b"data: 1\r\n"), (17, b"event: e\ndata: 2\n")]
    for e in events:
        assert stream[e.offset : e.offset + len(e.raw)] == e.raw


def test_trailing_event_at_eof_is_discarded_and_flagged():
    events, findings = parse_every_way(b"data: 1\n\ndata: [DONE]\n")
    assert datas(events) == ["1"]
    assert codes(findings) == ["unterminated-event"]
    assert findings[0].offset == 9 and "[DONE]" in findings[0].excerpt


def test_json_helper_raises_a_clear_error():
    good, bad = parse_sse(b"data: {\"a\": 1}\n\ndata: nope\n\n")[0]
    assert good.json() == {"a": 1}
    with pytest.raises(SseDataError, match="event at byte 16: data is not JSON"):
        bad.json()


# --- defects: flagged with a stable code, offset and excerpt ----------------------------------------------------

DEFECTS = {
    "bom": (b"\xef\xbb\xbfdata: 1\n\n", ["1"], ["bom"]),
    "bom alone on first line": (b"\xef\xbb\xbf\ndata: 1\n\n", ["1"], ["bom"]),
    "invalid utf-8": (b"data: a\xff\xfeb\n\n", ["a\ufffd\ufffdb"], ["invalid-utf8"]),
    "truncated multi-byte": (b"data: \xe2\x82\n\n", ["\ufffd"], ["invalid-utf8"]),
    "empty data value": (b"data:\n\n", [""], ["empty-data-event"]),
    "event with no data": (b"event: ping\n\ndata: 1\n\n", ["1"], ["empty-data-event"]),
    "id then keep-alive": (b"id: 1\ndata: 1\n\nid: 2\n: ping\n\n", ["1"], ["empty-data-event"]),
    "extra blank line after an id": (b"id: 1\ndata: 1\n\n\n", ["1"], ["empty-data-event"]),
    "unterminated": (b"data: 1\n\ndata: 2", ["1"], ["unterminated-event"]),
    "unterminated after a complete line": (b"data: 2\n: x\n", [], ["unterminated-event"]),
}


@pytest.mark.parametrize("stream,expected,expected_codes", DEFECTS.values(), ids=DEFECTS.keys())
def test_defect_is_flagged(stream, expected, expected_codes):
    events, findings = parse_every_way(stream)
    assert datas(events) == expected
    assert codes(findings) == expected_codes
    assert all(f.message and 0 <= f.offset <= len(stream) for f in findings)


def test_finding_offsets_locate_the_defect():
    _, findings = parse_sse(b"data: 1\n\nevent: ping\n\ndata: a\xffb\n\n")
    assert [(f.code, f.offset) for f in findings] == [("empty-data-event", 9), ("invalid-utf8", 29)]
    assert findings[1].excerpt == "\\xffb"


def test_oversized_event_is_dropped_and_parsing_goes_on():
    stream = b"data: 1\n\ndata: " + b"x" * 100 + b"\ndata: more\n\ndata: 2\n\n"
    parser = SseParser(max_event_bytes=50)
    events = [e for i in range(0, len(stream), 7) for e in parser.feed(stream[i : i + 7])] + parser.close()
    assert datas(events) == ["1", "2"]
    assert codes(parser.findings) == ["event-too-large"] and parser.overflowed
    assert parser.findings[0].offset == 9 and parser.findings[0].excerpt.startswith("data: xxx")


def test_feed_after_close_is_an_error():
    parser = SseParser()
    parser.close()
    with pytest.raises(ValueError):
        parser.feed(b"data: 1\n\n")
