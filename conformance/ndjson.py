"""Incremental reader and validator for Ollama's NDJSON streams (``application/x-ndjson``).

Same ideas, limits and :class:`~conformance.sse.Finding` shape as :mod:`conformance.sse`. Finding codes:
``non-json-line`` (a line that is not a JSON object, including an empty line: ollama-python runs ``json.loads`` on
every line), ``invalid-utf8``, ``line-too-large``, ``no-done`` (no object with ``"done": true``),
``data-after-done``, ``content-type`` (expects ``application/x-ndjson``), ``error-object`` (a mid-stream
``{"error": "..."}``, which the Ollama docs prescribe for failures after the stream started: surfaced, not a
framing error), and the reader's ``size-cap`` / ``count-cap`` / ``time-cap`` / ``idle-timeout``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.sse import (
    EXCERPT_BYTES,
    Finding,
    ReadLimits,
    ReadOutcome,
    check_content_type,
    excerpt,
    read_with_limits,
)


@dataclass(frozen=True)
class NdjsonObject:
    """One parsed line: its JSON ``value`` (always a dict), the ``raw`` line without its line end, the ``offset``
    of the line in the stream, and ``received_s`` (set by :func:`read_ndjson`: seconds from the start of reading
    to the arrival of the chunk that completed the line)."""

    value: dict[str, Any]
    raw: bytes
    offset: int
    received_s: float | None = field(default=None, compare=False)


class NdjsonParser:
    """Incremental NDJSON parser: ``feed(chunk)`` returns the objects completed by that chunk; ``close()`` parses a
    last line that has no final newline (clients accept it). Lines end with LF; one CR before it is dropped.
    A line longer than ``max_line_bytes`` is dropped with ``line-too-large`` (``overflowed`` is set) and parsing
    resumes after its newline, so memory stays bounded by the limit plus one chunk."""

    def __init__(self, *, max_line_bytes: int = 1 << 20) -> None:
        self.max_line_bytes = max_line_bytes
        self.findings: list[Finding] = []
        self.overflowed = False
        self._line = bytearray()
        self._line_start = 0
        self._pos = 0
        self._discarding = False
        self._closed = False
        self._received_s: float | None = None

    def feed(self, chunk: bytes, *, received_s: float | None = None) -> list[NdjsonObject]:
        """Consume ``chunk`` and return the objects it completed, in order, stamped with ``received_s``."""
        if self._closed:
            raise ValueError("NdjsonParser.feed() after close()")
        self._received_s = received_s
        objects: list[NdjsonObject] = []
        i = 0
        while i < len(chunk):
            j = chunk.find(b"\n", i)
            end = len(chunk) if j < 0 else j
            self._append(chunk[i:end])
            if j < 0:
                break
            self._pos += 1
            obj = self._end_line()
            if obj is not None:
                objects.append(obj)
            i = j + 1
        return objects

    def close(self) -> list[NdjsonObject]:
        """End of stream: parse a pending last line, if any."""
        if self._closed:
            return []
        self._closed = True
        if not self._line or self._discarding:
            return []
        obj = self._end_line()
        return [obj] if obj is not None else []

    def _append(self, segment: bytes) -> None:
        if not self._line and not self._discarding:
            self._line_start = self._pos
        self._pos += len(segment)
        if self._discarding:
            return
        self._line += segment
        if len(self._line) > self.max_line_bytes:
            self._note("line-too-large", f"a line exceeds {self.max_line_bytes} bytes; it is dropped",
                       self._line_start, bytes(self._line[:EXCERPT_BYTES]) + b"...")
            self.overflowed, self._discarding, self._line = True, True, bytearray()

    def _note(self, code: str, message: str, offset: int, data: bytes) -> None:
        self.findings.append(Finding(code, message, offset, excerpt(data)))

    def _end_line(self) -> NdjsonObject | None:
        line, offset = bytes(self._line), self._line_start
        self._line = bytearray()
        if self._discarding:
            self._discarding = False
            return None
        line = line.removesuffix(b"\r")
        try:
            value = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as err:
            self._note("invalid-utf8", f"invalid UTF-8 at byte {offset + err.start}", offset + err.start,
                       line[err.start:])
            return None
        except ValueError:
            what = "an empty line" if not line.strip() else "a line that is not JSON"
            self._note("non-json-line", f"{what}: ollama-python's json.loads on every line fails", offset, line)
            return None
        if not isinstance(value, dict):
            self._note("non-json-line", f"a JSON {type(value).__name__}, not an object", offset, line)
            return None
        return NdjsonObject(value, line, offset, self._received_s)


def parse_ndjson(data: bytes, *, max_line_bytes: int = 1 << 20) -> tuple[list[NdjsonObject], list[Finding]]:
    """Parse a complete body at once: ``(objects, findings)``."""
    parser = NdjsonParser(max_line_bytes=max_line_bytes)
    objects = parser.feed(data) + parser.close()
    return objects, parser.findings


class NdjsonTranscript(ReadOutcome):
    """One NDJSON body as read by :func:`read_ndjson`: objects (``items``), findings, kept raw bytes and timing
    (the fields mean what they mean on :class:`conformance.sse.SseTranscript`)."""

    @property
    def objects(self) -> list[NdjsonObject]:
        return self.items

    def codes(self) -> list[str]:
        """The finding codes, in order."""
        return [f.code for f in self.findings]

    def values(self) -> list[dict[str, Any]]:
        """The parsed objects."""
        return [o.value for o in self.objects]


def read_ndjson(byte_iter: Iterable[bytes], *, max_bytes: int = 16 << 20, max_objects: int = 100_000,
                deadline_s: float = 120.0, idle_timeout_s: float | None = None, max_line_bytes: int = 1 << 20,
                max_raw_bytes: int = 256 << 10, clock: Callable[[], float] = time.monotonic) -> NdjsonTranscript:
    """Read an NDJSON body incrementally from any iterable of byte chunks, stopping at the first limit with a
    finding; see :func:`conformance.sse.read_with_limits` for what the deadline can interrupt."""
    limits = ReadLimits(max_bytes, max_objects, deadline_s, idle_timeout_s, max_raw_bytes)
    out = read_with_limits(byte_iter, NdjsonParser(max_line_bytes=max_line_bytes), limits, clock)
    return NdjsonTranscript(**vars(out))


def validate_ollama_stream(transcript: NdjsonTranscript, content_type: str | None) -> list[Finding]:
    """All findings for an Ollama native stream: the reader's own, the content type, a final ``"done": true``
    object with nothing after it (``no-done`` is not claimed when reading stopped at a limit), and every
    ``{"error": ...}`` object as ``error-object``."""
    findings = list(transcript.findings)
    ct = check_content_type(content_type, "application/x-ndjson")
    if ct:
        findings.append(ct)
    objects = transcript.objects
    done = next((i for i, o in enumerate(objects) if o.value.get("done") is True), None)
    if done is None and transcript.stopped is None:
        findings.append(Finding("no-done", 'the stream ended without an object with "done": true',
                                transcript.bytes_read, excerpt(transcript.raw[-EXCERPT_BYTES:])))
    if done is not None and done + 1 < len(objects):
        after = objects[done + 1]
        findings.append(Finding("data-after-done", f'{len(objects) - done - 1} object(s) after "done": true',
                                after.offset, excerpt(after.raw)))
    for obj in objects:
        if "error" in obj.value:
            findings.append(Finding("error-object", "an error object in the stream (ollama-python raises "
                                    "ResponseError)", obj.offset, excerpt(obj.raw)))
    return findings
