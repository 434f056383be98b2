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


def test_cr_ending_one_chunk_and_lf_starting_the_next_make_one_line_end():
    events, findings = parse_in_parts(b"data: 1\r\n\r\ndata: 2\r\n\r\n",
                                      [b"data: 1\r", b"\n\r", b"\ndata: 2\r\n\r\n"])
    assert datas(events) == ["1", "2"] and findings == []
    assert [e.raw for e in events] == [b"data: 1\r\n", b"data: 2\r\n"]


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


# --- OpenAI chat framing ----------------------------------------------------------------------------------------

GOOD_CHAT = b"data: " + CHUNK + b"\n\n: keep-alive\n\ndata: " + CHUNK + b"\n\ndata: [DONE]\n\n"


def chat_codes(stream: bytes, content_type="text/event-stream") -> list[str]:
    return codes(validate_chat_stream(read_stream([stream]), content_type))


@pytest.mark.parametrize("content_type", ["text/event-stream", "text/event-stream; charset=utf-8",
                                          "Text/Event-Stream;charset=UTF-8", 'text/event-stream; charset="utf-8"'])
def test_good_chat_stream_has_no_findings(content_type):
    transcript = read_stream([GOOD_CHAT])
    assert validate_chat_stream(transcript, content_type) == []
    assert transcript.chunks() == [{"choices": []}, {"choices": []}]


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain",
                                          "text/event-stream; charset=iso-8859-1"])
def test_wrong_content_type_is_flagged(content_type):
    assert chat_codes(GOOD_CHAT, content_type) == ["content-type"]


CHAT_DEFECTS = {
    "no done": (b"data: " + CHUNK + b"\n\n", ["no-done"]),
    "data after done": (GOOD_CHAT + b"data: " + CHUNK + b"\n\n", ["data-after-done"]),
    "done not exact": (b"data: [DONE] \n\n", ["no-done", "non-json-data"]),
    "non json": (b"data: hello\n\ndata: [DONE]\n\n", ["non-json-data"]),
    "comment as data": (b"data: : OPENROUTER PROCESSING\n\n" + GOOD_CHAT, ["comment-as-data"]),
    "error event": (b'data: {"error": {"message": "boom"}}\n\ndata: [DONE]\n\n', ["error-event"]),
    "event error": (b"event: error\ndata: {}\n\ndata: [DONE]\n\n", ["error-event"]),
    "empty ping event": (b"event: ping\n\n" + GOOD_CHAT, ["empty-data-event"]),
    "unterminated done": (b"data: " + CHUNK + b"\n\ndata: [DONE]", ["unterminated-event", "no-done"]),
}


@pytest.mark.parametrize("stream,expected", CHAT_DEFECTS.values(), ids=CHAT_DEFECTS.keys())
def test_chat_defect_is_flagged(stream, expected):
    assert chat_codes(stream) == expected


def test_blank_lines_after_done_are_not_blamed():
    # openai-python stops reading at [DONE], so a trailing blank line (which it would dispatch) is harmless.
    assert chat_codes(b"id: 1\ndata: " + CHUNK + b"\n\ndata: [DONE]\n\n\n\n") == []


def test_no_done_is_not_claimed_when_reading_was_cut_short():
    transcript = read_stream([GOOD_CHAT], max_bytes=20)
    assert transcript.stopped == "size-cap"
    assert codes(validate_chat_stream(transcript, "text/event-stream")) == ["size-cap"]


# --- read_stream: limits, timing, bounded memory ----------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def endless(clock: FakeClock, chunk: bytes, step_s: float = 0.5):
    for _ in itertools.count():
        clock.now += step_s
        yield chunk


def test_endless_stream_is_stopped_by_max_bytes():
    transcript = read_stream(endless(FakeClock(), b"data: 1\n\n"), max_bytes=1000)
    assert transcript.stopped == "size-cap" and transcript.bytes_read == 1000
    assert transcript.codes() == ["size-cap"] and len(transcript.events) == 111


def test_endless_stream_is_stopped_by_the_deadline():
    clock = FakeClock()
    transcript = read_stream(endless(clock, b"data: 1\n\n"), deadline_s=10, clock=clock)
    assert transcript.stopped == "time-cap" and transcript.codes() == ["time-cap"]
    assert len(transcript.events) == 20  # chunks arriving at 0.5 s .. 10 s; the one at 10.5 s is not used
    assert transcript.elapsed_s == pytest.approx(10.5)


def test_endless_stream_is_stopped_by_the_event_count():
    transcript = read_stream(endless(FakeClock(), b"data: 1\n\ndata: 2\n\n"), max_events=5)
    assert transcript.stopped == "count-cap" and len(transcript.events) == 5


def test_a_stall_between_chunks_is_stopped_by_the_idle_timeout():
    clock = FakeClock()

    def stalling():
        for delay in (0.1, 0.1, 5.0, 0.1):
            clock.now += delay
            yield b"data: 1\n\n"

    transcript = read_stream(stalling(), idle_timeout_s=2, clock=clock)
    assert transcript.stopped == "idle-timeout" and len(transcript.events) == 2


def test_arrival_times_show_first_byte_and_buffering():
    clock = FakeClock()

    def timed():
        for delay, part in ((0.3, b"data: 1\n"), (0.2, b"\ndata: 2\n\n"), (1.0, b"data: [DONE]\n\n")):
            clock.now += delay
            yield part

    transcript = read_stream(timed(), clock=clock)
    assert transcript.first_byte_s == pytest.approx(0.3)
    assert [e.received_s for e in transcript.events] == pytest.approx([0.5, 0.5, 1.5])
    assert transcript.chunks_read == 3 and transcript.stopped is None


def test_raw_bytes_are_kept_bounded():
    transcript = read_stream([GOOD_CHAT] * 10, max_raw_bytes=100)
    assert transcript.raw == (GOOD_CHAT * 10)[:100] and transcript.raw_truncated
    assert not read_stream([GOOD_CHAT]).raw_truncated


def test_a_stopped_generator_is_closed():
    closed = []

    def gen():
        try:
            while True:
                yield b"data: 1\n\n"
        finally:
            closed.append(True)

    read_stream(gen(), max_bytes=50)
    assert closed == [True]


def test_multi_megabyte_line_is_stopped_by_the_event_cap_with_bounded_memory():
    def huge_line():
        yield b"data: "
        while True:
            yield b"x" * 65536

    tracemalloc.start()
    try:
        transcript = read_stream(huge_line(), max_event_bytes=256 << 10, max_raw_bytes=4096, max_bytes=64 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert transcript.stopped == "event-too-large" and transcript.codes() == ["event-too-large"]
    assert transcript.bytes_read < (256 << 10) + 2 * 65536
    assert peak < 2 << 20, f"peak {peak} bytes"


# --- equivalence with openai-python's own decoder ---------------------------------------------------------------

openai_streaming = pytest.importorskip("openai._streaming", reason="openai-python's private SSE decoder")


def sdk_events(stream: bytes, chunk_size: int):
    decoder = openai_streaming.SSEDecoder()
    chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
    return [(e.data, e.event or "message", e.id, e.retry) for e in decoder.iter_bytes(iter(chunks))]


def test_same_events_as_openai_python_on_valid_streams():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    value = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=8)
    line = st.one_of(
        value.map(lambda v: f"data: {v}"), value.map(lambda v: f"data:{v}"), value.map(lambda v: f": {v}"),
        value.filter(lambda v: "\0" not in v).map(lambda v: f"id: {v}"),
        st.integers(0, 10**6).map(lambda n: f"retry: {n}"), value.map(lambda v: f"x-other: {v}"),
    )
    block = st.tuples(st.lists(line, max_size=4), value.filter(bool)).map(lambda t: [*t[0], f"data: {t[1]}"])
    eol = st.sampled_from(["\n", "\r", "\r\n"])

    @settings(max_examples=150, deadline=None, database=None)
    @given(st.lists(st.tuples(block, eol), max_size=5), st.integers(1, 9))
    def check(blocks, chunk_size):
        stream = "".join(eol.join(lines) + eol + eol for lines, eol in blocks).encode()
        events, findings = parse_sse(stream)
        assert findings == []
        assert [(e.data, e.event, e.id, e.retry) for e in events] == sdk_events(stream, chunk_size)

    check()


def test_openai_python_really_fails_where_we_flag():
    # An empty-data event is dispatched by the SDK and cannot be parsed; a BOM loses the first event.
    (empty,) = [e for e in openai_streaming.SSEDecoder().iter_bytes(iter([b"event: ping\n\n"]))]
    with pytest.raises(json.JSONDecodeError):
        empty.json()
    assert sdk_events(b"\xef\xbb\xbfdata: 1\n\ndata: 2\n\n", 4) == [("2", "message", None, None)]
    assert datas(parse_sse(b"\xef\xbb\xbfdata: 1\n\ndata: 2\n\n")[0]) == ["1", "2"]
