"""A catalogue of deliberately broken HTTP targets on 127.0.0.1, written at the socket level.

schemathesis proves its checks against a catalogue of broken apps; these are the transport-level equivalent: each
mode is one way a real target (a dead gateway, a hung upstream, an nginx error page, a proxy that buffers
forever) can be hostile to a test harness. A framework server could not produce most of them (a reset without a
response, bytes that are not HTTP, headers one byte per second), hence raw sockets.

    with HostileServer("hang") as server:
        GatewayClient(server.url, request_timeout=1).get("/models")   # must raise RequestTimedOut, not hang

Requests are routed by path and body so each mode answers in the shape the request expects: SSE for chat
requests with ``"stream": true``, NDJSON for the Ollama ``/api/`` surface, JSON otherwise. Every server is bounded
in time: all loops wait on one stop event, set when the ``with`` block ends or ``lifetime`` seconds pass.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

MODES = {
    "refuse": "nothing listens on the port: connection refused",
    "hang": "accepts, reads the request, never answers",
    "stall": "sends headers and part of the body, then stalls",
    "endless": "a well-formed body that never ends (SSE chunks, NDJSON lines or a JSON array, every 10 ms)",
    "gigabytes": "an endless body as fast as the socket takes it (JSON with a 10 GiB Content-Length)",
    "garbage": "answers with random bytes that are not HTTP",
    "reset": "reads the request, then resets the connection (SO_LINGER 0)",
    "html-200": "an nginx-style text/html page with status 200",
    "html-502": "nginx's 502 Bad Gateway text/html page",
    "trickle": "slowloris: the whole response, status line included, one byte per interval",
    "trickle-body": "headers at once, then the body one byte per interval",
    "wrong-json": "status 200, application/json, valid JSON of the wrong shape (echoing the request headers)",
}

HUGE_LENGTH = 10 << 30  # advertised by "gigabytes": 10 GiB, generated lazily, never held in memory
BLOCK_BYTES = 64 << 10
ENDLESS_PAUSE_S = 0.01

CHUNK = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini",
         "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}
OLLAMA_CHUNK = {"model": "llama3", "created_at": "2024-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": "a"}, "done": False}
MODEL = {"id": "gpt-4o-mini", "object": "model", "created": 1700000000, "owned_by": "hostile"}
NGINX_PAGE = ("<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n"
              "<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n")


class Gone(Exception):
    """The client went away or the server is stopping: the handler just ends."""


@dataclass
class Request:
    """The request line, lower-cased headers and body of one incoming request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def _json(self) -> dict:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def wire(self) -> str:
        """The body format the request expects: ``ndjson`` (Ollama streams by default), ``sse`` or ``json``."""
        stream = self._json().get("stream")
        if self.path.startswith("/api/"):
            return "json" if stream is False or self.method == "GET" else "ndjson"
        return "sse" if stream is True else "json"


# -- body shapes ----------------------------------------------------------------------------------------------
CONTENT_TYPES = {"sse": "text/event-stream", "ndjson": "application/x-ndjson", "json": "application/json"}


def body_parts(request: Request) -> tuple[bytes, bytes]:
    """(prefix, repeating unit) of a well-formed body in the request's shape; prefix + unit * n never ends it."""
    if request.wire == "sse":
        return b"", b"data: " + json.dumps(CHUNK).encode() + b"\n\n"
    if request.wire == "ndjson":
        return b"", json.dumps(OLLAMA_CHUNK).encode() + b"\n"
    if request.method == "GET":
        return b'{"object": "list", "data": [', json.dumps(MODEL).encode() + b", "
    return (b'{"id": "chatcmpl-hostile", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini", '
            b'"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "',
            b"a" * 64)


def complete_body(request: Request) -> bytes:
    """A short, complete, well-formed body in the request's shape (what the trickle modes dribble out)."""
    prefix, unit = body_parts(request)
    if request.wire == "sse":
        return unit * 3 + b"data: [DONE]\n\n"
    if request.wire == "ndjson":
        return unit + json.dumps({**OLLAMA_CHUNK, "done": True}).encode() + b"\n"
    if request.method == "GET":
        return prefix + json.dumps(MODEL).encode() + b"]}"
    return prefix + b'hello"}}]}'


def head(status: str, content_type: str, length: int | None = None, extra: tuple[str, ...] = ()) -> bytes:
    """Status line and headers; ``Connection: close`` because every mode ends the connection its own way."""
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", "Connection: close", "Server: hostile"]
    lines += [f"Content-Length: {length}"] if length is not None else []
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode()


# -- the wire -------------------------------------------------------------------------------------------------
class Wire:
    """One accepted connection: sends that fail fast once the client is gone or the server stops."""

    def __init__(self, conn: socket.socket, stop: threading.Event) -> None:
        self.conn, self.stop = conn, stop

    def send(self, data: bytes) -> None:
        if self.stop.is_set():
            raise Gone
        try:
            self.conn.sendall(data)
        except OSError as exc:
            raise Gone from exc

    def pause(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Gone

    def trickle(self, data: bytes, interval: float) -> None:
        for i in range(len(data)):
            self.send(data[i:i + 1])
            self.pause(interval)

    def read_request(self, limit: int = 1 << 20) -> Request | None:
        """Read one request (headers, then a Content-Length body); None when the client sends nothing usable."""
        self.conn.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < limit:
                chunk = self.conn.recv(65536)
                if not chunk:
                    return None
                data += chunk
            head_raw, _, body = data.partition(b"\r\n\r\n")
            request_line, *header_lines = head_raw.decode("latin-1").split("\r\n")
            method, path, _ = (request_line.split(" ") + ["", ""])[:3]
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
            length = min(int(headers.get("content-length", "0") or 0), limit)
            while len(body) < length:
                chunk = self.conn.recv(65536)
                if not chunk:
                    break
                body += chunk
        except (OSError, ValueError):
            return None
        return Request(method, path.split("?")[0], headers, body)


# -- modes ----------------------------------------------------------------------------------------------------
def _hang(wire: Wire, request: Request, server: HostileServer) -> None:
    wire.pause(server.lifetime)


def _stall(wire: Wire, request: Request, server: HostileServer) -> None:
    prefix, unit = body_parts(request)
    length = None if request.wire != "json" else len(prefix) + len(unit) * 100
    wire.send(head("200 OK", CONTENT_TYPES[request.wire], length) + prefix + unit * 2)
    wire.pause(server.lifetime)


def _endless(wire: Wire, request: Request, server: HostileServer) -> None:
    prefix, unit = body_parts(request)
    wire.send(head("200 OK", CONTENT_TYPES[request.wire], extra=("Cache-Control: no-cache",)) + prefix)
    while True:
        wire.send(unit)
        wire.pause(ENDLESS_PAUSE_S)


def _gigabytes(wire: Wire, request: Request, server: HostileServer) -> None:
    prefix, unit = body_parts(request)
    length = HUGE_LENGTH if request.wire == "json" else None
    block = unit * max(1, BLOCK_BYTES // len(unit))
    wire.send(head("200 OK", CONTENT_TYPES[request.wire], length) + prefix)
    sent = len(prefix)
    while sent < HUGE_LENGTH:
        wire.send(block)
        sent += len(block)
        server.bytes_sent += len(block)


def _garbage(wire: Wire, request: Request, server: HostileServer) -> None:
    noise = random.Random(5).randbytes(4096)
    for _ in range(16):
        wire.send(b"\x00\xff" + noise)


def _reset(wire: Wire, request: Request, server: HostileServer) -> None:
    # Linger on with a zero timeout: close() sends RST instead of FIN.
    wire.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _html(status: str) -> Callable[[Wire, Request, HostileServer], None]:
    def answer(wire: Wire, request: Request, server: HostileServer) -> None:
        page = NGINX_PAGE.format(status=status).encode()
        wire.send(head(status, "text/html", len(page)) + page)
    return answer


def _trickle(wire: Wire, request: Request, server: HostileServer) -> None:
    body = complete_body(request)
    wire.trickle(head("200 OK", CONTENT_TYPES[request.wire], len(body)) + body, server.interval)


def _trickle_body(wire: Wire, request: Request, server: HostileServer) -> None:
    body = complete_body(request)
    wire.send(head("200 OK", CONTENT_TYPES[request.wire], len(body)))
    wire.trickle(body, server.interval)


def _wrong_json(wire: Wire, request: Request, server: HostileServer) -> None:
    # A debug echo: hostile in shape, and it reflects the Authorization header the harness must redact.
    body = json.dumps({"status": "ok", "echo": {"method": request.method, "path": request.path,
                                                "headers": request.headers}}).encode()
    wire.send(head("200 OK", "application/json", len(body)) + body)


HANDLERS: dict[str, Callable[[Wire, Request, HostileServer], None]] = {
    "hang": _hang, "stall": _stall, "endless": _endless, "gigabytes": _gigabytes, "garbage": _garbage,
    "reset": _reset, "html-200": _html("200 OK"), "html-502": _html("502 Bad Gateway"), "trickle": _trickle,
    "trickle-body": _trickle_body, "wrong-json": _wrong_json,
}


# -- the server -----------------------------------------------------------------------------------------------
@dataclass
class HostileServer:
    """One hostile mode on a free 127.0.0.1 port, as a context manager; ``url`` is its base URL.

    ``interval``: seconds per byte of the trickle modes. ``lifetime``: the server stops itself after this long
    even if the ``with`` block never ends. ``requests`` counts the requests read; ``bytes_sent`` what
    ``gigabytes`` pushed out.
    """

    mode: str
    interval: float = 1.0
    lifetime: float = 300.0
    requests: int = 0
    bytes_sent: int = 0
    port: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _listener: socket.socket | None = field(default=None, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)
    _conns: list[socket.socket] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown hostile mode {self.mode!r}; known: {', '.join(MODES)}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HostileServer:
        """Bind (or, for ``refuse``, reserve and release) a port and start accepting."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        if self.mode == "refuse":  # a port that was just free and has no listener: connect() gets RST
            sock.close()
            return self
        sock.listen(64)
        sock.settimeout(0.05)
        self._listener = sock
        self._spawn(self._accept_loop, "accept")
        timer = threading.Timer(self.lifetime, self._stop.set)
        timer.daemon = True
        timer.start()
        return self

    def stop(self) -> None:
        """Stop every loop, close every socket, and wait briefly for the handler threads."""
        self._stop.set()
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in list(self._threads):
            thread.join(timeout=2)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, target: Callable, name: str, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=f"hostile-{self.mode}-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            self._spawn(self._serve, "conn", conn)

    def _serve(self, conn: socket.socket) -> None:
        wire = Wire(conn, self._stop)
        try:
            request = wire.read_request()
            if request is not None:
                self.requests += 1
                HANDLERS[self.mode](wire, request, self)
        except Gone:
            pass
        finally:
            conn.close()
            self._conns.remove(conn)

