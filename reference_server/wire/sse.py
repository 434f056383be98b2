"""Server-sent events encoder for chat streams: ``data: <json>`` frames, comments, ``[DONE]``, and the headers.

The variants of ``variants.py`` that the WHATWG grammar allows (no space after the colon, CRLF or CR line ends,
keep-alive comments, no charset) are applied here, as are the framing faults (SSE-*), so chunk building in
``streaming.py`` never deals with bytes.
"""

from __future__ import annotations

import json
from typing import Any

from reference_server import faults
from reference_server.config import ServerConfig

F = faults.declare
# openai-python json-decodes the data of every event it dispatches before [DONE] (_streaming.py Stream.__stream__:
# sse.json()), including an event with an event field and no data (data ""): each SDK check that iterates a
# stream then raises JSONDecodeError, the mid-stream error one before it reaches the error event.
SDK_STREAM_READERS = ("SDK-002", "SDK-003", "SDK-005", "SDK-014", "SDK-015")
FAULT_NOT_JSON_EVENT = F("SSE-001", 'A "data: PROCESSING" event (not JSON) is sent after the first chunk.',
                         collateral=SDK_STREAM_READERS)
FAULT_NO_DONE = F("SSE-002", "Streams end without data: [DONE].")
FAULT_DATA_AFTER_DONE = F("SSE-003", "The first chunk is sent again after [DONE].")
FAULT_PING_EVENT = F("SSE-004", 'An "event: ping" event with no data is sent after the first chunk.',
                     collateral=SDK_STREAM_READERS)
# The SDK's decoder keeps the BOM, so the first line's field is "\ufeffdata" and that event (the role chunk) is
# dropped: the stream helper's final message has no role (SDK-003).
FAULT_BOM = F("SSE-005", "The stream starts with a UTF-8 byte-order mark.", collateral=("SDK-003",))
# Plain streams only (no tools, format, logprobs), so STRUCTURED-OUTPUT-002's JSON-mode stream stays readable.
# The byte changes the plain content (CHAT-STREAM-014) and openai-python decodes every line as strict UTF-8
# (_streaming.py SSEDecoder._decode_lines: raw_line.decode("utf-8")), so each SDK check that reads a plain
# content stream raises UnicodeDecodeError: the mid-stream error one too, as the byte comes before the error.
FAULT_BAD_UTF8 = F("SSE-006", "The first content delta of plain streams carries a raw 0xFF byte.",
                   collateral=("SSE-001", "CHAT-STREAM-014", "SDK-002", "SDK-003", "SDK-014", "SDK-015"))
FAULT_KEEPALIVE_FIELD = F("SSE-007", 'Keep-alives are sent as a bare "keep-alive" line, not a ":" comment.')
FAULT_COMMENT_AS_DATA = F("SSE-009", 'An upstream comment is re-emitted as "data: : OPENROUTER PROCESSING".',
                          collateral=("SSE-001", *SDK_STREAM_READERS))
FAULT_DONE_UNTERMINATED = F("SSE-010", "The [DONE] event is not followed by a blank line.")
FAULT_SPLIT_DATA = F("SSE-011", "Each chunk is split over two data: lines.")
FAULT_EVENT_FIELD = F("SSE-012", 'Chunk events carry an "event: completion" field.')
FAULT_DONE_TEXT = F("SSE-014", 'The sentinel line reads "data: [DONE] OK".')
FAULT_NO_CHARSET_TYPE = F("CHAT-STREAM-003", "Streams are sent with Content-Type application/json.")

BOM = "\ufeff".encode()


class SseEncoder:
    """Turns chunks into SSE frames for one stream, honouring the config's variants and faults."""

    def __init__(self, config: ServerConfig, *, plain: bool = True) -> None:
        """``plain``: the stream answers a request without tools, response_format or logprobs (see SSE-006)."""
        self.config = config
        self.bad_byte_due = plain and config.fault(FAULT_BAD_UTF8)
        self.newline = "\r\n" if config.variant("sse-crlf") else "\r" if config.variant("sse-cr") else "\n"
        self.prefix = "data:" if config.variant("sse-no-space") else "data: "
        self.frames_sent = 0

    def _lines(self, *lines: str) -> bytes:
        return "".join(line + self.newline for line in lines).encode() + self.newline.encode()

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """One chunk as a ``data:`` event (one line, unless a fault splits it)."""
        text = json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
        lines = [self.prefix + text]
        if self.config.fault(FAULT_SPLIT_DATA) and "," in text:
            head, tail = text.split(",", 1)
            lines = [self.prefix + head + ",", self.prefix + tail]
        if self.config.fault(FAULT_EVENT_FIELD):
            lines.insert(0, "event: completion")
        frame = self._lines(*lines)
        if self.bad_byte_due and '"content":"' in text and '"content":""' not in text:
            frame = frame.replace(b'"content":"', b'"content":"\xff', 1)
            self.bad_byte_due = False
        if self.frames_sent == 0 and self.config.fault(FAULT_BOM):
            frame = BOM + frame
        self.frames_sent += 1
        return frame + self._after_first()

    def _after_first(self) -> bytes:
        if self.frames_sent != 1:
            return b""
        extra = b""
        if self.config.fault(FAULT_NOT_JSON_EVENT):
            extra += self._lines(self.prefix + "PROCESSING")
        if self.config.fault(FAULT_PING_EVENT):
            extra += self._lines("event: ping")
        if self.config.fault(FAULT_COMMENT_AS_DATA):
            extra += self._lines(self.prefix + ": OPENROUTER PROCESSING")
        return extra

    def error(self, error: dict[str, Any]) -> bytes:
        """A mid-stream error event: ``data: {"error": {...}}``."""
        return self._lines(self.prefix + json.dumps({"error": error}, separators=(",", ":")))

    def keepalive(self) -> bytes:
        """A keep-alive: a comment line (or, under fault SSE-007, a bare field line)."""
        if self.config.fault(FAULT_KEEPALIVE_FIELD):
            return self._lines("keep-alive")
        return self._lines(": keep-alive")

    def done(self, first_chunk: dict[str, Any] | None = None) -> bytes:
        """The ``[DONE]`` sentinel event (plus what the after-[DONE] faults add)."""
        if self.config.fault(FAULT_NO_DONE):
            return b""
        sentinel = "[DONE] OK" if self.config.fault(FAULT_DONE_TEXT) else "[DONE]"
        if self.config.fault(FAULT_DONE_UNTERMINATED):
            return (self.prefix + sentinel + self.newline).encode()
        frame = self._lines(self.prefix + sentinel)
        if first_chunk is not None and self.config.fault(FAULT_DATA_AFTER_DONE):
            frame += self._lines(self.prefix + json.dumps(first_chunk, separators=(",", ":")))
        return frame


def content_type(config: ServerConfig) -> str:
    """``text/event-stream; charset=utf-8`` (OpenAI's), or without charset under the ``sse-charset-off`` variant."""
    if config.fault(FAULT_NO_CHARSET_TYPE):
        return "application/json"
    return "text/event-stream" if config.variant("sse-charset-off") else "text/event-stream; charset=utf-8"
