"""Server-sent events encoder for chat streams: ``data: <json>`` frames, comments, ``[DONE]``, and the headers.

The variants of ``variants.py`` that the WHATWG grammar allows (no space after the colon, CRLF or CR line ends,
keep-alive comments, no charset) are applied here, so chunk building in ``streaming.py`` never deals with bytes.
The framing faults (SSE-*) act on these frames at the ``SSE_FRAMES`` seam (faults/sse.py).
"""

from __future__ import annotations

import json
from typing import Any

from reference_server.config import ServerConfig


class SseEncoder:
    """Turns chunks into SSE frames for one stream, honouring the config's variants."""

    def __init__(self, config: ServerConfig) -> None:
        self.newline = "\r\n" if config.variant("sse-crlf") else "\r" if config.variant("sse-cr") else "\n"
        self.prefix = "data:" if config.variant("sse-no-space") else "data: "

    def lines(self, *lines: str) -> bytes:
        """One event made of ``lines``, each ended by the newline, then the blank line that ends the event."""
        return "".join(line + self.newline for line in lines).encode() + self.newline.encode()

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """One chunk as a one-line ``data:`` event."""
        return self.lines(self.prefix + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")))

    def error(self, error: dict[str, Any]) -> bytes:
        """A mid-stream error event: ``data: {"error": {...}}``."""
        return self.lines(self.prefix + json.dumps({"error": error}, separators=(",", ":")))

    def keepalive(self) -> bytes:
        """A keep-alive: a comment line."""
        return self.lines(": keep-alive")

    def done(self) -> bytes:
        """The ``[DONE]`` sentinel event."""
        return self.lines(self.prefix + "[DONE]")


def content_type(config: ServerConfig) -> str:
    """``text/event-stream; charset=utf-8`` (OpenAI's), or without charset under the ``sse-charset-off`` variant."""
    return "text/event-stream" if config.variant("sse-charset-off") else "text/event-stream; charset=utf-8"
