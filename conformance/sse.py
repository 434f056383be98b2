"""Byte-level reader and validator for ``text/event-stream`` (Server-Sent Events).

Parses exactly as WHATWG HTML §9.2.5/§9.2.6 says (contract.md §3) and reports, as findings with stable codes, what
breaks real clients even where the spec tolerates it (contract.md §2.4-2.5, pitfalls.md "SSE framing").
A library: no pytest imports. ``conformance.ndjson`` reuses :class:`Finding` and :func:`read_with_limits`.

Finding codes (stable; the suite maps them to requirements):

===================  =================================================================================
``bom``              a leading byte-order mark (the spec strips it; openai-python loses the first event)
``invalid-utf8``     bytes that are not UTF-8 (decoded with U+FFFD as the spec says; openai-python raises)
``empty-data-event`` a blank line that makes an SDK dispatch an event whose data is ``""``
``unterminated-event`` field lines after the last blank line at EOF (the spec discards that event)
``event-too-large``  one event exceeded ``max_event_bytes`` (dropped, reading stops in :func:`read_stream`)
``size-cap`` / ``time-cap`` / ``idle-timeout`` / ``count-cap``  the reader stopped at a limit
``content-type``     not ``text/event-stream`` (parameters such as ``charset=utf-8`` are fine)
``no-done`` / ``data-after-done``  the ``data: [DONE]`` sentinel is missing, or events follow it
``non-json-data``    a data value that is neither JSON nor exactly ``[DONE]``
``comment-as-data``  a data value starting with ``:`` (a comment re-emitted as data)
``error-event``      a ``data: {"error": ...}`` event (or ``event: error``): not a framing error, but surfaced
===================  =================================================================================

Over 400 lines on purpose: the reader follows the SSE spec's parsing algorithm step by step, and its steps share
the line buffer, the event's fields and the caps; the validator beside it names each finding code once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

BOM = b"\xef\xbb\xbf"
DONE = "[DONE]"
EXCERPT_BYTES = 120
_LINE_END = re.compile(rb"[\r\n]")


@dataclass(frozen=True)
class Finding:
    """One observation about a stream: a stable ``code``, a human ``message``, the byte ``offset`` where it starts
    and a bounded ``excerpt`` of the bytes there (escaped so CR/LF stay visible)."""

    code: str
    message: str
    offset: int
    excerpt: str = ""


def excerpt(data: bytes, limit: int = EXCERPT_BYTES) -> str:
    """Render at most ``limit`` bytes readably: UTF-8 with escapes for invalid bytes, CR, LF and NUL."""
    text = bytes(data[:limit]).decode("utf-8", "backslashreplace")
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\0", "\\0")
    return text + ("…" if len(data) > limit else "")


class SseDataError(ValueError):
    """An event's data is not the JSON the caller asked for."""


@dataclass(frozen=True)
class SseEvent:
    """A dispatched event, as the spec defines it.

    ``event`` is the type (``"message"`` when no ``event:`` field was given); ``id`` the last event ID at dispatch
    (sticky across events, ``None`` until an ``id:`` field is seen); ``retry`` the ``retry:`` value given in this
    event's own lines (openai-python's reading; the spec only updates the reconnection time). ``raw`` holds the
    event's lines with their line ends, without the blank line that dispatched it; ``offset`` is where the first of
    them starts in the stream. ``received_s`` is set by :func:`read_stream`: seconds from the start of reading to
    the arrival of the chunk that completed the event.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None
    raw: bytes = b""
    offset: int = 0
    received_s: float | None = field(default=None, compare=False)

    @property
    def is_done(self) -> bool:
        """True for the OpenAI end-of-stream sentinel ``data: [DONE]`` (exact match, as openai-node requires)."""
        return self.data == DONE

    def json(self) -> Any:
        """The data parsed as JSON; raises :class:`SseDataError` naming the offset and an excerpt if it is not."""
        try:
            return json.loads(self.data)
        except ValueError as err:
            raise SseDataError(
                f"event at byte {self.offset}: data is not JSON ({err}): {excerpt(self.data.encode())!r}"
            ) from err


class SseParser:
    """Incremental SSE parser: ``feed(chunk)`` returns the events that chunk completed; ``close()`` ends the stream.

    Chunk boundaries never change the result: a CR ending one chunk and an LF starting the next make one line end,
    and a multi-byte character split across chunks is decoded whole. Observations accumulate in ``findings``.
    Memory is bounded by ``max_event_bytes`` plus one chunk: an event that grows past it is dropped with an
    ``event-too-large`` finding, the parser skips to the blank line that ends it and carries on (``overflowed``).
    """

    def __init__(self, *, max_event_bytes: int = 1 << 20) -> None:
        self.max_event_bytes = max_event_bytes
        self.findings: list[Finding] = []
        self.last_event_id: str | None = None
        self.overflowed = False
        self._pos = 0  # bytes consumed so far
        self._line = bytearray()  # pending line (kept empty while discarding)
        self._line_len = 0
        self._line_start = 0
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF completes that line end
        self._last_line_blank = True
        self._discarding = False
        self._closed = False
        self._received_s: float | None = None
        self._reset_event()

    def _reset_event(self) -> None:
        self._raw = bytearray()
        self._start: int | None = None
        self._size = 0
        self._data: list[str] = []
        self._type = ""
        self._retry: int | None = None
        self._has_field = False

    def feed(self, chunk: bytes, *, received_s: float | None = None) -> list[SseEvent]:
        """Consume ``chunk`` and return the events it completed, in order, stamped with ``received_s``."""
        if self._closed:
            raise ValueError("SseParser.feed() after close()")
        self._received_s = received_s
        events: list[SseEvent] = []
        i, n = 0, len(chunk)
        if n and self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                self._pos += 1
                if not self._last_line_blank and not self._discarding:
                    self._raw += b"\n"
                    self._grow(1)
                i = 1
        while i < n:
            match = _LINE_END.search(chunk, i)
            if match is None:
                self._append(chunk[i:])
                break
            j = match.start()
            self._append(chunk[i:j])
            if chunk[j] == 0x0D and j + 1 < n and chunk[j + 1] == 0x0A:
                term = b"\r\n"
            else:
                term = chunk[j : j + 1]
                self._skip_lf = chunk[j] == 0x0D and j + 1 == n
            event = self._end_line(term)
            if event is not None:
                events.append(event)
            i = j + len(term)
        return events

    def close(self) -> list[SseEvent]:
        """End of stream. Per the spec nothing is dispatched here: a pending event is discarded, and if it held any
        field line it is recorded as ``unterminated-event``. Returns ``[]`` (kept for symmetry with ``feed``)."""
        if self._closed:
            return []
        self._closed = True
        partial = bytes(self._line)
        content = partial.removeprefix(BOM) if self._line_start == 0 else partial
        partial_is_field = bool(content) and not content.startswith(b":")
        if not self._discarding and (self._has_field or partial_is_field):
            pending = bytes(self._raw) + partial
            self._note("unterminated-event", "the stream ended without the blank line that dispatches this event; "
                       "per the spec it is discarded (clients never see it)", self._start or 0, pending)
        return []

    def _note(self, code: str, message: str, offset: int, data: bytes) -> None:
        self.findings.append(Finding(code, message, offset, excerpt(data)))

    def _append(self, segment: bytes) -> None:
        if not segment:
            return
        if self._start is None:
            self._start = self._pos
        if self._line_len == 0:
            self._line_start = self._pos
        self._line_len += len(segment)
        self._pos += len(segment)
        if not self._discarding:
            self._line += segment
        self._grow(len(segment))

    def _grow(self, nbytes: int) -> None:
        self._size += nbytes
        if self._discarding or self._size <= self.max_event_bytes:
            return
        self._note("event-too-large", f"one event exceeds {self.max_event_bytes} bytes; it is dropped",
                   self._start or 0, bytes(self._raw[:EXCERPT_BYTES]) + bytes(self._line[:EXCERPT_BYTES]))
        self.overflowed = True
        self._discarding = True
        self._line = bytearray()
        self._raw = bytearray()
        self._data = []

    def _end_line(self, term: bytes) -> SseEvent | None:
        line, length, start = bytes(self._line), self._line_len, self._line_start
        self._line, self._line_len = bytearray(), 0
        self._pos += len(term)
        content = line
        if length and start == 0 and line.startswith(BOM):
            self._note("bom", "the stream starts with a byte-order mark: the spec strips it, but openai-python "
                       "reads the first field name as '\\ufeffdata' and loses the first event", 0, line)
            content = line[len(BOM):]
            if not content:  # a BOM alone on the first line: that line is blank
                length, self._start, self._size = 0, None, 0
        if length == 0:
            self._last_line_blank = True
            return self._dispatch(self._pos - len(term), term)
        self._last_line_blank = False
        if not self._discarding:
            self._raw += line + term
        self._grow(len(term))
        if not self._discarding:
            self._interpret(content, start + len(line) - len(content))
        return None

    def _interpret(self, line: bytes, offset: int) -> None:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            self._note("invalid-utf8", f"invalid UTF-8 at byte {offset + err.start}: the spec decodes it as U+FFFD, "
                       "openai-python raises UnicodeDecodeError", offset + err.start, line[err.start:])
            text = line.decode("utf-8", "replace")
        if text.startswith(":"):
            return  # a comment (keep-alive)
        self._has_field = True
        name, _, value = text.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        # any other field name is ignored, as the spec says

    def _dispatch(self, blank_offset: int, term: bytes) -> SseEvent | None:
        if self._discarding:
            self._discarding = False
            self._reset_event()
            return None
        data = "\n".join(self._data)
        event = None
        if self._data:
            event = SseEvent(data, self._type or "message", self.last_event_id, self._retry,
                             bytes(self._raw), self._start or 0, self._received_s)
        # openai-python dispatches whenever event, data, a (never reset) last id or retry is set
        sdk_dispatches = bool(self._type or self._data or self.last_event_id or self._retry is not None)
        if sdk_dispatches and data == "":
            self._note("empty-data-event", self._empty_reason(), self._start if self._start is not None
                       else blank_offset, bytes(self._raw) or term)
        self._reset_event()
        return event

    def _empty_reason(self) -> str:
        if self._data:
            why = "an event dispatches with empty data"
        elif self._type:
            why = f"'event: {self._type}' with no data: the spec drops it, but the SDKs dispatch it"
        else:
            why = "a blank line after an 'id:' was seen: openai-python never resets the last id and dispatches it"
        return why + "; json.loads('') fails in openai-python (JSON.parse in openai-node)"


def parse_sse(data: bytes, *, max_event_bytes: int = 1 << 20) -> tuple[list[SseEvent], list[Finding]]:
    """Parse a complete stream at once: ``(events, findings)``."""
    parser = SseParser(max_event_bytes=max_event_bytes)
    events = parser.feed(data) + parser.close()
    return events, parser.findings


class IncrementalParser(Protocol):
    """What :func:`read_with_limits` drives: :class:`SseParser` and ``conformance.ndjson.NdjsonParser``."""

    findings: list[Finding]
    overflowed: bool

    def feed(self, chunk: bytes, *, received_s: float | None = None) -> list[Any]: ...

    def close(self) -> list[Any]: ...


@dataclass(frozen=True)
class ReadLimits:
    """Bounds for reading one stream. ``max_bytes``: body bytes read; ``max_items``: events (or NDJSON objects);
    ``deadline_s``: total wall time; ``idle_timeout_s``: longest wait for a chunk, the first included (``None``: no limit);
    ``max_raw_bytes``: how much of the raw body is kept for reports."""

    max_bytes: int = 16 << 20
    max_items: int = 100_000
    deadline_s: float = 120.0
    idle_timeout_s: float | None = None
    max_raw_bytes: int = 256 << 10


@dataclass
class ReadOutcome:
    """What :func:`read_with_limits` saw: parsed items (with ``received_s`` set), all findings, the kept raw bytes
    and timing. ``stopped`` is the code of the limit that ended reading early, ``None`` after a clean EOF."""

    items: list[Any]
    findings: list[Finding]
    raw: bytes
    raw_truncated: bool
    bytes_read: int
    chunks_read: int
    first_byte_s: float | None
    elapsed_s: float
    stopped: str | None


def read_with_limits(byte_iter: Iterable[bytes], parser: IncrementalParser, limits: ReadLimits,
                     clock: Callable[[], float] = time.monotonic) -> ReadOutcome:
    """Feed ``byte_iter`` to ``parser`` until EOF or a limit, never waiting past a limit once a chunk returns.

    Limits are checked between chunks only: a stall inside one read is the transport's read timeout to catch (set
    one on the HTTP client). A chunk that arrives after the deadline or idle limit is not used, since a client with
    that timeout would never have seen it. Exceptions from the iterator (transport errors) propagate unchanged:
    the HTTP client maps them to harness errors and keeps the body it read. If reading stops early and the iterator has ``close()``, it is closed;
    the caller still owns (and closes) the HTTP response.
    """
    if isinstance(byte_iter, (bytes, bytearray)):
        byte_iter = [bytes(byte_iter)]
    out = ReadOutcome([], [], b"", False, 0, 0, None, 0.0, None)
    raw = bytearray()
    stop: Finding | None = None
    start = last = clock()
    iterator = iter(byte_iter)
    for chunk in iterator:
        now = clock()
        if now - start > limits.deadline_s:
            stop = Finding("time-cap", f"stopped after the {limits.deadline_s} s deadline", out.bytes_read)
        elif limits.idle_timeout_s is not None and chunk and now - last > limits.idle_timeout_s:
            stop = Finding("idle-timeout", f"no bytes for {now - last:.3f} s (limit {limits.idle_timeout_s} s)",
                           out.bytes_read)
        if stop or not chunk:
            if stop:
                break
            continue
        last = now
        if out.first_byte_s is None:
            out.first_byte_s = now - start
        room = limits.max_bytes - out.bytes_read
        if len(chunk) > room:
            chunk = chunk[:room]
            stop = Finding("size-cap", f"stopped at the {limits.max_bytes}-byte limit", limits.max_bytes)
        raw += chunk[: max(0, limits.max_raw_bytes - len(raw))]
        out.raw_truncated = out.raw_truncated or out.bytes_read + len(chunk) > limits.max_raw_bytes
        out.bytes_read += len(chunk)
        out.chunks_read += 1
        out.items += parser.feed(chunk, received_s=now - start)
        if len(out.items) > limits.max_items:
            del out.items[limits.max_items:]
            stop = stop or Finding("count-cap", f"stopped after {limits.max_items} events or objects",
                                   out.bytes_read)
        if parser.overflowed:  # the parser reported it (event-too-large / line-too-large)
            stop = stop or next(f for f in parser.findings if f.code.endswith("-too-large"))
        if stop:
            break
    else:
        out.items += parser.close()  # nothing the spec dispatches; an NDJSON last line without newline
    if stop is not None:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()
    out.findings = list(parser.findings)
    if stop is not None and stop not in out.findings:
        out.findings.append(stop)
    out.stopped = stop.code if stop else None
    out.raw = bytes(raw)
    out.elapsed_s = clock() - start
    return out


class SseTranscript(ReadOutcome):
    """One SSE body as read by :func:`read_stream`: events (``items``), findings, kept raw bytes and timing."""

    @property
    def events(self) -> list[SseEvent]:
        return self.items

    def codes(self) -> list[str]:
        """The finding codes, in order."""
        return [f.code for f in self.findings]

    def chunks(self) -> list[Any]:
        """The JSON of each data event before ``[DONE]``; events that are not JSON are left out (they are
        ``non-json-data`` findings of :func:`validate_chat_stream`)."""
        parsed = []
        for event in self.events:
            if event.is_done:
                break
            try:
                parsed.append(json.loads(event.data))
            except ValueError:
                continue
        return parsed


def read_stream(byte_iter: Iterable[bytes], *, max_bytes: int = 16 << 20, max_events: int = 100_000,
                deadline_s: float = 120.0, idle_timeout_s: float | None = None, max_event_bytes: int = 1 << 20,
                max_raw_bytes: int = 256 << 10, clock: Callable[[], float] = time.monotonic) -> SseTranscript:
    """Read an SSE body incrementally from any iterable of byte chunks (e.g. httpx ``response.iter_raw()``).

    Stops at the first limit with a finding (``size-cap``, ``count-cap``, ``time-cap``, ``idle-timeout``,
    ``event-too-large``) instead of hanging; see :func:`read_with_limits` for what a deadline can and cannot
    interrupt. ``clock`` is injectable so tests can run a fake one.
    """
    limits = ReadLimits(max_bytes, max_events, deadline_s, idle_timeout_s, max_raw_bytes)
    out = read_with_limits(byte_iter, SseParser(max_event_bytes=max_event_bytes), limits, clock)
    return SseTranscript(**vars(out))


def check_content_type(content_type: str | None, expected: str) -> Finding | None:
    """A ``content-type`` finding unless the media type is ``expected`` (case-insensitive, any parameters) and any
    ``charset`` parameter is UTF-8."""
    media, *params = [part.strip() for part in (content_type or "").split(";")]
    charset = next((p.split("=", 1)[1].strip().strip('"') for p in params if p.lower().startswith("charset=")),
                   "utf-8")
    if media.lower() == expected and charset.lower() in ("utf-8", "utf8"):
        return None
    shown = content_type if content_type is not None else "(none)"
    return Finding("content-type", f"Content-Type should be {expected} (UTF-8), got {shown}", 0,
                   excerpt(shown.encode()))


def validate_chat_stream(transcript: SseTranscript, content_type: str | None) -> list[Finding]:
    """All findings that matter for an OpenAI chat-completions stream: the reader's own (except an
    ``empty-data-event`` after ``[DONE]``, which no SDK reads) plus the OpenAI framing rules: each data is JSON
    except the final ``[DONE]``, ``[DONE]`` is present and last. Error events are surfaced as ``error-event``.
    ``no-done`` is not claimed when reading stopped at a limit (the stream may simply have been cut)."""
    done = next((e for e in transcript.events if e.is_done), None)
    done_end = done.offset + len(done.raw) if done else None
    findings = [f for f in transcript.findings
                if not (f.code == "empty-data-event" and done_end is not None and f.offset >= done_end)]
    ct = check_content_type(content_type, "text/event-stream")
    if ct:
        findings.append(ct)
    if done is None:
        if transcript.stopped is None:
            end = transcript.bytes_read
            findings.append(Finding("no-done", "the stream ended without 'data: [DONE]'", end,
                                    excerpt(transcript.raw[-EXCERPT_BYTES:])))
    else:
        after = transcript.events[transcript.events.index(done) + 1:]
        if after:
            findings.append(Finding("data-after-done", f"{len(after)} event(s) after 'data: [DONE]'",
                                    after[0].offset, excerpt(after[0].raw)))
    for event in transcript.events[: transcript.events.index(done) if done else None]:
        findings += _check_chat_event(event)
    return findings


def _check_chat_event(event: SseEvent) -> list[Finding]:
    raw = excerpt(event.raw)
    if event.data.startswith(":"):
        return [Finding("comment-as-data", "a data value starts with ':': a comment re-emitted as data "
                        "(breaks openai-node's JSON.parse)", event.offset, raw)]
    try:
        value = json.loads(event.data)
    except ValueError:
        hint = " (the sentinel must be exactly '[DONE]')" if event.data.startswith(DONE) else ""
        return [Finding("non-json-data", f"data is not JSON{hint}", event.offset, raw)]
    if isinstance(value, dict) and value.get("error"):
        return [Finding("error-event", "an error event: openai-python and openai-node raise APIError",
                        event.offset, raw)]
    if event.event == "error":
        return [Finding("error-event", "'event: error' without an 'error' key: openai-node raises APIError, "
                        "openai-python yields the data as a chunk", event.offset, raw)]
    return []
