"""Faults of event streams on the wire: SSE framing (the ``SSE_FRAMES`` seam), the mid-stream error event
(``MID_STREAM_ERROR``), and the body and headers of the stream as it leaves (``STREAM_BODY``).

``SSE_FRAMES`` transforms are generator wrappers ``(frames, req, encoder, chunks) -> frames``: frame ``i`` carries
``chunks[i]`` and frame ``len(chunks)`` is ``[DONE]``; they change bytes within frames and never add one, so the
X-Mock-* pacing counts the same frames.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from reference_server import faults
from reference_server.context import request_context
from reference_server.faults.seams import MID_STREAM_ERROR, SSE_FRAMES, STREAM_BODY, StreamBody
from reference_server.faults.stream import plain_request

if TYPE_CHECKING:
    from reference_server.surfaces.chat_request import ChatRequest
    from reference_server.wire.sse import SseEncoder

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
FAULT_NO_CACHE_CONTROL = F("HEADERS-004", "Streams carry no Cache-Control header.")
FAULT_NO_ACCEL = F("HEADERS-005", "Streams carry no X-Accel-Buffering header.")
FAULT_BUFFERED = F("HEADERS-006", "The whole stream is produced before its first byte is sent.")
FAULT_GZIP = F("HEADERS-008", "Streams are gzip-compressed (Content-Encoding: gzip).")
# openai-python raises APIError only for an event whose data holds "error" (_streaming.py): SDK-014.
FAULT_SILENT_CLOSE = F("SSE-008", "A mid-stream error closes the stream silently instead of sending an error event.",
                       collateral=("SDK-014",))

BOM = "\ufeff".encode()

Frames = Iterator[bytes]


def _at_frame(kind: str, change: Any) -> Any:
    """A transform applying ``change(frame, encoder, chunks, number)`` to the chunk frames (``kind`` "chunk"), to the
    first chunk frame ("first") or to the [DONE] frame ("done")."""
    def transform(frames: Frames, req: ChatRequest, encoder: SseEncoder, chunks: list[dict]) -> Frames:
        done = len(chunks)
        for number, frame in enumerate(frames):
            due = number == done if kind == "done" else number == 0 if kind == "first" else number < done
            yield change(frame, encoder, chunks, number) if due else frame
    return transform


def _has_chunks(frames: Frames, req: ChatRequest, encoder: SseEncoder, chunks: list[dict]) -> bool:
    return bool(chunks)


def _reaches_done(frames: Frames, req: ChatRequest, encoder: SseEncoder, chunks: list[dict]) -> bool:
    """The [DONE] frame is made: no X-Mock-* control ends the stream before it (the pacing takes a frame, then
    decides whether to send it, so the frame at the control's count is still made)."""
    mock = request_context().mock
    ends = [n for n in (getattr(mock, "cut_after", None), getattr(mock, "stall_after", None),
                        getattr(mock, "error_after", None)) if n is not None]
    return not ends or len(chunks) <= min(ends)


at = SSE_FRAMES.transform


def _split_data(frame: bytes, encoder: SseEncoder, chunks: list[dict], number: int) -> bytes:
    text = json.dumps(chunks[number], ensure_ascii=False, separators=(",", ":"))
    if "," not in text:
        return frame
    head, tail = text.split(",", 1)
    return encoder.lines(encoder.prefix + head + ",", encoder.prefix + tail)


at(FAULT_SPLIT_DATA)(_at_frame("chunk", _split_data))
at(FAULT_EVENT_FIELD)(_at_frame("chunk", lambda frame, encoder, *_: f"event: completion{encoder.newline}".encode()
                                 + frame))


@at(FAULT_BAD_UTF8, lambda frames, req, *_: plain_request(req))
def _bad_utf8(frames: Frames, *_: Any) -> Frames:
    """A raw 0xFF byte at the start of the first content delta."""
    due = True
    for frame in frames:
        if due and b'"content":"' in frame and b'"content":""' not in frame:
            frame, due = frame.replace(b'"content":"', b'"content":"\xff', 1), False
        yield frame


at(FAULT_BOM, _has_chunks)(_at_frame("first", lambda frame, *_: BOM + frame))
at(FAULT_NOT_JSON_EVENT, _has_chunks)(
    _at_frame("first", lambda frame, encoder, *_: frame + encoder.lines(encoder.prefix + "PROCESSING")))
at(FAULT_PING_EVENT, _has_chunks)(_at_frame("first", lambda frame, encoder, *_: frame + encoder.lines("event: ping")))
at(FAULT_COMMENT_AS_DATA, _has_chunks)(
    _at_frame("first", lambda frame, encoder, *_: frame + encoder.lines(encoder.prefix + ": OPENROUTER PROCESSING")))


@at(FAULT_KEEPALIVE_FIELD)
def _keepalive_field(frames: Frames, req: ChatRequest, encoder: SseEncoder, chunks: list[dict]) -> Frames:
    """A bare "keep-alive" field line before every frame (sent with it, so the pacing counts the same frames)."""
    for frame in frames:
        yield encoder.lines("keep-alive") + frame


@at(FAULT_NO_DONE, _reaches_done)
def _no_done(frames: Frames, req: ChatRequest, encoder: SseEncoder, chunks: list[dict]) -> Frames:
    return _at_frame("done", lambda *_: b"")(frames, req, encoder, chunks)


at(FAULT_DONE_TEXT, _reaches_done)(_at_frame("done", lambda frame, encoder, *_: frame and encoder.lines(encoder.prefix + "[DONE] OK")))
at(FAULT_DONE_UNTERMINATED, _reaches_done)(_at_frame("done", lambda frame, encoder, *_: frame[:-len(encoder.newline.encode())]))
at(FAULT_DATA_AFTER_DONE, lambda *args: _has_chunks(*args) and _reaches_done(*args))(_at_frame(
    "done", lambda frame, encoder, chunks, _: frame and frame + encoder.lines(
        encoder.prefix + json.dumps(chunks[0], separators=(",", ":")))))


@MID_STREAM_ERROR.transform(FAULT_SILENT_CLOSE)
def _silent_close(frame: bytes) -> bytes:
    return b""


# ---------------------------------------------------------------- the stream as it leaves


@STREAM_BODY.transform(FAULT_NO_CHARSET_TYPE)
def _no_charset_type(body: StreamBody) -> StreamBody:
    body.headers["Content-Type"] = "application/json"
    return body


@STREAM_BODY.transform(FAULT_NO_CACHE_CONTROL)
def _no_cache_control(body: StreamBody) -> StreamBody:
    del body.headers["Cache-Control"]
    return body


@STREAM_BODY.transform(FAULT_NO_ACCEL)
def _no_accel(body: StreamBody) -> StreamBody:
    del body.headers["X-Accel-Buffering"]
    return body


def _gzipped(frames: Frames) -> Frames:
    compressor = zlib.compressobj(wbits=31)
    for frame in frames:
        yield compressor.compress(frame) + compressor.flush(zlib.Z_SYNC_FLUSH)
    yield compressor.flush()


@STREAM_BODY.transform(FAULT_GZIP)
def _gzip(body: StreamBody) -> StreamBody:
    body.frames, body.headers["Content-Encoding"] = _gzipped(body.frames), "gzip"
    return body


@STREAM_BODY.transform(FAULT_BUFFERED)
def _buffered(body: StreamBody) -> StreamBody:
    body.frames = iter([b"".join(body.frames)])
    return body
