"""The asyncio load generator: HTTP/1.1 response parsing and a short run against an in-process responder."""

import asyncio

from benchmarks import loadgen
from benchmarks.workload import NONSTREAM, STREAM


def feed_all(parser: loadgen.ResponseParser, pieces: list[bytes]) -> list[bool]:
    return [parser.feed(piece) for piece in pieces]


def test_content_length_response_completes_only_with_its_last_byte():
    parser = loadgen.ResponseParser()
    assert feed_all(parser, [b"HTTP/1.1 200 OK\r\nContent-Len", b"gth: 5\r\n\r\nab", b"cde"]) == [False, False, True]
    assert parser.status == 200 and parser.body_started


def test_head_without_body_byte_has_not_started_the_body():
    parser = loadgen.ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") is False
    assert not parser.body_started


def test_chunked_response_split_inside_sizes_and_data():
    parser = loadgen.ResponseParser()
    pieces = [b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", b"5\r\nhel", b"lo\r\n1", b"0\r\n",
              b"0123456789abcdef\r\n", b"0\r\n", b"\r\n"]
    assert feed_all(parser, pieces) == [False] * 6 + [True]
    assert parser.status == 201


def test_chunk_extension_is_ignored():
    parser = loadgen.ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n2;x=y\r\nok\r\n0\r\n\r\n") is True


async def _responder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request with a two-chunk stream, like a tiny SSE server."""
    while data := await reader.read(65536):
        answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        writer.write(answer * data.count(b"\r\n\r\n"))
    writer.close()


def test_run_load_counts_every_answer_and_its_first_byte():
    async def main() -> loadgen.LoadResult:
        server = await asyncio.start_server(_responder, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await loadgen._run("127.0.0.1", port, STREAM.raw_request("127.0.0.1", port), 4, 0.2)

    result = asyncio.run(main())
    assert result.requests > 10 and result.errors == 0 and result.bad_status == 0
    assert len(result.first_bytes) == result.requests
    assert all(0 < fb <= total for fb, total in zip(result.first_bytes, result.latencies, strict=True))


def test_fetch_once_returns_status_and_ordered_times():
    async def main():
        server = await asyncio.start_server(_responder, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await loadgen.fetch_once("127.0.0.1", port, NONSTREAM.raw_request("127.0.0.1", port))

    status, first_byte, total = asyncio.run(main())
    assert status == 200 and 0 < first_byte <= total


def test_capacity_is_measured():
    assert loadgen.measure_capacity(NONSTREAM.raw_request("127.0.0.1", 1), connections=2, duration=0.2) > 0


def test_paired_latencies_alternate_on_one_connection():
    connections = []

    async def counting(reader, writer):
        connections.append(writer)
        await _responder(reader, writer)

    async def main():
        server = await asyncio.start_server(counting, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await asyncio.to_thread(loadgen.paired_latencies, "127.0.0.1", port,
                                           NONSTREAM.raw_request("127.0.0.1", port),
                                           STREAM.raw_request("127.0.0.1", port), 5)

    pairs = asyncio.run(main())
    assert len(pairs) == 5 and len(connections) == 1
    assert all(first[0] == second[0] == 200 for first, second in pairs)
