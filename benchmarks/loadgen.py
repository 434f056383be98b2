"""A load generator without dependencies: asyncio raw sockets, HTTP/1.1 keep-alive, one request in flight per
connection, all connections in one process.

Why this and not httpx/aiohttp: on 2 cores the client shares the CPU with the server, so every microsecond it spends
is taken from the server. A ``Protocol`` that writes pre-built request bytes and parses only the status line,
``Content-Length`` and chunk sizes costs a few microseconds per request (``measure_capacity`` measures it against a
responder that does nothing); httpx costs ~20x more. wrk is still preferred when installed (C, no GIL).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_HEADER_BYTES = 64 * 1024
DRAIN_TIMEOUT = 30.0


class ResponseParser:
    """Incremental parser of one HTTP/1.1 response: Content-Length or chunked body. ``feed`` returns True when the
    response is complete; ``body_started`` turns True with the first body byte (time to first byte)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.status: int | None = None
        self.body_started = False
        self._body_at: int | None = None
        self._length: int | None = None
        self._chunked = False
        self._pos = 0  # chunked: where the next chunk-size line starts

    def feed(self, data: bytes) -> bool:
        self.buffer += data
        if self._body_at is None and not self._parse_head():
            return False
        if len(self.buffer) > self._body_at:
            self.body_started = True
        if self._chunked:
            return self._chunks_done()
        return len(self.buffer) - self._body_at >= (self._length or 0)

    def _parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEADER_BYTES:
                raise ValueError("response head too large")
            return False
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                self._length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                self._chunked = True
        self._body_at = self._pos = end + 4
        return True

    def _chunks_done(self) -> bool:
        while True:
            line_end = self.buffer.find(b"\r\n", self._pos)
            if line_end < 0:
                return False
            size = int(bytes(self.buffer[self._pos:line_end]).split(b";")[0], 16)
            if size == 0:
                # Last chunk: complete once the (empty) trailer section's CRLF has arrived.
                return self.buffer.find(b"\r\n", line_end + 2) >= 0
            next_pos = line_end + 2 + size + 2
            if len(self.buffer) < next_pos:
                return False
            self._pos = next_pos


@dataclass
class LoadResult:
    """What one load run measured. Latencies in seconds, one entry per completed request."""

    duration: float
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    errors: int = 0
    bad_status: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else 0.0


Request = bytes | Callable[[], bytes]  # one request sent again and again, or a function giving each one


class _Connection(asyncio.Protocol):
    """Sends ``request`` again as soon as the previous answer is complete, until the run's deadline."""

    def __init__(self, request: Request, deadline: float, result: LoadResult, done: asyncio.Future) -> None:
        self.request, self.deadline, self.result, self.done = request, deadline, result, done
        self.next_request = (lambda: request) if isinstance(request, bytes) else request
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        self.parser = ResponseParser()
        self.started = time.perf_counter()
        self.first_byte: float | None = None
        self.transport.write(self.next_request())

    def data_received(self, data: bytes) -> None:
        try:
            complete = self.parser.feed(data)
        except ValueError:
            self._finish(error=True)
            return
        now = time.perf_counter()
        if self.first_byte is None and self.parser.body_started:
            self.first_byte = now - self.started
        if complete:
            self.result.latencies.append(now - self.started)
            self.result.first_bytes.append(self.first_byte if self.first_byte is not None else now - self.started)
            if not 200 <= (self.parser.status or 0) < 300:
                self.result.bad_status += 1
            if now < self.deadline:
                self._send()
            else:
                self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(error=True)

    def _finish(self, error: bool = False) -> None:
        if self.done.done():
            return
        if error:
            self.result.errors += 1
        self.done.set_result(None)
        self.transport.close()


async def _run(host: str, port: int, request: Request, connections: int, duration: float) -> LoadResult:
    loop = asyncio.get_running_loop()
    result = LoadResult(duration=duration)
    start = time.perf_counter()
    deadline = start + duration
    futures = []
    for _ in range(connections):
        done = loop.create_future()
        await loop.create_connection(lambda d=done: _Connection(request, deadline, result, d), host, port)
        futures.append(done)
    # Requests in flight at the deadline finish (bounded); the rate counts them over the real elapsed time.
    await asyncio.wait_for(asyncio.gather(*futures), duration + DRAIN_TIMEOUT)
    result.duration = time.perf_counter() - start
    return result


def run_load(host: str, port: int, request: Request, connections: int, duration: float) -> LoadResult:
    """Keep ``connections`` keep-alive connections busy with ``request`` for ``duration`` seconds (a function:
    called for each request sent)."""
    return asyncio.run(_run(host, port, request, connections, duration))


async def _fixed_responder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(answer * data.count(b"\r\n\r\n"))
    writer.close()


def measure_capacity(request: bytes, connections: int = 16, duration: float = 1.0) -> float:
    """Requests per second this client reaches against an in-process responder that does nothing: its ceiling.
    (Both sides share one core, so the client alone is faster still.)"""

    async def main() -> float:
        server = await asyncio.start_server(_fixed_responder, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            result = await _run("127.0.0.1", port, request, connections, duration)
        return result.rps

    return asyncio.run(main())


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
                    timeout: float) -> tuple[int, float, float]:
    """One request on an open keep-alive connection: (status, seconds to first body byte, seconds to complete)."""
    started = time.perf_counter()
    writer.write(request)
    parser, first_byte = ResponseParser(), None
    while True:
        data = await asyncio.wait_for(reader.read(65536), timeout)
        if not data:
            raise ConnectionError("connection closed before the answer was complete")
        complete = parser.feed(data)
        if first_byte is None and parser.body_started:
            first_byte = time.perf_counter() - started
        if complete:
            return parser.status or 0, first_byte or 0.0, time.perf_counter() - started


def paired_latencies(host: str, port: int, first: bytes, second: bytes, pairs: int,
                     timeout: float = 30.0) -> list[tuple[tuple[int, float, float], tuple[int, float, float]]]:
    """``first`` then ``second``, ``pairs`` times, on one keep-alive connection and nothing else in flight: each
    pair is measured under the same conditions, so their difference survives a noisy machine."""

    async def main():
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            return [(await _exchange(reader, writer, first, timeout), await _exchange(reader, writer, second, timeout))
                    for _ in range(pairs)]
        finally:
            writer.close()

    return asyncio.run(main())


def sequential(host: str, port: int, requests: list[bytes], timeout: float = 30.0) -> list[tuple[int, float, float]]:
    """Each of ``requests`` in turn on one keep-alive connection, nothing else in flight: (status, first byte, total)
    per request."""

    async def main():
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            return [await _exchange(reader, writer, request, timeout) for request in requests]
        finally:
            writer.close()

    return asyncio.run(main())


async def fetch_once(host: str, port: int, request: bytes, timeout: float = 60.0) -> tuple[int, float, float]:
    """One request on a fresh connection: (status, seconds to first body byte, seconds to the complete answer),
    counted from when the request is written."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        return await _exchange(reader, writer, request, timeout)
    finally:
        writer.close()


def concurrent_wall(host: str, port: int, request: bytes, count: int) -> tuple[float, list[int]]:
    """Send ``count`` requests at once on separate connections: (seconds until the last finished, statuses)."""

    async def main() -> tuple[float, list[int]]:
        started = time.perf_counter()
        answers = await asyncio.gather(*(fetch_once(host, port, request) for _ in range(count)))
        return time.perf_counter() - started, [status for status, _, _ in answers]

    return asyncio.run(main())
