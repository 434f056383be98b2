"""Relaying a stream: upstream bytes -> events (``Event`` in ``seams.py``) -> client bytes, as they arrive.

Nothing here waits for more than the upstream has sent: the reader yields each event once its blank line has
arrived, the encoder writes each event as one frame. An upstream that stops before ``[DONE]`` and without an error
event (closed, reset, silent past the timeout) becomes a ``cut`` event, which the client receives as one explicit
error event (``code: stream_incomplete``) and no ``[DONE]``: never as a finished answer.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from reference_relay.seams import Event

INCOMPLETE = {"message": "The upstream stream ended before it was complete.", "type": "server_error",
              "param": None, "code": "stream_incomplete"}
MALFORMED = {"message": "The upstream stream sent an event the gateway could not read.", "type": "server_error",
             "param": None, "code": "upstream_malformed"}


def sse_data(pieces: Iterable[bytes]) -> Iterator[str]:
    """The ``data`` of each dispatched server-sent event (WHATWG HTML §9.2.6; any line ending, comments
    skipped); an event not closed by a blank line when the bytes end is not dispatched."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buf, data = "", []
    for piece in pieces:
        buf += decoder.decode(piece)
        hold = ""
        if buf.endswith("\r"):  # maybe the first half of CRLF: decide when the next piece comes
            buf, hold = buf[:-1], "\r"
        *lines, buf = buf.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        buf += hold
        for line in lines:
            if line == "":
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith("data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(" ") else value)
            # comments (":...") and other fields (event, id, retry) carry nothing the relay passes on


def upstream_events(resp: httpx.Response, to_client_model) -> Iterator[Event]:
    """The upstream stream as events; always ends with ``done``, ``error`` or ``cut``. Closes ``resp``."""
    try:
        for data in sse_data(resp.iter_bytes()):
            if data == "[DONE]":
                yield ("done", None)
                return
            try:
                obj = json.loads(data)
            except ValueError:
                yield ("error", MALFORMED)
                return
            if isinstance(obj, dict) and "error" in obj and "choices" not in obj:
                yield ("error", obj["error"])
                return
            if isinstance(obj, dict) and "model" in obj:
                obj["model"] = to_client_model(obj["model"])
            yield ("chunk", obj)
        yield ("cut", "closed")
    except httpx.TimeoutException:
        yield ("cut", "stalled")
    except httpx.TransportError:
        yield ("cut", "reset")
    finally:
        resp.close()


def frame(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return b"data: " + text.encode("utf-8") + b"\n\n"


def encode(events: Iterable[Event]) -> Iterator[bytes]:
    """One frame per event; ``cut`` becomes the explicit ``stream_incomplete`` error event."""
    for kind, value in events:
        if kind == "chunk":
            yield frame(value)
        elif kind == "error":
            yield frame({"error": value})
        elif kind == "done":
            yield frame("[DONE]")
        elif kind == "cut":
            yield frame({"error": INCOMPLETE})
