"""conformance.ndjson: Ollama NDJSON streams parsed the same however they are chunked, defects flagged, limits
that stop endless streams."""

import itertools

import pytest

from conformance.ndjson import NdjsonParser, parse_ndjson, read_ndjson, validate_ollama_stream

CHUNK = b'{"model":"llama3.2","message":{"role":"assistant","content":"Hi"},"done":false}\n'
FINAL = b'{"model":"llama3.2","message":{"role":"assistant","content":""},"done_reason":"stop","done":true}\n'
GOOD = CHUNK + CHUNK + FINAL


def parse_every_way(stream: bytes):
    whole = parse_ndjson(stream)
    for k in range(len(stream) + 1):
        parser = NdjsonParser()
        objects = parser.feed(stream[:k]) + parser.feed(stream[k:]) + parser.close()
        assert (objects, parser.findings) == whole, f"split at byte {k}"
    parser = NdjsonParser()
    objects = [o for i in range(len(stream)) for o in parser.feed(stream[i : i + 1])] + parser.close()
    assert (objects, parser.findings) == whole, "byte by byte"
    return whole


def ollama_codes(stream: bytes, content_type="application/x-ndjson"):
    return [f.code for f in validate_ollama_stream(read_ndjson([stream]), content_type)]


@pytest.mark.parametrize("stream", [GOOD, GOOD.replace(b"\n", b"\r\n"), GOOD.rstrip(b"\n")],
                         ids=["lf", "crlf", "no final newline"])
def test_valid_stream_parses_without_findings(stream):
    objects, findings = parse_every_way(stream)
    assert [o.value["done"] for o in objects] == [False, False, True] and findings == []
    assert objects[1].offset == stream.index(b"\n") + 1 and objects[1].raw == CHUNK.rstrip(b"\n")


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/x-ndjson; charset=utf-8"])
def test_valid_stream_validates(content_type):
    assert ollama_codes(GOOD, content_type) == []


DEFECTS = {
    "not json": (CHUNK + b"data: {}\n" + FINAL, ["non-json-line"]),
    "empty line": (CHUNK + b"\n" + FINAL, ["non-json-line"]),
    "not an object": (CHUNK + b"[1, 2]\n" + FINAL, ["non-json-line"]),
    "invalid utf-8": (CHUNK + b'{"a": "\xff"}\n' + FINAL, ["invalid-utf8"]),
    "no done": (CHUNK + CHUNK, ["no-done"]),
    "data after done": (GOOD + CHUNK, ["data-after-done"]),
    "mid-stream error": (CHUNK + b'{"error":"an error was encountered while running the model"}\n',
                         ["no-done", "error-object"]),
}


@pytest.mark.parametrize("stream,expected", DEFECTS.values(), ids=DEFECTS.keys())
def test_defect_is_flagged(stream, expected):
    parse_every_way(stream)
    assert ollama_codes(stream) == expected


def test_finding_points_at_the_line():
    _, findings = parse_ndjson(CHUNK + b"oops\n")
    assert (findings[0].offset, findings[0].excerpt) == (len(CHUNK), "oops")


@pytest.mark.parametrize("content_type", [None, "application/json", "text/event-stream"])
def test_wrong_content_type_is_flagged(content_type):
    assert ollama_codes(GOOD, content_type) == ["content-type"]


def test_oversized_line_is_dropped_and_parsing_goes_on():
    stream = CHUNK + b'{"x": "' + b"y" * 500 + b'"}\n' + FINAL
    parser = NdjsonParser(max_line_bytes=200)
    objects = [o for i in range(0, len(stream), 13) for o in parser.feed(stream[i : i + 13])] + parser.close()
    assert len(objects) == 2 and parser.overflowed
    assert [(f.code, f.offset) for f in parser.findings] == [("line-too-large", len(CHUNK))]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def endless(clock, chunk=CHUNK):
    for _ in itertools.count():
        clock.now += 1.0
        yield chunk


def test_endless_stream_is_stopped_by_max_bytes_and_deadline():
    by_size = read_ndjson(endless(FakeClock()), max_bytes=len(CHUNK) * 3 + 5)
    assert by_size.stopped == "size-cap" and len(by_size.objects) == 3
    assert [f.code for f in validate_ollama_stream(by_size, "application/x-ndjson")] == ["size-cap"]
    clock = FakeClock()
    by_time = read_ndjson(endless(clock), deadline_s=30, clock=clock)
    assert by_time.stopped == "time-cap" and len(by_time.objects) == 30
    assert [o.received_s for o in by_time.objects[:3]] == [1.0, 2.0, 3.0]


def test_endless_line_is_stopped_by_the_line_cap():
    def huge():
        yield b'{"a": "'
        while True:
            yield b"z" * 65536

    transcript = read_ndjson(huge(), max_line_bytes=1 << 20)
    assert transcript.stopped == "line-too-large" and transcript.codes() == ["line-too-large"]
    assert transcript.bytes_read < (1 << 20) + 65536 * 2
